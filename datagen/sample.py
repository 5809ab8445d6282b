"""Writing one webdataset sample = one subject (DESIGN §4): its JSON members and tar packing (names and
the reader: `datagen.shard_format`)."""

from __future__ import annotations

import io
import json

import numpy as np

from datagen.catalogues.head import SCENE_UNIT_M
from datagen.shard_format import view_file, view_file_stem
from facelift_models import cameras

LANDMARK_UNITS = f"scene units (1 unit = {SCENE_UNIT_M:.4f} m), Blender world: Z up, head faces -Y"


def dumps(obj) -> bytes:
    """The one JSON encoding of the dataset: sorted keys, so identical content is identical bytes."""
    return (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()


def view_files(spec: dict) -> list[str]:
    """Image file names of the subject's views, in spec order."""
    return [view_file(view_file_stem(k, v["kind"])) for k, v in enumerate(spec["views"])]


def cameras_json(spec: dict, head_rotation=None, gaze_directions: dict | None = None) -> dict:
    """The subject's cameras (FaceLift's fields); a head's frames also give its pose relative to the
    camera (`head_pose_deg`) and each eye's gaze in the camera's frame (`gaze`), from the built head's
    world rotation and eyes' world gaze directions."""
    size, fov = spec["render"]["size"], spec["render"]["fov_deg"]
    frames = []
    for view, file_name in zip(spec["views"], view_files(spec)):
        v = cameras.View(view["name"], view["kind"], view["azimuth_deg"], view["elevation_deg"], view["radius"])
        frame = cameras.frame_dict(v, size, file_name, fov)
        if head_rotation is not None:
            w2c = np.array(frame["w2c"])
            frame["head_pose_deg"] = _rounded(cameras.head_pose_deg(w2c, head_rotation))
            frame["gaze"] = {side: _rounded(cameras.gaze_in_camera(w2c, d)) for side, d in gaze_directions.items()}
        frames.append(frame)
    return {"id": spec["key"], "frames": frames}


def _rounded(values: dict) -> dict:
    return {k: [round(c, 6) for c in v] if isinstance(v, list) else round(v, 4) for k, v in values.items()}


def landmarks_json(key: str, landmarks: dict[str, tuple[float, float, float]]) -> dict:
    return {
        "id": key,
        "space": "world",
        "units": LANDMARK_UNITS,
        "points": {k: [round(float(c), 6) for c in v] for k, v in landmarks.items()},
    }


def landmarks2d_json(key: str, points_world: np.ndarray, frames: list[dict]) -> dict:
    """The 68-point iBUG/300-W layout of one subject: its 3D points and, per view (cameras.json's
    order), pixel positions and visibility."""
    from blender_assets.landmarks68 import IBUG68_GROUPS

    names = [f"{group}_{k - ks.start}" for group, ks in IBUG68_GROUPS.items() for k in ks]
    return {
        "id": key,
        "layout": "ibug68",
        "names": names,
        "groups": {group: [ks.start, ks.stop - 1] for group, ks in IBUG68_GROUPS.items()},
        "world": [[round(float(c), 6) for c in p] for p in points_world],
        "units": LANDMARK_UNITS,
        "pixels": "x right, y down, in the frame's intrinsics: pixel (i, j) spans [i, i+1) x [j, j+1)",
        "frames": frames,
    }


def pack_sample(key: str, files: dict[str, bytes]) -> bytes:
    """A one-sample tar (the staging form of a rendered subject)."""
    buf = io.BytesIO()
    write_samples(buf, [(key, files)])
    return buf.getvalue()


def write_samples(fileobj, samples) -> int:
    """Write (key, files) pairs as webdataset samples; mtime 0 keeps shard bytes reproducible."""
    import webdataset as wds  # here, not at import: it imports torch (seconds), which readers of shards do not need

    count = 0
    with wds.TarWriter(fileobj, encoder=False, mtime=0) as sink:
        for key, files in samples:
            sink.write({"__key__": key, **files})
            count += 1
    return count
