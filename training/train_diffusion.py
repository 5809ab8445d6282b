"""`facelift train diffusion`: the multi-view latent diffusion model on datagen shards, one GPU or
many (accelerate / torchrun), or the CPU.

    z_v     = VAE(view v) · scaling        z_in = VAE(input) · scaling      (frozen VAE)
    x_t     = α_t z + σ_t ε                one t per subject, shared by its 6 views
    loss    = w(t) · ‖UNet(x_t, t | z_in, embed(input), view) − (α_t ε − σ_t z)‖²
    w(t)    = min(SNR, γ) / (SNR + 1)      min-SNR-γ for the v-target

Classifier-free guidance dropout per subject: the image embedding alone, both, or the input
latent alone, each at `cfg_drop`. AdamW (0.9, 0.999, wd 0.01), constant rate after a linear
warm-up, clip 1.0, EMA of the trained weights; fp16/bf16 autocast on CUDA; gradient
checkpointing from the model preset. The tiny preset fits its own small VAE first (`vae_steps`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import types
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from facelift_models.mv_diffusion import (
    DiffusionConfig,
    MultiViewDenoiser,
    build_components,
    make_diffusion_config,
    min_snr_v_weight,
    tiny_vae,
)
from training import checkpoints as ckpt
from training.diffusion_data import diffusion_loader, face_statistics, input_view
from training.loop import (
    Progress,
    check_overrides,
    check_stop_at,
    make_accelerator,
    psnr,
    resume_rng,
    rng_state,
    warmup_constant,
)
from training.shards import DataError, guarded, training_sources
from training.stream import check_readers, mixing_weights, record_trained

log = logging.getLogger(__name__)
MIXED_PRECISION = ("fp16", "bf16", "no")
PIPELINE_DIR, VAE_DIR = "pipeline", "vae"


@dataclass(frozen=True)
class DiffusionTrainConfig:
    preset: str
    lr: float
    steps: int
    batch_size: int  # subjects per step per process
    warmup_steps: int = 10
    grad_accum: int = 1
    snr_gamma: float = 5.0
    cfg_drop: float = 0.05  # per subject, each of: embedding only, both, latent only
    ema_decay: float = 0.9999  # the cap; EMA warms up (decay 1 − (1 + step)^−2/3 below it)
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0
    mixed_precision: str = "fp16"  # on CUDA; the CPU trains in fp32
    checkpoint_every: int = 1000
    log_every: int = 10
    validate_every: int = 1000
    validation_steps: int = 50  # DDIM steps of the validation grid
    guidance_scale: float = 3.0
    vae_steps: int = 0  # fit a from-scratch VAE for this many steps before the UNet (tiny preset)
    vae_lr: float = 1e-3
    workers: int = 4
    seed: int = 0

    def __post_init__(self):
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"--mixed-precision {self.mixed_precision!r} is not one of {', '.join(MIXED_PRECISION)}")


TRAIN_PRESETS: dict[str, DiffusionTrainConfig] = {
    # CPU: overfits a few subjects in minutes (benchmarks/diffusion_learns.py).
    "tiny": DiffusionTrainConfig(
        "tiny",
        lr=1e-3,
        steps=2000,
        batch_size=4,
        warmup_steps=20,
        ema_decay=0.995,
        checkpoint_every=200,
        log_every=5,
        validate_every=200,
        validation_steps=20,
        vae_steps=400,
        workers=0,
    ),
    # FaceLift: batch 8 per GPU × 2 accumulation (× 8 GPUs), 20 k steps, lr 1e-4, warm-up 10, fp16.
    "paper": DiffusionTrainConfig(
        "paper", lr=1e-4, steps=20_000, batch_size=8, grad_accum=2, checkpoint_every=1000, validate_every=1000
    ),
}


def make_train_config(preset: str, **overrides) -> DiffusionTrainConfig:
    if preset not in TRAIN_PRESETS:
        raise ValueError(f"diffusion preset {preset!r} is not one of {', '.join(TRAIN_PRESETS)}")
    check_overrides(
        overrides,
        at_least_1=("steps", "batch_size", "checkpoint_every", "log_every", "validate_every", "grad_accum"),
        at_least_0=("vae_steps", "workers"),
        positive_finite=("lr",),
    )
    return dataclasses.replace(TRAIN_PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None})


# ----------------------------------------------------------------------------- pieces


def cfg_keep_masks(
    batch: int, p: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(keep image embedding, keep input latent) per subject: u < p drops the embedding only,
    p ≤ u < 2p both, 2p ≤ u < 3p the latent only."""
    u = torch.rand(batch, generator=generator)
    keep_embed = ~(u < 2 * p)
    keep_latent = ~((u >= p) & (u < 3 * p))
    return keep_embed, keep_latent


