"""Glasses, earrings and hats from an accessories spec (`datagen.samplers.clothing.sample_accessories`).

Everything is built in the head's rest space (`geo.rest`, before pose and expression) around the
identity's own eyes, nose, ears and scalp, then placed with `geo.head_matrix`, so it turns with the
head exactly as the skull does. Clearances are measured against the rest skin in bulk: frames sit in
front of the brow and cheeks, temples clear the side of the head, hats sit over short hair and stop
above the brows so a face detector still sees the eyes.
"""

from __future__ import annotations

import math

import bpy
import numpy as np

from blender_assets.clothing import cut_region_by, fabric_material, grid_faces, offset_shell, tube
from blender_assets.mesh import mesh_object
from datagen.catalogues.clothing import validate_accessories

LENS_GAP = 0.07  # lens plane this far in front of the cornea (≈ 11 mm vertex distance)
FRAME_CLEARANCE = 0.02  # rims and bridge at least this far off the skin
# Skin within RIM_REACH of a rim point (in x–z) must stay behind it; wider reaches caught the nose flank
# and pushed frames 2 cm off the eyes.
RIM_REACH = 0.015
BRIDGE_WIDTH = (
    0.115  # ≈ 18.5 mm between the lenses: frames are a little wider than the wearer's eyes, as sized by opticians
)
BRIDGE_EXTRA_MAX = 0.05  # a broad nose gets a bridge up to ≈ 9 mm wider (bridge sizes run 14–24 mm)
LENS_CENTRE_OFFSET_MAX = 0.05  # ≈ 9 mm: lenses centred much further out than the pupils look worn wrong
LENS_SCALE_MIN = 0.86  # frames come in sizes a few mm apart: the smallest size tried is 86 % of the drawn one
LENS_REFLECTANCE = 0.3  # share of the Fresnel reflection an AR-coated, curved lens keeps
PANTOSCOPIC_TILT_DEG = 8.0  # lens bottoms lean toward the cheeks, as worn
HAT_OFFSET = {"beanie": 0.1, "cap": 0.085}  # over bald-to-short hair


def _rest_point(geo, name: str) -> np.ndarray:
    """A landmark in rest head space (the landmarks are final world positions)."""
    inv = np.linalg.inv(geo.head_matrix)
    return inv[:3, :3] @ geo.landmarks[name] + inv[:3, 3]


def _head_skin(geo) -> np.ndarray:
    return geo.rest[np.intersect1d(geo.topology.head_region, geo.topology.skin)]


def polyline_tube(points: np.ndarray, radius, closed: bool, reference: np.ndarray, segments: int = 8):
    """A round wire along `points`; `reference` is any direction not along the line (fixes the twist)."""
    t = np.roll(points, -1, axis=0) - np.roll(points, 1, axis=0) if closed else np.gradient(points, axis=0)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    n = np.cross(t, reference)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    b = np.cross(t, n)
    return tube(points, n, b, np.broadcast_to(np.asarray(radius, float), len(points)).copy(), closed, segments)


# ----------------------------------------------------------------------------- materials


def metal_material(name: str, colour, roughness: float = 0.25):
    mat = bpy.data.materials.new(name)
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*colour, 1.0)
    bsdf.inputs["Metallic"].default_value = 1.0
    bsdf.inputs["Roughness"].default_value = roughness
    return mat


def acetate_material(name: str, colour):
    mat = bpy.data.materials.new(name)
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*colour, 1.0)
    bsdf.inputs["Roughness"].default_value = 0.15
    bsdf.inputs["Coat Weight"].default_value = 0.5  # polished plastic
    return mat


