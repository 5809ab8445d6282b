"""Head pose and gaze per view (cameras.json): exact from the built head, in each camera's frame."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from blender_assets.shape import head_geometry
from datagen.config import make_config
from datagen.sample import cameras_json
from datagen.spec import make_spec
from facelift_models import cameras


@pytest.fixture(scope="module")
def spec():
    return make_spec(make_config("test", views_random=8), 0, 0)


def frames_for(spec: dict, pose: dict, expression: dict | None = None) -> dict:
    s = copy.deepcopy(spec)
    s["pose"] = pose
    if expression is not None:
        s["expression"] = expression
    geo = head_geometry(s["identity"], s["expression"], s["pose"])
    return {f["name"]: f for f in cameras_json(s, geo.head_matrix[:3, :3], geo.gaze_directions())["frames"]}


def wrapped(deg: float) -> float:
    return (deg + 180.0) % 360.0 - 180.0


@pytest.mark.parametrize("axis", ["yaw", "pitch", "roll"])
def test_the_front_view_reads_the_heads_pose_on_its_neck(spec, axis):
    pose = {"yaw": 0.0, "pitch": 0.0, "roll": 0.0} | {axis: 12.0}
    frames = frames_for(spec, pose)
    assert frames["front"]["head_pose_deg"] == pytest.approx(pose, abs=1e-3)
    for view in cameras.FIXED_VIEWS:  # the orbit adds its azimuth to the yaw; level cameras leave pitch and roll
        got = frames[view.name]["head_pose_deg"]
        if axis == "yaw":
            assert wrapped(got["yaw"] - (12.0 + view.azimuth_deg)) == pytest.approx(0.0, abs=1e-3)
    assert wrapped(frames["back"]["head_pose_deg"]["yaw"] - pose["yaw"] - 180.0) == pytest.approx(0.0, abs=1e-3)


def test_a_camera_above_sees_the_head_pitched_down(spec):
    frames = frames_for(spec, {"yaw": 0.0, "pitch": 0.0, "roll": 0.0})
    for f in frames.values():
        if f["kind"] == "random" and abs(wrapped(f["azimuth_deg"])) < 2.0:  # near the front: pitch = −elevation
            assert f["head_pose_deg"]["pitch"] == pytest.approx(-f["elevation_deg"], abs=0.5)
    # whatever the view: the head's forward axis against the camera's line of sight, from yaw and pitch
    for f in frames.values():
        yaw, pitch = np.radians(f["head_pose_deg"]["yaw"]), np.radians(f["head_pose_deg"]["pitch"])
        pos = np.array(f["c2w"])[:3, 3]
        cos_angle = float(np.dot(-pos / np.linalg.norm(pos), [0.0, 1.0, 0.0]))  # the head looks down −Y
        assert np.cos(yaw) * np.cos(pitch) == pytest.approx(cos_angle, abs=1e-6)


@pytest.mark.parametrize("gaze", [(10.0, 0.0), (0.0, 8.0), (-12.0, -5.0)])
def test_gaze_in_the_front_camera_is_the_drawn_gaze(spec, gaze):
    from datagen.samplers.expression import EYE_LOOK_DEG

    yaw, pitch = gaze
    side = abs(yaw) / EYE_LOOK_DEG["side"]
    units = (
        {"eyeLookOutLeft": side, "eyeLookInRight": side}
        if yaw > 0
        else {"eyeLookInLeft": side, "eyeLookOutRight": side}
    )
    vertical = ("eyeLookUpLeft", "eyeLookUpRight") if pitch > 0 else ("eyeLookDownLeft", "eyeLookDownRight")
    units |= {u: abs(pitch) / EYE_LOOK_DEG["up" if pitch > 0 else "down"] for u in vertical}
    expression = {
        "archetypes": ["neutral"],
        "gaze_deg": list(gaze),
        "units": {u: w for u, w in units.items() if w > 0},
    }
    front = frames_for(spec, {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}, expression)["front"]
    for eye in ("left", "right"):
        g = front["gaze"][eye]
        assert (g["yaw_deg"], g["pitch_deg"]) == pytest.approx(gaze, abs=0.5)
        assert np.linalg.norm(g["vector"]) == pytest.approx(1.0, abs=1e-5) and g["vector"][2] < 0  # toward the camera
