"""Clothing and accessory choices as plain data (no bpy): what a subject wears, drawn per appearance.

`sample_clothing` and `sample_accessories` return JSON-safe dicts that go verbatim into spec.json;
`clothing.build_clothing` / `accessories.build_accessories` turn them into Blender objects. Every
value the builders use is in the dict, so a stored spec re-renders the same outfit.
"""

from __future__ import annotations

import numpy as np

GARMENTS: tuple[str, ...] = ("tshirt", "vneck", "shirt", "polo", "hoodie", "turtleneck", "sweater", "jacket")
# Relative draw weights; a jacket is always worn over one of JACKET_INNER.
GARMENT_WEIGHTS = {
    "tshirt": 3.0,
    "vneck": 1.0,
    "shirt": 2.0,
    "polo": 1.0,
    "hoodie": 1.5,
    "turtleneck": 1.0,
    "sweater": 1.5,
    "jacket": 1.5,
}
JACKET_INNER: tuple[str, ...] = ("tshirt", "shirt", "turtleneck")

# Neckline of each garment: crew (round, at the neck base), v (dips in front), collar (shirt collar
# on a crew-height opening, open at the front), turtle (rolled tube up the neck), hood (crew + hood
# bunched behind the neck), lapel (deep V for jackets, showing the inner layer).
NECKLINES = {
    "tshirt": "crew",
    "vneck": "v",
    "shirt": "collar",
    "polo": "collar",
    "hoodie": "hood",
    "turtleneck": "turtle",
    "sweater": "crew",
    "jacket": "lapel",
}

PATTERNS: tuple[str, ...] = ("solid", "stripes", "check", "dots", "heather", "knit")
# Patterns each garment may carry (knit/heather read as sweaters and sweatshirts, not shirts).
GARMENT_PATTERNS = {
    "tshirt": ("solid", "solid", "stripes", "heather", "dots"),
    "vneck": ("solid", "solid", "heather", "stripes"),
    "shirt": ("solid", "stripes", "check", "check", "dots"),
    "polo": ("solid", "solid", "stripes"),
    "hoodie": ("solid", "solid", "heather"),
    "turtleneck": ("solid", "knit", "knit", "heather"),
    "sweater": ("knit", "knit", "heather", "stripes", "solid"),
    "jacket": ("solid", "solid", "check", "heather"),
}

# Fabric colours in linear RGB (sRGB swatches of common dyes, converted): what real clothes come in.
FABRIC_COLOURS: dict[str, tuple[float, float, float]] = {
    "white": (0.80, 0.80, 0.78),
    "cream": (0.74, 0.66, 0.50),
    "black": (0.018, 0.018, 0.02),
    "charcoal": (0.05, 0.05, 0.055),
    "heather_grey": (0.30, 0.30, 0.31),
    "navy": (0.015, 0.025, 0.09),
    "royal_blue": (0.03, 0.08, 0.40),
    "sky_blue": (0.30, 0.50, 0.75),
    "denim": (0.07, 0.13, 0.25),
    "teal": (0.02, 0.20, 0.20),
    "forest_green": (0.025, 0.10, 0.04),
    "olive": (0.12, 0.13, 0.04),
    "khaki": (0.40, 0.33, 0.20),
    "camel": (0.45, 0.26, 0.11),
    "brown": (0.12, 0.05, 0.02),
    "burgundy": (0.18, 0.01, 0.03),
    "red": (0.55, 0.03, 0.03),
    "rust": (0.40, 0.10, 0.03),
    "mustard": (0.60, 0.40, 0.04),
    "pink": (0.80, 0.40, 0.45),
    "lavender": (0.45, 0.38, 0.65),
    "coral": (0.85, 0.28, 0.20),
}
# Muted colours are worn more than loud ones.
COLOUR_WEIGHTS = {
    "white": 3.0,
    "cream": 1.0,
    "black": 3.0,
    "charcoal": 2.0,
    "heather_grey": 2.5,
    "navy": 2.5,
    "royal_blue": 1.0,
    "sky_blue": 1.2,
    "denim": 1.2,
    "teal": 0.7,
    "forest_green": 0.8,
    "olive": 1.0,
    "khaki": 1.0,
    "camel": 0.8,
    "brown": 0.8,
    "burgundy": 1.0,
    "red": 0.8,
    "rust": 0.6,
    "mustard": 0.5,
    "pink": 0.7,
    "lavender": 0.5,
    "coral": 0.5,
}

# Fabric shell thickness off the skin (scene units; 0.161 m each) and roughness/sheen by garment.
THICKNESS = {
    "tshirt": 0.03,
    "vneck": 0.03,
    "shirt": 0.035,
    "polo": 0.035,
    "hoodie": 0.07,
    "turtleneck": 0.045,
    "sweater": 0.055,
    "jacket": 0.09,
}
ROUGHNESS_RANGE = (0.6, 0.95)
SHEEN_RANGE = (0.1, 0.6)

