"""LRM samples streamed from datagen shards (DESIGN §4, §7) with webdataset.

One sample = one subject: 4 input views and 4 supervision views, each supervision view within
60° (angle between unit camera directions from the origin) of some input view; only those 8
PNGs are decoded, composited on white and resized to the model's size; cameras are normalised
with `normalize_cameras`, the same function inference uses.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from facelift_models import cameras
from training.shards import REQUIRED, DataError, Source, decode_views, missing_member
from training.stream import shard_loader


@dataclass(frozen=True)
class ViewPick:
    num_input: int = 4
    num_supervision: int = 4
    max_angle_deg: float = 60.0
    holdout: tuple[str, ...] = ()  # view files never drawn (kept for evaluation)


def normalize_cameras(c2w: np.ndarray) -> np.ndarray:
    """Scale camera positions so their mean distance from the origin is DESIGN §3's radius; the
    head stays at the origin. Datagen cameras already sit at 2.7 (a no-op); other data (objects at
    another radius, user captures) is brought to the distance the model's depth range assumes."""
    c2w = np.array(c2w, dtype=np.float64)
    dist = np.linalg.norm(c2w[:, :3, 3], axis=1).mean()
    if not np.isfinite(dist) or dist <= 1e-6:
        raise DataError(f"cameras sit at mean distance {dist} from the origin; expected orbit cameras around it")
    c2w[:, :3, 3] *= cameras.RADIUS / dist
    return c2w


def near_inputs(directions: np.ndarray, inputs, max_angle_deg: float) -> np.ndarray:
    """Per view: is its direction from the origin within max_angle_deg of some input view's?"""
    unit = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    return (unit @ unit[inputs].T).max(axis=1) >= math.cos(math.radians(max_angle_deg)) - 1e-9


def pick_views(
    directions: np.ndarray, rng: np.random.Generator, pick: ViewPick, tries: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of input and supervision views: each supervision direction within max_angle of an input's."""
    n = len(directions)
    need = pick.num_input + pick.num_supervision
    if n < need:
        raise DataError(
            f"a subject has {n} views; LRM training needs at least {need} (render more with --views-random)"
        )
    for _ in range(tries):
        inputs = rng.choice(n, pick.num_input, replace=False)
        near = near_inputs(directions, inputs, pick.max_angle_deg)
        near[inputs] = False
        candidates = np.flatnonzero(near)
        if len(candidates) >= pick.num_supervision:
            return inputs, rng.choice(candidates, pick.num_supervision, replace=False)
    raise DataError(f"no 4 supervision views within {pick.max_angle_deg}° of the inputs after {tries} draws")


def frame_K_at(frame: dict, size: int) -> np.ndarray:
    """A cameras.json frame's intrinsics for its view resized to size × size."""
    return np.diag([size / frame["w"], size / frame["h"], 1.0]) @ cameras.frame_K(frame)


def lrm_sample(files: dict, rng: np.random.Generator, size: int, pick: ViewPick) -> dict:
    key = files.get("__key__", "?")
    missing_member(files, REQUIRED)
    frames = [f for f in json.loads(files["cameras.json"])["frames"] if f["file_path"] not in pick.holdout]
    stems = [f["file_path"] for f in frames]
    c2w = normalize_cameras(np.array([f["c2w"] for f in frames]))
    inputs, targets = pick_views(c2w[:, :3, 3], rng, pick)
    out = {"key": key}
    for role, idx in (("input", inputs), ("target", targets)):
        lacking = [stems[k] for k in idx if stems[k] not in files]
        if lacking:
            raise DataError(f"sample {key!r} lists {lacking[0]} in cameras.json but the shard lacks it")
        out[f"{role}_images"] = decode_views([files[stems[k]] for k in idx], size)
        out[f"{role}_c2w"] = torch.tensor(c2w[idx], dtype=torch.float32)
        out[f"{role}_K"] = torch.tensor(np.stack([frame_K_at(frames[k], size) for k in idx]), dtype=torch.float32)
    return out


def lrm_loader(
    data: str | Sequence[str] | Sequence[Source],
    size: int,
    batch_size: int,
    workers: int = 0,
    seed: int = 0,
    *,
    holdout: tuple[str, ...] = (),
    **stream,
) -> torch.utils.data.DataLoader:
    """LRM batches over one or more sources (`training.stream`: split between processes, mixed by weight);
    `holdout`: view files never drawn; `stream`: `shard_loader`'s epochs, verify_data, weights, start_epoch."""
    sample = functools.partial(lrm_sample, size=size, pick=ViewPick(holdout=tuple(holdout)))
    return shard_loader(data, sample, batch_size, workers, seed, **stream)
