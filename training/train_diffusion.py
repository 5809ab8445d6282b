"""`facelift train diffusion`: the multi-view latent diffusion model on datagen shards, one GPU or
many (accelerate / torchrun), or the CPU.

The objective is `training.diffusion_loss`'s (min-SNR v-prediction, classifier-free guidance
dropout). AdamW (0.9, 0.999, wd 0.01), constant rate after a linear warm-up, clip 1.0, EMA of the
trained weights; fp16/bf16 autocast on CUDA; gradient checkpointing from the model preset. The tiny
preset fits its own small VAE first (`training.vae_fit`). The EMA pipeline is saved beside every
checkpoint (`training.diffusion_pipeline`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import types
from collections.abc import Sequence

import torch

from facelift_models.configs import DiffusionConfig
from facelift_models.mv_diffusion import MultiViewDenoiser, build_components, tiny_vae
from training import checkpoints as ckpt
from training.diffusion_data import diffusion_loader, face_statistics
from training.diffusion_loss import diffusion_loss, eval_loss
from training.diffusion_pipeline import make_pipeline, validation_grid
from training.loop import rng_state, warmup_constant
from training.presets import DIFFUSION_PRESETS, DiffusionTrainConfig
from training.run import StepCounter, open_writer, restore, run_meta, start_accelerator, start_run
from training.vae_fit import fit_vae

log = logging.getLogger(__name__)
PIPELINE_DIR, VAE_DIR = "pipeline", "vae"


def train_diffusion(
    train_cfg: DiffusionTrainConfig,
    data: str | Sequence[str],
    out: str,
    model_cfg: DiffusionConfig | None = None,
    resume: bool = False,
    progress: bool = True,
    stop_at: int | None = None,
    callback=None,
    verify_data: bool = False,
    data_weights: Sequence[float] | None = None,
) -> dict:
    """Train; returns {"step", "loss", "checkpoint", "pipeline", "vae_psnr", "main_process"}.
    Errors are one-line ValueErrors.

    `callback(step, loss, run)` runs before the first step (loss None) and after every step; `run`
    holds `model` (the denoiser), `vae`, `noise_scheduler` and `pipeline()`, a context manager
    yielding the pipeline with the EMA weights in place. `data`: one source or several (paths or
    fsspec URLs), mixed by `data_weights` (default: by subject count)."""
    from diffusers.training_utils import EMAModel

    model_cfg = model_cfg or DIFFUSION_PRESETS[train_cfg.preset].model
    start = start_run(
        data,
        data_weights,
        verify_data,
        train_cfg.workers,
        out,
        model_cfg,
        resume,
        stop_at,
        state_keys=("optimizer", "scheduler", "ema", "rng"),
    )
    # the cards' face statistics travel with the pipeline: `facelift infer` aligns photos to them
    face_alignment = face_statistics(start.sources, start.weights)
    loader = diffusion_loader(
        start.sources,
        model_cfg.image_size,
        train_cfg.batch_size,
        train_cfg.workers,
        train_cfg.seed,
        weights=start.weights,
        start_epoch=start.next_epoch,
    )

    accelerator = start_accelerator(
        train_cfg.seed,
        mixed_precision=train_cfg.mixed_precision if torch.cuda.is_available() else "no",
        gradient_accumulation_steps=train_cfg.grad_accum,
    )
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(accelerator.mixed_precision, torch.float32)

    vae = None  # None: the pretrained model's
    vae_path = os.path.join(out, VAE_DIR)
    vae_psnr = None
    if not model_cfg.pretrained:
        from diffusers import AutoencoderKL

        if not os.path.exists(os.path.join(vae_path, "config.json")):  # else fitted by an earlier run in this folder
            if start.resume_from:
                raise ckpt.CheckpointError(
                    f"--resume: {out!r} has checkpoints but no {VAE_DIR}/; it was not made by this preset"
                )
            if accelerator.is_main_process:  # one process fits, every process loads the same VAE
                vae = tiny_vae(model_cfg)
                if train_cfg.vae_steps:
                    vae_psnr = fit_vae(
                        vae, loader, train_cfg.vae_steps, train_cfg.vae_lr, accelerator.device, progress
                    )
                    log.info(
                        "VAE fitted in %d steps: %.2f dB, latent scaling %.4f",
                        train_cfg.vae_steps,
                        vae_psnr,
                        vae.config.scaling_factor,
                    )
                ckpt.save_folder_atomically(vae.save_pretrained, vae_path)
            accelerator.wait_for_everyone()
        vae = AutoencoderKL.from_pretrained(vae_path)
    components = build_components(model_cfg, vae)
    vae, noise_scheduler = components.vae, components.noise_scheduler
    denoiser = MultiViewDenoiser(components, model_cfg)
    frozen = [vae] + ([denoiser.image_encoder] if components.frozen_conditioning else [])
    for m in frozen:  # frozen models run in the mixed-precision dtype; trained ones keep fp32 masters
        m.requires_grad_(False).eval().to(accelerator.device)
        if weight_dtype != torch.float32:
            m.to(dtype=weight_dtype)
    trainable = denoiser.trainable_modules()
    params = [p for p in trainable.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=train_cfg.lr, betas=train_cfg.betas, weight_decay=train_cfg.weight_decay)
    lr_schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_constant(train_cfg.warmup_steps))
    denoiser, optimizer = accelerator.prepare(denoiser, optimizer)
    model = accelerator.unwrap_model(denoiser)
    ema = EMAModel(params, decay=train_cfg.ema_decay, use_ema_warmup=True)
    step = 0
    if start.resume_from:
        ckpt.apply_weights(start.start_weights, trainable, start.resume_from)
        step = restore(start.state, optimizer, lr_schedule, accelerator, train_cfg.seed)
        ema.load_state_dict(start.state["ema"])
    ema.to(accelerator.device)

    writer = open_writer(accelerator, out)
    if accelerator.is_main_process:
        log.info(
            "multi-view diffusion %s: %.2f M trained parameters, %s attention, %s, %s, %d process(es) (%s)",
            model_cfg.preset,
            sum(p.numel() for p in params) / 1e6,
            model_cfg.attention,
            accelerator.device,
            accelerator.mixed_precision,
            accelerator.num_processes,
            accelerator.distributed_type.value,
        )
    meta = run_meta(model_cfg, train_cfg, start, vae_psnr=vae_psnr)

    @contextlib.contextmanager
    def ema_pipeline():
        ema.store(params)
        ema.copy_to(params)
        try:
            yield make_pipeline(model, vae, noise_scheduler, model_cfg, face_alignment)
        finally:
            ema.restore(params)

    def save(at: int) -> tuple[str, str]:
        if not accelerator.is_main_process:
            return "", ""
        state = {
            "optimizer": optimizer.state_dict(),
            "scheduler": lr_schedule.state_dict(),
            "ema": ema.state_dict(),
            "rng": rng_state(),
            "step": at,
            "data_epoch": steps.data_epoch,
        }
        path = ckpt.save_checkpoint(out, at, trainable, state, meta)
        with ema_pipeline() as pipe:
            saved = ckpt.save_folder_atomically(pipe.save_pretrained, os.path.join(out, PIPELINE_DIR))
        return path, saved

    run = types.SimpleNamespace(
        model=model, vae=vae, noise_scheduler=noise_scheduler, pipeline=ema_pipeline, vae_psnr=vae_psnr
    )
    steps = StepCounter("train diffusion", accelerator, train_cfg, step, stop_at, save, progress, start.data_epoch)
    last_loss, val_batch = float("nan"), None
    if callback:
        callback(steps.step, None, run)
    try:
        for batch in steps.batches(loader):
            val_batch = val_batch or {"views": batch["views"][:1]}
            with accelerator.accumulate(denoiser):
                with accelerator.autocast():
                    loss = diffusion_loss(
                        denoiser, vae, noise_scheduler, batch, train_cfg, model_cfg.reconstruct_input, weight_dtype
                    )
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    grad_norm = accelerator.clip_grad_norm_(params, train_cfg.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            steps.consumed(batch)
            if not accelerator.sync_gradients:
                continue
            lr_schedule.step()
            ema.step(params)
            last_loss = float(loss.detach())
            steps.stepped(f"loss {last_loss:.4f}")
            step = steps.step
            if writer and step % train_cfg.log_every == 0:
                writer.add_scalar("train/loss", last_loss, step)
                writer.add_scalar("train/grad_norm", float(grad_norm), step)
                writer.add_scalar("train/lr", lr_schedule.get_last_lr()[0], step)
                writer.add_scalar("train/ema_decay", ema.cur_decay_value or 0.0, step)
            if writer and (step % train_cfg.validate_every == 0 or step == steps.end):
                writer.add_scalar(
                    "val/loss_fixed_noise",
                    eval_loss(model, vae, noise_scheduler, val_batch, train_cfg, model_cfg.reconstruct_input),
                    step,
                )
                with ema_pipeline() as pipe:
                    pipe.set_progress_bar_config(disable=True)
                    grid, db = validation_grid(pipe, val_batch, train_cfg)
                writer.add_image("val/input_generated_truth", grid, step)
                writer.add_scalar("val/psnr", db, step)
            if callback:
                callback(step, last_loss, run)
    finally:
        steps.close()
        if writer:
            writer.close()
    checkpoint, pipeline = steps.last_saved or (None, None)
    return {
        "step": steps.step,
        "loss": last_loss,
        "checkpoint": checkpoint,
        "pipeline": pipeline,
        "vae_psnr": vae_psnr,
        "main_process": accelerator.is_main_process,
    }
