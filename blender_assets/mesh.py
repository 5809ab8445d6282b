"""Blender meshes from numpy arrays (bulk `foreach_set`, no per-vertex Python loops)."""

from __future__ import annotations

from collections.abc import Sequence

import bpy
import numpy as np


def mesh_from_arrays(
    name: str,
    vertices: np.ndarray,
    faces: Sequence[np.ndarray],
    face_uvs: Sequence[np.ndarray] | None = None,
    uvs: np.ndarray | None = None,
) -> bpy.types.Mesh:
    """A smooth-shaded mesh from (V, 3) vertices and polygon index arrays (+ per-corner UV indices)."""
    mesh = bpy.data.meshes.new(name)
    sizes = np.array([len(f) for f in faces])
    corners = np.concatenate(faces)
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", np.asarray(vertices, dtype=np.float32).ravel())
    mesh.loops.add(len(corners))
    mesh.loops.foreach_set("vertex_index", corners.astype(np.int32))
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32))
    mesh.polygons.foreach_set("loop_total", sizes.astype(np.int32))
    if uvs is not None and face_uvs is not None:
        layer = mesh.uv_layers.new(name="UVMap")
        layer.data.foreach_set("uv", uvs[np.concatenate(face_uvs)].astype(np.float32).ravel())
    mesh.update(calc_edges=True)
    mesh.validate()
    mesh.shade_smooth()
    return mesh


def link_object(name: str, data: bpy.types.ID) -> bpy.types.Object:
    """A new object for `data`, linked into the current scene."""
    obj = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def set_matrix_world(obj: bpy.types.Object, matrix: np.ndarray) -> None:
    obj.matrix_world = np.asarray(
        matrix
    ).T.tolist()  # mathutils takes rows; our numpy matrices are column-vector style


def mesh_object(
    name: str,
    vertices: np.ndarray,
    faces: Sequence[np.ndarray],
    material: bpy.types.Material,
    matrix: np.ndarray | None = None,
    solidify: float = 0.0,
    even_thickness: bool = False,
    subdivide: bool = False,
) -> bpy.types.Object:
    """A linked object of one material: placed by `matrix` (None: the vertices are world positions),
    thickened outward by `solidify` (evenly at sharp corners with `even_thickness`), subdivided once
    at render with `subdivide`."""
    mesh = mesh_from_arrays(name, vertices, list(faces))
    mesh.materials.append(material)
    obj = link_object(name, mesh)
    if matrix is not None:
        set_matrix_world(obj, matrix)
    if solidify:
        mod = obj.modifiers.new("thickness", "SOLIDIFY")
        mod.thickness, mod.offset = solidify, 1.0  # grow outward, never into the skin
        mod.use_even_offset = even_thickness
    if subdivide:
        sub = obj.modifiers.new("subdivision", "SUBSURF")
        sub.levels, sub.render_levels = 0, 1
    return obj
