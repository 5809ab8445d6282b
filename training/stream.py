"""The training stream: every subject of every source once per epoch, split between processes and
DataLoader workers, several sources mixed by weight (DESIGN §8).

Readers. Each loader worker of each process is one reader: reader r = rank · W + worker of
R = world size · W (rank and world size from torchrun's / accelerate's RANK and WORLD_SIZE).

Epoch e of a source. Its shards in an order shuffled by (seed, source, e), the same in every reader:
- at least R shards: reader r reads shards r, r + R, r + 2R, ... of that order, whole;
- fewer shards than readers (small data): the epoch's subjects (the card lists each shard's keys)
  in a shuffled order, reader r keeps positions r, r + R, ...; it reads the shards in the epoch's
  order, skipping those that hold none of its subjects.
Either way the readers' subjects in one epoch are disjoint and together every subject once.

Every reader's stream is endless, epoch after epoch, so all processes take the same number of steps
(DDP all-reduces every step) however unevenly the subjects divide; each reader's epochs run at its
own pace. `epochs=n` ends after n epochs instead (a partial last batch). A resumed run starts at
the epoch after the checkpoint's (`start_epoch`): a fresh order, the rest of the interrupted epoch
skipped rather than epoch 0 replayed.

Several sources: each reader interleaves its per-source streams, drawing the next one with
probability weight_i (a generator seeded by (seed, reader, start epoch)). The default weights are the
sources' subject counts: the mix is then what their concatenation would be.

Reading: each shard is opened through fsspec (`shards.open_shard`) and split into samples by
webdataset's tar expander as the bytes arrive, so an s3:// shard is streamed, never copied whole.

Test hook: with FACELIFT_RECORD_KEYS=<folder>, each process appends "epoch source key" for every
subject it trained on to <folder>/rank<r>.txt (`record_trained`), which is how the tests see the split.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from webdataset import tariterators

from datagen.shard_format import CARD_NAME, SHARD_DIR
from training.shards import DataError, Shard, Source, first_line, open_shard, training_sources

RECORD_ENV = "FACELIFT_RECORD_KEYS"
CARRIED = ("__epoch__", "__source__")  # stream fields a sample carries to its batch (as "epoch", "source")


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def reader_slot() -> tuple[int, int]:
    """(this reader, all readers): workers of every process, numbered rank-major."""
    info = torch.utils.data.get_worker_info()
    worker, workers = (info.id, info.num_workers) if info else (0, 1)
    return int(os.environ.get("RANK", "0")) * workers + worker, world_size() * workers


def epoch_plan(
    source: Source, index: int, epoch: int, seed: int, reader: int, readers: int
) -> list[tuple[Shard, frozenset[str] | None]]:
    """This reader's part of one epoch of a source: (shard, the keys to keep, None for all), in order."""
    rng = np.random.default_rng([seed, index, epoch])
    order = [source.shards[k] for k in rng.permutation(len(source.shards))]
    if len(order) >= readers:
        return [(shard, None) for shard in order[reader::readers]]
    keys = [key for shard in order for key in shard.keys]
    mine = frozenset(
        keys[k] for k in rng.permutation(len(keys))[reader::readers]
    )  # shuffled: not always the same subjects per reader
    return [(shard, mine) for shard in order if mine.intersection(shard.keys)]


def shard_read_error(exn: Exception) -> bool:
    """webdataset handler: a shard that fails mid-run is one DataError naming it (webdataset
    appends the url to the exception's args)."""
    url = next(
        (a for a in reversed(exn.args) if isinstance(a, str) and (a.endswith(".tar") or f"/{SHARD_DIR}/" in a)), None
    )
    raise DataError(
        f"shard {url or '?'} could not be read ({exn.__class__.__name__}: "
        f"{first_line(exn.args[0]) if exn.args else ''}); "
        "check the data with `facelift datagen verify`"
    )


def shard_samples(url: str) -> Iterator[dict]:
    """The samples ({"__key__", "__url__", member: bytes}) of one shard, streamed as it is read."""
    try:
        stream = open_shard(url)
    except Exception as e:  # noqa: BLE001 - fsspec backends raise their own types
        raise DataError(
            f"shard {url} could not be opened ({e.__class__.__name__}: {first_line(e)}); "
            "check the data with `facelift datagen verify`"
        ) from None
    with stream:
        files = tariterators.tar_file_expander([{"url": url, "stream": stream}], handler=shard_read_error)
        yield from tariterators.group_by_keys(files, handler=shard_read_error)


