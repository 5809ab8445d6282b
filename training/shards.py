"""Reading datagen shards for training (DESIGN §4): the card's shard list, a format check before
training starts, PNG decoding, and a webdataset stream whose per-sample function draws from a
generator seeded per worker and rank. The model-specific samples are in lrm_data / diffusion_data.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
import webdataset as wds
from PIL import Image

REQUIRED = ("cameras.json", "fixed_00.png")  # what every facelift head sample holds


class DataError(ValueError):
    """Input that is not a facelift datagen output; the message is one line for the user."""


def shard_urls(data: str, verify_data: bool = False) -> list[str]:
    """The shards a datagen output folder lists in its card (dataset.json), read by datagen's own
    card code, each checked before training starts: present, of the size the card records, and with
    `verify_data` of the recorded sha256 (reads every byte once). A held-out split is refused."""
    urls, card = _checked_shards(data, verify_data)
    refuse_held_out(data, card)
    return urls


def dataset_card_and_shards(data: str, verify_data: bool = False) -> tuple[dict, list[str]]:
    """(card, checked shard paths) of any split: what evaluation reads."""
    urls, card = _checked_shards(data, verify_data)
    return card, urls


def refuse_held_out(data: str, card: dict) -> None:
    """Training never reads a test split: its identities are the held-out people eval scores on."""
    split = card.get("config", {}).get("split", "train")
    if split != "train":
        raise DataError(f"--data {data!r} is a {split!r} split (held-out identities, for `facelift eval`); "
                        "train on a training split (`facelift datagen` without --split test)")


def _checked_shards(data: str, verify_data: bool) -> tuple[list[str], dict]:
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
    entries = [s for s in card["shards"] if s["samples"] > 0]
    if not entries:
        raise DataError(f"--data {data!r} lists no finished shards yet; run `facelift datagen --out {data}` to completion")
    urls = []
    for entry in entries:
        path = os.path.join(data, SHARD_DIR, entry["name"])
        problem = shard_problem(path, entry, verify_data)
        if problem:
            raise DataError(f"--data {data!r}: {entry['name']} {problem}; rerun the `facelift datagen` command on it to repair, or check it with `facelift datagen verify {data}`")
        urls.append(path)
    check_format(urls[0])
    return urls, card


def shard_problem(path: str, entry: dict, verify_data: bool) -> str | None:
    """Why a card-listed shard cannot be trained on, or None."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return "is listed in dataset.json but missing"
    if size != entry["bytes"]:
        return f"is {size} bytes, dataset.json says {entry['bytes']} (truncated or replaced)"
    if verify_data:
        sha = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                sha.update(block)
        if sha.hexdigest() != entry["sha256"]:
            return "has another sha256 than dataset.json records (corrupt)"
    return None


def _first_line(text: str) -> str:
    lines = [ln for ln in str(text).splitlines() if ln.strip()]
    return lines[0] if lines else ""


def shard_read_error(exn: Exception) -> bool:
    """webdataset handler: a shard that fails mid-run is one DataError naming it (webdataset
    appends the url to the exception's args)."""
    url = next((a for a in reversed(exn.args) if isinstance(a, str) and (a.endswith(".tar") or "/shards/" in a)), None)
    raise DataError(f"shard {url or '?'} could not be read ({exn.__class__.__name__}: {_first_line(exn.args[0]) if exn.args else ''}); "
                    "check the data with `facelift datagen verify`")


def guarded(batches: Iterable) -> Iterator:
    """Iterate a DataLoader; a DataError raised in a loader worker comes back wrapped in a
    traceback text, which this turns into its one original line."""
    it = iter(batches)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except DataError as e:
            text = str(e)
            if "Original Traceback" in text:
                last = [ln for ln in text.splitlines() if ln.strip()][-1]
                text = last.split("DataError: ", 1)[-1]
            raise DataError(text) from None
        yield batch


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
    missing_member(dict.fromkeys(members) | {"__key__": key, "__url__": url}, REQUIRED)


