"""The anny head: catalogue, numpy geometry (identity, expression, pose, landmarks) and the Blender build."""

from __future__ import annotations

import os

import numpy as np
import pytest

from blender_assets import anny_data, catalogue, shape
from datagen.spec import sample_identity

NEUTRAL_POSE = {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}


@pytest.fixture(scope="module")
def identity():
    return sample_identity(0, 0)


def geometry(identity, units=None, **pose):
    return shape.head_geometry(identity, {"units": units or {}}, {**NEUTRAL_POSE, **pose})


def test_catalogue_names_resolve_to_data_files():
    assert len(catalogue.EXPRESSION_UNITS) == 52 and "jawOpen" in catalogue.EXPRESSION_UNITS
    sliders = catalogue.identity_sliders()
    assert len(sliders) > 50
    assert {s.region for s in sliders} >= {"nose", "eyes", "mouth", "ears", "chin", "cheek", "head"}
    for s in sliders:
        for path in filter(None, (s.negative, s.positive)):
            assert os.path.exists(anny_data.mpfb_path("targets", path + ".target.gz")), path
    assert sorted(catalogue.bundled_hdris()) == ["city", "courtyard", "forest", "interior", "night", "studio", "sunrise", "sunset"]
    assert catalogue.age_years_to_param(25) == 0.5 and catalogue.age_param_to_years(catalogue.age_years_to_param(60)) == pytest.approx(60)


def test_macro_weights_follow_makehuman_interpolation():
    w = shape.macro_targets({"gender": 0.25, "age": 0.75, "muscle": 0.5, "weight": 0.5, "african": 0.5, "asian": 0.0, "caucasian": 0.5})
    assert w["macrodetails/african-female-young"] == pytest.approx(0.5 * 0.75 * 0.5)
    assert w["macrodetails/caucasian-male-old"] == pytest.approx(0.5 * 0.25 * 0.5)
    assert not any("/asian-" in k for k in w)
    universal = [v for k, v in w.items() if "universal" in k]
    assert sum(universal) == pytest.approx(1.0)


def test_landmarks_sit_where_a_face_has_them(identity):
    g = geometry(identity)
    m = g.landmarks
    assert set(m) == set(catalogue.LANDMARK_NAMES)
    assert m["eye_left"][0] > 0 > m["eye_right"][0]  # the subject's left is +X
    assert m["ear_left"][0] > m["eye_left"][0] and m["ear_right"][0] < m["eye_right"][0]
    face = ("eye_left", "eye_right", "nose_tip", "mouth_left", "mouth_right", "chin")
    assert min(face, key=lambda k: m[k][1]) == "nose_tip"  # the nose points at the front camera (−Y)
    assert m["head_top"][2] > m["eye_left"][2] > m["nose_tip"][2] > m["mouth_left"][2] > m["chin"][2]
    eye_gap_m = np.linalg.norm(m["eye_left"] - m["eye_right"]) * anny_data.SCENE_UNIT_M
    assert 0.05 < eye_gap_m < 0.075  # adult interpupillary distance
    head_box = g.vertices[g.topology.head_region]
    centre = (head_box.min(0) + head_box.max(0)) / 2
    np.testing.assert_allclose(centre, [0, 0, shape.HEAD_LIFT], atol=1e-9)


def test_jaw_open_drops_the_chin_and_lower_teeth_only(identity):
    neutral, open_ = geometry(identity), geometry(identity, {"jawOpen": 1.0})
    assert neutral.landmarks["chin"][2] - open_.landmarks["chin"][2] > 0.05
    groups, remap = anny_data.vertex_groups(), neutral.topology.remap
    lower, upper = remap[groups["helper-lower-teeth"]], remap[groups["helper-upper-teeth"]]
    drop = neutral.vertices[lower, 2] - (neutral.vertices[lower] + open_.shape_keys["jawOpen"][lower])[:, 2]
    assert drop.mean() > 0.03
    assert np.abs(open_.shape_keys["jawOpen"][upper]).max() < 1e-6


def test_head_pose_turns_the_head_on_a_fixed_body(identity):
    rest, turned = geometry(identity), geometry(identity, yaw=30.0)
    assert turned.landmarks["nose_tip"][0] - rest.landmarks["nose_tip"][0] > 0.1  # yaw > 0: face toward +X
    assert geometry(identity, pitch=15.0).landmarks["nose_tip"][2] > rest.landmarks["nose_tip"][2] + 0.03  # chin up
    assert geometry(identity, roll=15.0).landmarks["head_top"][0] < rest.landmarks["head_top"][0] - 0.05  # top toward −X
    chest = rest.vertices[:, 2] < rest.vertices[:, 2].min() + 0.2
    np.testing.assert_allclose(turned.vertices[chest], rest.vertices[chest], atol=1e-6)
    # the eyes turn with the head
    assert turned.eyes["left"][2][:3, :3] @ np.array([0, -1, 0]) @ np.array([1, 0, 0]) > 0.4


def test_identities_differ(identity):
    a, b = geometry(identity), geometry(sample_identity(0, 5))
    assert np.abs(a.vertices - b.vertices).max() > 0.05


def test_blender_build_and_render(identity, tmp_path):
    bpy = pytest.importorskip("bpy")
    from blender_assets.head import build_head
    from blender_assets.lighting import apply_lighting
    from datagen.blender_render import reset_scene

    def build():
        reset_scene()
        return build_head(identity, {"units": {"jawOpen": 0.4, "mouthSmileLeft": 0.7}}, NEUTRAL_POSE)

    head = build()
    counts = (len(bpy.data.meshes), len(bpy.data.materials), len(bpy.data.objects))
    mesh_obj = bpy.data.objects["head"]
    keys = {k.name: k.value for k in mesh_obj.data.shape_keys.key_blocks if k.name != "Basis"}
    assert keys == pytest.approx({"jawOpen": 0.4, "mouthSmileLeft": 0.7})
    assert [m.name.split(".")[0] for m in mesh_obj.data.materials] == ["skin", "teeth", "tongue"]
    assert mesh_obj.data.materials[0].node_tree.nodes["Principled BSDF"].inputs["Subsurface Weight"].default_value > 0
    # the eyeballs sit at the eye landmarks
    for side in ("left", "right"):
        np.testing.assert_allclose(bpy.data.objects[f"eye_{side}"].matrix_world.translation, head.landmarks[f"eye_{side}"], atol=1e-5)
    for _ in range(3):
        build()
    assert (len(bpy.data.meshes), len(bpy.data.materials), len(bpy.data.objects)) == counts, "rebuilding leaks data-blocks"

    scene = bpy.context.scene
    apply_lighting({"kind": "ambient", "color": [0.8, 0.8, 0.8], "strength": 0.5}, {})
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    scene.collection.objects.link(cam)
    scene.camera = cam
    cam.location, cam.rotation_euler = (0.0, -2.7, 0.0), (np.pi / 2, 0.0, 0.0)
    cam.data.angle = np.radians(50)
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 2
    scene.render.resolution_x = scene.render.resolution_y = 48
    scene.render.film_transparent = True
    scene.render.filepath = str(tmp_path / "front.png")
    bpy.ops.render.render(write_still=True)
    from PIL import Image

    alpha = np.asarray(Image.open(tmp_path / "front.png").convert("RGBA"))[..., 3]
    assert 0.1 < (alpha > 0).mean() < 0.8 and alpha[24, 24] == 255
