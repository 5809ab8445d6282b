"""The two trained models, loaded for inference with one-line errors for the wrong thing."""

from __future__ import annotations

import dataclasses
import json
import os

import torch

from facelift_models.cameras import FIXED_VIEWS
from facelift_models.configs import LRMConfig
from facelift_models.lrm import GSLRM
from inference.errors import InferError


def lrm_checkpoint(path: str) -> str:
    """A checkpoint folder as given, or a run folder's latest checkpoint."""
    from training.checkpoints import list_checkpoints

    if not os.path.exists(path):
        raise InferError(
            f"--lrm {path!r} does not exist; give a checkpoint folder (runs/lrm/checkpoints/step-…) or a run folder"
        )
    if os.path.isdir(os.path.join(path, "checkpoints")):
        found = list_checkpoints(path)
        if not found:
            raise InferError(f"--lrm {path!r} is a run folder without checkpoints")
        return found[-1]
    return path


def load_lrm(path: str, device: torch.device) -> tuple[GSLRM, dict]:
    """(model in eval mode, its checkpoint.json)."""
    from training.checkpoints import CheckpointError, apply_weights, read_meta, read_weights

    path = lrm_checkpoint(path)
    try:
        meta = read_meta(path)
    except CheckpointError as e:
        raise InferError(f"--lrm: {e}") from None
    saved = meta.get("model") if isinstance(meta.get("model"), dict) else {}
    fields = [f.name for f in dataclasses.fields(LRMConfig)]
    if not all(k in saved for k in fields):
        what = f"preset {saved.get('preset')!r} of another model" if saved.get("preset") else "no LRM configuration"
        raise InferError(
            f"--lrm {path!r} is not an LRM checkpoint (it holds {what}; train one with `facelift train lrm`)"
        )
    try:
        cfg = LRMConfig(**{k: saved[k] for k in fields})
        model = GSLRM(cfg)
        apply_weights(read_weights(path), model, path)
    except (CheckpointError, ValueError, TypeError) as e:
        raise InferError(f"--lrm: {e}") from None
    return model.to(device).eval(), meta


def load_multiview(path: str, device: torch.device, dtype: torch.dtype):
    """The saved `MultiViewPipeline` folder (`facelift train diffusion`'s OUT/pipeline)."""
    from facelift_models.mv_diffusion import is_facelift_pipeline
    from facelift_models.mv_pipeline import MultiViewPipeline

    index_path = os.path.join(path, "model_index.json")
    if not os.path.isdir(path):
        raise InferError(f"--diffusion {path!r} is not a folder; give a pipeline folder (runs/diffusion/pipeline)")
    if not os.path.isfile(index_path):
        raise InferError(f"--diffusion {path!r} is not a diffusers pipeline folder (no model_index.json)")
    try:
        with open(index_path) as f:
            index = json.load(f)
    except (OSError, ValueError) as e:
        raise InferError(f"--diffusion {index_path!r} is not readable JSON ({e})") from None
    if not isinstance(index, dict) or not is_facelift_pipeline(index):
        raise InferError(
            f"--diffusion {path!r} is a {index.get('_class_name') if isinstance(index, dict) else 'non'} pipeline; "
            "a facelift MultiViewPipeline is needed (`facelift train diffusion`)"
        )
    views = index.get("num_views")
    if views != len(FIXED_VIEWS):
        raise InferError(
            f"--diffusion {path!r} generates {views} views; the LRM takes the "
            f"{len(FIXED_VIEWS)} fixed views of DESIGN §3"
        )
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()  # "Loading pipeline components" bars: the CLI prints its own stage times
    try:
        pipe = MultiViewPipeline.from_pretrained(path, trust_remote_code=True, dtype=dtype)
    except (OSError, ValueError, TypeError, RuntimeError) as e:
        raise InferError(f"--diffusion {path!r} does not load ({str(e).splitlines()[0][:160]})") from None
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device), index
