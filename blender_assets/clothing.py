"""Garments on the neck and shoulders, built from a clothing spec (`datagen.samplers.clothing.sample_clothing`).

Each garment is a shell copied from the skin below a neckline: the skin's faces under the neckline
height h(θ) (θ = angle around the neck axis, decided on the rest mesh so the choice never depends on
pose), their posed vertices pushed out along the normals by the fabric thickness, smoothed so the
cloth bridges the clavicles and sternum instead of hugging them, and kept at least the thickness off
the skin. The neckline edge is cut exactly on h(θ) by sliding boundary vertices along their edges.
Trims (rib bands, shirt collars, lapels, turtleneck rolls, hoods) are tubes and strips swept along
that edge. Everything is a plain mesh in world space with a Solidify for cloth thickness.
"""

from __future__ import annotations

import math

import bpy
import numpy as np

from blender_assets import shape
from blender_assets.mesh import mesh_object
from blender_assets.surface import vertex_normals
from datagen.catalogues.clothing import validate_clothing

SMOOTH_ITERATIONS = 12  # Laplacian passes: enough to bridge clavicle hollows, not enough to lose the shoulders
SMOOTH_STEP = 0.5
HEM_DROP = 0.03  # the shell hangs this far below the chest cut so the skin's edge never shows
CLOTH_THICKNESS = 0.012  # Solidify width: the visible fabric edge at the neckline and hem
FOLD_AMPLITUDE = 0.012  # low-frequency wrinkles along the normal (scene units)


# ----------------------------------------------------------------------------- neck frame, neckline


def neck_frame(geo) -> dict:
    """Rest-space neck axis (x, y centre) and the heights neckline shapes are measured from."""
    rest, skin = geo.rest, geo.topology.skin
    chin = geo.rest[geo.topology.remap[shape.landmark_vertices()["chin"]]]
    cut = float(rest[skin, 2].min())
    span = float(chin[2]) - cut
    band = rest[skin][np.abs(rest[skin, 2] - (chin[2] - 0.3 * span)) < 0.05]  # mid-neck ring
    centre = (band[:, :2].min(axis=0) + band[:, :2].max(axis=0)) / 2
    return {"centre": centre, "chin_z": float(chin[2]), "cut_z": cut, "span": span}


def angle_about_neck(points: np.ndarray, frame: dict) -> np.ndarray:
    """θ around the neck axis: 0 at the front (−Y), +π/2 at the subject's left (+X), ±π behind."""
    d = points[:, :2] - frame["centre"]
    return np.arctan2(d[:, 0], -d[:, 1])


def neckline_height(theta: np.ndarray, layer: dict, frame: dict) -> np.ndarray:
    """Rest-space z of the neckline at angle θ for the layer's neckline kind."""
    chin, span = frame["chin_z"], frame["span"]
    a = np.abs(theta)
    # Crew: the base of the neck, lowest at the throat, rising over the shoulders to the nape.
    front, side, back = chin - 0.47 * span, chin - 0.4 * span, chin - 0.3 * span
    h = np.where(
        a < math.pi / 2, front + (side - front) * np.sin(a) ** 2, side + (back - side) * np.sin(a - math.pi / 2)
    )
    kind, depth = layer["neckline"], layer["neckline_depth"]
    if kind == "turtle":
        # Up the neck, but the front stays under the jaw so the chin and face are never covered.
        h = np.minimum(h + layer["collar_height"], chin - 0.2 * span + 0.15 * (a / math.pi))
    dip_width = {"v": 0.85, "lapel": 1.15, "collar": 0.45}.get(kind, 1.2)
    dip = depth * 0.35 * np.clip(1.0 - a / dip_width, 0.0, 1.0)
    if kind in ("crew", "hood", "turtle"):
        dip = depth * 0.35 * np.cos(np.clip(a, 0, math.pi / 2)) ** 2  # a round scoop, not a point
    return h - dip


# ----------------------------------------------------------------------------- shell


def _edges(faces: np.ndarray) -> np.ndarray:
    e = np.concatenate([faces[:, [k, (k + 1) % faces.shape[1]]] for k in range(faces.shape[1])])
    return np.unique(np.sort(e, axis=1), axis=0)


def _laplacian(points: np.ndarray, edges: np.ndarray) -> np.ndarray:
    acc, count = np.zeros_like(points), np.zeros(len(points))
    for a, b in (edges.T, edges[:, ::-1].T):
        np.add.at(acc, a, points[b])
        np.add.at(count, a, 1)
    return acc / np.maximum(count, 1)[:, None] - points


