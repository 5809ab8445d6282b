"""Clothing and accessories per appearance: what a subject wears, as JSON-safe dicts that go verbatim
into spec.json. Every value the builders use is in the dict, so a stored spec re-renders the same outfit."""

from __future__ import annotations

import numpy as np

from datagen.catalogues.clothing import (
    ACETATE_FRAME_COLOURS,
    COLOUR_WEIGHTS,
    EARRING_METALS,
    EARRING_STYLES,
    EARRINGS_PROBABILITY_FEMALE,
    EARRINGS_PROBABILITY_OTHER,
    FABRIC_COLOURS,
    FRAME_COLOURS,
    FRAME_MATERIALS,
    GARMENT_PATTERNS,
    GARMENT_WEIGHTS,
    GARMENTS,
    GLASSES_PROBABILITY,
    GLASSES_STYLES,
    HAT_HAIRSTYLES,
    HAT_PROBABILITY,
    HAT_STYLES,
    JACKET_INNER,
    LENS_TINTS,
    METAL_FRAME_COLOURS,
    NECKLINES,
    ROUGHNESS_RANGE,
    SHEEN_RANGE,
    THICKNESS,
)
from datagen.samplers.rounding import spec_float
from datagen.samplers.subject import Subject


def _rgb(c) -> list[float]:
    return [spec_float(v) for v in c]


def _pick(rng: np.random.Generator, options, weights=None) -> str:
    options = list(options)
    p = None if weights is None else np.asarray(weights, float) / np.sum(weights)
    return str(options[int(rng.choice(len(options), p=p))])


def _colour(rng: np.random.Generator, avoid: str | None = None) -> tuple[str, list[float]]:
    names = [n for n in FABRIC_COLOURS if n != avoid]
    name = _pick(rng, names, [COLOUR_WEIGHTS[n] for n in names])
    jitter = rng.uniform(0.9, 1.1, size=3)  # dye lots differ: no two navies are identical
    return name, _rgb(np.clip(np.array(FABRIC_COLOURS[name]) * jitter, 0.0, 0.9))


def _fabric(rng: np.random.Generator, garment: str) -> dict:
    """Colours, pattern and surface response of one garment's cloth."""
    name, colour = _colour(rng)
    second_name, second = _colour(rng, avoid=name)
    pattern = _pick(rng, GARMENT_PATTERNS[garment])
    scale = {
        "stripes": (6.0, 18.0),
        "check": (4.0, 10.0),
        "dots": (10.0, 25.0),
        "heather": (60.0, 120.0),
        "knit": (25.0, 40.0),
        "solid": (1.0, 1.0),
    }[pattern]
    return {
        "color_name": name,
        "base_color": colour,
        "secondary_color_name": second_name,
        "secondary_color": second,
        "pattern": pattern,
        "pattern_scale": spec_float(rng.uniform(*scale)),  # repeats per scene unit
        "pattern_angle_deg": spec_float(0.0 if pattern != "check" and rng.random() < 0.8 else rng.choice([0.0, 45.0])),
        "roughness": spec_float(rng.uniform(*ROUGHNESS_RANGE)),
        "sheen": spec_float(rng.uniform(*SHEEN_RANGE)),
        "weave_bump": spec_float(rng.uniform(0.1, 0.35)),
    }


def _layer(rng: np.random.Generator, garment: str) -> dict:
    neckline = NECKLINES[garment]
    return {
        "garment": garment,
        "neckline": neckline,
        # Front dip of the neckline below the neck base, as a fraction of the neck-base-to-chin height.
        "neckline_depth": spec_float(
            {"v": rng.uniform(0.5, 1.0), "lapel": rng.uniform(1.0, 1.6)}.get(neckline, rng.uniform(0.05, 0.2))
        ),
        "collar_height": spec_float(
            rng.uniform(0.08, 0.13)
            if neckline in ("collar", "lapel")
            else rng.uniform(0.25, 0.4)
            if neckline == "turtle"
            else 0.0
        ),
        "thickness": spec_float(THICKNESS[garment] * rng.uniform(0.9, 1.15)),
        "fit": spec_float(rng.uniform(0.0, 0.04)),  # extra looseness over the thickness
        "fabric": _fabric(rng, garment),
    }