def source_samples(
    source: Source, index: int, seed: int, reader: int, readers: int, start_epoch: int, epochs: int | None
) -> Iterator[dict]:
    """One reader's samples of one source, epoch after epoch, each tagged with its epoch and source."""
    epoch = start_epoch
    while epochs is None or epoch < start_epoch + epochs:
        found = 0
        for shard, keep in epoch_plan(source, index, epoch, seed, reader, readers):
            for sample in shard_samples(shard.url):
                if keep is None or sample["__key__"] in keep:
                    found += 1
                    yield {**sample, "__epoch__": epoch, "__source__": index}
        if not found:  # else an endless stream that never yields: every other process would wait on this one forever
            raise DataError(
                f"--data {source.url!r}: reader {reader} of {readers} found none of its subjects in epoch {epoch}: "
                f"the shards do not hold the keys {CARD_NAME} lists; check the data with `facelift datagen verify`"
            )
        epoch += 1


def interleave(streams: list[Iterator[dict]], weights: Sequence[float], rng: np.random.Generator) -> Iterator[dict]:
    """Draw the next sample from stream i with probability weights[i]; an exhausted stream drops out."""
    live = list(range(len(streams)))
    while live:
        p = np.array([weights[i] for i in live], dtype=np.float64)
        i = live[int(rng.choice(len(live), p=p / p.sum()))]
        try:
            yield next(streams[i])
        except StopIteration:
            live.remove(i)


class SeededMap:
    """Picklable per-sample map for loader workers: `fn(files, rng)` with a generator seeded by
    (seed, worker, rank), so every worker draws its own reproducible views and backgrounds. A sample
    that lacks a member its source's card lists (`members[source]`) is a damaged shard: a tar whose
    stream breaks off mid-sample reads as a short sample, not as an error."""

    def __init__(
        self, fn: Callable[[dict, np.random.Generator], dict], seed: int, members: Sequence[tuple[str, ...]] = ((),)
    ):
        self.fn, self.seed, self.rng, self.members = fn, seed, None, members

    def __call__(self, files: dict) -> dict:
        if self.rng is None:
            info = torch.utils.data.get_worker_info()
            self.rng = np.random.default_rng([self.seed, info.id if info else 0, int(os.environ.get("RANK", 0))])
        lacking = [m for m in self.members[files.get("__source__", 0)] if m not in files]
        if lacking:
            more = f" and {len(lacking) - 1} more" if len(lacking) > 1 else ""
            raise DataError(
                f"sample {files.get('__key__', '?')!r} in {files.get('__url__', 'a shard')} "
                f"lacks {lacking[0]}{more} that {CARD_NAME} lists: "
                "the shard is damaged; check the data with `facelift datagen verify`"
            )
        try:
            out = self.fn(files, self.rng)
        except DataError:
            raise
        except Exception as e:  # a PNG or JSON member that does not decode
            raise DataError(
                f"sample {files.get('__key__', '?')!r} in {files.get('__url__', 'a shard')} does not decode "
                f"({e.__class__.__name__}: {first_line(e)}); check the data with `facelift datagen verify`"
            ) from None
        return {**out, **{k: files[k] for k in CARRIED if k in files}}


def collate(samples: list[dict]) -> dict:
    """A batch: tensors stacked; "key", "epoch" and "source" as lists."""
    out = {
        "key": [s["key"] for s in samples],
        "epoch": [s.get("__epoch__") for s in samples],
        "source": [s.get("__source__") for s in samples],
    }
    for k in samples[0]:
        if k != "key" and not k.startswith("__"):  # webdataset carries __key__/__url__ along
            # torch's own collate: in a loader worker it stacks straight into shared memory, so the
            # batch is not copied there once more on its way to the training process
            out[k] = torch.utils.data.default_collate([s[k] for s in samples])
    return out