def lens_material(tint):
    """Thin see-through glass: a tinted Transparent BSDF with a faint Fresnel reflection and no
    refraction, so the eyes behind stay sharp (a face detector must still find them). The
    reflection is scaled by LENS_REFLECTANCE: a flat disc seen from ±45° is near grazing, where full
    Fresnel turned the far lens into a white mirror of the ambient world over the eye; real lenses
    are curved and anti-reflection coated."""
    mat = bpy.data.materials.new("lens")
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    nodes.remove(nodes["Principled BSDF"])
    clear = nodes.new("ShaderNodeBsdfTransparent")
    clear.inputs["Color"].default_value = (*tint, 1.0)
    gloss = nodes.new("ShaderNodeBsdfGlossy")
    gloss.inputs["Roughness"].default_value = 0.05
    fresnel = nodes.new("ShaderNodeFresnel")
    fresnel.inputs["IOR"].default_value = 1.15
    coated = nodes.new("ShaderNodeMath")
    coated.operation = "MULTIPLY"
    coated.inputs[1].default_value = LENS_REFLECTANCE
    links.new(fresnel.outputs["Fac"], coated.inputs[0])
    mix = nodes.new("ShaderNodeMixShader")
    links.new(coated.outputs["Value"], mix.inputs["Fac"])
    links.new(clear.outputs["BSDF"], mix.inputs[1])
    links.new(gloss.outputs["BSDF"], mix.inputs[2])
    links.new(mix.outputs["Shader"], nodes["Material Output"].inputs["Surface"])
    return mat


# ----------------------------------------------------------------------------- glasses


def rim_outline(style: str, width: float, height: float, count: int = 48) -> np.ndarray:
    """(count, 2) lens outline (x outward from the nose, z up) around the lens centre."""
    a = np.linspace(0, 2 * math.pi, count, endpoint=False)
    power = {"round": 2.0, "rectangular": 5.0, "aviator": 2.5, "browline": 3.5}[style]
    c, s = np.cos(a), np.sin(a)
    x = 0.5 * width * np.sign(c) * np.abs(c) ** (2 / power)
    z = 0.5 * height * np.sign(s) * np.abs(s) ** (2 / power)
    if style == "round":
        z = z * (width / height) * 0.9  # nearly circular
    if style == "aviator":  # teardrop: the lower outer quarter drops
        z = np.where(s < 0, z * (1.0 + 0.35 * np.clip(c, 0, 1)), z)
    return np.stack([x, z], axis=1)


def _forward_clearance(skin: np.ndarray, points: np.ndarray, reach: float = 0.035) -> np.ndarray:
    """Most forward (min y) skin y within `reach` in x–z of each point (+inf where none)."""
    d = np.abs(skin[None, :, [0, 2]] - points[:, None, [0, 2]]).max(axis=2)
    front = np.where(d < reach, skin[None, :, 1], np.inf)
    return front.min(axis=1)