def cut_region_by(faces: np.ndarray, rest: np.ndarray, posed: np.ndarray, inside: np.ndarray, level: np.ndarray):
    """Faces with ≥2 corners inside a region, each outside corner slid along its edges onto the
    region's border (where `level`, a signed height, is 0).

    Returns (kept vertex indices, faces renumbered into them, rest and posed positions of those
    vertices after the slide, mask of the vertices on the border).
    """
    faces = faces[inside[faces].sum(axis=1) >= 2]  # then every outside corner has an inside neighbour
    e = _edges(faces)
    e = np.concatenate([e, e[:, ::-1]])
    e = e[~inside[e[:, 0]] & inside[e[:, 1]]]
    a, b = e[:, 0], e[:, 1]
    t = (level[a] / np.where(np.abs(level[a] - level[b]) > 1e-12, level[a] - level[b], 1e-12)).clip(0, 1)[:, None]
    out = []
    for src in (rest, posed):
        dst = src.copy()
        acc, cnt = np.zeros_like(src), np.zeros(len(src))
        np.add.at(acc, a, src[a] + t * (src[b] - src[a]))
        np.add.at(cnt, a, 1)
        moved = cnt > 0
        dst[moved] = acc[moved] / cnt[moved, None]
        out.append(dst)
    keep = np.unique(faces)
    remap = np.full(len(rest), -1)
    remap[keep] = np.arange(len(keep))
    return keep, remap[faces], out[0][keep], out[1][keep], ~inside[keep]


def cut_region(geo, layer: dict, frame: dict):
    """The skin's faces under the layer's neckline (see `cut_region_by`)."""
    topo = geo.topology
    faces = np.array([f for f, p in zip(topo.faces, topo.face_part) if p == 0])
    rest = geo.rest
    h = neckline_height(angle_about_neck(rest, frame), layer, frame)
    return cut_region_by(faces, rest, geo.vertices, rest[:, 2] < h, rest[:, 2] - h)


def _folds(points: np.ndarray, seed: float) -> np.ndarray:
    """Smooth pseudo-random wrinkle field in [0, 1] (sums of sines; deterministic per layer)."""
    p = points * np.array([5.0, 3.0, 2.2])
    w = np.sin(p[:, 0] * 1.3 + seed) * np.sin(p[:, 2] * 2.1 + 2 * seed) + 0.5 * np.sin(
        p[:, 1] * 3.0 + p[:, 2] * 1.7 - seed
    )
    return (w + 1.5) / 3.0


def offset_shell(
    posed: np.ndarray, faces: np.ndarray, on_line: np.ndarray, want: np.ndarray, radial_from=None, radial=None
):
    """Posed vertices pushed `want` out along their normals, then smoothed so the cloth bridges
    hollows, never closer to the skin than `want`; the border stays on its line. Vertices in
    `radial` (and any without a normal) push straight out, horizontally, from the point `radial_from`."""
    normals = vertex_normals(posed, faces)
    bare = np.linalg.norm(normals, axis=1) < 0.5
    if radial is not None:
        bare |= radial
    if bare.any():
        out = np.c_[posed[bare, 0] - radial_from[0], posed[bare, 1] - radial_from[1], np.zeros(bare.sum())]
        normals[bare] = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
    edges = _edges(faces)
    out = posed + normals * want[:, None]
    for _ in range(SMOOTH_ITERATIONS):
        out = out + SMOOTH_STEP * _laplacian(out, edges)
        gap = np.einsum("ij,ij->i", out - posed, normals)  # smoothing pulls convex parts inward
        out += normals * np.maximum(want - gap, 0.0)[:, None]
        out[on_line] = posed[on_line] + normals[on_line] * want[on_line, None]
    return out, normals


def shell(geo, layer: dict, frame: dict, offset: float, seed: float):
    """Posed garment shell vertices, faces, the neckline mask, the outward normals, rest positions."""
    keep, faces, rest, posed, on_line = cut_region(geo, layer, frame)
    want = offset + FOLD_AMPLITUDE * _folds(rest, seed)
    # The cut squashed the skin below it into a flat ledge: the hem pushes straight out over it.
    hem = rest[:, 2] < frame["cut_z"] + 1e-6
    out, normals = offset_shell(posed, faces, on_line, want, (0.0, frame["centre"][1]), hem)
    out[hem, 2] = np.minimum(out[hem, 2], frame["cut_z"] - HEM_DROP)
    return out, faces, on_line, normals, rest


# ----------------------------------------------------------------------------- sweeps along the neckline


