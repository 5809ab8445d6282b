"""How spec.json stores a drawn number."""

from __future__ import annotations


def spec_float(x: float) -> float:
    """`x` rounded to 6 decimals, so spec.json is short and stable across numpy versions' repr."""
    return round(float(x), 6)
