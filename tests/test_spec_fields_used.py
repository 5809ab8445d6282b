"""Every choice recorded in spec.json reaches the Blender scene: change one field, the scene changes.

A field that is drawn and stored but never read would make spec.json lie about what was rendered.
Each numeric or named field of two spec bases (everything switched on: styled and curled hair with
a beard, make-up, glasses and earrings, ambient light; then a jacket, a hat and an HDRI) is
nudged to another valid value and the scene is rebuilt through `build_scene`, the render path's
own builder; a fingerprint of every data-block (geometry, attributes, modifiers, shader nodes,
images, world, render settings, camera) must differ from the base's.
"""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest

from datagen.config import make_config
from datagen.spec import make_spec

bpy = pytest.importorskip("bpy")

# Fields the build does not read, by design: bookkeeping, camera poses (tests/test_cameras.py),
# output passes (test_datagen), the random views' samples (set per view by the render loop: the test
# below), and labels that name a value stored beside them.
NOT_SCENE = re.compile(
    r"^(spec_version|key|identity_index|appearance_index|seed|split|seeds\..*|views|versions\..*|render\.passes|render\.hdri_dir|lighting\.kind"
    r"|render\.random_view_samples"
    # iris names the colour; archetypes/gaze are in the units
    r"|identity\.iris|expression\.archetypes|expression\.gaze_deg"
    r"|clothing\.(inner\.)?garment"  # the garment's neckline, thickness and fabric are drawn from it and stored
    r"|makeup\.\w+\.name|hair\.color\.dye\.name|clothing\.(inner\.)?fabric\.(color_name|secondary_color_name)"
    r"|accessories\.hat\.color_name|accessories\.glasses\.(frame_color_name|lens_tint_name)|accessories\.earrings\.metal)$"
)
ALTERNATIVES = {  # named fields: valid values to switch to (the first that differs)
    "hair.style": ("ponytail", "bun"),
    "hair.part": (-0.2, 0.2),
    "hair.density": ("low", "high"),
    "hair.facial_hair.style": ("goatee", "moustache"),
    "clothing.garment": ("hoodie", "polo"),
    "clothing.neckline": ("crew", "v"),
    "clothing.fabric.pattern": ("stripes", "dots"),
    "clothing.inner.garment": ("turtleneck", "tshirt"),
    "clothing.inner.neckline": ("crew", "collar"),
    "clothing.inner.fabric.pattern": ("knit", "check"),
    "lighting.hdri": ("bundled:forest", "bundled:studio"),
    "render.denoise_quality": ("HIGH", "FAST"),
    "accessories.glasses.style": ("round", "aviator"),
    "accessories.glasses.frame_material": ("metal", "acetate"),
    "accessories.earrings.style": ("stud", "hoop"),
    "accessories.hat.style": ("cap", "beanie"),
    "accessories.hat.pattern": ("solid", "knit"),
}
SAMPLED_PER_GROUP = 3  # of the ~140 face-shape sliders and the expression units (test_head moves them all)


def find(cfg, want) -> dict:
    for i in range(2000):
        spec = make_spec(cfg, i, 0)
        if want(spec):
            return spec
    raise AssertionError("no subject in 2000 has the wanted parts")


def make_bases() -> list[dict]:
    cfg = make_config("test", identities=2000, appearances=1)
    a = find(
        cfg, lambda s: s["hair"]["style"] == "long_wavy" and s["accessories"]["glasses"] and s["makeup"]["lipstick"]
    )
    a["hair"]["facial_hair"] = find(cfg, lambda s: s["hair"]["facial_hair"]["style"] == "full_beard")["hair"][
        "facial_hair"
    ]
    a["hair"]["part"] = 0.1
    a["makeup"] = find(cfg, lambda s: all(s["makeup"][k] for k in ("lipstick", "eyeshadow", "blush")))["makeup"]
    a["accessories"]["earrings"] = find(cfg, lambda s: s["accessories"]["earrings"])["accessories"]["earrings"]
    a["hair"]["color"]["dye"] = {"name": "copper", "tint": [0.95, 0.45, 0.2], "amount": 0.6}
    a["lighting"] = {
        "kind": "ambient",
        "color": [0.8, 0.8, 0.8],
        "strength": 0.5,
        "sky_ratio": 12.0,
        "sky_direction_deg": [30.0, 40.0],
        "sky_sharpness": 8.0,
    }
    a["render"]["denoise"] = True
    b = find(
        cfg,
        lambda s: (
            s["clothing"].get("inner") and s["accessories"]["hat"] and s["clothing"]["fabric"]["pattern"] != "solid"
        ),
    )
    b["clothing"]["fabric"]["pattern"] = "stripes"
    b["lighting"] = {"kind": "hdr", "hdri": "bundled:sunset", "rotation_deg": 30.0, "strength": 1.1}
    b["render"]["denoise"] = True
    return [a, b]