def neckline_loop(
    points: np.ndarray, normals: np.ndarray, rest: np.ndarray, on_line: np.ndarray, frame: dict, count: int = 96
):
    """The neckline as an ordered, resampled polyline: (points, outward normals, θ, closed?)."""
    theta = angle_about_neck(rest[on_line], frame)
    order = np.argsort(theta)
    th, p, n = theta[order], points[on_line][order], normals[on_line][order]
    gaps = np.diff(np.r_[th, th[0] + 2 * math.pi])
    closed = gaps.max() < 0.6  # a V or lapel that reaches the hem leaves the front open
    if not closed:  # start the polyline after the opening so it runs left side → back → right side
        start = (int(np.argmax(gaps)) + 1) % len(th)
        th = np.r_[th[start:], th[:start] + 2 * math.pi]
        p, n = np.r_[p[start:], p[:start]], np.r_[n[start:], n[:start]]
    else:
        th, p, n = np.r_[th, th[0] + 2 * math.pi], np.r_[p, p[:1]], np.r_[n, n[:1]]
    s = np.linspace(th[0], th[-1], count, endpoint=not closed)
    pts = np.stack([np.interp(s, th, p[:, k]) for k in range(3)], axis=1)
    nrm = np.stack([np.interp(s, th, n[:, k]) for k in range(3)], axis=1)
    for _ in range(3):  # quad-edge crossings zig-zag a little: relax along the line
        pts[1:-1] = (pts[:-2] + 2 * pts[1:-1] + pts[2:]) / 4
    s = (s + math.pi) % (2 * math.pi) - math.pi
    return pts, nrm / np.linalg.norm(nrm, axis=1, keepdims=True), s, closed