def glasses(spec: dict, geo) -> list:
    skin = _head_skin(geo)
    skin = skin[skin[:, 1] < 0.0]  # the face half: brow, cheeks, nose
    eyes = {s: _rest_point(geo, f"eye_{s}") for s in ("left", "right")}
    radius = max(e.radius for e in geo.eyes.values())
    r = spec["rim_radius"]
    outline = rim_outline(spec["style"], spec["lens_width"], spec["lens_height"])
    tilt = math.radians(PANTOSCOPIC_TILT_DEG)
    plane = min(eyes["left"][1], eyes["right"][1]) - radius - LENS_GAP

    def placed(bridge_width: float, scale: float):
        """Rims for a bridge width and lens scale, and how far forward they must sit to clear the brow,
        cheeks and nose."""
        out, shape = {}, outline * scale
        for side, sign in (("left", 1.0), ("right", -1.0)):
            e = eyes[side]
            # Lens centres sit bridge / 2 + half a lens from the midline: a touch outward and up of the pupils.
            centre = np.array([sign * (0.5 * bridge_width + 0.5 * scale * spec["lens_width"]), e[1], e[2] + 0.015])
            x = centre[0] + sign * shape[:, 0]
            z = centre[2] + shape[:, 1] * math.cos(tilt)
            y = -shape[:, 1] * math.sin(tilt)  # bottom toward the face
            out[side] = np.stack([x, y, z], axis=1)
        pts = np.concatenate([out["left"], out["right"]])
        return out, float((_forward_clearance(skin, pts, RIM_REACH) - r - FRAME_CLEARANCE - pts[:, 1]).min())

    # An optician fits the frame to the face: on a broad nose or full cheeks the drawn frame's inner
    # rims would rest on them and push the lenses centimetres off the eyes, so widen the bridge (up to
    # BRIDGE_EXTRA_MAX, lens centres within LENS_CENTRE_OFFSET_MAX of the pupils), then take a smaller
    # size of the same frame (down to LENS_SCALE_MIN), until the lenses sit at their vertex distance
    # or as close as they get.
    pupils = min(abs(eyes["left"][0]), abs(eyes["right"][0]))

    def widest_bridge(scale: float) -> float:
        return float(
            np.clip(
                2 * (pupils + LENS_CENTRE_OFFSET_MAX - 0.5 * (BRIDGE_WIDTH + scale * spec["lens_width"])),
                0.0,
                BRIDGE_EXTRA_MAX,
            )
        )

    candidates = (
        placed(BRIDGE_WIDTH + extra, scale)
        for scale in np.linspace(1.0, LENS_SCALE_MIN, 3)
        for extra in np.linspace(0.0, widest_bridge(scale), 6)
    )
    rims, need = None, -np.inf
    for fit in candidates:  # the first that fits, else the one pushed forward least
        if fit[1] > need:
            rims, need = fit
        if need >= plane:
            break
    plane = min(plane, need)
    for side in rims:
        rims[side][:, 1] += plane
    # Bridge: an arch between the inner rims, in front of the nose bridge.
    inner_l = rims["left"][np.argmin(rims["left"][:, 0] - 0.3 * rims["left"][:, 2])]
    inner_r = rims["right"][np.argmax(rims["right"][:, 0] + 0.3 * rims["right"][:, 2])]
    s = np.linspace(0, 1, 12)
    bridge = inner_r[None] + s[:, None] * (inner_l - inner_r)[None]
    bridge[:, 2] += 0.05 * np.sin(math.pi * s)
    nose = _forward_clearance(skin, bridge, 0.03) - r - FRAME_CLEARANCE
    bridge[:, 1] = np.minimum(bridge[:, 1], nose)
    # Temples: from the outer top of each rim, straight back over the ear root, then down behind it.
    temples = [
        _temple(rims[side], sign, geo, skin_all=_head_skin(geo), r=r)
        for side, sign in (("left", 1.0), ("right", -1.0))
    ]

    frame_mat = (metal_material if spec["frame_material"] == "metal" else acetate_material)(
        "glasses_frame", tuple(spec["frame_color"])
    )
    parts = []
    for side in rims:
        rim_r = np.full(len(rims[side]), r)
        if spec["style"] == "browline":  # heavy top bar, thin wire below
            rim_r = np.where(rims[side][:, 2] > eyes[side][2] + 0.02, r * 2.0, r * 0.6)
        parts.append(polyline_tube(rims[side], rim_r, True, np.array([0.0, -1.0, 0.0])))
    parts.append(polyline_tube(bridge, r, False, np.array([0.0, -1.0, 0.0])))
    parts += [polyline_tube(t, r * 0.9, False, np.array([0.0, 0.0, 1.0])) for t in temples]
    verts, faces = _merge(parts)
    objects = [mesh_object("glasses_frame", verts, faces, frame_mat, geo.head_matrix)]
    lens_mat = lens_material(tuple(spec["lens_tint"]))
    for side in rims:
        ring = rims[side] + np.array([0.0, 0.002, 0.0])
        centre = ring.mean(axis=0)
        n = len(ring)
        lens = np.concatenate([ring, centre[None]])
        tris = np.stack([np.arange(n), (np.arange(n) + 1) % n, np.full(n, n)], axis=1)
        objects.append(mesh_object(f"lens_{side}", lens, tris, lens_mat, geo.head_matrix))
    return objects


