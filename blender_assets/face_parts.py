"""Face-part segmentation class of every face of the cut head mesh (numpy, no bpy).

Decided once on MakeHuman's base mesh, whose topology every identity and expression shares, so a
face keeps its class however the head is morphed, posed or expressed. Classes index
`seg_classes.SEG_CLASSES`; left and right are the subject's own (base-mesh +x is the subject's left).

How each region is found:
- teeth, tongue, eyelashes: their mesh parts (`shape.PARTS`); lash strips go to the eye on their side.
- mouth_interior: the skin's UV island that lines the mouth (cheeks, palate, floor: the island
  nearest the tongue), plus the lips' wet inner ring next to it.
- lips: MakeHuman's lips are concentric rings of quads around the mouth lining; the red part is
  the rings out to the vermilion border (the edge loop where MakeHuman's lips texture mask ends),
  less the innermost ring behind the contact line. Upper and lower are told apart by `jawOpen`,
  which drops the lower lip with the jaw and leaves the upper one in place.
- ears, nose: MakeHuman's `*-trans-*` targets move the auricle / external nose rigidly and fade
  out over the skin around it, so the faces they move in full are the part itself. The nose
  target's rigid part stops a little below the eyes; the bridge is continued up to the nasion
  (the vertex `nose-greek` moves most) across the width of the rigid bridge's top.
- neck: below the jaw line, taken as a line in the side view (x-free, hence symmetric) from the
  underside of the chin to the jaw's angle below the ear lobe, levelling off at the nape below
  the skull; the largest connected piece, so no stray island sits on the face.
- face_skin: every other skin face (face, forehead, scalp skin, lids, behind the ears).
"""

from __future__ import annotations

import functools

import numpy as np

from blender_assets import anny_data as data
from blender_assets import shape
from blender_assets.seg_classes import seg_class

# Face rings from the mouth lining out to the vermilion border, the innermost (behind the
# closed lips' contact line) being wet lining.
LIP_RINGS = 7
INNER_LIP_RINGS = 1
# Lip faces dropping more than this share of the lower lip's full `jawOpen` drop are lower lip: the
# corners move partly with the jaw.
LOWER_LIP_DROP = 0.3
RIGID = 0.97  # share of a target's largest move that counts as "moved in full"
# The jaw line in MakeHuman decimetres: it starts this far behind the chin landmark (the jaw bone's
# lower edge lies behind the soft chin)…
CHIN_DEPTH_DM = 0.1
# …and rises to the jaw's angle, this far below the ear lobe's bottom under the auricle; behind it
# the nape line stays level this far below the lobe.
GONION_BELOW_LOBE_DM = 0.25
NAPE_BELOW_LOBE_DM = 0.1


def _quads() -> tuple[np.ndarray, np.ndarray]:
    """(F, 4) base-mesh vertex indices of the cut head's faces (all quads) and their parts."""
    topo = shape.topology()
    return topo.keep[np.array(topo.faces)], topo.face_part


