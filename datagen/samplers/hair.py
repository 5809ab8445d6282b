"""Hair per appearance: scalp style, length and colour, facial hair, and the identity's brows and lashes."""

from __future__ import annotations

import numpy as np

from datagen.catalogues.hair import (
    BASE_STYLE_WEIGHT,
    DENSITIES,
    DYE_PROBABILITY,
    DYES,
    FACIAL_HAIR,
    HAIRSTYLES,
    STYLE_SHAPE,
)
from datagen.catalogues.head import age_param_to_years
from datagen.samplers.rounding import spec_float
from datagen.samplers.subject import Subject


def _age_years(identity: dict) -> float:
    return float(age_param_to_years(identity["macro"]["age"]))


def sample_hair(rng: np.random.Generator, subject: Subject) -> dict:
    """The hair spec of one appearance; the hair_traits generator draws the identity's own traits
    (brows, lashes, natural colour: the same every appearance)."""
    identity = subject.drawn["identity"]
    brow_rng = subject.rng("hair_traits")
    gender = float(identity["macro"]["gender"])
    african = float(identity["macro"].get("african", 0.0))
    tone = float(identity["skin"]["tone"])
    age = _age_years(identity)
    male = gender >= 0.5

    # Identity-level draws first, always the same count, so they never depend on the appearance.
    traits = brow_rng.random(12)
    brow_traits = brow_rng.random(5)  # brow shape beyond size and arch
    melanin = float(np.clip(0.35 + 0.55 * tone + 0.35 * (traits[0] - 0.5) + 0.3 * african, 0.05, 1.0))
    redness = float(np.clip(0.2 + 0.6 * traits[1] ** 3 * (1.0 - tone), 0.0, 1.0))
    grey_onset = 30.0 + 25.0 * traits[2]  # years at which greying starts
    grey = float(np.clip((age - grey_onset) / 30.0, 0.0, 0.95))
    texture = float(np.clip(african + 0.25 * (traits[3] - 0.5), 0.0, 1.0))  # curl tendency
    # Brow centre line ≈ 1-1.9 cm above the eyeball centre, 2-16 mm tall, hairs 3-10 mm. Brow shape
    # is among the strongest cues a face recognizer reads, and real brows run from plucked lines to
    # bushy bands: spec 12 draws every trait over 1.8x spec 11's range about the same centre
    # (20 identities' neutral fronts at 256²: different-identity pairs at >= 0.6 63.7 % -> 68.9 %).
    eyebrows = {
        "thickness": spec_float(0.012 + 0.076 * traits[4] + 0.012 * gender),  # fine pencil lines to bushy
        "density": spec_float(np.clip(0.1 + 1.15 * traits[5], 0.15, 1.0)),
        "length": spec_float(0.021 + 0.027 * traits[6] + 0.014 * gender),
        "arch": spec_float(max(0.0, -0.002 + 0.063 * traits[7] * (1.2 - 0.5 * gender))),
        "height": spec_float(0.063 + 0.054 * traits[8]),
        # Where the head starts (half the gap between brows, 5-14 mm), how far the tail runs past
        # the eye, how far the tail drops (or rises) from the head, how much thinner the tail is, and
        # how much darker than the scalp hair (under 1: lighter).
        "inner": spec_float(0.033 + 0.054 * brow_traits[0]),
        "tail": spec_float(0.08 + 0.09 * brow_traits[1]),
        "tilt": spec_float(-0.048 + 0.081 * brow_traits[2]),
        "taper": spec_float(0.12 + 0.78 * brow_traits[3]),
        "shade": spec_float(0.6 + 1.42 * brow_traits[4]),
    }
    eyelashes = {
        "length": spec_float(0.035 + 0.02 * traits[9] * (1.3 - 0.6 * gender)),
        "density": spec_float(0.7 + 0.3 * traits[10]),
    }
    pattern_baldness = float(np.clip((age - 25.0) / 45.0 + 0.4 * (traits[11] - 0.5), 0.0, 1.0)) if male else 0.0

    weights = np.array([BASE_STYLE_WEIGHT[s][1 if male else 0] for s in HAIRSTYLES])
    weights[HAIRSTYLES.index("afro")] *= 0.2 + 12.0 * texture**2  # afro-textured hair needs the curl tendency
    weights[HAIRSTYLES.index("curly")] *= 1.0 + 3.0 * texture
    weights[HAIRSTYLES.index("long_straight")] *= 1.0 - 0.7 * texture
    weights[HAIRSTYLES.index("bald")] *= 1.0 + 8.0 * pattern_baldness**2
    style = HAIRSTYLES[int(rng.choice(len(HAIRSTYLES), p=weights / weights.sum()))]
    shape = STYLE_SHAPE.get(style)
    length = rng.uniform(*shape[0]) if shape else 0.0
    density = DENSITIES[int(rng.choice(3, p=[0.3, 0.5, 0.2]))]
    recession = (
        pattern_baldness * rng.uniform(0.5, 1.0)
        if style in ("buzz", "short", "medium", "curly") and rng.random() < pattern_baldness
        else 0.0
    )
    part = rng.uniform(-0.25, 0.25) if rng.random() < 0.8 else 0.0
    dyed = rng.random() < DYE_PROBABILITY
    dye_name = str(rng.choice(list(DYES)))
    dye_amount = rng.uniform(0.5, 0.9)
    colour = {
        "melanin": spec_float(melanin),
        "melanin_redness": spec_float(redness),
        "grey": spec_float(grey),
        "dye": {"name": dye_name, "tint": list(DYES[dye_name]), "amount": spec_float(dye_amount)} if dyed else None,
        "roughness": spec_float(rng.uniform(0.25, 0.4)),
        "tip_lightening": spec_float(rng.uniform(0.0, 0.2)),
    }

    facial_roll, facial_pick, facial_len, facial_den = rng.random(4)
    facial = "none"
    if male and facial_roll < 0.45:
        facial = FACIAL_HAIR[1 + int(facial_pick * (len(FACIAL_HAIR) - 1))]
    facial_length = {
        "none": 0.0,
        "stubble": 0.01,
        "moustache": 0.06,
        "goatee": 0.07,
        "short_beard": 0.05,
        "full_beard": 0.16,
    }[facial]
    return {
        "style": style,
        "length": spec_float(length),
        "density": density,
        "recession": spec_float(recession),
        "part": spec_float(part),
        "curl_radius": spec_float(shape[2] * rng.uniform(0.8, 1.2) if shape else 0.0),
        "curl_frequency": spec_float(shape[3] if shape else 0.0),
        "frizz": spec_float(shape[4] * rng.uniform(0.7, 1.4) if shape else 0.0),
        "clump": spec_float(shape[5] if shape else 0.0),
        "color": colour,
        "eyebrows": eyebrows,
        "eyelashes": eyelashes,
        "facial_hair": {
            "style": facial,
            "length": spec_float(facial_length * (0.7 + 0.6 * facial_len)),
            "density": spec_float(0.6 + 0.4 * facial_den),
        },
        "seed": int(rng.integers(0, 2**31 - 1)),
    }
