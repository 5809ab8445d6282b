"""Materials of the head mesh, one per `shape.PARTS` slot: skin (`skin.py`), teeth, tongue, eyelashes.

Node graphs are built in code (no .blend assets) so every parameter comes from the spec.
"""

from __future__ import annotations

import bpy

from blender_assets.skin import skin_material

LASH_ALPHA = 0.7  # the helper strips are solid sheets; real lashes let light through between hairs


def _material(name: str):
    mat = bpy.data.materials.new(name)
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    return mat, nodes, links, bsdf


def _plain(name: str, colour, roughness: float, subsurface: float, subsurface_scale: float):
    mat, _, _, bsdf = _material(name)
    bsdf.inputs["Base Color"].default_value = (*colour, 1.0)
    bsdf.inputs["Roughness"].default_value = roughness
    bsdf.inputs["Subsurface Weight"].default_value = subsurface
    bsdf.inputs["Subsurface Scale"].default_value = subsurface_scale
    return mat


TOOTH = (0.8, 0.76, 0.66)
GUM = (0.5, 0.14, 0.15)
GUM_ATTRIBUTE = "gum"


def teeth():
    """Enamel with darker gaps between the teeth, turning to gum at the roots (the `gum` attribute)."""
    mat = _plain("teeth", TOOTH, roughness=0.2, subsurface=0.3, subsurface_scale=0.002)
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    rest = nodes.new("ShaderNodeAttribute")
    rest.attribute_name = "rest"
    # Bands across x at about one incisor's width (8 mm): thin dark gaps between teeth.
    gaps = nodes.new("ShaderNodeTexWave")
    gaps.bands_direction = "X"
    gaps.inputs["Scale"].default_value = 7.0
    links.new(rest.outputs["Vector"], gaps.inputs["Vector"])
    edge = nodes.new("ShaderNodeMapRange")
    edge.inputs["From Min"].default_value, edge.inputs["From Max"].default_value = 0.0, 0.12
    edge.inputs["To Min"].default_value, edge.inputs["To Max"].default_value = 0.45, 1.0
    links.new(gaps.outputs["Fac"], edge.inputs["Value"])
    enamel = nodes.new("ShaderNodeMix")
    enamel.data_type, enamel.blend_type = "RGBA", "MULTIPLY"
    enamel.inputs["Factor"].default_value = 1.0
    enamel.inputs["A"].default_value = (*TOOTH, 1.0)
    links.new(edge.outputs["Result"], enamel.inputs["B"])
    gum = nodes.new("ShaderNodeAttribute")
    gum.attribute_name = GUM_ATTRIBUTE
    colour = nodes.new("ShaderNodeMix")
    colour.data_type = "RGBA"
    links.new(gum.outputs["Fac"], colour.inputs["Factor"])
    links.new(enamel.outputs["Result"], colour.inputs["A"])
    colour.inputs["B"].default_value = (*GUM, 1.0)
    links.new(colour.outputs["Result"], bsdf.inputs["Base Color"])
    return mat


def tongue():
    return _plain("tongue", (0.45, 0.12, 0.12), roughness=0.35, subsurface=0.5, subsurface_scale=0.004)


def eyelashes():
    """The eyelash helper strips: dark, partly see-through so they read as lashes, not eyeliner."""
    mat, nodes, links, bsdf = _material("eyelashes")
    bsdf.inputs["Base Color"].default_value = (0.015, 0.01, 0.008, 1.0)
    bsdf.inputs["Roughness"].default_value = 0.5
    bsdf.inputs["Alpha"].default_value = LASH_ALPHA
    return mat


def for_parts(skin_spec: dict, makeup: dict | None = None, wrinkles=None) -> list:
    """One material per `shape.PARTS` slot, in order (`wrinkles`: the skin's age lines, a `WrinkleMap`)."""
    return [skin_material(skin_spec, makeup, wrinkles), teeth(), tongue(), eyelashes()]