def sample_clothing(rng: np.random.Generator, subject: Subject) -> dict:
    """The outfit of one appearance: an outer garment and, for jackets, the layer under it."""
    male = float(subject.drawn["identity"]["macro"]["gender"])
    weights = dict(GARMENT_WEIGHTS)
    weights["shirt"] *= 0.7 + 0.6 * male  # mild correlations only: everyone can wear anything
    weights["vneck"] *= 1.3 - 0.6 * male
    garment = _pick(rng, GARMENTS, [weights[g] for g in GARMENTS])
    out = _layer(rng, garment)
    if garment == "jacket":
        out["inner"] = _layer(rng, _pick(rng, JACKET_INNER))
    return out


def _glasses(rng: np.random.Generator) -> dict:
    material = _pick(rng, FRAME_MATERIALS)
    colour = _pick(rng, METAL_FRAME_COLOURS if material == "metal" else ACETATE_FRAME_COLOURS)
    tint = _pick(rng, LENS_TINTS, [6, 2, 1, 1])
    return {
        "style": _pick(rng, GLASSES_STYLES),
        "frame_material": material,
        "frame_color_name": colour,
        "frame_color": _rgb(FRAME_COLOURS[colour]),
        "rim_radius": spec_float(rng.uniform(0.006, 0.009) if material == "metal" else rng.uniform(0.012, 0.018)),
        "lens_width": spec_float(rng.uniform(0.28, 0.33)),  # scene units: 45–53 mm lenses
        "lens_height": spec_float(rng.uniform(0.2, 0.27)),
        "lens_tint_name": tint,
        "lens_tint": _rgb(LENS_TINTS[tint]),
    }


def _earrings(rng: np.random.Generator) -> dict:
    style = _pick(rng, EARRING_STYLES)
    metal = _pick(rng, EARRING_METALS)
    return {
        "style": style,
        "metal": metal,
        "color": _rgb(EARRING_METALS[metal]),
        "size": spec_float(
            rng.uniform(0.018, 0.03) if style == "stud" else rng.uniform(0.06, 0.12)
        ),  # stud radius / hoop radius
    }


def _hat(rng: np.random.Generator) -> dict:
    style = _pick(rng, HAT_STYLES)
    name, colour = _colour(rng)
    return {
        "style": style,
        "color_name": name,
        "base_color": colour,
        "pattern": "knit" if style == "beanie" else "solid",
        "roughness": spec_float(rng.uniform(0.7, 0.95)),
        "brow_clearance": spec_float(rng.uniform(0.12, 0.2)),  # scene units above the eyes: the hat never hides them
        "cuff": bool(style == "beanie" and rng.random() < 0.6),
    }


def sample_accessories(rng: np.random.Generator, subject: Subject) -> dict:
    """Glasses, earrings and hat, each present with its catalogue probability (None when absent); a hat
    only over the hairstyles of HAT_HAIRSTYLES.

    All draws happen whether or not the item is present, so one item's probability changing never
    shifts another's draws.
    """
    female = 1.0 - float(subject.drawn["identity"]["macro"]["gender"]) >= 0.5
    hairstyle = subject.drawn["hair"]["style"]
    rolls = rng.random(3)
    glasses, earrings, hat = _glasses(rng), _earrings(rng), _hat(rng)
    p_ear = EARRINGS_PROBABILITY_FEMALE if female else EARRINGS_PROBABILITY_OTHER
    return {
        "glasses": glasses if rolls[0] < GLASSES_PROBABILITY else None,
        "earrings": earrings if rolls[1] < p_ear else None,
        "hat": hat if rolls[2] < HAT_PROBABILITY and hairstyle in HAT_HAIRSTYLES else None,
    }
