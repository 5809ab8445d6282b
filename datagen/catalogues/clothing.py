"""Clothing and accessories as names and tables (no bpy): what a subject may wear, and the checks
that a spec names only that.

`datagen.samplers.clothing` draws outfits from these tables; `blender_assets.clothing` and
`blender_assets.accessories` build them after `validate_clothing` / `validate_accessories`.
"""

from __future__ import annotations

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
