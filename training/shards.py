"""Datagen output as training and evaluation read it (DESIGN §4): a *source* is a `facelift datagen`
output folder or any fsspec URL (`s3://bucket/prefix`, `gs://…`). Everything about one source is
checked before any work, through `datagen.shard_format` (the only part of datagen training imports,
and so the same code datagen reads its output with): the location answers
(`Storage.check`: a dead endpoint, a missing bucket or refused credentials is one line in seconds),
the card is present and valid, its shards are listed, of the recorded sizes (one listing request),
optionally of the recorded sha256, and the first sample is a facelift subject. Shards are opened
through fsspec and read as streams, never copied whole.

The stream that splits and mixes sources for training is `training.stream`.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO

import fsspec
import numpy as np
import torch
from PIL import Image

from datagen.shard_format import (
    CARD_NAME,
    FRONT_VIEW_FILE,
    SHARD_DIR,
    datagen_errors_as,
    open_location,
    require_card,
    shard_path,
)

REQUIRED = ("cameras.json", FRONT_VIEW_FILE)  # what every facelift head sample holds
READ_BLOCK = 8 << 20  # bytes an object-store read fetches ahead: streams a shard without holding it


class DataError(ValueError):
    """Input that is not a facelift datagen output; the message is one line for the user."""


@dataclass(frozen=True)
class Shard:
    url: str  # a local path or an fsspec URL: what opens it and what errors name
    samples: int
    keys: tuple[str, ...]  # as the card lists them


@dataclass(frozen=True)
class Source:
    url: str  # as given on the command line
    card: dict
    shards: tuple[Shard, ...]

    @property
    def subjects(self) -> int:
        return sum(s.samples for s in self.shards)

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(self.card["members_per_sample"])


def open_source(data: str, verify_data: bool = False) -> Source:
    """A checked source of any split (what evaluation reads); DataError in one line otherwise."""
    storage = location(data)
    if storage.local and not os.path.isdir(storage.root):
        raise DataError(f"--data {data!r} is not a folder; give a `facelift datagen` output folder")
    # an invalid card (the message names it), or a read that failed: one line
    with datagen_errors_as(DataError):
        card = require_card(storage, f"--data {data!r} has no {CARD_NAME}: not a `facelift datagen` output folder")
        entries = [s for s in card["shards"] if s["samples"] > 0]
        if not entries:
            raise DataError(
                f"--data {data!r} lists no finished shards yet; run `facelift datagen --out {data}` to completion"
            )
        sizes = storage.sizes(SHARD_DIR)  # one listing, also of thousands of shards in a bucket
    shards = []
    for entry in entries:
        url = storage.url_of(shard_path(entry["name"]))
        problem = shard_problem(url, sizes.get(entry["name"]), entry, verify_data)
        if problem:
            raise DataError(
                f"--data {data!r}: {entry['name']} {problem}; rerun the `facelift datagen` command on it to repair, "
                f"or check it with `facelift datagen verify {data}`"
            )
        shards.append(Shard(url, entry["samples"], tuple(entry["keys"])))
    check_format(shards[0].url)
    return Source(data, card, tuple(shards))


def location(data: str):
    """datagen's Storage for `data`, proven to answer: a remote one is asked one question with short
    timeouts first (`Storage.check`), so a missing bucket, refused credentials or an endpoint that
    does not answer is one line in seconds, not minutes of retries. Local folders need no probe."""
    if not isinstance(data, str) or not data.strip():
        raise DataError(
            f"--data {data!r} is not allowed (give a `facelift datagen` output folder or an fsspec URL such as s3://bucket/prefix)"
        )
    with datagen_errors_as(DataError, "--data "):
        return open_location(data)


def training_source(data: str, verify_data: bool = False) -> Source:
    """A checked source that is not a held-out split."""
    source = open_source(data, verify_data)
    refuse_held_out(data, source.card)
    return source


def training_sources(data: str | Sequence[str], verify_data: bool = False) -> list[Source]:
    """Every `--data` given, each checked on its own (one path or URL, or several)."""
    urls = [data] if isinstance(data, str) else list(data)
    if not urls:
        raise DataError("no --data given; give a `facelift datagen` output folder or URL")
    return [training_source(url, verify_data) for url in urls]


def shard_urls(data: str, verify_data: bool = False) -> list[str]:
    """The checked shards of a training source, as paths or fsspec URLs (open them with `open_shard`)."""
    return [s.url for s in training_source(data, verify_data).shards]


def dataset_card_and_shards(data: str, verify_data: bool = False) -> tuple[dict, list[str]]:
    """(card, checked shard URLs) of any split: what evaluation reads."""
    source = open_source(data, verify_data)
    return source.card, [s.url for s in source.shards]


def refuse_held_out(data: str, card: dict) -> None:
    """Training never reads a test split: its identities are the held-out people eval scores on."""
    split = card.get("config", {}).get("split", "train")
    if split != "train":
        raise DataError(
            f"--data {data!r} is a {split!r} split (held-out identities, for `facelift eval`); "
            "train on a training split (`facelift datagen` without --split test)"
        )


def open_shard(url: str) -> IO[bytes]:
    """A shard opened for streaming: a local file, or an fsspec file that fetches READ_BLOCK at a time."""
    fs, path = fsspec.core.url_to_fs(url)
    return fs.open(path, "rb", block_size=READ_BLOCK)


def shard_problem(url: str, size: int | None, entry: dict, verify_data: bool) -> str | None:
    """Why a card-listed shard cannot be trained on, or None. `size`: as listed (None: absent)."""
    if size is None:
        return f"is listed in {CARD_NAME} but missing"
    if size != entry["bytes"]:
        return f"is {size} bytes, {CARD_NAME} says {entry['bytes']} (truncated or replaced)"
    if verify_data:
        sha = hashlib.sha256()
        try:
            with open_shard(url) as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    sha.update(block)
        except OSError as e:
            return f"cannot be read ({e.__class__.__name__}: {first_line(e)})"
        if sha.hexdigest() != entry["sha256"]:
            return f"has another sha256 than {CARD_NAME} records (corrupt)"
    return None


def first_line(text) -> str:
    lines = [ln for ln in str(text).splitlines() if ln.strip()]
    return lines[0] if lines else ""


def check_format(url: str) -> None:
    """Fail before training starts when the first sample of a shard is not a facelift subject
    (reads only that sample's bytes, also from an object store)."""
    key, members = None, set()
    try:
        with open_shard(url) as f, tarfile.open(fileobj=f, mode="r|*") as tar:
            for info in tar:
                k, _, member = info.name.rsplit("/", 1)[-1].partition(".")
                if key is not None and k != key:
                    break
                key = k
                members.add(member)
    except tarfile.TarError as e:
        raise DataError(f"{url} is not a tar shard ({e})") from None
    except OSError as e:
        raise DataError(f"{url} cannot be read ({e.__class__.__name__}: {first_line(e)})") from None
    missing_member(dict.fromkeys(members) | {"__key__": key, "__url__": url}, REQUIRED)


def decode_view(png: bytes, size: int, background: float = 1.0, out: torch.Tensor | None = None) -> torch.Tensor:
    """(3, size, size) float in [0, 1], RGBA composited on a grey level (1 = white), area-resampled;
    written into `out` when given."""
    image = Image.open(io.BytesIO(png))
    if image.mode != "RGBA":  # Cycles writes RGBA: no conversion copy for our own views
        image = image.convert("RGBA")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BOX)
    pixels = torch.from_numpy(np.array(image))  # (S, S, 4) uint8
    # rgb · a + background · (1 − a) in two passes over the pixels (one conversion to planar float,
    # one fused multiply-add): a third less time than compositing in float, equal to 1 ulp.
    rgb = pixels[..., :3].permute(2, 0, 1).to(torch.float32, memory_format=torch.contiguous_format)
    alpha = pixels[..., 3].to(torch.float32)
    weight = alpha * (1.0 / 255.0**2)
    base = alpha.mul_(-background / 255.0).add_(background)
    return torch.addcmul(base, rgb, weight, out=out)


def decode_views(pngs: Sequence[bytes], size: int, background: float = 1.0) -> torch.Tensor:
    """(V, 3, size, size): each view decoded straight into its slot (no stacking copy)."""
    views = torch.empty(len(pngs), 3, size, size)
    for png, slot in zip(pngs, views):
        decode_view(png, size, background, out=slot)
    return views


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


def missing_member(files: dict, members) -> None:
    """One-line DataError when a sample lacks one of `members`."""
    missing = [m for m in members if m not in files]
    if missing:
        raise DataError(
            f"sample {files.get('__key__', '?')!r} in {files.get('__url__', 'a shard')} "
            f"has no {missing[0]}: not a facelift head shard"
        )
