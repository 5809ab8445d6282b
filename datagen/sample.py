"""Writing one webdataset sample = one subject (DESIGN §4): its JSON members and tar packing (names and
the reader: `datagen.shard_format`)."""

from __future__ import annotations

import io
import json

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


def cameras_json(spec: dict) -> dict:
    size, fov = spec["render"]["size"], spec["render"]["fov_deg"]
    frames = []
    for view, file_name in zip(spec["views"], view_files(spec)):
        v = cameras.View(view["name"], view["kind"], view["azimuth_deg"], view["elevation_deg"], view["radius"])
        frames.append(cameras.frame_dict(v, size, file_name, fov))
    return {"id": spec["key"], "frames": frames}


def landmarks_json(key: str, landmarks: dict[str, tuple[float, float, float]]) -> dict:
    return {
        "id": key,
        "space": "world",
        "units": LANDMARK_UNITS,
        "points": {k: [round(float(c), 6) for c in v] for k, v in landmarks.items()},
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
