"""Clothing and accessories: sampler contracts, garment geometry against the skin, accessory
placement, and one tiny Cycles render where the clothes change pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from datagen.catalogues import clothing as styles
from datagen.samplers import draw
from datagen.samplers.clothing import sample_accessories, sample_clothing
from datagen.samplers.subject import Subject

bpy = pytest.importorskip("bpy")

from blender_assets import shape  # noqa: E402
from blender_assets.accessories import build_accessories  # noqa: E402
from blender_assets.clothing import build_clothing  # noqa: E402

POSES = ({"yaw": 0.0, "pitch": 0.0, "roll": 0.0}, {"yaw": 30.0, "pitch": -20.0, "roll": 8.0})


@pytest.fixture(scope="module")
def identity():
    return draw("identity", Subject(0, 0))


@pytest.fixture(scope="module", params=POSES, ids=("neutral", "posed"))
def geo(request, identity):
    return shape.head_geometry(identity, {"units": {}}, request.param)


@pytest.fixture
def scene():
    from datagen.blender_render import reset_scene

    reset_scene()
    return bpy.context.scene


def outfit(garment: str, identity: dict) -> dict:
    """A sampled outfit whose garment is `garment` (draws until one comes up)."""
    rng = np.random.default_rng(7)
    for _ in range(500):
        spec = sample_clothing(rng, Subject(0, 0, drawn={"identity": identity}))
        if spec["garment"] == garment:
            return spec
    raise AssertionError(f"{garment} never drawn")


def world_vertices(objects) -> np.ndarray:
    out = []
    for obj in objects:
        v = np.empty(len(obj.data.vertices) * 3)
        obj.data.vertices.foreach_get("co", v)
        m = np.array(obj.matrix_world)
        out.append(v.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3])
    return np.concatenate(out)


def skin_normals(geo) -> np.ndarray:
    from blender_assets.surface import vertex_normals

    faces = np.array([f for f, p in zip(geo.topology.faces, geo.topology.face_part) if p == 0])
    return vertex_normals(geo.vertices, faces)


# ----------------------------------------------------------------------------- samplers


def test_samplers_are_deterministic_json_safe_and_valid(identity):
    seen = set()
    for seed in range(300):
        a = sample_clothing(np.random.default_rng(seed), Subject(0, 0, drawn={"identity": identity}))
        assert a == sample_clothing(np.random.default_rng(seed), Subject(0, 0, drawn={"identity": identity}))
        assert json.loads(json.dumps(a)) == a
        styles.validate_clothing(a)
        seen.add(a["garment"])
        acc = sample_accessories(
            np.random.default_rng(seed), Subject(0, 0, drawn={"identity": identity, "hair": {"style": "short"}})
        )
        assert json.loads(json.dumps(acc)) == acc
        styles.validate_accessories(acc)
    assert seen == set(styles.GARMENTS)
    assert {"tshirt", "shirt", "hoodie", "turtleneck", "jacket", "sweater"} <= set(styles.GARMENTS)
    for fabric_value in a["fabric"]["base_color"]:
        assert round(fabric_value, 6) == fabric_value


def test_accessory_probabilities_and_hat_only_over_short_hair(identity):
    female = {"macro": {"gender": 0.0}}
    draws = [
        sample_accessories(
            np.random.default_rng(s), Subject(0, 0, drawn={"identity": female, "hair": {"style": "buzz"}})
        )
        for s in range(3000)
    ]
    rate = {k: np.mean([d[k] is not None for d in draws]) for k in ("glasses", "earrings", "hat")}
    assert rate["glasses"] == pytest.approx(styles.GLASSES_PROBABILITY, abs=0.03)
    assert rate["earrings"] == pytest.approx(styles.EARRINGS_PROBABILITY_FEMALE, abs=0.03)
    assert rate["hat"] == pytest.approx(styles.HAT_PROBABILITY, abs=0.03)
    long_hair = [
        sample_accessories(
            np.random.default_rng(s), Subject(0, 0, drawn={"identity": female, "hair": {"style": "long_wavy"}})
        )
        for s in range(300)
    ]
    assert all(d["hat"] is None for d in long_hair)
    # Hairstyle never shifts the other draws.
    assert [d["glasses"] for d in long_hair] == [d["glasses"] for d in draws[:300]]


def test_bad_values_raise_a_clear_error(identity):
    spec = outfit("tshirt", identity)
    with pytest.raises(ValueError, match="'toga'.*tshirt"):
        styles.validate_clothing({**spec, "garment": "toga"})
    with pytest.raises(ValueError, match="pattern 'paisley'"):
        styles.validate_clothing({**spec, "fabric": {**spec["fabric"], "pattern": "paisley"}})
    with pytest.raises(ValueError, match="hat style 'fedora'"):
        styles.validate_accessories({"glasses": None, "earrings": None, "hat": {"style": "fedora"}})


# ----------------------------------------------------------------------------- garments


@pytest.mark.parametrize("garment", styles.GARMENTS)
def test_garment_covers_the_cut_stays_off_the_face_and_outside_the_skin(garment, identity, geo, scene):
    objects = build_clothing(outfit(garment, identity), geo)
    assert objects and all(o.type == "MESH" for o in objects)
    v = world_vertices(objects)
    skin = geo.vertices[geo.topology.skin]
    cut_z = geo.rest[geo.topology.skin, 2].min()
    assert v[:, 2].min() < cut_z  # the hem hangs over the chest cut
    # Below the cut edge all round: garment points span the skin's cut width.
    assert v[:, 0].min() < skin[:, 0].min() + 0.1 and v[:, 0].max() > skin[:, 0].max() - 0.1
    chin = geo.landmarks["chin"]
    in_front = (np.abs(v[:, 0] - chin[0]) < 0.45) & (v[:, 1] < chin[1] + 0.15)
    assert (v[in_front, 2] < chin[2]).all(), "garment climbs onto the face"
    # Outside the skin: each garment vertex lies on the outer side of its nearest skin vertex
    # (the hem below the cut plane has no body to be inside of).
    normals = skin_normals(geo)[geo.topology.skin]
    above = v[v[:, 2] > cut_z + 0.02]
    for chunk in np.array_split(above, max(1, len(above) // 1500)):
        nearest = np.argmin(((chunk[:, None] - skin[None]) ** 2).sum(-1), axis=1)
        side = np.einsum("ij,ij->i", chunk - skin[nearest], normals[nearest])
        assert side.min() > -0.005, f"{garment}: {int((side <= -0.005).sum())} vertices inside the skin"


def test_jacket_is_worn_over_an_inner_layer(identity, scene):
    g = shape.head_geometry(identity, {"units": {}}, POSES[0])
    names = [o.name for o in build_clothing(outfit("jacket", identity), g)]
    assert any(n.startswith("garment_inner") for n in names) and "garment" in names


# ----------------------------------------------------------------------------- accessories


def all_accessories() -> dict:
    female = {"macro": {"gender": 0.0}}
    found: dict = {}
    for s in range(500):
        d = sample_accessories(
            np.random.default_rng(s), Subject(0, 0, drawn={"identity": female, "hair": {"style": "short"}})
        )
        found.update({k: v for k, v in d.items() if v is not None and k not in found})
    return found


def test_accessories_appear_only_when_the_spec_says(geo, scene):
    assert build_accessories({"glasses": None, "earrings": None, "hat": None}, geo) == []
    full = all_accessories()
    for item, prefix in (("glasses", ("glasses", "lens")), ("earrings", ("earring",)), ("hat", ("hat",))):
        spec = {"glasses": None, "earrings": None, "hat": None, item: full[item]}
        names = [o.name for o in build_accessories(spec, geo)]
        assert names and all(n.startswith(prefix) for n in names), (item, names)


def test_glasses_rims_sit_in_front_of_the_eyes(geo, scene):
    spec = {"glasses": all_accessories()["glasses"], "earrings": None, "hat": None}
    objects = {o.name: o for o in build_accessories(spec, geo)}
    inv = np.linalg.inv(geo.head_matrix)  # compare in head space: "in front" is −Y there
    for side in ("left", "right"):
        lens = world_vertices([objects[f"lens_{side}"]])
        lens = lens @ inv[:3, :3].T + inv[:3, 3]
        eye = inv[:3, :3] @ geo.landmarks[f"eye_{side}"] + inv[:3, 3]
        cornea = eye[1] - geo.eyes[side].radius
        assert lens[:, 1].max() < cornea - 0.03
        # Worn glasses rest on the nose ≈ 12–18 mm (0.075–0.11 units) in front of the cornea; frames
        # pushed off by the nose flank floated 2–3 cm out and MTCNN lost the face behind them.
        assert cornea - lens[:, 1].mean() < 0.12
        centre = lens.mean(axis=0)
        assert abs(centre[0] - eye[0]) < 0.06 and abs(centre[2] - eye[2]) < 0.06


def test_hat_stays_above_the_eyes(geo, scene):
    hat = dict(all_accessories()["hat"])
    for style in styles.HAT_STYLES:
        objects = build_accessories({"glasses": None, "earrings": None, "hat": {**hat, "style": style}}, geo)
        inv = np.linalg.inv(geo.head_matrix)
        v = world_vertices(objects) @ inv[:3, :3].T + inv[:3, 3]
        eye_z = (inv[:3, :3] @ geo.landmarks["eye_left"] + inv[:3, 3])[2]
        front = v[v[:, 1] < -0.2]
        assert front[:, 2].min() > eye_z + 0.1, style


# ----------------------------------------------------------------------------- render


def test_clothes_change_a_real_render(identity, scene):
    from blender_assets.head import build_head
    from blender_assets.lighting import apply_lighting
    from datagen.blender_render import add_camera, configure_render, quiet_fds
    from datagen.config import DATAGEN_PRESETS
    from datagen.spec import make_spec
    from facelift_models import cameras

    spec = make_spec(DATAGEN_PRESETS["test"].config, 0, 0)
    configure_render(scene, spec["render"], 1, "cpu")
    build_head(spec["identity"], spec["expression"], spec["pose"])
    apply_lighting({"kind": "ambient", "color": [0.8, 0.8, 0.8], "strength": 0.6}, {})
    camera = add_camera(scene, spec["render"]["fov_deg"])
    c2w = cameras.look_at_c2w(cameras.camera_position(0.0, 0.0))
    camera.matrix_world = cameras.c2w_to_blender_matrix(c2w).T.tolist()

    def render() -> np.ndarray:
        with quiet_fds():
            bpy.ops.render.render()
        # Render Result pixels are not readable from Python: write to a file and read it back.
        path = bpy.app.tempdir + "clothing_test.png"
        bpy.data.images["Render Result"].save_render(path)
        img = bpy.data.images.load(path)
        px = np.array(img.pixels[:]).reshape(img.size[1], img.size[0], 4)
        bpy.data.images.remove(img)
        return px

    bare = render()
    geo = shape.head_geometry(spec["identity"], spec["expression"], spec["pose"])
    build_clothing(outfit("hoodie", identity), geo)
    dressed = render()
    changed = np.abs(dressed - bare).max(axis=2) > 0.05
    assert changed[:16].mean() > 0.2  # the bottom rows (image y is flipped: row 0 is the bottom)
    assert changed[40:].mean() < 0.05  # the face and head above are untouched
