"""Multi-view diffusion samples streamed from datagen shards (DESIGN §7).

One sample = one subject: the 6 fixed views as targets, all composited on one background drawn
per subject (white, black or grey, so the model does not learn a single background colour). The
input image is view 0 (`fixed_00`, the front view): the model reconstructs its own input.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch

from datagen.shard_format import FACE_STATS_FIELD, FIXED_VIEW_FILES, view_file_stem
from facelift_models.cameras import FIXED_VIEWS
from training.shards import REQUIRED, DataError, Source, decode_views, missing_member
from training.stream import shard_loader

BACKGROUNDS = (1.0, 0.0, 0.5)  # white, black, grey


def diffusion_sample(
    files: dict,
    rng: np.random.Generator,
    size: int,
    num_views: int = len(FIXED_VIEWS),
    background: float | None = None,
) -> dict:
    """One subject; `background` None draws it from BACKGROUNDS (training), a value fixes it (evaluation)."""
    missing_member(files, REQUIRED)
    have = sum(f in files for f in FIXED_VIEW_FILES)
    if have < num_views:
        raise DataError(
            f"sample {files.get('__key__', '?')!r} in {files.get('__url__', 'a shard')} has {have} fixed views; "
            f"the multi-view model needs {num_views} "
            f"({view_file_stem(0, 'fixed')}..{view_file_stem(num_views - 1, 'fixed')})"
        )
    if background is None:
        background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    views = decode_views([files[f] for f in FIXED_VIEW_FILES[:num_views]], size, background)
    return {"key": files.get("__key__", "?"), "views": views, "background": torch.tensor(background)}


def input_view(views: torch.Tensor) -> torch.Tensor:
    """The conditioning image of (…, V, 3, S, S) views: view 0, the input's own camera (DESIGN §7)."""
    return views[..., 0, :, :, :]


def diffusion_loader(
    data: str | Sequence[str] | Sequence[Source], size: int, batch_size: int, workers: int = 0, seed: int = 0, **stream
) -> torch.utils.data.DataLoader:
    """Batches of {"views": (B, 6, 3, S, S)} in [0, 1] (input = `input_view`), "background": (B,),
    over one or more sources (`training.stream`: split between processes, mixed by weight);
    `stream`: `shard_loader`'s epochs, verify_data, weights, start_epoch."""
    return shard_loader(data, functools.partial(diffusion_sample, size=size), batch_size, workers, seed, **stream)


def face_statistics(sources: Sequence[Source], weights: Sequence[float]) -> dict | None:
    """The face statistics the pipeline carries (`facelift infer` aligns photos to them): one source's
    card's as they are; several sources' pooled, each weighted by its share of the training mix (the
    faces the model saw). Sources without statistics (objects, or not measured) do not count."""
    if len(sources) == 1:
        return sources[0].card.get(FACE_STATS_FIELD)
    measured = [
        (s.url, s.card[FACE_STATS_FIELD], w)
        for s, w in zip(sources, weights)
        if isinstance(s.card.get(FACE_STATS_FIELD), dict) and s.card[FACE_STATS_FIELD].get("face_size")
    ]
    if len(measured) <= 1:
        return measured[0][1] if measured else None
    total = sum(w for _, _, w in measured)

    def pooled(field: str) -> dict:  # the mixture's mean and sd: E[x], sqrt(E[x²] − E[x]²)
        mean = sum(w * st[field]["mean"] for _, st, w in measured) / total
        second = sum(w * (st[field]["sd"] ** 2 + st[field]["mean"] ** 2) for _, st, w in measured) / total
        return {"mean": round(mean, 3), "sd": round(math.sqrt(max(0.0, second - mean**2)), 3)}

    first = measured[0][1]
    return {
        "detector": first.get("detector"),
        "canvas": first.get("canvas"),
        "subjects": sum(st.get("subjects", 0) for _, st, _ in measured),
        "found": sum(st.get("found", 0) for _, st, _ in measured),
        "face_size": pooled("face_size"),
        "centre_x": pooled("centre_x"),
        "centre_y": pooled("centre_y"),
        "pooled_from": [url for url, _, _ in measured],
    }


__all__ = ["BACKGROUNDS", "DataError", "diffusion_loader", "diffusion_sample", "face_statistics", "input_view"]
