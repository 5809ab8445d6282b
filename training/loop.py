"""Pieces both trainers share: RNG state for exact resumes, the progress bar, PSNR, the schedule."""

from __future__ import annotations

import math
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


def psnr(mse: torch.Tensor) -> float:
    return float(-10.0 * torch.log10(mse.clamp(min=1e-10)))


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    np.random.set_state(s["numpy"])
    random.setstate(s["python"])
    if s.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


class Progress:
    """rich progress bar (or nothing)."""

    def __init__(self, label: str, enabled: bool, total: int, start: int):
        self.enabled = enabled
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.p = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"), TimeRemainingColumn())
            self.p.start()
            self.task = self.p.add_task("train", total=total, completed=start, info="")

    def update(self, step: int, info: str) -> None:
        if self.enabled:
            self.p.update(self.task, completed=step, info=info)

    def close(self) -> None:
        if self.enabled:
            self.p.stop()