def _temple(rim: np.ndarray, sign: float, geo, skin_all: np.ndarray, r: float) -> np.ndarray:
    ear = _rest_point(geo, "ear_left" if sign > 0 else "ear_right")
    hinge = rim[np.argmax(sign * rim[:, 0] + 0.3 * rim[:, 2])]
    end = np.array([0.0, ear[1] - 0.02, ear[2] + 0.13])  # where the ear meets the head, at its top
    s = np.linspace(0, 1, 16)
    path = hinge[None] + s[:, None] * (end - hinge)[None]
    # Clear the side of the head (not the ear itself: the temple rests in the crease above it).
    head = skin_all[np.linalg.norm(skin_all - ear, axis=1) > 0.2]
    side = head[sign * head[:, 0] > 0]
    d = np.abs(side[None, :, 1:] - path[:, None, 1:]).max(axis=2)
    width = np.where(d < 0.05, sign * side[None, :, 0], 0.0).max(axis=1)
    x = np.maximum.accumulate(np.maximum(width + r + FRAME_CLEARANCE, sign * hinge[0] * 0.97))
    path[:, 0] = sign * np.maximum(x, sign * hinge[0])
    path[0] = hinge
    tail = path[-1] + np.array([[sign * -0.01, 0.05, -0.04], [sign * -0.02, 0.09, -0.11], [sign * -0.03, 0.1, -0.18]])
    return np.concatenate([path, tail])


def _merge(parts):
    verts, faces, base = [], [], 0
    for v, f in parts:
        verts.append(v)
        faces.append(f + base)
        base += len(v)
    return np.concatenate(verts), np.concatenate(faces)


# ----------------------------------------------------------------------------- earrings


def ear_lobe(geo, side: str) -> np.ndarray:
    """Rest position of the ear lobe: the lowest skin of the ear's outer part."""
    ear = _rest_point(geo, f"ear_{side}")
    skin = _head_skin(geo)
    sign = 1.0 if side == "left" else -1.0
    near = skin[(np.linalg.norm(skin - ear, axis=1) < 0.35) & (sign * skin[:, 0] > sign * ear[0] - 0.07)]
    low = near[np.argsort(near[:, 2])[:3]]
    return low.mean(axis=0)