def encode_views(vae, views: torch.Tensor, dtype: torch.dtype, sample: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled latents of (B, V, 3, S, S) views in [0, 1]: the targets (a posterior sample for
    training, its mode for evaluation) and the input's (view 0, the mode), from one VAE pass."""
    b, v = views.shape[:2]
    with torch.no_grad():
        posterior = vae.encode((views.flatten(0, 1) * 2 - 1).to(dtype)).latent_dist
        mode = posterior.mode().float() * vae.config.scaling_factor
        z = posterior.sample().float() * vae.config.scaling_factor if sample else mode
    return z.view(b, v, *z.shape[1:]), input_view(mode.view(b, v, *mode.shape[1:]))


def v_loss(
    denoiser,
    scheduler,
    z: torch.Tensor,
    z_in: torch.Tensor,
    pixels: torch.Tensor,
    t: torch.Tensor,
    noise: torch.Tensor,
    keep_embed: torch.Tensor,
    keep_latent: torch.Tensor,
    gamma: float,
    reconstruct_input: bool,
) -> torch.Tensor:
    """The min-SNR-weighted v-prediction loss: z (B, V, 4, h, w) target latents, z_in (B, 4, h, w)
    and pixels (B, 3, S, S) in [-1, 1] the input, t (B,) one timestep per subject, keep_* (B,) CFG."""
    b, v = z.shape[:2]
    tv = t.repeat_interleave(v)
    flat, eps = z.flatten(0, 1), noise.flatten(0, 1)
    noisy = scheduler.add_noise(flat, eps, tv).view_as(z)
    target = scheduler.get_velocity(flat, eps, tv).view_as(z)
    z_in = z_in * keep_latent[:, None, None, None].to(z_in.dtype)
    pred = denoiser(noisy, t, z_in, pixels, keep_embed)
    per_view = ((pred.float() - target) ** 2).mean(dim=(2, 3, 4))  # (B, V)
    if not reconstruct_input:  # the ablation: view 0 (the input's camera) is not learned
        per_view = per_view[:, 1:]
    return (min_snr_v_weight(scheduler, t, gamma) * per_view.mean(dim=1)).mean()


def diffusion_loss(
    denoiser, vae, scheduler, batch: dict, cfg: DiffusionTrainConfig, reconstruct_input: bool, dtype: torch.dtype
) -> torch.Tensor:
    """One training batch: random timestep per subject, random noise, random CFG drops."""
    device = next(denoiser.parameters()).device  # denoiser: a MultiViewDenoiser, maybe DDP-wrapped
    views = batch["views"].to(device)
    z, z_in = encode_views(vae, views, dtype, sample=True)
    b = z.shape[0]
    t = torch.randint(0, scheduler.config.num_train_timesteps, (b,), device=device)
    keep_embed, keep_latent = (m.to(device) for m in cfg_keep_masks(b, cfg.cfg_drop))
    return v_loss(
        denoiser,
        scheduler,
        z,
        z_in,
        input_view(views) * 2 - 1,
        t,
        torch.randn_like(z),
        keep_embed,
        keep_latent,
        cfg.snr_gamma,
        reconstruct_input,
    )


@torch.no_grad()
def eval_loss(
    denoiser,
    vae,
    scheduler,
    batch: dict,
    cfg: DiffusionTrainConfig,
    reconstruct_input: bool,
    levels: int = 10,
    seed: int = 0,
) -> float:
    """The training objective on `batch` at `levels` evenly spaced timesteps with fixed noise, no
    CFG drop and the posterior's mode: the same measurement at every step."""
    device = next(denoiser.parameters()).device
    views = batch["views"].to(device)
    z, z_in = encode_views(vae, views, vae.dtype, sample=False)
    b = z.shape[0]
    keep = torch.ones(b, dtype=torch.bool, device=device)
    total = 0.0
    for k, t in enumerate(torch.linspace(0, scheduler.config.num_train_timesteps - 1, levels).round().long()):
        noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(seed * 1000 + k)).to(device)
        total += float(
            v_loss(
                denoiser,
                scheduler,
                z,
                z_in,
                input_view(views) * 2 - 1,
                t.repeat(b).to(device),
                noise,
                keep,
                keep,
                cfg.snr_gamma,
                reconstruct_input,
            )
        )
    return total / levels


