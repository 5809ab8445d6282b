"""`facelift train lrm`: GS-LRM on datagen shards, one GPU or many (accelerate / torchrun), or the CPU.

    loss = MSE(render, target) + λ · perceptual(render, target)   (perceptual after an L2 warm-up)

AdamW (β 0.9/0.95, weight decay on matrices only), cosine schedule with linear warm-up, gradient
clipping; a step whose loss or gradient is not finite, or whose gradient norm exceeds
`skip_factor` × the clip, is skipped (counted, logged). bf16 autocast and TF32 on CUDA.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from facelift_models.gaussian_render import render_gaussians
from facelift_models.lrm import GSLRM, LRMConfig, lr_groups, make_lrm_config, parameter_count
from training import checkpoints as ckpt
from training.loop import (
    Progress,
    check_overrides,
    check_stop_at,
    make_accelerator,
    psnr,
    resume_rng,
    rng_state,
    warmup_cosine,
)
from training.lrm_data import lrm_loader
from training.perceptual import PerceptualLoss
from training.shards import DataError, guarded, training_sources
from training.stream import check_readers, mixing_weights, record_trained

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LRMTrainConfig:
    preset: str
    lr: float
    warmup_steps: int
    steps: int
    batch_size: int  # per process
    perceptual_weight: float = 0.5
    perceptual_after: int = 0  # L2-only warm-up steps
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    skip_factor: float = 20.0
    checkpoint_every: int = 1000
    log_every: int = 10
    image_every: int = 500
    workers: int = 4
    seed: int = 0


TRAIN_PRESETS: dict[str, LRMTrainConfig] = {
    # CPU: learns a few subjects in minutes (benchmarks/lrm_learns.py).
    "tiny": LRMTrainConfig(
        "tiny",
        lr=1e-3,
        warmup_steps=20,
        steps=2000,
        batch_size=1,
        perceptual_after=200,
        checkpoint_every=100,
        log_every=5,
        image_every=100,
        workers=0,
    ),
    "small": LRMTrainConfig(
        "small", lr=4e-4, warmup_steps=1000, steps=40_000, batch_size=4, perceptual_after=2000, checkpoint_every=1000
    ),
    # FaceLift stage III (heads, 512², fine-tuned from an objects model): lr 1e-4, warm-up 500, 20 k steps,
    # batch 2 per GPU.
    "paper": LRMTrainConfig(
        "paper", lr=1e-4, warmup_steps=500, steps=20_000, batch_size=2, perceptual_after=500, checkpoint_every=1000
    ),
}


def make_train_config(preset: str, **overrides) -> LRMTrainConfig:
    if preset not in TRAIN_PRESETS:
        raise ValueError(f"LRM preset {preset!r} is not one of {', '.join(TRAIN_PRESETS)}")
    check_overrides(
        overrides,
        at_least_1=("steps", "batch_size", "checkpoint_every", "log_every"),
        at_least_0=("workers",),
        positive_finite=("lr",),
    )
    return dataclasses.replace(TRAIN_PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None})


def render_targets(gaussians, c2w: torch.Tensor, K: torch.Tensor, size: int) -> torch.Tensor:
    """(B, V, 3, H, W) renders of each sample's Gaussians in its supervision cameras, on white."""
    out = []
    for g, c, k in zip(gaussians, c2w, K):
        out.append(render_gaussians(g, torch.linalg.inv(c.float()), k.float(), size, size).rgb.permute(0, 3, 1, 2))
    return torch.stack(out)


def image_grid(batch: dict, pred: torch.Tensor) -> torch.Tensor:
    """(3, H·3, W·V) first sample: inputs / targets / renders, one row each."""
    rows = [batch["input_images"][0], batch["target_images"][0], pred[0].detach().float().clamp(0, 1).cpu()]
    return torch.cat([torch.cat(list(r), dim=2) for r in rows], dim=1)


