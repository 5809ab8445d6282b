"""Hairstyles, facial hair, densities and dyes: the hair catalogue the sampler draws from and the
hair builder checks a spec against (pure data, no geometry)."""

from __future__ import annotations

HAIRSTYLES: tuple[str, ...] = (
    "bald",
    "buzz",
    "short",
    "medium",
    "long_straight",
    "long_wavy",
    "curly",
    "afro",
    "ponytail",
    "bun",
)
FACIAL_HAIR: tuple[str, ...] = ("none", "stubble", "moustache", "goatee", "short_beard", "full_beard")
DENSITIES: tuple[str, ...] = ("low", "medium", "high")
# Interpolated scalp strands per scene unit² of scalp (≈ 1.6 units² of scalp → 13 k / 22 k / 35 k strands).
# Real heads hold ~100 k hairs; fewer, thicker strands read the same at 512² for far less render time.
DENSITY_PER_AREA = {"low": 8000.0, "medium": 14000.0, "high": 22000.0}
DYES = {
    "platinum": (0.95, 0.9, 0.8),
    "copper": (0.95, 0.45, 0.2),
    "burgundy": (0.6, 0.1, 0.2),
    "blue": (0.25, 0.4, 0.9),
    "pink": (0.95, 0.4, 0.6),
    "ash": (0.75, 0.75, 0.8),
}
DYE_PROBABILITY = 0.08

# Per style: (guide length range in scene units, points per guide, curl radius, curl frequency, frizz, clump).
STYLE_SHAPE = {
    "buzz": ((0.02, 0.035), 3, 0.0, 0.0, 0.002, 0.0),
    "short": ((0.12, 0.28), 6, 0.0, 0.0, 0.006, 0.35),
    "medium": ((0.45, 0.7), 10, 0.0, 0.0, 0.01, 0.45),
    "long_straight": ((1.0, 1.5), 18, 0.0, 0.0, 0.008, 0.4),
    "long_wavy": ((1.0, 1.4), 18, 0.04, 1.0, 0.012, 0.55),  # waves: a long period; a short one reads as ringlets
    "curly": ((0.35, 0.6), 12, 0.035, 8.0, 0.02, 0.6),
    "afro": ((0.3, 0.5), 10, 0.03, 20.0, 0.03, 0.0),
    "ponytail": ((0.8, 1.2), 18, 0.0, 0.0, 0.008, 0.5),
    "bun": ((0.6, 0.8), 18, 0.0, 0.0, 0.006, 0.3),
}
BASE_STYLE_WEIGHT = {
    #              female  male
    "bald": (0.005, 0.04),
    "buzz": (0.02, 0.16),
    "short": (0.07, 0.38),
    "medium": (0.16, 0.14),
    "long_straight": (0.22, 0.04),
    "long_wavy": (0.17, 0.03),
    "curly": (0.1, 0.08),
    "afro": (0.04, 0.04),
    "ponytail": (0.11, 0.02),
    "bun": (0.1, 0.02),
}


def validate_hair(spec: dict) -> None:
    """A clear one-line ValueError for values the builder cannot honour."""
    checks = (
        ("style", spec.get("style"), HAIRSTYLES),
        ("density", spec.get("density"), DENSITIES),
        ("facial_hair.style", spec.get("facial_hair", {}).get("style"), FACIAL_HAIR),
    )
    for name, value, allowed in checks:
        if value not in allowed:
            raise ValueError(f"hair {name} {value!r} is not allowed (allowed: {', '.join(allowed)})")
    dye = spec.get("color", {}).get("dye")
    if dye is not None and dye.get("name") not in DYES:
        raise ValueError(f"hair dye {dye.get('name')!r} is not allowed (allowed: {', '.join(DYES)})")
    if spec["style"] != "bald" and not spec.get("length", 0) > 0:
        raise ValueError(
            f"hair length {spec.get('length')!r} is not allowed for style {spec['style']!r} (must be > 0)"
        )