GLASSES_PROBABILITY = (
    0.1  # CelebA marks 6.5 % of its celebrity photos "Eyeglasses"; at 20 % MTCNN lost 4 of 6 bespectacled subjects
)
EARRINGS_PROBABILITY_FEMALE = 0.25
EARRINGS_PROBABILITY_OTHER = 0.05
HAT_PROBABILITY = 0.1
HAT_HAIRSTYLES: tuple[str, ...] = ("bald", "buzz", "short")  # a hat over long hair would need the hair squashed

GLASSES_STYLES: tuple[str, ...] = ("round", "rectangular", "aviator", "browline")
FRAME_MATERIALS: tuple[str, ...] = ("metal", "acetate")
FRAME_COLOURS: dict[str, tuple[float, float, float]] = {
    "black": (0.015, 0.015, 0.015),
    "tortoise": (0.12, 0.045, 0.012),
    "gold": (0.9, 0.65, 0.3),
    "silver": (0.8, 0.8, 0.82),
    "gunmetal": (0.25, 0.25, 0.27),
    "clear_brown": (0.3, 0.18, 0.1),
}
METAL_FRAME_COLOURS = ("gold", "silver", "gunmetal", "black")
ACETATE_FRAME_COLOURS = ("black", "tortoise", "clear_brown", "gunmetal")
LENS_TINTS = {
    "clear": (1.0, 1.0, 1.0),
    "blue_cut": (0.95, 0.97, 1.0),
    "warm": (1.0, 0.96, 0.88),
    "grey": (0.85, 0.85, 0.85),
}

EARRING_STYLES: tuple[str, ...] = ("stud", "hoop")
EARRING_METALS = {"gold": (0.95, 0.72, 0.35), "silver": (0.92, 0.92, 0.93), "rose_gold": (0.95, 0.6, 0.5)}

HAT_STYLES: tuple[str, ...] = ("beanie", "cap")


def _r(x: float) -> float:
    return round(float(x), 6)


def _rgb(c) -> list[float]:
    return [_r(v) for v in c]


def _pick(rng: np.random.Generator, options, weights=None) -> str:
    options = list(options)
    p = None if weights is None else np.asarray(weights, float) / np.sum(weights)
    return str(options[int(rng.choice(len(options), p=p))])


def _colour(rng: np.random.Generator, avoid: str | None = None) -> tuple[str, list[float]]:
    names = [n for n in FABRIC_COLOURS if n != avoid]
    name = _pick(rng, names, [COLOUR_WEIGHTS[n] for n in names])
    jitter = rng.uniform(0.9, 1.1, size=3)  # dye lots differ: no two navies are identical
    return name, _rgb(np.clip(np.array(FABRIC_COLOURS[name]) * jitter, 0.0, 0.9))


def sample_fabric(rng: np.random.Generator, garment: str) -> dict:
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
        "pattern_scale": _r(rng.uniform(*scale)),  # repeats per scene unit
        "pattern_angle_deg": _r(0.0 if pattern != "check" and rng.random() < 0.8 else rng.choice([0.0, 45.0])),
        "roughness": _r(rng.uniform(*ROUGHNESS_RANGE)),
        "sheen": _r(rng.uniform(*SHEEN_RANGE)),
        "weave_bump": _r(rng.uniform(0.1, 0.35)),
    }


def _layer(rng: np.random.Generator, garment: str) -> dict:
    neckline = NECKLINES[garment]
    return {
        "garment": garment,
        "neckline": neckline,
        # Front dip of the neckline below the neck base, as a fraction of the neck-base-to-chin height.
        "neckline_depth": _r(
            {"v": rng.uniform(0.5, 1.0), "lapel": rng.uniform(1.0, 1.6)}.get(neckline, rng.uniform(0.05, 0.2))
        ),
        "collar_height": _r(
            rng.uniform(0.08, 0.13)
            if neckline in ("collar", "lapel")
            else rng.uniform(0.25, 0.4)
            if neckline == "turtle"
            else 0.0
        ),
        "thickness": _r(THICKNESS[garment] * rng.uniform(0.9, 1.15)),
        "fit": _r(rng.uniform(0.0, 0.04)),  # extra looseness over the thickness
        "fabric": sample_fabric(rng, garment),
    }


def sample_clothing(rng: np.random.Generator, identity: dict) -> dict:
    """The outfit of one appearance: an outer garment and, for jackets, the layer under it."""
    male = float(identity["macro"]["gender"])
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
        "rim_radius": _r(rng.uniform(0.006, 0.009) if material == "metal" else rng.uniform(0.012, 0.018)),
        "lens_width": _r(rng.uniform(0.28, 0.33)),  # scene units: 45–53 mm lenses
        "lens_height": _r(rng.uniform(0.2, 0.27)),
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
        "size": _r(
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
        "roughness": _r(rng.uniform(0.7, 0.95)),
        "brow_clearance": _r(rng.uniform(0.12, 0.2)),  # scene units above the eyes: the hat never hides them
        "cuff": bool(style == "beanie" and rng.random() < 0.6),
    }


