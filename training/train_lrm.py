"""`facelift train lrm`: GS-LRM on datagen shards, one GPU or many (accelerate / torchrun), or the CPU.

    loss = MSE(render, target) + λ · perceptual(render, target)   (perceptual after an L2 warm-up)

AdamW (β 0.9/0.95, weight decay on matrices only), cosine schedule with linear warm-up, gradient
clipping; a step whose loss or gradient is not finite, or whose gradient norm exceeds
`skip_factor` × the clip, is skipped (counted, logged). bf16 autocast and TF32 on CUDA.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from facelift_models.configs import LRMConfig
from facelift_models.gaussian_render import render_gaussians
from facelift_models.lrm import GSLRM, lr_groups, parameter_count
from training import checkpoints as ckpt
from training.loop import psnr, rng_state, warmup_cosine
from training.lrm_data import lrm_loader
from training.perceptual import PerceptualLoss
from training.presets import LRM_PRESETS, LRMTrainConfig
from training.run import StepCounter, open_writer, restore, run_meta, start_accelerator, start_run

log = logging.getLogger(__name__)


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
    train_cfg: LRMTrainConfig,
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
    model_cfg = model_cfg or LRM_PRESETS[train_cfg.preset].model
    start = start_run(
        data, data_weights, verify_data, train_cfg.workers, out, model_cfg, resume, stop_at, init_from=init_from
    )
    loader = lrm_loader(
        start.sources,
        model_cfg.image_size,
        train_cfg.batch_size,
        train_cfg.workers,
        train_cfg.seed,
        holdout=holdout,
        weights=start.weights,
        start_epoch=start.next_epoch,
    )

    cuda = torch.cuda.is_available()
    accelerator = start_accelerator(train_cfg.seed, mixed_precision="bf16" if cuda else "no")
    model = GSLRM(model_cfg)
    if init_from:  # stage change: weights only, a fresh optimiser and schedule
        ckpt.apply_weights(start.start_weights, model, init_from)
    optimizer = torch.optim.AdamW(
        lr_groups(model, train_cfg.weight_decay), lr=train_cfg.lr, betas=train_cfg.betas, fused=cuda
    )
    lr_schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(train_cfg.warmup_steps, train_cfg.steps))
    perceptual = PerceptualLoss(vgg_weights).to(accelerator.device)
    model, optimizer = accelerator.prepare(model, optimizer)
    step, skipped = 0, 0
    if start.resume_from:
        ckpt.apply_weights(start.start_weights, accelerator.unwrap_model(model), start.resume_from)
        step = restore(start.state, optimizer, lr_schedule, accelerator, train_cfg.seed)
        skipped = start.state["skipped"]

    writer = open_writer(accelerator, out)
    if accelerator.is_main_process:
        log.info(
            "GS-LRM %s: %.1f M parameters, %s, %d process(es) (%s)",
            model_cfg.preset,
            parameter_count(model) / 1e6,
            accelerator.device,
            accelerator.num_processes,
            accelerator.distributed_type.value,
        )
    meta = run_meta(model_cfg, train_cfg, start, perceptual_pretrained=perceptual.pretrained)

    def save(at: int) -> str:
        meta["lr"] = lr_schedule.get_last_lr()[0]  # the rate the next step will use
        state = {
            "optimizer": optimizer.state_dict(),
            "scheduler": lr_schedule.state_dict(),
            "rng": rng_state(),
            "step": at,
            "skipped": skipped,
            "data_epoch": steps.data_epoch,
        }
        if not accelerator.is_main_process:
            return ""
        return ckpt.save_checkpoint(out, at, accelerator.unwrap_model(model), state, meta)

    steps = StepCounter("train lrm", accelerator, train_cfg, step, stop_at, save, progress, start.data_epoch)
    last = {"loss": float("nan"), "psnr": float("nan")}
    params = [p for p in model.parameters() if p.requires_grad]
    if callback:
        callback(steps.step, accelerator.unwrap_model(model))
    try:
        for batch in steps.batches(loader):
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
            if train_cfg.perceptual_weight > 0 and steps.step >= train_cfg.perceptual_after:
                loss = loss + train_cfg.perceptual_weight * perceptual(pred.flatten(0, 1), target.flatten(0, 1))
            accelerator.backward(loss)
            grad_norm = accelerator.clip_grad_norm_(params, train_cfg.grad_clip)
            limit = train_cfg.skip_factor * train_cfg.grad_clip
            if torch.isfinite(loss) and torch.isfinite(grad_norm) and grad_norm <= limit:
                optimizer.step()
            else:
                skipped += 1
                log.warning(
                    "step %d skipped: loss %s, grad norm %s", steps.step, float(loss.detach()), float(grad_norm)
                )
            lr_schedule.step()  # the schedule follows the step count, skipped steps included
            optimizer.zero_grad(set_to_none=True)
            steps.consumed(batch)
            last = {"loss": float(loss.detach()), "psnr": psnr(mse.detach())}
            steps.stepped(f"loss {last['loss']:.4f}  psnr {last['psnr']:.2f} dB")
            step = steps.step
            if writer and step % train_cfg.log_every == 0:
                writer.add_scalar("train/loss", last["loss"], step)
                writer.add_scalar("train/mse", float(mse.detach()), step)
                writer.add_scalar("train/psnr", last["psnr"], step)
                writer.add_scalar("train/grad_norm", float(grad_norm), step)
                writer.add_scalar("train/lr", lr_schedule.get_last_lr()[0], step)
                writer.add_scalar("train/skipped", skipped, step)
            if writer and (step % train_cfg.image_every == 0 or step == 1):
                writer.add_image("train/inputs_targets_renders", image_grid(batch, pred), step)
            if callback:
                callback(steps.step, accelerator.unwrap_model(model))
    finally:
        steps.close()
        if writer:
            writer.close()
    return {
        "step": steps.step,
        **last,
        "skipped": skipped,
        "checkpoint": steps.last_saved,
        "main_process": accelerator.is_main_process,
    }