def fit_vae(vae, loader, steps: int, lr: float, device, progress: bool, kl_weight: float = 1e-6) -> float:
    """Train a from-scratch VAE on the shards' views (reconstruction MSE + a small KL), then set its
    latent scaling so scaled latents have unit variance, as SD's 0.18215 does. Returns the PSNR."""
    vae.train().to(device)
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    bar = Progress("fit vae", progress, steps, 0)
    it = guarded(loader)
    for step in range(steps):
        x = next(it)["views"].flatten(0, 1).to(device) * 2 - 1
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample()).sample
        mse = ((rec - x) ** 2).mean()
        loss = mse + kl_weight * post.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        bar.update(step + 1, f"psnr {psnr(mse.detach() / 4):.2f} dB")  # images in [-1, 1]: MSE/4 in [0, 1] units
    bar.close()
    vae.eval()
    with torch.no_grad():
        latents, errs = [], []
        for _ in range(4):
            x = next(it)["views"].flatten(0, 1).to(device) * 2 - 1
            mode = vae.encode(x).latent_dist.mode()
            latents.append(mode)
            errs.append(((vae.decode(mode).sample - x) ** 2).mean() / 4)
        vae.register_to_config(scaling_factor=float(1.0 / torch.cat(latents).std()))
    vae.requires_grad_(False)
    return psnr(torch.stack(errs).mean())


def make_pipeline(
    denoiser: MultiViewDenoiser, vae, noise_scheduler, model_cfg: DiffusionConfig, face_alignment: dict | None = None
):
    from diffusers import DDIMScheduler

    from facelift_models.mv_pipeline import MultiViewPipeline

    return MultiViewPipeline(
        unet=denoiser.unet,
        vae=vae,
        scheduler=DDIMScheduler.from_config(noise_scheduler.config),
        image_encoder=denoiser.image_encoder,
        view_embeddings=denoiser.view_embeddings,
        feature_extractor=denoiser.feature_extractor,
        num_views=denoiser.view_embeddings.config.num_views,
        attention=model_cfg.attention,
        reconstruct_input=model_cfg.reconstruct_input,
        image_size=model_cfg.image_size,
        face_alignment=face_alignment,
    )


def validation_grid(pipe, batch: dict, cfg: DiffusionTrainConfig) -> tuple[torch.Tensor, float]:
    """(3, 2·S, 7·S) input | 6 generated views over blank | 6 ground-truth views, and the PSNR of
    the generated views against the ground truth (first subject of the batch)."""
    truth = batch["views"][0]
    gen = pipe(
        input_view(truth),
        num_inference_steps=cfg.validation_steps,
        guidance_scale=cfg.guidance_scale,
        seed=cfg.seed,
        output_type="pt",
    ).images
    blank = torch.ones_like(truth[0])
    top = torch.cat([input_view(truth), *gen], dim=2)
    bottom = torch.cat([blank, *truth], dim=2)
    return torch.cat([top, bottom], dim=1), psnr(((gen - truth) ** 2).mean())


# ----------------------------------------------------------------------------- the loop


