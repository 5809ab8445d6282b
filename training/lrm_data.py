"""LRM samples streamed from datagen shards (DESIGN §4, §7) with webdataset.

One sample = one subject: 4 input views and 4 supervision views, each supervision view within
60° (angle between unit camera directions from the origin) of some input view; only those 8
PNGs are decoded, composited on white and resized to the model's size; cameras are normalised
with `normalize_cameras`, the same function inference uses.
"""

from __future__ import annotations

import io
import json
import math
import os
import tarfile
from dataclasses import dataclass

import numpy as np
import torch
import webdataset as wds
from PIL import Image

from facelift_models import cameras

REQUIRED = ("cameras.json", "fixed_00.png")


class DataError(ValueError):
    """Input that is not a facelift datagen output; the message is one line for the user."""


@dataclass(frozen=True)
class ViewPick:
    num_input: int = 4
    num_supervision: int = 4
    max_angle_deg: float = 60.0
    holdout: tuple[str, ...] = ()  # view files never drawn (kept for evaluation)


def shard_urls(data: str) -> list[str]:
    """The shards a datagen output folder lists in its card (dataset.json), read by datagen's own card code."""
    from datagen.card import CARD_NAME, SHARD_DIR, load_card
    from datagen.errors import DatagenError
    from datagen.storage import Storage

    if not os.path.isdir(data):
        raise DataError(f"--data {data!r} is not a folder; give a `facelift datagen` output folder")
    try:
        card = load_card(Storage(data))
    except DatagenError as e:
        raise DataError(str(e)) from None
    if card is None:
        raise DataError(f"--data {data!r} has no {CARD_NAME}: not a `facelift datagen` output folder")
    paths = [os.path.join(data, SHARD_DIR, s["name"]) for s in card.get("shards", [])]
    urls = [p for p in paths if os.path.exists(p)]
    if not urls:
        raise DataError(f"--data {data!r} lists no finished shards yet; run `facelift datagen --out {data}` to completion")
    check_format(urls[0])
    return urls


def check_format(url: str) -> None:
    """Fail before training starts when the first sample of a shard is not a facelift subject."""
    key, members = None, set()
    try:
        with tarfile.open(url, mode="r|*") as tar:
            for info in tar:
                k, _, member = info.name.rsplit("/", 1)[-1].partition(".")
                if key is not None and k != key:
                    break
                key = k
                members.add(member)
    except tarfile.TarError as e:
        raise DataError(f"{url} is not a tar shard ({e})") from None
    missing = [m for m in REQUIRED if m not in members]
    if missing:
        raise DataError(f"sample {key!r} in {url} has no {missing[0]}: not a facelift head shard")


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


def pick_views(directions: np.ndarray, rng: np.random.Generator, pick: ViewPick, tries: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Indices of input and supervision views: each supervision direction within max_angle of an input's."""
    n = len(directions)
    need = pick.num_input + pick.num_supervision
    if n < need:
        raise DataError(f"a subject has {n} views; LRM training needs at least {need} (render more with --views-random)")
    for _ in range(tries):
        inputs = rng.choice(n, pick.num_input, replace=False)
        near = near_inputs(directions, inputs, pick.max_angle_deg)
        near[inputs] = False
        candidates = np.flatnonzero(near)
        if len(candidates) >= pick.num_supervision:
            return inputs, rng.choice(candidates, pick.num_supervision, replace=False)
    raise DataError(f"no 4 supervision views within {pick.max_angle_deg}° of the inputs after {tries} draws")


def decode_view(png: bytes, size: int) -> torch.Tensor:
    """(3, size, size) float in [0, 1], RGBA composited on white, area-resampled."""
    rgba = Image.open(io.BytesIO(png)).convert("RGBA")
    if rgba.size != (size, size):
        rgba = rgba.resize((size, size), Image.Resampling.BOX)
    a = np.asarray(rgba, dtype=np.float32) / 255.0
    rgb = a[..., :3] * a[..., 3:] + (1.0 - a[..., 3:])
    return torch.from_numpy(rgb).permute(2, 0, 1).contiguous()


def frame_K_at(frame: dict, size: int) -> np.ndarray:
    """A cameras.json frame's intrinsics for its view resized to size × size."""
    return np.diag([size / frame["w"], size / frame["h"], 1.0]) @ cameras.frame_K(frame)


def lrm_sample(files: dict, size: int, pick: ViewPick, rng: np.random.Generator) -> dict:
    key = files.get("__key__", "?")
    missing = [m for m in REQUIRED if m not in files]
    if missing:
        raise DataError(f"sample {key!r} in {files.get('__url__', 'a shard')} has no {missing[0]}: not a facelift head shard")
    frames = [f for f in json.loads(files["cameras.json"])["frames"] if f["file_path"] not in pick.holdout]
    stems = [f["file_path"] for f in frames]
    c2w = normalize_cameras(np.array([f["c2w"] for f in frames]))
    inputs, targets = pick_views(c2w[:, :3, 3], rng, pick)
    out = {"key": key}
    for role, idx in (("input", inputs), ("target", targets)):
        images, Ks = [], []
        for k in idx:
            f = frames[k]
            if stems[k] not in files:
                raise DataError(f"sample {key!r} lists {stems[k]} in cameras.json but the shard lacks it")
            images.append(decode_view(files[stems[k]], size))
            Ks.append(frame_K_at(f, size))
        out[f"{role}_images"] = torch.stack(images)
        out[f"{role}_c2w"] = torch.tensor(c2w[idx], dtype=torch.float32)
        out[f"{role}_K"] = torch.tensor(np.stack(Ks), dtype=torch.float32)
    return out


class _Sampler:
    """Picklable map for webdataset workers; each worker draws views from its own seeded generator."""

    def __init__(self, size: int, pick: ViewPick, seed: int):
        self.size, self.pick, self.seed, self.rng = size, pick, seed, None

    def __call__(self, files: dict) -> dict:
        if self.rng is None:
            info = torch.utils.data.get_worker_info()
            self.rng = np.random.default_rng([self.seed, info.id if info else 0, int(os.environ.get("RANK", 0))])
        return lrm_sample(files, self.size, self.pick, self.rng)


def lrm_dataset(data: str, size: int, seed: int = 0, pick: ViewPick = ViewPick(), resampled: bool = True) -> wds.WebDataset:
    """Endless (resampled) stream for training; `resampled=False` reads each shard once, split
    between nodes and workers (validation)."""
    urls = shard_urls(data)
    if resampled:
        ds = wds.WebDataset(urls, resampled=True, shardshuffle=False, seed=seed, handler=wds.reraise_exception)
    else:
        ds = wds.WebDataset(urls, shardshuffle=False, nodesplitter=wds.split_by_node, workersplitter=wds.split_by_worker, empty_check=False)
    return ds.map(_Sampler(size, pick, seed))


def collate(samples: list[dict]) -> dict:
    out = {"key": [s["key"] for s in samples]}
    for k in samples[0]:
        if k != "key" and not k.startswith("__"):  # webdataset carries __key__/__url__ along
            out[k] = torch.stack([s[k] for s in samples])
    return out


def lrm_loader(data: str, size: int, batch_size: int, workers: int = 0, seed: int = 0, resampled: bool = True, holdout: tuple[str, ...] = ()) -> torch.utils.data.DataLoader:
    ds = lrm_dataset(data, size, seed, ViewPick(holdout=tuple(holdout)), resampled=resampled)
    return torch.utils.data.DataLoader(ds.batched(batch_size, collation_fn=collate, partial=not resampled), batch_size=None, num_workers=workers, persistent_workers=workers > 0)