def _loop_frames(pts: np.ndarray, nrm: np.ndarray, closed: bool):
    """Tangent and 'up' (along the surface, away from the garment) at each loop point."""
    tangent = np.gradient(pts, axis=0)
    if closed:
        tangent = np.roll(pts, -1, axis=0) - np.roll(pts, 1, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    up = np.cross(nrm, tangent)
    up *= np.sign(up[:, 2:3] + 1e-9)  # up the neck, not down the chest
    return tangent, up / np.linalg.norm(up, axis=1, keepdims=True)


def grid_faces(rows: int, cols: int, closed: bool) -> np.ndarray:
    """Quads of a rows × cols vertex grid (row-major), wrapping the columns when closed."""
    c = np.arange(cols if closed else cols - 1)
    r = np.arange(rows - 1)
    i, j = np.meshgrid(r, c, indexing="ij")
    j2 = (j + 1) % cols
    return np.stack([i * cols + j, i * cols + j2, (i + 1) * cols + j2, (i + 1) * cols + j], axis=-1).reshape(-1, 4)


def tube(
    centres: np.ndarray, normal: np.ndarray, binormal: np.ndarray, radius: np.ndarray, closed: bool, segments: int = 10
):
    """Vertices and faces of a tube swept along `centres` (cross-section in the normal/binormal plane)."""
    a = np.linspace(0, 2 * math.pi, segments, endpoint=False)
    ring = np.cos(a)[:, None, None] * normal[None] + np.sin(a)[:, None, None] * binormal[None]
    verts = (centres[None] + radius[None, :, None] * ring).transpose(1, 0, 2).reshape(-1, 3)
    faces = grid_faces(len(centres), segments, True)
    if not closed:
        return verts, faces
    n = len(centres)  # join the last ring to the first
    k = np.arange(segments)
    last = np.stack([(n - 1) * segments + k, (n - 1) * segments + (k + 1) % segments, (k + 1) % segments, k], axis=-1)
    return verts, np.concatenate([faces, last])


def collar(pts, nrm, theta, closed, layer: dict, base: float):
    """A folded collar (stand + fall) along the neckline; on a lapel's V edges it becomes a flat lapel."""
    tangent, up = _loop_frames(pts, nrm, closed)
    a = np.abs(theta)
    hs = layer["collar_height"] * np.ones_like(a)
    hf = 1.5 * layer["collar_height"] * np.ones_like(a)
    if layer["neckline"] == "lapel":
        onv = np.clip((1.15 - a) / 0.5, 0.0, 1.0)  # 0 on the neck, 1 down the V
        hs = hs * (1 - onv)
        hf = hf + onv * 0.28  # lapels are wider than a collar's fall
    else:  # points of a shirt collar: longer fall at the front ends
        hf = hf * (1.0 + 0.8 * np.clip((0.9 - a) / 0.5, 0.0, 1.0))
    # Profile rows as (along up, along normal), from the seam to the fall's edge.
    rows = [
        (0.0, base),
        (hs, base + 0.01),
        (hs + 0.012, base + 0.03),
        (hs - 0.5 * hf, base + 0.045),
        (hs - hf, base + 0.05),
    ]
    grid = np.stack(
        [pts + up * np.broadcast_to(u, a.shape)[:, None] + nrm * np.broadcast_to(o, a.shape)[:, None] for u, o in rows]
    )
    return grid.reshape(-1, 3), grid_faces(len(rows), len(pts), closed)


# ----------------------------------------------------------------------------- material


def _mix(nodes, links, fac, a, b):
    mix = nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    links.new(fac, mix.inputs["Factor"])
    for socket, value in (("A", a), ("B", b)):
        if isinstance(value, (tuple, list)):
            mix.inputs[socket].default_value = (*value, 1.0)
        else:
            links.new(value, mix.inputs[socket])
    return mix.outputs["Result"]


def _ramp_step(nodes, links, fac, edge: float):
    """A hard 0/1 step of a 0..1 signal (print-sharp stripes and dots)."""
    ramp = nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.interpolation = "CONSTANT"
    ramp.color_ramp.elements[1].position = edge
    links.new(fac, ramp.inputs["Fac"])
    return ramp.outputs["Color"]


def fabric_material(name: str, fabric: dict):
    """Principled cloth: pattern on object coordinates, sheen, and a weave (or knit rib) bump."""
    mat = bpy.data.materials.new(name)
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    coords = nodes.new("ShaderNodeTexCoord")
    mapping = nodes.new("ShaderNodeMapping")
    mapping.inputs["Rotation"].default_value = (0.0, math.radians(fabric["pattern_angle_deg"]), 0.0)
    mapping.inputs["Scale"].default_value = (fabric["pattern_scale"],) * 3
    links.new(coords.outputs["Object"], mapping.inputs["Vector"])
    vec = mapping.outputs["Vector"]
    base, second, pattern = tuple(fabric["base_color"]), tuple(fabric["secondary_color"]), fabric["pattern"]
    colour = None
    height = None
    if pattern == "stripes":
        wave = nodes.new("ShaderNodeTexWave")
        wave.bands_direction = "Z"
        wave.inputs["Scale"].default_value = 1.0
        links.new(vec, wave.inputs["Vector"])
        colour = _mix(nodes, links, _ramp_step(nodes, links, wave.outputs["Fac"], 0.7), base, second)
    elif pattern == "check":
        waves = []
        for axis in ("X", "Z"):
            w = nodes.new("ShaderNodeTexWave")
            w.bands_direction = axis
            w.inputs["Scale"].default_value = 1.0
            links.new(vec, w.inputs["Vector"])
            waves.append(_ramp_step(nodes, links, w.outputs["Fac"], 0.65))
        both = nodes.new("ShaderNodeMix")
        both.data_type = "RGBA"
        both.blend_type = "ADD"
        both.inputs["Factor"].default_value = 0.5
        links.new(waves[0], both.inputs["A"])
        links.new(waves[1], both.inputs["B"])
        colour = _mix(nodes, links, both.outputs["Result"], base, second)
    elif pattern == "dots":
        vor = nodes.new("ShaderNodeTexVoronoi")
        vor.inputs["Randomness"].default_value = 0.0  # a regular print grid
        links.new(vec, vor.inputs["Vector"])
        dots = _ramp_step(nodes, links, vor.outputs["Distance"], 0.3)
        colour = _mix(nodes, links, dots, second, base)
    elif pattern in ("heather", "knit"):
        noise = nodes.new("ShaderNodeTexNoise")
        noise.inputs["Scale"].default_value = 4.0 if pattern == "heather" else 0.6
        noise.inputs["Detail"].default_value = 6.0
        links.new(vec, noise.inputs["Vector"])
        lighter = tuple(min(1.0, c * 1.6 + 0.03) for c in base)
        colour = _mix(nodes, links, noise.outputs["Fac"], tuple(c * 0.6 for c in base), lighter)
        if pattern == "knit":  # vertical ribs of a knit, as bump
            rib = nodes.new("ShaderNodeTexWave")
            rib.bands_direction = "X"
            rib.inputs["Scale"].default_value = 1.0
            rib.inputs["Distortion"].default_value = 0.5
            links.new(vec, rib.inputs["Vector"])
            height = rib.outputs["Fac"]
    if colour is None:
        bsdf.inputs["Base Color"].default_value = (*base, 1.0)
    else:
        links.new(colour, bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = fabric["roughness"]
    bsdf.inputs["Sheen Weight"].default_value = fabric["sheen"]
    bsdf.inputs["Sheen Roughness"].default_value = 0.5
    bsdf.inputs["Specular IOR Level"].default_value = 0.3
    if height is None:  # plain weave: fine noise, independent of the print
        weave = nodes.new("ShaderNodeTexNoise")
        weave.inputs["Scale"].default_value = 400.0
        links.new(coords.outputs["Object"], weave.inputs["Vector"])
        height = weave.outputs["Fac"]
    bump = nodes.new("ShaderNodeBump")
    bump.inputs["Strength"].default_value = fabric["weave_bump"]
    bump.inputs["Distance"].default_value = 0.004
    links.new(height, bump.inputs["Height"])
    links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])
    return mat