def batched(samples: Iterable[dict], size: int, partial: bool) -> Iterator[dict]:
    batch = []
    for sample in samples:
        batch.append(sample)
        if len(batch) == size:
            yield collate(batch)
            batch = []
    if batch and partial:
        yield collate(batch)


class SubjectStream(torch.utils.data.IterableDataset):
    """Batches of `sample_map` over the sources, split and mixed as the module docstring says."""

    def __init__(
        self,
        sources: list[Source],
        weights: list[float],
        sample_map: SeededMap,
        batch_size: int,
        seed: int,
        start_epoch: int = 0,
        epochs: int | None = None,
    ):
        super().__init__()
        self.sources, self.weights, self.sample_map, self.batch_size = sources, weights, sample_map, batch_size
        self.seed, self.start_epoch, self.epochs = seed, start_epoch, epochs

    def __iter__(self) -> Iterator[dict]:
        reader, readers = reader_slot()
        streams = [
            source_samples(s, i, self.seed, reader, readers, self.start_epoch, self.epochs)
            for i, s in enumerate(self.sources)
        ]
        mixed = interleave(streams, self.weights, np.random.default_rng([self.seed, reader, self.start_epoch]))
        yield from batched(map(self.sample_map, mixed), self.batch_size, partial=self.epochs is not None)


def mixing_weights(sources: Sequence[Source], weights: Sequence[float] | None) -> list[float]:
    """One weight per source, checked; None: the sources' subject counts (as if concatenated)."""
    if not weights:
        return [float(s.subjects) for s in sources]
    if len(weights) != len(sources):
        raise DataError(
            f"--data-weight is given {len(weights)} time{'s' * (len(weights) != 1)} for {len(sources)} --data; "
            "give one weight per --data, in the same order, or none (weights proportional to subjects)"
        )
    for w in weights:
        if not (isinstance(w, (int, float)) and math.isfinite(w) and w > 0):
            raise DataError(f"--data-weight {w} is not allowed (must be a finite number above 0)")
    return [float(w) for w in weights]


def check_readers(sources: Sequence[Source], workers: int) -> None:
    """Every reader needs a subject of its own in each epoch of each source, or its stream would
    never yield a batch (and every other process would wait on it)."""
    readers = world_size() * max(1, workers)
    for s in sources:
        if s.subjects < readers:
            raise DataError(
                f"--data {s.url!r} has {s.subjects} subjects, fewer than the {readers} readers "
                f"({world_size()} process(es) × {max(1, workers)} loader worker(s)); use fewer --workers or processes"
            )


def as_sources(data: str | Sequence[str] | Sequence[Source], verify_data: bool = False) -> list[Source]:
    """Checked training sources from paths/URLs; Sources (checked already) pass through."""
    items = [data] if isinstance(data, str) else list(data)
    if items and all(isinstance(d, Source) for d in items):
        return items
    return training_sources(items, verify_data)


def shard_loader(
    data: str | Sequence[str] | Sequence[Source],
    sample_fn: Callable[[dict, np.random.Generator], dict],
    batch_size: int,
    workers: int = 0,
    seed: int = 0,
    epochs: int | None = None,
    verify_data: bool = False,
    weights: Sequence[float] | None = None,
    start_epoch: int = 0,
) -> torch.utils.data.DataLoader:
    """Batches of `sample_fn(files, rng)` over one or more sources (paths/URLs, or checked Sources):
    endless for training, or `epochs` epochs. Iterate it through `guarded` so a read error mid-run is
    one line naming the shard."""
    sources = as_sources(data, verify_data)
    weights = mixing_weights(sources, weights)
    check_readers(sources, workers)
    stream = SubjectStream(
        sources,
        weights,
        SeededMap(sample_fn, seed, [s.members for s in sources]),
        batch_size,
        seed,
        start_epoch,
        epochs,
    )
    return torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers, persistent_workers=workers > 0)


def record_trained(batch: dict, rank: int) -> None:
    """The FACELIFT_RECORD_KEYS test hook: append "epoch source key" per subject of a trained batch."""
    folder = os.environ.get(RECORD_ENV)
    if folder:
        with open(os.path.join(folder, f"rank{rank}.txt"), "a") as f:
            f.writelines(f"{e} {s} {k}\n" for e, s, k in zip(batch["epoch"], batch["source"], batch["key"]))
