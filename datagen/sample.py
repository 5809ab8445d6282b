"""One webdataset sample = one subject (DESIGN §4): its file names, JSON members and tar packing."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator

from blender_assets.anny_data import SCENE_UNIT_M
from datagen.config import DatagenConfig
from datagen.spec import view_file_stem
from facelift_models import cameras

JSON_MEMBERS = ("spec.json", "cameras.json", "landmarks.json")
LANDMARK_UNITS = f"scene units (1 unit = {SCENE_UNIT_M:.4f} m), Blender world: Z up, head faces -Y"


def dumps(obj) -> bytes:
    """The one JSON encoding of the dataset: sorted keys, so identical content is identical bytes."""
    return (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()


def view_files(spec: dict) -> list[str]:
    """Image file names of the subject's views, in spec order."""
    return [view_file_stem(k, v["kind"]) + ".png" for k, v in enumerate(spec["views"])]


def expected_members(cfg: DatagenConfig) -> list[str]:
    """Every member name (without the key) a sample of this config holds."""
    stems = [f"fixed_{k:02d}" for k in range(len(cameras.FIXED_VIEWS))] + [
        f"random_{k:02d}" for k in range(cfg.views_random)
    ]
    names = list(JSON_MEMBERS) + [s + ".png" for s in stems]
    names += [f"{s}.{p}.exr" for s in stems for p in cfg.passes]
    return sorted(names)


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


def read_samples(fileobj) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {member: bytes}) for each sample of a tar stream, grouped as webdataset groups them."""
    key, files = None, {}
    with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
        for info in tar:
            if not info.isfile():
                continue
            base = info.name.rsplit("/", 1)[-1]
            k, _, member = base.partition(".")
            data = tar.extractfile(info).read()
            if k != key and key is not None:
                yield key, files
                files = {}
            key = k
            if member in files:
                raise ValueError(f"sample {k} holds {member} twice")
            files[member] = data
    if key is not None:
        yield key, files
