"""Checkpoints (DESIGN §7): a folder per step with the weights as safetensors, the training state,
and a small JSON of the configs and step. Written under a temporary name and renamed, so a kill
never leaves a half-written checkpoint where `--resume` would look.

The training state (optimiser, schedule, EMA, RNG, step) holds only tensors, numbers, strings and
containers of them, and is read with `torch.load(weights_only=True)`: a checkpoint is data, and a
pickle that would run code when loaded is refused in one line, never executed."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

# What it takes to rebuild a plain numpy array, and nothing more (older states held numpy's RNG state).
NUMPY_ARRAY_GLOBALS = [np.core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]
STEP_DIR = re.compile(r"^step-(\d{8})$")
MODEL_FILE, STATE_FILE, META_FILE = "model.safetensors", "training_state.pt", "checkpoint.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used here; one line for the user."""


def checkpoint_root(out: str) -> str:
    return os.path.join(out, "checkpoints")


def save_folder_atomically(save, final: str) -> str:
    """`save(tmp)` then rename over `final`: a kill never leaves a half-written folder there, and a
    failed write (a full disk) leaves no temporary and the previous folder in place."""
    tmp = final + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        save(tmp)
    except Exception as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if not isinstance(e, (OSError, RuntimeError, SafetensorError)):
            raise
        # torch reports a failed write as RuntimeError ("unexpected pos"), safetensors as its own error
        reason = e.strerror if isinstance(e, OSError) and e.strerror else _first_line(e)
        if "unexpected pos" in reason:  # torch's words for a short write
            reason = "the file could not be written in full: is the disk full?"
        raise CheckpointError(f"writing {final} failed ({reason}); the previous one is kept") from None
    old = final + ".old"
    if os.path.exists(final):
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def check_run_folder(out: str) -> None:
    """Fail in one line before any work when `--out` cannot hold a run (a file, read-only, ...)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise CheckpointError(f"--out {out!r} is a file; give a folder for the run")
    try:
        os.makedirs(out, exist_ok=True)
        probe = os.path.join(out, f".write-probe-{os.getpid()}")
        with open(probe, "wb") as f:
            f.write(b"")
        os.unlink(probe)
    except OSError as e:
        raise CheckpointError(f"--out {out!r} is not writable ({e.strerror or e})") from None


def save_checkpoint(out: str, step: int, model: torch.nn.Module, state: dict, meta: dict, keep: int = 3) -> str:
    root = checkpoint_root(out)
    os.makedirs(root, exist_ok=True)

    def write(folder: str) -> None:
        os.makedirs(folder)
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, os.path.join(folder, MODEL_FILE)
        )
        torch.save(state, os.path.join(folder, STATE_FILE))
        with open(os.path.join(folder, META_FILE), "w") as f:
            json.dump({**meta, "step": step}, f, indent=2, sort_keys=True)

    final = save_folder_atomically(write, os.path.join(root, f"step-{step:08d}"))
    for old in list_checkpoints(out)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(out: str) -> list[str]:
    root = checkpoint_root(out)
    if not os.path.isdir(root):
        return []
    return [os.path.join(root, d) for d in sorted(os.listdir(root)) if STEP_DIR.match(d)]


def checkpoint_to_resume(out: str, model_cfg) -> str:
    """The latest checkpoint in `out`, checked against this run's model config (for --resume)."""
    found = list_checkpoints(out)
    if not found:
        raise CheckpointError(f"--resume: {out!r} holds no checkpoints yet; drop --resume to start")
    check_model_config(found[-1], read_meta(found[-1]), model_cfg)
    return found[-1]


def read_meta(path: str) -> dict:
    """The JSON of a checkpoint folder (or of the folder holding a model.safetensors given directly)."""
    folder = os.path.dirname(path) if path.endswith(".safetensors") else path
    meta_path = os.path.join(folder, META_FILE)
    if not os.path.exists(meta_path) or not os.path.exists(os.path.join(folder, MODEL_FILE)):
        raise CheckpointError(f"{path!r} is not a checkpoint (no {META_FILE} and {MODEL_FILE} in it)")
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{meta_path!r} is not readable JSON ({e.__class__.__name__}: {e})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{meta_path!r} is not a checkpoint description (a JSON {type(meta).__name__})")
    return meta


def check_model_config(path: str, meta: dict, model_cfg) -> None:
    """One-line error when the checkpoint's architecture is not this run's."""
    saved = meta.get("model", {})
    want = json.loads(json.dumps(dataclasses.asdict(model_cfg)))  # as saved: tuples become lists
    arch = [k for k in want if k not in ("gradient_checkpointing",)]
    diff = [k for k in arch if saved.get(k) != want[k]]
    if diff:
        k = diff[0]
        raise CheckpointError(
            f"checkpoint {path!r} is preset {saved.get('preset')!r} ({k}={saved.get(k)!r}); "
            f"this run is {want['preset']!r} ({k}={want[k]!r})"
        )


def read_weights(path: str) -> dict[str, torch.Tensor]:
    """The checkpoint's model.safetensors (a folder, or the file itself), or a one-line CheckpointError."""
    folder = os.path.dirname(path) if path.endswith(".safetensors") else path
    file = os.path.join(folder, MODEL_FILE)
    try:
        return load_file(file)
    except Exception as e:  # safetensors raises its own error type for a corrupt or truncated file
        raise CheckpointError(
            f"{file!r} is not a readable safetensors file ({e.__class__.__name__}: {_first_line(e)})"
        ) from None


def apply_weights(weights: dict[str, torch.Tensor], model: torch.nn.Module, path: str) -> None:
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise CheckpointError(f"{path!r} does not fit this model ({_first_line(e)})") from None


def load_state(path: str, required: tuple[str, ...] = ("optimizer", "scheduler", "rng")) -> dict:
    """The training state, read as data only; anything else is refused without being run."""
    file = os.path.join(path, STATE_FILE)
    try:
        with torch.serialization.safe_globals(NUMPY_ARRAY_GLOBALS):  # plain numpy arrays, as states before 0.1 held
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError for a pickle that would run code; others for corrupt files
        raise CheckpointError(
            f"{file!r} is not a facelift training state ({_unpickling_reason(e)}); "
            "it was not loaded (only tensors, numbers and strings are accepted)"
        ) from None
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise CheckpointError(f"{file!r} is not a facelift training state (no step in it)")
    lacking = [k for k in required if k not in state]
    if lacking:
        raise CheckpointError(f"{file!r} is not a complete training state (no {lacking[0]} in it)")
    return state


def _unpickling_reason(e: BaseException) -> str:
    """The one telling line of torch's weights-only refusal (its advice to load unsafely is left out)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    telling = [
        ln
        for ln in lines
        if not ln.startswith(("Weights only load failed", "Check the documentation", "Please file an issue"))
    ]
    if any("GLOBAL" in ln for ln in telling):
        return next(ln for ln in telling if "GLOBAL" in ln).rstrip(".") + ": code that would run on loading"
    return f"{e.__class__.__name__}: {telling[0] if telling else _first_line(e)}"


def _first_line(e: BaseException) -> str:
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    return lines[0][:300] if lines else e.__class__.__name__
