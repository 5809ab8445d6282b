"""An objects scene (`--kind objects`): 1–4 procedural shapes, each with its pose, size and material."""

from __future__ import annotations

import numpy as np

from datagen.catalogues.objects import EXTENT, MAX_OBJECTS, SHAPES, TEXTURES
from datagen.samplers.rounding import spec_float
from datagen.samplers.subject import Subject


def _colour(rng: np.random.Generator) -> list[float]:
    """A linear-RGB albedo: random hue, moderate saturation, value not too dark to see."""
    h, s, v = rng.random(), rng.uniform(0.15, 0.9), rng.uniform(0.15, 0.9)
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    rgb = v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return [spec_float(c**2.2) for c in rgb]


def sample_objects(rng: np.random.Generator, subject: Subject) -> list[dict]:
    count = int(rng.integers(1, MAX_OBJECTS + 1))
    out = []
    for _k in range(count):
        size = rng.uniform(0.25, 0.55) if count > 1 else rng.uniform(0.45, 0.7)
        reach = max(0.0, EXTENT - size)
        centre = rng.normal(0.0, 1.0, 3)
        centre = centre / max(np.linalg.norm(centre), 1e-9) * rng.uniform(0.0, reach) if count > 1 else centre * 0.05
        metallic = rng.random() < 0.2
        out.append(
            {
                "shape": SHAPES[int(rng.integers(len(SHAPES)))],
                "location": [spec_float(c) for c in centre],
                "rotation_deg": [spec_float(a) for a in rng.uniform(0.0, 360.0, 3)],
                "size": spec_float(size),
                "aspect": [spec_float(a) for a in rng.uniform(0.6, 1.4, 3)],
                "material": {
                    "texture": TEXTURES[int(rng.integers(len(TEXTURES)))],
                    "color": _colour(rng),
                    "color2": _colour(rng),
                    "texture_scale": spec_float(rng.uniform(2.0, 12.0)),
                    "roughness": spec_float(rng.uniform(0.15, 0.9)),
                    "metallic": spec_float(rng.uniform(0.7, 1.0) if metallic else 0.0),
                },
                "seed": int(rng.integers(2**31 - 1)),
            }
        )
    return out
