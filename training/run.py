"""What both trainers do around their steps: check every input before any work, start the
accelerator, resume, log to tensorboard, count steps and checkpoint (periodically and at exit)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch

from training import checkpoints as ckpt
from training.loop import Progress, check_stop_at, make_accelerator, resume_rng
from training.shards import Source, guarded, training_sources
from training.stream import check_readers, mixing_weights, record_trained


@dataclass
class RunStart:
    """Where a run starts from, read (and so checked) before any work: a bad input is one line, nothing else."""

    sources: list[Source]
    weights: list[float]  # each source's mixing weight
    resume_from: str | None  # the checkpoint --resume continues
    start_weights: dict[str, torch.Tensor] | None  # its weights, or --init-from's
    state: dict | None  # its optimiser, schedule, RNG and step
    data_epoch: int  # the last data epoch trained (-1: none); a resumed run starts the next, a fresh order

    @property
    def next_epoch(self) -> int:
        return self.data_epoch + 1


def start_run(
    data: str | Sequence[str],
    data_weights: Sequence[float] | None,
    verify_data: bool,
    workers: int,
    out: str,
    model_cfg,
    resume: bool,
    stop_at: int | None,
    init_from: str | None = None,
    state_keys: tuple[str, ...] = ("optimizer", "scheduler", "rng"),
) -> RunStart:
    check_stop_at(stop_at)
    sources = training_sources(data, verify_data)  # checks --data first
    weights = mixing_weights(sources, data_weights)
    check_readers(sources, workers)
    ckpt.check_run_folder(out)
    resume_from = ckpt.checkpoint_to_resume(out, model_cfg) if resume else None
    if init_from:
        ckpt.check_model_config(init_from, ckpt.read_meta(init_from), model_cfg)
    start_path = resume_from or init_from
    start_weights = ckpt.read_weights(start_path) if start_path else None
    state = ckpt.load_state(resume_from, state_keys) if resume_from else None
    data_epoch = state.get("data_epoch", -1) if state else -1
    return RunStart(sources, weights, resume_from, start_weights, state, data_epoch)


def start_accelerator(seed: int, **kwargs):
    """accelerate's Accelerator with TF32 matmuls on CUDA and the process's own torch seed."""
    accelerator = make_accelerator(**kwargs)
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(seed + accelerator.process_index)
    return accelerator


def restore(state: dict, optimizer, lr_schedule, accelerator, seed: int) -> int:
    """A resumed run's optimiser, learning-rate schedule and generators; returns its step."""
    optimizer.load_state_dict(state["optimizer"])
    lr_schedule.load_state_dict(state["scheduler"])
    resume_rng(state["rng"], accelerator.process_index, seed, state["step"])
    return state["step"]


def open_writer(accelerator, out: str):
    """The run's tensorboard writer (`OUT/logs`) on the main process; None on the others."""
    if not accelerator.is_main_process:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(os.path.join(out, "logs"))


def run_meta(model_cfg, train_cfg, start: RunStart, **extra) -> dict:
    """What a checkpoint records of its run beside the weights (`meta.json`)."""
    import dataclasses

    return {
        "model": dataclasses.asdict(model_cfg),
        "train": dataclasses.asdict(train_cfg),
        "data": [s.url for s in start.sources],
        "data_weights": start.weights,
        **extra,
    }


class StepCounter:
    """A run's steps: the batches to train on until the schedule's end (or `stop_at`), the progress
    bar, a checkpoint every `train_cfg.checkpoint_every` steps and one at exit unless this step has one.
    `save(step)` writes a checkpoint and returns where; `last_saved` is the latest return."""

    def __init__(
        self,
        label: str,
        accelerator,
        train_cfg,  # its `steps` (the schedule's length) and `checkpoint_every`
        start: int,
        stop_at: int | None,
        save: Callable[[int], object],
        progress: bool,
        data_epoch: int = -1,
    ):
        self.step = start
        self.end = train_cfg.steps if stop_at is None else min(train_cfg.steps, stop_at)
        self.accelerator = accelerator
        self.checkpoint_every = train_cfg.checkpoint_every
        self.save = save
        self.last_saved = None
        self.saved_step: int | None = None
        self.data_epoch = data_epoch  # the latest data epoch trained on, kept in checkpoints
        self.bar = Progress(label, progress and accelerator.is_main_process, train_cfg.steps, start)

    def batches(self, loader: Iterable[dict]) -> Iterator[dict]:
        """The loader's batches (read errors as one line) while steps remain."""
        for batch in guarded(loader):
            if self.step >= self.end:
                return
            yield batch

    def consumed(self, batch: dict) -> None:
        """A batch trained on: its data epoch is the run's, and what this process read is recorded."""
        self.data_epoch = max(self.data_epoch, *batch["epoch"])
        record_trained(batch, self.accelerator.process_index)

    def stepped(self, status: str) -> None:
        """One optimiser step done: count it, show it, checkpoint it when it is due."""
        self.step += 1
        self.bar.update(self.step, status)
        if self.step % self.checkpoint_every == 0:
            self.checkpoint()

    def checkpoint(self) -> None:
        self.last_saved = self.save(self.step)
        self.saved_step = self.step

    def close(self) -> None:
        """At exit, also after an error or Ctrl-C: the bar ends and the last step is kept."""
        self.bar.close()
        if self.step > 0 and self.saved_step != self.step:
            self.checkpoint()
