"""Multi-view diffusion samples streamed from datagen shards (DESIGN §7).

One sample = one subject: the 6 fixed views as targets, all composited on one background drawn
per subject (white, black or grey, so the model does not learn a single background colour). The
input image is view 0 (`fixed_00`, the front view): the model reconstructs its own input.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from facelift_models.cameras import FIXED_VIEWS
from training.shards import DataError, decode_view, missing_member, shard_loader

BACKGROUNDS = (1.0, 0.0, 0.5)  # white, black, grey
FIXED_FILES = tuple(f"fixed_{k:02d}.png" for k in range(len(FIXED_VIEWS)))


def diffusion_sample(files: dict, rng: np.random.Generator, size: int, num_views: int = len(FIXED_VIEWS), background: float | None = None) -> dict:
    """One subject; `background` None draws it from BACKGROUNDS (training), a value fixes it (evaluation)."""
    missing_member(files, ("cameras.json", FIXED_FILES[0]))
    have = sum(f in files for f in FIXED_FILES)
    if have < num_views:
        raise DataError(f"sample {files.get('__key__', '?')!r} in {files.get('__url__', 'a shard')} has {have} fixed views; "
                        f"the multi-view model needs {num_views} (fixed_00..fixed_{num_views - 1:02d})")
    if background is None:
        background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    views = torch.stack([decode_view(files[f], size, background) for f in FIXED_FILES[:num_views]])
    return {"key": files.get("__key__", "?"), "views": views, "background": torch.tensor(background)}


def input_view(views: torch.Tensor) -> torch.Tensor:
    """The conditioning image of (…, V, 3, S, S) views: view 0, the input's own camera (DESIGN §7)."""
    return views[..., 0, :, :, :]


def diffusion_loader(data: str, size: int, batch_size: int, workers: int = 0, seed: int = 0, resampled: bool = True,
                     verify_data: bool = False) -> torch.utils.data.DataLoader:
    """Batches of {"views": (B, 6, 3, S, S)} in [0, 1] (input = `input_view`), "background": (B,)."""
    return shard_loader(data, functools.partial(diffusion_sample, size=size), batch_size, workers, seed, resampled, verify_data)


__all__ = ["BACKGROUNDS", "DataError", "diffusion_loader", "diffusion_sample", "input_view"]
