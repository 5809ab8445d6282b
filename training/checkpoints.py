"""Checkpoints (DESIGN §7): a folder per step with the weights as safetensors, the training state,
and a small JSON of the configs and step. Written under a temporary name and renamed, so a kill
never leaves a half-written checkpoint where `--resume` would look."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil

import torch
from safetensors.torch import load_file, save_file

STEP_DIR = re.compile(r"^step-(\d{8})$")
MODEL_FILE, STATE_FILE, META_FILE = "model.safetensors", "training_state.pt", "checkpoint.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used here; one line for the user."""


def checkpoint_root(out: str) -> str:
    return os.path.join(out, "checkpoints")


def save_folder_atomically(save, final: str) -> str:
    """`save(tmp)` then rename over `final`: a kill never leaves a half-written folder there."""
    tmp = final + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    save(tmp)
    old = final + ".old"
    if os.path.exists(final):
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def save_checkpoint(out: str, step: int, model: torch.nn.Module, state: dict, meta: dict, keep: int = 3) -> str:
    root = checkpoint_root(out)
    os.makedirs(root, exist_ok=True)

    def write(folder: str) -> None:
        os.makedirs(folder)
        save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, os.path.join(folder, MODEL_FILE))
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
    with open(meta_path) as f:
        return json.load(f)


def check_model_config(path: str, meta: dict, model_cfg) -> None:
    """One-line error when the checkpoint's architecture is not this run's."""
    saved = meta.get("model", {})
    want = json.loads(json.dumps(dataclasses.asdict(model_cfg)))  # as saved: tuples become lists
    arch = [k for k in want if k not in ("gradient_checkpointing",)]
    diff = [k for k in arch if saved.get(k) != want[k]]
    if diff:
        k = diff[0]
        raise CheckpointError(
            f"checkpoint {path!r} is preset {saved.get('preset')!r} ({k}={saved.get(k)!r}); this run is {want['preset']!r} ({k}={want[k]!r})"
        )


def load_weights(path: str, model: torch.nn.Module) -> None:
    folder = os.path.dirname(path) if path.endswith(".safetensors") else path
    model.load_state_dict(load_file(os.path.join(folder, MODEL_FILE)))


def load_state(path: str) -> dict:
    return torch.load(os.path.join(path, STATE_FILE), map_location="cpu", weights_only=False)
