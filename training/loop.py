"""Pieces both trainers share: the accelerator, RNG state for exact resumes, the progress bar, PSNR, the schedule."""

from __future__ import annotations

import logging
import math
import os
import random

import numpy as np
import torch


def warmup_cosine(warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * t))

    return factor


def warmup_constant(warmup: int):
    def factor(step: int) -> float:
        return min(1.0, (step + 1) / max(1, warmup))

    return factor


def check_stop_at(stop_at: int | None) -> None:
    if stop_at is not None and stop_at < 1:
        raise ValueError(f"--stop-at {stop_at} is not allowed (must be at least 1: the step to leave after)")


def psnr(mse: torch.Tensor) -> float:
    return float(-10.0 * torch.log10(mse.clamp(min=1e-10)))


QUIET_LOGGERS = ("botocore", "aiobotocore", "s3fs", "fsspec", "urllib3", "gcsfs")


def configure_logging() -> None:
    """The trainers' lines (INFO and up) on stderr; object-store clients only from WARNING up
    (botocore announces every credential and endpoint lookup at INFO)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def make_accelerator(**kwargs):
    """accelerate's Accelerator. Under torchrun / `accelerate launch` without CUDA it must be told
    cpu=True to run DDP over gloo (else every process trains alone); one process is left as it is."""
    from accelerate import Accelerator

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return Accelerator(cpu=distributed and not torch.cuda.is_available(), **kwargs)


def resume_rng(saved: dict, rank: int, seed: int, step: int) -> None:
    """Restore the generators at a resume. A checkpoint holds rank 0's (only rank 0 writes): rank 0
    continues exactly; every other rank re-seeds from (seed, rank, step) so it does not draw rank 0's
    noise and dropout."""
    set_rng_state(saved)
    if rank:
        state = np.random.SeedSequence([seed, rank, step]).generate_state(2)
        torch.manual_seed(int(state[0]))
        np.random.seed(int(state[1]))
        random.seed(int(state[1]))


def rng_state() -> dict:
    """Every generator's state as tensors, numbers and lists, so `torch.load(weights_only=True)` reads it."""
    np_state = np.random.get_state(legacy=False)
    version, mt, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": {"version": version, "state": list(mt), "gauss": gauss},
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    n, p = s["numpy"], s["python"]
    if isinstance(n, dict):
        np.random.set_state(
            {
                "bit_generator": n["bit_generator"],
                "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
                "has_gauss": n["has_gauss"],
                "gauss": n["gauss"],
            }
        )
    else:  # a state saved before RNG states were stored as plain data: numpy's own tuple
        np.random.set_state(n)
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]) if isinstance(p, dict) else p)
    if s.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


class Progress:
    """rich progress bar (or nothing)."""

    def __init__(self, label: str, enabled: bool, total: int, start: int):
        self.enabled = enabled
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.p = Progress(
                TextColumn(label),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
            )
            self.p.start()
            self.task = self.p.add_task("train", total=total, completed=start, info="")

    def update(self, step: int, info: str) -> None:
        if self.enabled:
            self.p.update(self.task, completed=step, info=info)

    def close(self) -> None:
        if self.enabled:
            self.p.stop()