def _edge_neighbours(quads: np.ndarray) -> np.ndarray:
    """(E, 2) pairs of faces sharing an edge (both orders)."""
    edges = np.stack([quads, np.roll(quads, -1, axis=1)], axis=-1).reshape(-1, 2)
    key = np.sort(edges, axis=1)
    face = np.repeat(np.arange(len(quads)), 4)
    _, inv = np.unique(key, axis=0, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    a, b = order[:-1], order[1:]
    same = inv[a] == inv[b]
    pairs = np.stack([face[a[same]], face[b[same]]], axis=1)
    return np.concatenate([pairs, pairs[:, ::-1]])


def _grow(seed: np.ndarray, allowed: np.ndarray, pairs: np.ndarray, steps: int | None = None) -> np.ndarray:
    """Ring number (0 for seeds, −1 unreached) of faces reached from `seed` through `allowed` faces."""
    ring = np.where(seed, 0, -1)
    step = 0
    while steps is None or step < steps:
        step += 1
        src, dst = pairs[:, 0], pairs[:, 1]
        new = dst[(ring[src] == step - 1) & (ring[dst] < 0) & allowed[dst]]
        if not len(new):
            break
        ring[new] = step
    return ring


def _components(mask: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Connected-component label per face of `mask` (−1 elsewhere), through shared edges."""
    label = np.full(len(mask), -1)
    for start in np.flatnonzero(mask):
        if label[start] < 0:
            label[_grow(np.arange(len(mask)) == start, mask, pairs) >= 0] = start
    return label


def _largest(mask: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    label = _components(mask, pairs)
    ids, counts = np.unique(label[mask], return_counts=True)
    return label == ids[np.argmax(counts)]


def _tidy(mask: np.ndarray, pairs: np.ndarray, rounds: int = 2) -> np.ndarray:
    """Smooth a region's outline: faces with 3+ of their 4 edge neighbours inside join it, faces with
    at most one leave it (the staircase a threshold leaves across skewed quads)."""
    for _ in range(rounds):
        inside = np.bincount(pairs[:, 0][mask[pairs[:, 1]]], minlength=len(mask))
        mask = (mask & (inside >= 2)) | (inside >= 3)
    return mask


def _uv_islands(base_faces: np.ndarray) -> np.ndarray:
    """UV island id per base-mesh face in `base_faces` (faces sharing a UV corner are joined)."""
    mesh = data.base_mesh()
    uv = np.array([mesh.face_uvs[i] for i in base_faces])
    parent = np.arange(len(mesh.uvs))
    while True:  # union-find by repeated min-propagation over each face's corners
        root = parent[uv].min(axis=1)
        before = parent.copy()
        np.minimum.at(parent, uv, root[:, None])
        parent = parent[parent]
        if np.array_equal(parent, before):
            return parent[uv[:, 0]]


def _moved_in_full(path: str, count: int) -> np.ndarray:
    """Per base vertex: does the target move it (nearly) as far as its largest move?"""
    t = data.target(path)
    size = np.linalg.norm(t.deltas, axis=1)
    out = np.zeros(count, dtype=bool)
    out[t.indices[size >= RIGID * size.max()]] = True
    return out


@functools.cache
def head_face_classes() -> np.ndarray:
    """(F,) class index (into SEG_CLASSES) per face of `shape.topology().faces`."""
    mesh, groups = data.base_mesh(), data.vertex_groups()
    v = mesh.vertices
    quads, part = _quads()
    centre = v[quads].mean(axis=1)
    pairs = _edge_neighbours(quads)
    skin = part == shape.PARTS.index("skin")
    cls = np.full(len(quads), seg_class("face_skin"))

    # Which base face each kept face is, for its UVs.
    index = {tuple(f): i for i, f in enumerate(mesh.faces)}
    islands = _uv_islands(np.array([index[tuple(f)] for f in quads]))

    # Mouth lining: the skin island nearest the tongue, then the lip rings around it.
    tongue = v[groups["helper-tongue"]].mean(axis=0)
    skin_idx = np.flatnonzero(skin)
    nearest = skin_idx[np.argmin(np.linalg.norm(centre[skin_idx] - tongue, axis=1))]
    lining = skin & (islands == islands[nearest])
    ring = _grow(lining, skin, pairs, LIP_RINGS)
    lips = ring > INNER_LIP_RINGS
    jaw = data.expression_unit("jawOpen")
    drop = np.zeros(len(v))
    drop[jaw.indices] = -jaw.deltas[:, 1]
    face_drop = drop[quads].mean(axis=1)
    lower = face_drop > LOWER_LIP_DROP * face_drop[lips].max()

    # Ears and nose: what their translation targets move in full.
    ears = {
        side: _moved_in_full(f"ears/{s}-ear-trans-backward", len(v))[quads].all(axis=1) & skin
        for side, s in (("left_ear", "l"), ("right_ear", "r"))
    }
    nose = _tidy(_moved_in_full("nose/nose-trans-up", len(v))[quads].all(axis=1) & skin, pairs)

    # Neck: below the jaw line (side view), largest piece.
    marks = shape.landmark_vertices()
    chin = v[marks["chin"]]
    lobe = v[np.flatnonzero(_moved_in_full("ears/l-ear-trans-backward", len(v)))]
    lobe_y = lobe[:, 1].min()
    gonion = np.array([lobe[:, 2].mean(), lobe_y - GONION_BELOW_LOBE_DM])
    start = np.array([chin[2] - CHIN_DEPTH_DM, chin[1]])
    slope = (gonion[1] - start[1]) / (start[0] - gonion[0])
    jaw_y = np.minimum(start[1] + slope * (start[0] - centre[:, 2]), lobe_y - NAPE_BELOW_LOBE_DM)
    neck = skin & (centre[:, 1] < jaw_y) & ~lining
    neck = _largest(_tidy(neck, pairs), pairs)

    cls[neck] = seg_class("neck")
    cls[nose] = seg_class("nose")
    for name, mask in ears.items():
        cls[mask] = seg_class(name)
    cls[lining | (skin & (ring >= 0) & ~lips)] = seg_class("mouth_interior")
    cls[lips & lower] = seg_class("lower_lip")
    cls[lips & ~lower] = seg_class("upper_lip")
    cls[part == shape.PARTS.index("teeth")] = seg_class("teeth")
    cls[part == shape.PARTS.index("tongue")] = seg_class("mouth_interior")
    lashes = part == shape.PARTS.index("eyelashes")
    cls[lashes & (centre[:, 0] > 0)] = seg_class("left_eye")
    cls[lashes & (centre[:, 0] <= 0)] = seg_class("right_eye")
    return cls
