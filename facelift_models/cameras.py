"""The one camera module (DESIGN §3): orbit cameras, intrinsics, OpenCV extrinsics, projection.

numpy only, so Blender workers, shard readers and models share it. Conventions:
- world: Blender's, Z up, the head at the origin facing −Y;
- camera position for azimuth az, elevation el: r·(−sin az·cos el, −cos az·cos el, sin el);
- stored extrinsics are OpenCV (x right, y down, z forward), 4×4 row-major `w2c` / `c2w`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RADIUS = 2.7
FOV_DEG = 50.0
ELEVATION_RANGE_DEG = (-30.0, 60.0)

# Blender cameras look down their local −Z with +Y up; OpenCV looks down +Z with +Y down.
BLENDER_TO_OPENCV = np.diag([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class View:
    """A named orbit view; `kind` is "fixed" or "random"."""

    name: str
    kind: str
    azimuth_deg: float
    elevation_deg: float
    radius: float = RADIUS


FIXED_VIEWS: tuple[View, ...] = (
    View("front", "fixed", 0.0, 0.0),
    View("front_right", "fixed", 45.0, 0.0),
    View("right", "fixed", 90.0, 0.0),
    View("back", "fixed", 180.0, 0.0),
    View("left", "fixed", -90.0, 0.0),
    View("front_left", "fixed", -45.0, 0.0),
)


def random_views(
    rng: np.random.Generator,
    count: int,
    elevation_range_deg: tuple[float, float] = ELEVATION_RANGE_DEG,
    radius: float = RADIUS,
) -> tuple[View, ...]:
    """`count` views with azimuth uniform in [0, 360) and elevation uniform in the range.

    Drawn as (az, el) pairs in sequence, so the first k views do not depend on `count`.
    """
    u = rng.random(size=(count, 2))
    az = 360.0 * u[:, 0]
    el = elevation_range_deg[0] + (elevation_range_deg[1] - elevation_range_deg[0]) * u[:, 1]
    return tuple(View(f"random_{k:02d}", "random", float(a), float(e), radius) for k, (a, e) in enumerate(zip(az, el)))


def camera_position(azimuth_deg: float, elevation_deg: float, radius: float = RADIUS) -> np.ndarray:
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    return radius * np.array([-math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), math.sin(el)])


def look_at_c2w(position: np.ndarray, target: np.ndarray | None = None, up: np.ndarray | None = None) -> np.ndarray:
    """OpenCV camera-to-world matrix of a camera at `position` looking at `target` (default origin)."""
    target = np.zeros(3) if target is None else np.asarray(target, dtype=np.float64)
    up = np.array([0.0, 0.0, 1.0]) if up is None else np.asarray(up, dtype=np.float64)
    forward = target - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-8:  # looking straight up/down: any right vector orthogonal to forward
        right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, down, forward, position
    return c2w


def view_c2w(view: View) -> np.ndarray:
    return look_at_c2w(camera_position(view.azimuth_deg, view.elevation_deg, view.radius))


def focal_length(size: int, fov_deg: float = FOV_DEG) -> float:
    """fx = fy = (W/2)/tan(fov/2); 548.99 at W = 512, fov 50°."""
    return (size / 2.0) / math.tan(math.radians(fov_deg) / 2.0)


def intrinsics(size: int, fov_deg: float = FOV_DEG) -> np.ndarray:
    f = focal_length(size, fov_deg)
    return np.array([[f, 0.0, size / 2.0], [0.0, f, size / 2.0], [0.0, 0.0, 1.0]])


def c2w_to_blender_matrix(c2w: np.ndarray) -> np.ndarray:
    """World matrix of a Blender camera object equivalent to the OpenCV `c2w`."""
    m = np.array(c2w, dtype=np.float64).copy()
    m[:3, :3] = m[:3, :3] @ BLENDER_TO_OPENCV
    return m


def frame_dict(view: View, size: int, file_path: str, fov_deg: float = FOV_DEG) -> dict:
    """One entry of `cameras.json` (FaceLift's opencv_cameras.json fields)."""
    c2w = view_c2w(view)
    f = focal_length(size, fov_deg)
    return {
        "name": view.name,
        "kind": view.kind,
        "azimuth_deg": view.azimuth_deg,
        "elevation_deg": view.elevation_deg,
        "w": size,
        "h": size,
        "fx": f,
        "fy": f,
        "cx": size / 2.0,
        "cy": size / 2.0,
        "w2c": np.linalg.inv(c2w).tolist(),
        "c2w": c2w.tolist(),
        "file_path": file_path,
    }


def frame_K(frame: dict) -> np.ndarray:
    return np.array([[frame["fx"], 0.0, frame["cx"]], [0.0, frame["fy"], frame["cy"]], [0.0, 0.0, 1.0]])


def project(points: np.ndarray, w2c: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (N, 2) and camera-z depths (N,) of world points (N, 3)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    cam = pts @ np.asarray(w2c)[:3, :3].T + np.asarray(w2c)[:3, 3]
    uv = cam @ K.T
    return uv[:, :2] / uv[:, 2:3], cam[:, 2]


# The head's own axes as matrix columns (the subject's left, up, forward). At rest in the world
# (DESIGN §3: facing −Y, Z up) and, in OpenCV's camera frame, a head looking straight into the camera
# (its left on the image's right, up = −y, forward = −z: toward the camera).
HEAD_AXES_AT_REST = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
HEAD_AXES_FACING_CAMERA = np.diag([1.0, -1.0, -1.0])


def head_pose_deg(w2c: np.ndarray, head_rotation: np.ndarray) -> dict[str, float]:
    """The head's yaw, pitch and roll relative to an OpenCV camera, in degrees: all 0 when it looks
    straight into the camera, upright. Yaw > 0: turned to the subject's left; pitch > 0: chin up;
    roll > 0: the top tilted to the subject's right (the spec's pose signs; for the front view these
    are the head's pose on its neck). Intrinsic yaw, then pitch, then roll.
    `head_rotation`: the world rotation of the head from its rest pose."""
    r = HEAD_AXES_FACING_CAMERA.T @ np.asarray(w2c)[:3, :3] @ np.asarray(head_rotation)[:3, :3] @ HEAD_AXES_AT_REST
    return {
        "yaw": math.degrees(math.atan2(r[0, 2], r[2, 2])),
        "pitch": math.degrees(math.asin(float(np.clip(r[1, 2], -1.0, 1.0)))),
        "roll": math.degrees(math.atan2(r[1, 0], r[1, 1])),
    }


def gaze_in_camera(w2c: np.ndarray, direction: np.ndarray) -> dict:
    """A world gaze direction in an OpenCV camera's frame: the unit vector and its yaw/pitch in
    degrees (0, 0 looking straight into the camera; yaw > 0 toward the subject's left, pitch > 0 up)."""
    d = np.asarray(w2c)[:3, :3] @ np.asarray(direction, dtype=np.float64)
    d /= np.linalg.norm(d)
    left, up, forward = HEAD_AXES_FACING_CAMERA.T @ d
    return {
        "vector": [float(c) for c in d],
        "yaw_deg": math.degrees(math.atan2(left, forward)),
        "pitch_deg": math.degrees(math.asin(float(np.clip(up, -1.0, 1.0)))),
    }


def check_extrinsics(w2c: np.ndarray, c2w: np.ndarray, atol: float = 1e-5) -> str | None:
    """None if the pair is a consistent rigid transform, else a short reason."""
    w2c, c2w = np.asarray(w2c, dtype=np.float64), np.asarray(c2w, dtype=np.float64)
    if w2c.shape != (4, 4) or c2w.shape != (4, 4):
        return f"shape {w2c.shape}/{c2w.shape}, expected 4x4"
    R = c2w[:3, :3]
    if not np.allclose(R @ R.T, np.eye(3), atol=atol) or not math.isclose(np.linalg.det(R), 1.0, abs_tol=atol):
        return "rotation not orthonormal"
    if not np.allclose(c2w[3], [0, 0, 0, 1], atol=atol):
        return "last row not (0, 0, 0, 1)"
    if not np.allclose(w2c @ c2w, np.eye(4), atol=atol):
        return "w2c is not the inverse of c2w"
    return None