def train_diffusion(
    cfg: DiffusionTrainConfig,
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

    model_cfg = model_cfg or make_diffusion_config(cfg.preset)
    check_stop_at(stop_at)
    sources = training_sources(data, verify_data)  # checks --data first
    weights = mixing_weights(sources, data_weights)
    check_readers(sources, cfg.workers)
    # the cards' face statistics travel with the pipeline: `facelift infer` aligns photos to them
    face_alignment = face_statistics(sources, weights)
    ckpt.check_run_folder(out)
    resume_from = ckpt.checkpoint_to_resume(out, model_cfg) if resume else None
    # Read (and so check) the checkpoint's files before any work: a bad one is one line, nothing else.
    resume_weights = ckpt.read_weights(resume_from) if resume_from else None
    resume_state = ckpt.load_state(resume_from, ("optimizer", "scheduler", "ema", "rng")) if resume_from else None
    # a resumed run starts the data at the next epoch: a fresh order, not epoch 0's again
    data_epoch = resume_state.get("data_epoch", -1) if resume_state else -1
    loader = diffusion_loader(
        sources,
        model_cfg.image_size,
        cfg.batch_size,
        cfg.workers,
        cfg.seed,
        weights=weights,
        start_epoch=data_epoch + 1,
    )

    cuda = torch.cuda.is_available()
    accelerator = make_accelerator(
        mixed_precision=cfg.mixed_precision if cuda else "no", gradient_accumulation_steps=cfg.grad_accum
    )
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(accelerator.mixed_precision, torch.float32)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
    torch.manual_seed(cfg.seed + accelerator.process_index)

    vae = None  # None: the pretrained model's
    vae_path = os.path.join(out, VAE_DIR)
    vae_psnr = None
    if not model_cfg.pretrained:
        from diffusers import AutoencoderKL

        if not os.path.exists(os.path.join(vae_path, "config.json")):  # else fitted by an earlier run in this folder
            if resume_from:
                raise ckpt.CheckpointError(
                    f"--resume: {out!r} has checkpoints but no {VAE_DIR}/; it was not made by this preset"
                )
            if accelerator.is_main_process:  # one process fits, every process loads the same VAE
                vae = tiny_vae(model_cfg)
                if cfg.vae_steps:
                    vae_psnr = fit_vae(vae, loader, cfg.vae_steps, cfg.vae_lr, accelerator.device, progress)
                    log.info(
                        "VAE fitted in %d steps: %.2f dB, latent scaling %.4f",
                        cfg.vae_steps,
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
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_constant(cfg.warmup_steps))
    denoiser, optimizer = accelerator.prepare(denoiser, optimizer)
    model = accelerator.unwrap_model(denoiser)
    ema = EMAModel(params, decay=cfg.ema_decay, use_ema_warmup=True)
    step = 0
    if resume_from:
        ckpt.apply_weights(resume_weights, trainable, resume_from)
        state = resume_state
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        ema.load_state_dict(state["ema"])
        step = state["step"]
        resume_rng(state["rng"], accelerator.process_index, cfg.seed, step)
    ema.to(accelerator.device)

    writer = None
    if accelerator.is_main_process:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(os.path.join(out, "logs"))
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
    meta = {
        "model": dataclasses.asdict(model_cfg),
        "train": dataclasses.asdict(cfg),
        "data": [s.url for s in sources],
        "data_weights": weights,
        "vae_psnr": vae_psnr,
    }

    @contextlib.contextmanager
    def ema_pipeline():
        ema.store(params)
        ema.copy_to(params)
        try:
            yield make_pipeline(model, vae, noise_scheduler, model_cfg, face_alignment)
        finally:
            ema.restore(params)

    def save() -> tuple[str, str]:
        if not accelerator.is_main_process:
            return "", ""
        state = {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "ema": ema.state_dict(),
            "rng": rng_state(),
            "step": step,
            "data_epoch": data_epoch,
        }
        path = ckpt.save_checkpoint(out, step, trainable, state, meta)
        with ema_pipeline() as pipe:
            saved = ckpt.save_folder_atomically(pipe.save_pretrained, os.path.join(out, PIPELINE_DIR))
        return path, saved

    run = types.SimpleNamespace(
        model=model, vae=vae, noise_scheduler=noise_scheduler, pipeline=ema_pipeline, vae_psnr=vae_psnr
    )
    bar = Progress("train diffusion", progress and accelerator.is_main_process, cfg.steps, step)
    end = cfg.steps if stop_at is None else min(cfg.steps, stop_at)
    last_loss, saved_at, pipeline_at, val_batch = float("nan"), None, None, None
    if callback:
        callback(step, None, run)
    try:
        for batch in guarded(loader):
            if step >= end:
                break
            val_batch = val_batch or {"views": batch["views"][:1]}
            with accelerator.accumulate(denoiser):
                with accelerator.autocast():
                    loss = diffusion_loss(
                        denoiser, vae, noise_scheduler, batch, cfg, model_cfg.reconstruct_input, weight_dtype
                    )
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    grad_norm = accelerator.clip_grad_norm_(params, cfg.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            data_epoch = max(data_epoch, *batch["epoch"])
            record_trained(batch, accelerator.process_index)
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            ema.step(params)
            step += 1
            last_loss = float(loss.detach())
            if writer and step % cfg.log_every == 0:
                writer.add_scalar("train/loss", last_loss, step)
                writer.add_scalar("train/grad_norm", float(grad_norm), step)
                writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
                writer.add_scalar("train/ema_decay", ema.cur_decay_value or 0.0, step)
            if writer and (step % cfg.validate_every == 0 or step == end):
                writer.add_scalar(
                    "val/loss_fixed_noise",
                    eval_loss(model, vae, noise_scheduler, val_batch, cfg, model_cfg.reconstruct_input),
                    step,
                )
                with ema_pipeline() as pipe:
                    pipe.set_progress_bar_config(disable=True)
                    grid, db = validation_grid(pipe, val_batch, cfg)
                writer.add_image("val/input_generated_truth", grid, step)
                writer.add_scalar("val/psnr", db, step)
            bar.update(step, f"loss {last_loss:.4f}")
            if step % cfg.checkpoint_every == 0:
                saved_at, pipeline_at = save()
            if callback:
                callback(step, last_loss, run)
    finally:
        bar.close()
        if step > 0 and (saved_at is None or not saved_at.endswith(f"{step:08d}")):
            saved_at, pipeline_at = save()
        if writer:
            writer.close()
    return {
        "step": step,
        "loss": last_loss,
        "checkpoint": saved_at,
        "pipeline": pipeline_at,
        "vae_psnr": vae_psnr,
        "main_process": accelerator.is_main_process,
    }


__all__ = ["DiffusionTrainConfig", "TRAIN_PRESETS", "make_train_config", "train_diffusion", "DataError"]
