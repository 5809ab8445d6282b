"""General-object scenes for the reconstructor's first training stage: shapes and textures (no bpy).

GS-LRM learns geometry on general objects before it is fine-tuned on heads (FaceLift trains on
Objaverse first). Without a downloadable object set, `facelift datagen --kind objects` renders
procedural ones in the heads' exact shard format: 1–4 shapes (primitives, tori, noise-displaced
blobs) with random pose and size around the origin, each with a PBR material (plain, or two
colours through a procedural texture; some metallic, some glossy). `datagen.samplers.objects` draws
them; `blender_assets.objects` builds them after `validate_objects`.
"""

from __future__ import annotations

SHAPES: tuple[str, ...] = ("cube", "sphere", "cylinder", "cone", "torus", "icosphere", "monkey", "blob")
TEXTURES: tuple[str, ...] = ("plain", "checker", "noise", "voronoi", "wave")
MAX_OBJECTS = 4
EXTENT = 0.9  # every object's centre and size keep it within ≈ this radius: inside the view at radius 2.7, fov 50°


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
