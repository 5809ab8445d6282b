"""Build an objects scene (`datagen.samplers.objects.sample_objects`) in the current Blender scene."""

from __future__ import annotations

import math

import bmesh
import bpy
import numpy as np

from blender_assets.mesh import link_object
from datagen.catalogues.objects import validate_objects


def _torus(bm, major: float = 0.7, minor: float = 0.3, rings: int = 32, sides: int = 16) -> None:
    u, v = np.meshgrid(
        np.linspace(0, 2 * math.pi, rings, endpoint=False),
        np.linspace(0, 2 * math.pi, sides, endpoint=False),
        indexing="ij",
    )
    pts = np.stack(
        [(major + minor * np.cos(v)) * np.cos(u), (major + minor * np.cos(v)) * np.sin(u), minor * np.sin(v)], -1
    ).reshape(-1, 3)
    verts = [bm.verts.new(p) for p in pts]
    for i in range(rings):
        for j in range(sides):
            a, b = i * sides + j, ((i + 1) % rings) * sides + j
            c, d = ((i + 1) % rings) * sides + (j + 1) % sides, i * sides + (j + 1) % sides
            bm.faces.new((verts[a], verts[b], verts[c], verts[d]))


def _blob(bm, seed: int) -> None:
    """An icosphere pushed in and out by a few random low-frequency waves."""
    bmesh.ops.create_icosphere(bm, subdivisions=4, radius=1.0)
    rng = np.random.default_rng(seed)
    dirs = rng.normal(size=(4, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    freq, amp, phase = rng.uniform(1.5, 4.0, 4), rng.uniform(0.05, 0.18, 4), rng.uniform(0, 2 * math.pi, 4)
    for vert in bm.verts:
        p = np.array(vert.co)
        r = 1.0 + float((amp * np.sin(freq * (dirs @ p) + phase)).sum())
        vert.co = p * r


def shape_mesh(name: str, shape: str, seed: int) -> bpy.types.Mesh:
    """A unit-sized (≈ radius 1) mesh of `shape`."""
    bm = bmesh.new()
    if shape == "cube":
        bmesh.ops.create_cube(bm, size=1.6)
        bmesh.ops.bevel(bm, geom=bm.edges[:] + bm.verts[:], offset=0.08, segments=3, affect="EDGES")
    elif shape == "sphere":
        bmesh.ops.create_uvsphere(bm, u_segments=48, v_segments=24, radius=1.0)
    elif shape == "cylinder":
        bmesh.ops.create_cone(bm, cap_ends=True, segments=48, radius1=0.8, radius2=0.8, depth=1.8)
    elif shape == "cone":
        bmesh.ops.create_cone(bm, cap_ends=True, segments=48, radius1=0.9, radius2=0.0, depth=1.8)
    elif shape == "torus":
        _torus(bm)
    elif shape == "icosphere":
        bmesh.ops.create_icosphere(bm, subdivisions=1, radius=1.0)
    elif shape == "monkey":
        bmesh.ops.create_monkey(bm)
    elif shape == "blob":
        _blob(bm, seed)
    mesh = bpy.data.meshes.new(name)
    bm.to_mesh(mesh)
    bm.free()
    if shape in ("sphere", "torus", "blob", "monkey"):
        mesh.shade_smooth()
    return mesh


def object_material(name: str, spec: dict):
    mat = bpy.data.materials.new(name)
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    bsdf.inputs["Roughness"].default_value = spec["roughness"]
    bsdf.inputs["Metallic"].default_value = spec["metallic"]
    if spec["texture"] == "plain":
        bsdf.inputs["Base Color"].default_value = (*spec["color"], 1.0)
        return mat
    kind = {
        "checker": "ShaderNodeTexChecker",
        "noise": "ShaderNodeTexNoise",
        "voronoi": "ShaderNodeTexVoronoi",
        "wave": "ShaderNodeTexWave",
    }[spec["texture"]]
    tex = nodes.new(kind)
    tex.inputs["Scale"].default_value = spec["texture_scale"]
    coords = nodes.new("ShaderNodeTexCoord")
    links.new(coords.outputs["Object"], tex.inputs["Vector"])
    mix = nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.inputs["A"].default_value = (*spec["color"], 1.0)
    mix.inputs["B"].default_value = (*spec["color2"], 1.0)
    factor = tex.outputs["Fac"] if "Fac" in tex.outputs else tex.outputs["Distance"]
    links.new(factor, mix.inputs["Factor"])
    links.new(mix.outputs["Result"], bsdf.inputs["Base Color"])
    return mat


def build_objects(objects: list[dict]) -> list:
    """The spec's objects in the current scene; returns the Blender objects."""
    validate_objects(objects)
    out = []
    for k, o in enumerate(objects):
        mesh = shape_mesh(f"object_{k}", o["shape"], o["seed"])
        mesh.materials.append(object_material(f"object_{k}", o["material"]))
        obj = link_object(f"object_{k}", mesh)
        obj.location = o["location"]
        obj.rotation_euler = [math.radians(a) for a in o["rotation_deg"]]
        obj.scale = [o["size"] * a for a in o["aspect"]]
        out.append(obj)
    return out
