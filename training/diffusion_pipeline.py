"""The pipeline a diffusion run saves (`OUT/pipeline`, opened by `DiffusionPipeline.from_pretrained`)
and the validation grid it logs."""

from __future__ import annotations

import torch

from facelift_models.configs import DiffusionConfig
from facelift_models.mv_diffusion import MultiViewDenoiser
from training.diffusion_data import input_view
from training.loop import psnr
from training.presets import DiffusionTrainConfig


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


def validation_grid(pipe, batch: dict, train_cfg: DiffusionTrainConfig) -> tuple[torch.Tensor, float]:
    """(3, 2·S, 7·S) input | 6 generated views over blank | 6 ground-truth views, and the PSNR of
    the generated views against the ground truth (first subject of the batch)."""
    truth = batch["views"][0]
    gen = pipe(
        input_view(truth),
        num_inference_steps=train_cfg.validation_steps,
        guidance_scale=train_cfg.guidance_scale,
        seed=train_cfg.seed,
        output_type="pt",
    ).images
    blank = torch.ones_like(truth[0])
    top = torch.cat([input_view(truth), *gen], dim=2)
    bottom = torch.cat([blank, *truth], dim=2)
    return torch.cat([top, bottom], dim=1), psnr(((gen - truth) ** 2).mean())