@pytest.fixture(scope="module")
def bases() -> list[dict]:
    return make_bases()


def leaves(d, path=""):
    if isinstance(d, dict):
        for k, v in d.items():
            yield from leaves(v, f"{path}.{k}" if path else k)
    else:
        yield path, d


def nudged(path: str, value):
    """Another valid value for the field, or None where the test has none to offer."""
    if path in ALTERNATIVES:
        return next(v for v in ALTERNATIVES[path] if v != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 2
    if isinstance(value, float):
        return value * 0.83 + 0.021
    if isinstance(value, list) and value and all(isinstance(x, (int, float)) for x in value):
        return [x * 0.83 + 0.021 for x in value]
    return None


def with_field(spec: dict, path: str, value) -> dict:
    out = copy.deepcopy(spec)
    node = out
    *parents, last = path.split(".")
    for k in parents:
        node = node[k]
    node[last] = value
    return out


def plain(v):
    """A comparable stand-in for a Blender value: data-blocks by name, arrays as tuples."""
    if isinstance(v, (int, float, str, bool)) or v is None:
        return v
    if isinstance(v, bpy.types.ID):
        return "ID:" + re.sub(r"\.\d{3}$", "", v.name)
    if hasattr(v, "__len__"):
        return tuple(plain(x) for x in v)
    return str(v)


def _values(block) -> list[float]:
    out = []
    for prop in block.bl_rna.properties:
        if prop.type in ("FLOAT", "INT", "BOOLEAN", "ENUM", "STRING") and prop.identifier not in (
            "name",
            "name_full",
            "session_uid",
        ):
            v = getattr(block, prop.identifier)
            out.append(v if isinstance(v, (int, float, str)) else tuple(v) if hasattr(v, "__len__") else str(v))
    return out


def fingerprint() -> dict[str, tuple]:
    """What a render depends on, per data-block, in plain comparable values."""

    def key(name):
        return re.sub(r"\.\d{3}$", "", name)

    fp = {}
    for obj in bpy.data.objects:
        entry = [tuple(np.round(np.array(obj.matrix_world), 6).ravel())]
        data = obj.data
        if obj.type == "MESH":
            co = np.empty(len(data.vertices) * 3)
            data.vertices.foreach_get("co", co)
            entry.append(np.round(co, 6).tobytes())
            for attr in data.attributes:
                if attr.data_type in ("FLOAT", "FLOAT_VECTOR", "FLOAT_COLOR", "FLOAT2") and len(attr.data):
                    field = (
                        "vector"
                        if attr.data_type in ("FLOAT_VECTOR", "FLOAT2")
                        else "color"
                        if attr.data_type == "FLOAT_COLOR"
                        else "value"
                    )
                    width = {"FLOAT_VECTOR": 3, "FLOAT2": 2, "FLOAT_COLOR": 4}.get(attr.data_type, 1)
                    buf = np.empty(len(attr.data) * width)
                    attr.data.foreach_get(field, buf)
                    entry.append((attr.name, np.round(buf, 6).tobytes()))
            if data.shape_keys:
                entry.append(tuple((k.name, round(k.value, 6)) for k in data.shape_keys.key_blocks))
        elif obj.type == "CURVES":
            pos = np.empty(len(data.points) * 3)
            data.points.foreach_get("position", pos)
            entry.append(np.round(pos, 6).tobytes())
            if "radius" in data.attributes and len(data.points):
                r = np.empty(len(data.points))
                data.attributes["radius"].data.foreach_get("value", r)
                entry.append(np.round(r, 7).tobytes())
        elif obj.type == "CAMERA":
            entry.append(_values(data))
        if obj.pose:
            entry.append(tuple(np.round(np.array(b.matrix_basis), 6).ravel().tolist() for b in obj.pose.bones))
        for mod in obj.modifiers:
            inputs = tuple((k, plain(mod[k])) for k in mod.keys()) if mod.type == "NODES" else ()
            entry.append((mod.type, inputs, tuple(map(str, _values(mod)))))
        entry.append(tuple(key(m.name) for m in getattr(data, "materials", []) if m))
        fp["object:" + key(obj.name)] = tuple(entry)
    for tree_owner in [*bpy.data.materials, *bpy.data.worlds, *bpy.data.node_groups]:
        tree = tree_owner if isinstance(tree_owner, bpy.types.NodeTree) else tree_owner.node_tree
        if tree is None:
            continue
        nodes = []
        for n in tree.nodes:
            inputs = tuple(
                (
                    s.identifier,
                    tuple(s.default_value)
                    if hasattr(s.default_value, "__len__") and not isinstance(s.default_value, str)
                    else s.default_value,
                )
                for s in n.inputs
                if hasattr(s, "default_value") and not s.is_linked
            )
            extra = _values(n)
            if getattr(n, "color_ramp", None):
                extra.append(tuple((e.position, tuple(e.color)) for e in n.color_ramp.elements))
            if getattr(n, "image", None):
                extra.append(key(n.image.name))
            nodes.append((key(n.name), inputs, tuple(map(str, extra))))
        fp["tree:" + key(tree_owner.name)] = tuple(sorted(nodes, key=lambda n: n[0]))
    for img in bpy.data.images:
        if img.filepath:  # a file: its path is its content (reading big HDRIs' pixels is slow)
            fp["image:" + key(img.name)] = (img.filepath, img.colorspace_settings.name)
        elif img.has_data:  # written by the build
            px = np.empty(len(img.pixels), dtype=np.float32)
            img.pixels.foreach_get(px)
            fp["image:" + key(img.name)] = (tuple(img.size), round(float(px.sum()), 3))
    scene = bpy.context.scene
    fp["render"] = (
        tuple(_values(scene.render)),
        tuple(_values(scene.cycles)),
        tuple(_values(scene.cycles_curves)),
        tuple(_values(scene.view_settings)),
    )
    if scene.world:
        fp["world"] = tuple(_values(scene.world.cycles))  # light sampling of the world (importance map)
    return fp


def build(spec: dict) -> dict:
    from datagen.blender_render import build_scene

    build_scene(spec)
    return fingerprint()


def fields_to_check(spec: dict) -> list[tuple[str, object]]:
    out, seen = [], {"identity.modifiers": 0, "expression.units": 0}
    for path, value in leaves(spec):
        if NOT_SCENE.match(path) or value is None:  # None: the part is absent here, present in the other base
            continue
        group = path.rsplit(".", 1)[0]
        if group in seen:
            seen[group] += 1
            if seen[group] > SAMPLED_PER_GROUP:
                continue
        out.append((path, value))
    return out


def test_every_spec_field_changes_the_scene(bases):
    # A field may matter only beside others (curl frequency needs a curl radius): it must change
    # the scene in at least one base.
    changes: dict[str, bool] = {}
    untested = []
    for base in bases:
        reference = build(base)
        assert build(base) == reference, "the same spec built twice gives different scenes"
        for path, value in fields_to_check(base):
            new = nudged(path, value)
            if new is None:
                untested.append(path)
            elif not changes.get(path):
                changes[path] = build(with_field(base, path, new)) != reference
    assert not untested, (
        f"fields this test cannot vary (add an alternative or a NOT_SCENE reason): {sorted(set(untested))}"
    )
    unused = sorted(p for p, changed in changes.items() if not changed)
    assert not unused, f"spec fields that do not change the scene: {unused}"


def test_each_view_renders_with_its_groups_samples():
    """`render.samples` for the fixed views, `render.random_view_samples` for the random ones, as
    Cycles renders them: its own statistics ("Sample 1/1") at the end of each view's render, not
    only the setting (with persistent data Cycles ignored a changed setting of an untagged scene)."""
    from datagen.blender_render import render_subject

    cfg = make_config("test", identities=1, appearances=1, views_random=2, random_view_samples=1)
    last, rendered = [None], []

    # persistent: the render path resets the scene, which drops other handlers
    @bpy.app.handlers.persistent
    def stats(text, *_):
        found = re.search(r"Sample \d+/(\d+)", str(text))
        last[0] = int(found.group(1)) if found else last[0]

    @bpy.app.handlers.persistent
    def done(*_):
        rendered.append(last[0])

    bpy.app.handlers.render_stats.append(stats)
    bpy.app.handlers.render_post.append(done)
    try:
        render_subject(make_spec(cfg, 0, 0), threads=1)
    finally:
        bpy.app.handlers.render_stats.remove(stats)
        bpy.app.handlers.render_post.remove(done)
    assert rendered == [cfg.samples] * 6 + [1] * 2