def sample_accessories(rng: np.random.Generator, identity: dict, hairstyle: str) -> dict:
    """Glasses, earrings and hat, each present with its module probability (None when absent).

    All draws happen whether or not the item is present, so one item's probability changing never
    shifts another's draws.
    """
    female = 1.0 - float(identity["macro"]["gender"]) >= 0.5
    rolls = rng.random(3)
    glasses, earrings, hat = _glasses(rng), _earrings(rng), _hat(rng)
    p_ear = EARRINGS_PROBABILITY_FEMALE if female else EARRINGS_PROBABILITY_OTHER
    return {
        "glasses": glasses if rolls[0] < GLASSES_PROBABILITY else None,
        "earrings": earrings if rolls[1] < p_ear else None,
        "hat": hat if rolls[2] < HAT_PROBABILITY and hairstyle in HAT_HAIRSTYLES else None,
    }


def _check(value, allowed, what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{what} {value!r} is not one of {', '.join(map(str, allowed))}")


def _check_number(d: dict, key: str, what: str, low: float, high: float) -> None:
    v = d.get(key)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not low <= v <= high:
        raise ValueError(f"{what}[{key!r}] = {v!r} must be a number in [{low}, {high}]")


def _check_colour(d: dict, key: str, what: str) -> None:
    c = d.get(key)
    if (
        not isinstance(c, (list, tuple))
        or len(c) != 3
        or not all(isinstance(x, (int, float)) and 0 <= x <= 1 for x in c)
    ):
        raise ValueError(f"{what}[{key!r}] = {c!r} must be 3 linear RGB values in [0, 1]")


def validate_clothing(spec: dict, what: str = "clothing") -> None:
    """Raise a one-line ValueError naming the first bad value of a clothing spec."""
    if not isinstance(spec, dict):
        raise ValueError(f"{what} must be a dict, got {type(spec).__name__}")
    _check(spec.get("garment"), GARMENTS, f"{what} garment")
    _check(spec.get("neckline"), sorted(set(NECKLINES.values())), f"{what} neckline")
    _check_number(spec, "neckline_depth", what, 0.0, 2.0)
    _check_number(spec, "collar_height", what, 0.0, 0.5)
    _check_number(spec, "thickness", what, 0.005, 0.2)
    _check_number(spec, "fit", what, 0.0, 0.1)
    fabric = spec.get("fabric")
    if not isinstance(fabric, dict):
        raise ValueError(f"{what}['fabric'] must be a dict, got {type(fabric).__name__}")
    _check(fabric.get("pattern"), PATTERNS, f"{what} fabric pattern")
    for key in ("base_color", "secondary_color"):
        _check_colour(fabric, key, f"{what}['fabric']")
    _check_number(fabric, "pattern_scale", f"{what}['fabric']", 0.1, 1000.0)
    _check_number(fabric, "pattern_angle_deg", f"{what}['fabric']", -360.0, 360.0)
    _check_number(fabric, "roughness", f"{what}['fabric']", 0.0, 1.0)
    _check_number(fabric, "sheen", f"{what}['fabric']", 0.0, 1.0)
    _check_number(fabric, "weave_bump", f"{what}['fabric']", 0.0, 1.0)
    if spec["garment"] == "jacket":
        if "inner" not in spec:
            raise ValueError(f"{what} jacket needs an 'inner' layer (one of {', '.join(JACKET_INNER)})")
        _check(
            spec["inner"].get("garment") if isinstance(spec["inner"], dict) else spec["inner"],
            JACKET_INNER,
            f"{what} inner garment",
        )
        validate_clothing(spec["inner"], f"{what}['inner']")


def validate_accessories(spec: dict) -> None:
    """Raise a one-line ValueError naming the first bad value of an accessories spec."""
    if not isinstance(spec, dict):
        raise ValueError(f"accessories must be a dict, got {type(spec).__name__}")
    unknown = set(spec) - {"glasses", "earrings", "hat"}
    if unknown:
        raise ValueError(f"accessories has unknown keys {sorted(unknown)} (allowed: glasses, earrings, hat)")
    g, e, h = spec.get("glasses"), spec.get("earrings"), spec.get("hat")
    if g is not None:
        _check(g.get("style"), GLASSES_STYLES, "glasses style")
        _check(g.get("frame_material"), FRAME_MATERIALS, "glasses frame_material")
        _check_colour(g, "frame_color", "glasses")
        _check_colour(g, "lens_tint", "glasses")
        _check_number(g, "rim_radius", "glasses", 0.001, 0.04)
        _check_number(g, "lens_width", "glasses", 0.15, 0.5)
        _check_number(g, "lens_height", "glasses", 0.1, 0.4)
    if e is not None:
        _check(e.get("style"), EARRING_STYLES, "earrings style")
        _check_colour(e, "color", "earrings")
        _check_number(e, "size", "earrings", 0.005, 0.2)
    if h is not None:
        _check(h.get("style"), HAT_STYLES, "hat style")
        _check_colour(h, "base_color", "hat")
        _check_number(h, "roughness", "hat", 0.0, 1.0)
        _check_number(h, "brow_clearance", "hat", 0.05, 0.5)