def decode_view(png: bytes, size: int, background: float = 1.0) -> torch.Tensor:
    """(3, size, size) float in [0, 1], RGBA composited on a grey level (1 = white), area-resampled."""
    rgba = Image.open(io.BytesIO(png)).convert("RGBA")
    if rgba.size != (size, size):
        rgba = rgba.resize((size, size), Image.Resampling.BOX)
    a = np.asarray(rgba, dtype=np.float32) / 255.0
    rgb = a[..., :3] * a[..., 3:] + background * (1.0 - a[..., 3:])
    return torch.from_numpy(rgb).permute(2, 0, 1).contiguous()


class SeededMap:
    """Picklable per-sample map for webdataset workers: `fn(files, rng)` with a generator seeded by
    (seed, worker, rank), so every worker draws its own reproducible views and backgrounds. A sample
    that lacks a member the card lists (`members`) is a damaged shard: a tar whose stream breaks
    off mid-sample reads as a short sample, not as an error."""

    def __init__(self, fn: Callable[[dict, np.random.Generator], dict], seed: int, members: tuple[str, ...] = ()):
        self.fn, self.seed, self.rng, self.members = fn, seed, None, members

    def __call__(self, files: dict) -> dict:
        if self.rng is None:
            info = torch.utils.data.get_worker_info()
            self.rng = np.random.default_rng([self.seed, info.id if info else 0, int(os.environ.get("RANK", 0))])
        lacking = [m for m in self.members if m not in files]
        if lacking:
            more = f" and {len(lacking) - 1} more" if len(lacking) > 1 else ""
            raise DataError(f"sample {files.get('__key__', '?')!r} in {files.get('__url__', 'a shard')} lacks {lacking[0]}{more} that dataset.json lists: "
                            "the shard is damaged; check the data with `facelift datagen verify`")
        try:
            return self.fn(files, self.rng)
        except DataError:
            raise
        except Exception as e:  # a PNG or JSON member that does not decode
            raise DataError(f"sample {files.get('__key__', '?')!r} in {files.get('__url__', 'a shard')} does not decode "
                            f"({e.__class__.__name__}: {_first_line(e)}); check the data with `facelift datagen verify`") from None


def collate(samples: list[dict]) -> dict:
    out = {"key": [s["key"] for s in samples]}
    for k in samples[0]:
        if k != "key" and not k.startswith("__"):  # webdataset carries __key__/__url__ along
            out[k] = torch.stack([s[k] for s in samples])
    return out


def missing_member(files: dict, members) -> None:
    """One-line DataError when a sample lacks one of `members`."""
    missing = [m for m in members if m not in files]
    if missing:
        raise DataError(f"sample {files.get('__key__', '?')!r} in {files.get('__url__', 'a shard')} has no {missing[0]}: not a facelift head shard")


def shard_loader(data: str, sample_fn: Callable[[dict, np.random.Generator], dict], batch_size: int, workers: int = 0,
                 seed: int = 0, resampled: bool = True, verify_data: bool = False) -> torch.utils.data.DataLoader:
    """Batches of `sample_fn(files, rng)` over a datagen folder's shards: an endless resampled
    stream for training; `resampled=False` reads each shard once, split between nodes and workers.
    Iterate it through `guarded` so a read error mid-run is one line naming the shard."""
    urls, card = _checked_shards(data, verify_data)
    refuse_held_out(data, card)
    if resampled:
        ds = wds.WebDataset(urls, resampled=True, shardshuffle=False, seed=seed, handler=shard_read_error)
    else:
        ds = wds.WebDataset(urls, shardshuffle=False, nodesplitter=wds.split_by_node, workersplitter=wds.split_by_worker,
                            empty_check=False, handler=shard_read_error)
    ds = ds.map(SeededMap(sample_fn, seed, tuple(card["members_per_sample"]))).batched(batch_size, collation_fn=collate, partial=not resampled)
    return torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers, persistent_workers=workers > 0)