# ----------------------------------------------------------------------------- assembly


def build_layer(geo, layer: dict, frame: dict, offset: float, name: str) -> list:
    """One garment layer: the shell, its neckline trim, in one fabric."""
    seed = float(np.frombuffer(np.array(layer["fabric"]["base_color"], float).tobytes(), np.uint8).sum() % 97) / 10
    verts, faces, on_line, normals, rest = shell(geo, layer, frame, offset, seed)
    mat = fabric_material(f"{name}_fabric", layer["fabric"])
    objects = [mesh_object(name, verts, faces, mat, solidify=CLOTH_THICKNESS, even_thickness=True, subdivide=True)]
    pts, nrm, theta, closed = neckline_loop(verts, normals, rest, on_line, frame)
    kind = layer["neckline"]
    tangent, up = _loop_frames(pts, nrm, closed)
    if kind in ("crew", "hood", "v"):  # a ribbed binding on the edge
        r = np.full(len(pts), 0.6 * CLOTH_THICKNESS + 0.006)
        v, f = tube(pts + nrm * r[:, None], nrm, up, r, closed, 8)
        objects.append(mesh_object(f"{name}_binding", v, f, mat, subdivide=True))
    if kind == "turtle":  # the folded-over roll at the top
        r = np.full(len(pts), 0.045)
        v, f = tube(pts + nrm * (0.8 * r[:, None]) - up * (0.4 * r[:, None]), nrm, up, r, closed, 12)
        objects.append(mesh_object(f"{name}_roll", v, f, mat, subdivide=True))
    if kind in ("collar", "lapel"):
        v, f = collar(pts, nrm, theta, closed, layer, CLOTH_THICKNESS)
        objects.append(
            mesh_object(
                f"{name}_collar", v, f, mat, solidify=CLOTH_THICKNESS * 0.6, even_thickness=True, subdivide=True
            )
        )
    if kind == "hood":
        objects.append(hood(pts, nrm, up, theta, closed, mat, name))
    return objects


HOOD_START = 1.0  # rad from the front of the neck


def hood(pts, nrm, up, theta, closed, mat, name: str):
    """The hood lying down: a fat tube bunched behind the neck, thinning toward the front. Its ends
    stop HOOD_START from the throat: a turned head's chin (a fuller chin pad, spec 9's relief) met
    ends that reached 0.9 rad."""
    a = np.abs(theta)
    sel = a > HOOD_START
    order = np.argsort(np.where(theta[sel] < 0, theta[sel] + 2 * math.pi, theta[sel]))
    p, n, u, aa = pts[sel][order], nrm[sel][order], up[sel][order], a[sel][order]
    r = 0.05 + 0.1 * np.clip((aa - HOOD_START) / (2.3 - HOOD_START), 0, 1) ** 0.7
    centre = p + n * (r[:, None] + 0.02) - u * (0.3 * r[:, None])
    v, f = tube(centre, n, u, r, False, 12)
    return mesh_object(f"{name}_hood", v, f, mat, subdivide=True)


def build_clothing(clothing_spec: dict, geo) -> list:
    """The outfit's objects in the current scene (world space, posed with the neck)."""
    validate_clothing(clothing_spec)
    frame = neck_frame(geo)
    objects = []
    offset = clothing_spec["thickness"] + clothing_spec["fit"]
    if "inner" in clothing_spec:  # jacket over a shirt or tee: the inner layer sits under it
        inner = clothing_spec["inner"]
        objects += build_layer(geo, inner, frame, inner["thickness"] + inner["fit"], "garment_inner")
        offset += inner["thickness"] + inner["fit"] + CLOTH_THICKNESS
    objects = build_layer(geo, clothing_spec, frame, offset, "garment") + objects
    return objects