def train_lrm(
    cfg: LRMTrainConfig,
    data: str | Sequence[str],
    out: str,
    model_cfg: LRMConfig | None = None,
    resume: bool = False,
    init_from: str | None = None,
    vgg_weights: str | None = None,
    progress: bool = True,
    stop_at: int | None = None,
    holdout: tuple[str, ...] = (),
    callback=None,
    verify_data: bool = False,
    data_weights: Sequence[float] | None = None,
) -> dict:
    """Train; returns {"step", "loss", "psnr", "skipped", "checkpoint", "main_process"}.
    Errors are one-line ValueErrors.

    `stop_at`: leave after this step (checkpointed) without shortening the schedule, for jobs with a
    time limit; `--resume` continues. `holdout`: view files never drawn. `callback(step, model)` runs
    before the first step and after every step (benchmarks evaluate there). `verify_data`: check
    every shard's sha256 against the card before training (sizes are always checked). `data`: one
    source or several (paths or fsspec URLs), mixed by `data_weights` (default: by subject count)."""
    model_cfg = model_cfg or make_lrm_config(cfg.preset)
    check_stop_at(stop_at)
    sources = training_sources(data, verify_data)  # checks --data first
    weights = mixing_weights(sources, data_weights)
    check_readers(sources, cfg.workers)
    ckpt.check_run_folder(out)
    resume_from = ckpt.checkpoint_to_resume(out, model_cfg) if resume else None
    if init_from:
        ckpt.check_model_config(init_from, ckpt.read_meta(init_from), model_cfg)
    # Read (and so check) the checkpoint's files before any work: a bad one is one line, nothing else.
    start_path = resume_from or init_from
    start_weights = ckpt.read_weights(start_path) if start_path else None
    resume_state = ckpt.load_state(resume_from) if resume_from else None
    # a resumed run starts the data at the next epoch: a fresh order, not epoch 0's again
    data_epoch = resume_state.get("data_epoch", -1) if resume_state else -1
    loader = lrm_loader(
        sources,
        model_cfg.image_size,
        cfg.batch_size,
        cfg.workers,
        cfg.seed,
        holdout=holdout,
        weights=weights,
        start_epoch=data_epoch + 1,
    )

    accelerator = make_accelerator(mixed_precision="bf16" if torch.cuda.is_available() else "no")
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(cfg.seed + accelerator.process_index)
    model = GSLRM(model_cfg)
    if init_from:  # stage change: weights only, a fresh optimiser and schedule
        ckpt.apply_weights(start_weights, model, init_from)
    fused = torch.cuda.is_available()
    optimizer = torch.optim.AdamW(lr_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas, fused=fused)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(cfg.warmup_steps, cfg.steps))
    perceptual = PerceptualLoss(vgg_weights).to(accelerator.device)
    model, optimizer = accelerator.prepare(model, optimizer)
    step, skipped = 0, 0
    if resume_from:
        ckpt.apply_weights(start_weights, accelerator.unwrap_model(model), resume_from)
        state = resume_state
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, skipped = state["step"], state["skipped"]
        resume_rng(state["rng"], accelerator.process_index, cfg.seed, step)

    writer = None
    if accelerator.is_main_process:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(os.path.join(out, "logs"))
        log.info(
            "GS-LRM %s: %.1f M parameters, %s, %d process(es) (%s)",
            model_cfg.preset,
            parameter_count(model) / 1e6,
            accelerator.device,
            accelerator.num_processes,
            accelerator.distributed_type.value,
        )
    meta = {
        "model": dataclasses.asdict(model_cfg),
        "train": dataclasses.asdict(cfg),
        "data": [s.url for s in sources],
        "data_weights": weights,
        "perceptual_pretrained": perceptual.pretrained,
    }

    def save() -> str:
        meta["lr"] = scheduler.get_last_lr()[0]  # the rate the next step will use
        state = {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng_state(),
            "step": step,
            "skipped": skipped,
            "data_epoch": data_epoch,
        }
        return (
            ckpt.save_checkpoint(out, step, accelerator.unwrap_model(model), state, meta)
            if accelerator.is_main_process
            else ""
        )

    bar = Progress("train lrm", progress and accelerator.is_main_process, cfg.steps, step)
    last = {"loss": float("nan"), "psnr": float("nan")}
    saved_at = None
    params = [p for p in model.parameters() if p.requires_grad]
    end = cfg.steps if stop_at is None else min(cfg.steps, stop_at)
    if callback:
        callback(step, accelerator.unwrap_model(model))
    try:
        for batch in guarded(loader):
            if step >= end:
                break
            dev = accelerator.device
            inputs, c2w, K = (batch[k].to(dev) for k in ("input_images", "input_c2w", "input_K"))
            target = batch["target_images"].to(dev)
            with accelerator.autocast():
                gaussians = model(inputs, c2w, K)
            pred = render_targets(
                gaussians, batch["target_c2w"].to(dev), batch["target_K"].to(dev), model_cfg.image_size
            )
            mse = torch.mean((pred - target) ** 2)
            loss = mse
            if cfg.perceptual_weight > 0 and step >= cfg.perceptual_after:
                loss = loss + cfg.perceptual_weight * perceptual(pred.flatten(0, 1), target.flatten(0, 1))
            accelerator.backward(loss)
            grad_norm = accelerator.clip_grad_norm_(params, cfg.grad_clip)
            ok = torch.isfinite(loss) and torch.isfinite(grad_norm) and grad_norm <= cfg.skip_factor * cfg.grad_clip
            if ok:
                optimizer.step()
            else:
                skipped += 1
                log.warning("step %d skipped: loss %s, grad norm %s", step, float(loss.detach()), float(grad_norm))
            scheduler.step()  # the schedule follows the step count, skipped steps included
            optimizer.zero_grad(set_to_none=True)
            step += 1
            data_epoch = max(data_epoch, *batch["epoch"])
            record_trained(batch, accelerator.process_index)
            last = {"loss": float(loss.detach()), "psnr": psnr(mse.detach())}
            if writer and step % cfg.log_every == 0:
                writer.add_scalar("train/loss", last["loss"], step)
                writer.add_scalar("train/mse", float(mse.detach()), step)
                writer.add_scalar("train/psnr", last["psnr"], step)
                writer.add_scalar("train/grad_norm", float(grad_norm), step)
                writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
                writer.add_scalar("train/skipped", skipped, step)
            if writer and (step % cfg.image_every == 0 or step == 1):
                writer.add_image("train/inputs_targets_renders", image_grid(batch, pred), step)
            bar.update(step, f"loss {last['loss']:.4f}  psnr {last['psnr']:.2f} dB")
            if step % cfg.checkpoint_every == 0:
                saved_at = save()
            if callback:
                callback(step, accelerator.unwrap_model(model))
    finally:
        bar.close()
        if step > 0 and (saved_at is None or not saved_at.endswith(f"{step:08d}")):
            saved_at = save()
        if writer:
            writer.close()
    return {
        "step": step,
        **last,
        "skipped": skipped,
        "checkpoint": saved_at,
        "main_process": accelerator.is_main_process,
    }


__all__ = ["LRMTrainConfig", "TRAIN_PRESETS", "make_train_config", "train_lrm", "DataError"]
