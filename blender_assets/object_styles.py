"""General-object scenes for the reconstructor's first training stage (numpy only, no bpy).

GS-LRM learns geometry on general objects before it is fine-tuned on heads (FaceLift trains on
Objaverse first). Without a downloadable object set, `facelift datagen --kind objects` renders
procedural ones in the heads' exact shard format: 1–4 shapes (primitives, tori, noise-displaced
blobs) with random pose and size around the origin, each with a PBR material (plain, or two
colours through a procedural texture; some metallic, some glossy).
"""

from __future__ import annotations

import numpy as np

SHAPES: tuple[str, ...] = ("cube", "sphere", "cylinder", "cone", "torus", "icosphere", "monkey", "blob")
TEXTURES: tuple[str, ...] = ("plain", "checker", "noise", "voronoi", "wave")
MAX_OBJECTS = 4
EXTENT = 0.9  # every object's centre and size keep it within ≈ this radius: inside the view at radius 2.7, fov 50°


def _r(x) -> float:
    return round(float(x), 6)


def _colour(rng: np.random.Generator) -> list[float]:
    """A linear-RGB albedo: random hue, moderate saturation, value not too dark to see."""
    h, s, v = rng.random(), rng.uniform(0.15, 0.9), rng.uniform(0.15, 0.9)
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    rgb = v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return [_r(c**2.2) for c in rgb]


def sample_objects(rng: np.random.Generator) -> list[dict]:
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
                "location": [_r(c) for c in centre],
                "rotation_deg": [_r(a) for a in rng.uniform(0.0, 360.0, 3)],
                "size": _r(size),
                "aspect": [_r(a) for a in rng.uniform(0.6, 1.4, 3)],
                "material": {
                    "texture": TEXTURES[int(rng.integers(len(TEXTURES)))],
                    "color": _colour(rng),
                    "color2": _colour(rng),
                    "texture_scale": _r(rng.uniform(2.0, 12.0)),
                    "roughness": _r(rng.uniform(0.15, 0.9)),
                    "metallic": _r(rng.uniform(0.7, 1.0) if metallic else 0.0),
                },
                "seed": int(rng.integers(2**31 - 1)),
            }
        )
    return out


def validate_objects(objects) -> None:
    if not isinstance(objects, list) or not 1 <= len(objects) <= MAX_OBJECTS:
        raise ValueError(f"objects must be a list of 1–{MAX_OBJECTS} shapes, got {objects!r:.60}")
    for o in objects:
        if o.get("shape") not in SHAPES:
            raise ValueError(f"object shape {o.get('shape')!r} is not one of {', '.join(SHAPES)}")
        if o.get("material", {}).get("texture") not in TEXTURES:
            raise ValueError(
                f"object texture {o.get('material', {}).get('texture')!r} is not one of {', '.join(TEXTURES)}"
            )
        if not 0.01 <= float(o.get("size", -1)) <= 2.0:
            raise ValueError(f"object size {o.get('size')!r} is outside [0.01, 2]")