def sphere(centre: np.ndarray, radius: float, rings: int = 8, segments: int = 12):
    """A small lat-long sphere (poles as tiny rings, so it is all quads)."""
    lat = np.linspace(0.05, math.pi - 0.05, rings)
    lon = np.linspace(0, 2 * math.pi, segments, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    v = np.stack([np.sin(la) * np.cos(lo), np.sin(la) * np.sin(lo), np.cos(la)], axis=-1).reshape(-1, 3)
    return centre + radius * v, grid_faces(rings, segments, True)


def earrings(spec: dict, geo) -> list:
    mat = metal_material("earring_metal", tuple(spec["color"]), 0.15)
    objects = []
    for side, sign in (("left", 1.0), ("right", -1.0)):
        lobe = ear_lobe(geo, side)
        if spec["style"] == "stud":
            v, f = sphere(lobe + np.array([sign * (spec["size"] * 0.6 + 0.005), 0.0, 0.01]), spec["size"])
        else:  # a hoop hanging through the lobe, in the ear's plane
            a = np.linspace(0, 2 * math.pi, 32, endpoint=False)
            R = spec["size"]
            centre = lobe + np.array([sign * 0.012, 0.0, -R + 0.015])
            ring = centre + R * np.stack([np.zeros_like(a), np.sin(a), np.cos(a)], axis=1)
            v, f = polyline_tube(ring, 0.006, True, np.array([1.0, 0.0, 0.0]))
        objects.append(mesh_object(f"earring_{side}", v, f, mat, geo.head_matrix))
    return objects


# ----------------------------------------------------------------------------- hats


def hat_edge(theta: np.ndarray, style: str, spec: dict, eye_z: float) -> np.ndarray:
    """Rest-space z of the hat's lower edge at angle θ around the head (0 = front)."""
    front = eye_z + 0.15 + spec["brow_clearance"]  # always above the brows
    side, back = {"beanie": (0.12, -0.12), "cap": (0.2, 0.02)}[style]
    a = np.abs(theta)
    return np.where(
        a < math.pi / 2, front + (side - front) * np.sin(a) ** 2, side + (back - side) * np.sin(a - math.pi / 2)
    )


def hat(spec: dict, geo) -> list:
    topo, rest = geo.topology, geo.rest
    style = spec["style"]
    head = rest[topo.head_region]
    axis = (head[:, :2].min(axis=0) + head[:, :2].max(axis=0)) / 2
    eye_z = float(_rest_point(geo, "eye_left")[2])
    theta = np.arctan2(rest[:, 0] - axis[0], -(rest[:, 1] - axis[1]))
    h = hat_edge(theta, style, spec, eye_z)
    faces = np.array([f for f, p in zip(topo.faces, topo.face_part) if p == 0])
    in_head = np.zeros(len(rest), bool)
    in_head[topo.head_region] = True
    faces = faces[in_head[faces].all(axis=1)]
    inside = rest[:, 2] > h
    keep, f, r_rest, _, on_line = cut_region_by(faces, rest, rest, inside, rest[:, 2] - h)
    verts, normals = offset_shell(r_rest, f, on_line, np.full(len(r_rest), HAT_OFFSET[style]), axis)
    fabric = {
        "base_color": spec["base_color"],
        "secondary_color": spec["base_color"],
        "pattern": spec["pattern"],
        "pattern_scale": 30.0,
        "pattern_angle_deg": 0.0,
        "roughness": spec["roughness"],
        "sheen": 0.4,
        "weave_bump": 0.3,
    }
    mat = fabric_material(f"hat_{style}", fabric)
    objects = [mesh_object(f"hat_{style}", verts, f, mat, geo.head_matrix, solidify=0.015, subdivide=True)]
    # The edge loop, ordered around the head.
    th = np.arctan2(verts[on_line, 0] - axis[0], -(verts[on_line, 1] - axis[1]))
    order = np.argsort(th)
    loop, nrm, th = verts[on_line][order], normals[on_line][order], th[order]
    if style == "beanie" and spec.get("cuff"):
        r = np.full(len(loop), 0.045)
        up = np.tile([0.0, 0.0, 1.0], (len(loop), 1))
        v, fc = tube(loop + nrm * 0.03 + up * 0.04, nrm, up, r, True, 10)
        objects.append(mesh_object("hat_cuff", v, fc, mat, geo.head_matrix, subdivide=True))
    if style == "cap":
        objects.append(_brim(loop, th, axis, mat, geo))
    return objects


def _brim(loop: np.ndarray, th: np.ndarray, axis: np.ndarray, mat, geo):
    """A stiff peak out of the front of the crown, dipping slightly and curved across."""
    sel = np.abs(th) < 1.3
    p, a = loop[sel], th[sel]
    length = 0.42 * np.cos(a / 1.3 * math.pi / 2) ** 0.6
    out = np.c_[p[:, 0] - axis[0], p[:, 1] - axis[1], np.zeros(len(p))]
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    rows = np.linspace(0, 1, 6)
    grid = np.stack(
        [
            p
            + out * (length * t)[:, None]
            + np.array([0, 0, -0.05 * t])
            - np.array([0, 0, 0.04 * t]) * (a[:, None] / 1.3) ** 2
            for t in rows
        ]
    )
    return mesh_object(
        "hat_brim", grid.reshape(-1, 3), grid_faces(len(rows), len(p), False), mat, geo.head_matrix, solidify=0.02
    )


def build_accessories(accessory_spec: dict, geo) -> list:
    """The spec's glasses, earrings and hat (those not None) in the current scene."""
    validate_accessories(accessory_spec)
    objects = []
    if accessory_spec.get("glasses"):
        objects += glasses(accessory_spec["glasses"], geo)
    if accessory_spec.get("earrings"):
        objects += earrings(accessory_spec["earrings"], geo)
    if accessory_spec.get("hat"):
        objects += hat(accessory_spec["hat"], geo)
    return objects
