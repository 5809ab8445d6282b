"""The train commands' presets: each pairs a model's architecture with the settings it is trained with.

    facelift train lrm --preset paper        → LRM_PRESETS["paper"]:       model LRMConfig, config LRMTrainConfig
    facelift train diffusion --preset paper  → DIFFUSION_PRESETS["paper"]: model DiffusionConfig, config
                                               DiffusionTrainConfig

FaceLift's numbers are in ../shared/NOTES-recipes.md; each preset says where it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass

from facelift_models.configs import DiffusionConfig, LRMConfig
from presets import Preset, check_ranges, registry

MIXED_PRECISION = ("fp16", "bf16", "no")


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

    def __post_init__(self):
        check_ranges(
            self,
            at_least_1=("steps", "batch_size", "checkpoint_every", "log_every"),
            at_least_0=("workers",),
            positive_finite=("lr",),
        )


@dataclass(frozen=True)
class DiffusionTrainConfig:
    preset: str
    lr: float
    steps: int
    batch_size: int  # subjects per step per process
    warmup_steps: int = 10
    grad_accum: int = 1
    snr_gamma: float = 5.0
    guidance_drop: float = 0.05  # classifier-free guidance dropout per subject: embedding only, both, latent only
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
        check_ranges(
            self,
            at_least_1=("steps", "batch_size", "checkpoint_every", "log_every", "validate_every", "grad_accum"),
            at_least_0=("vae_steps", "workers"),
            positive_finite=("lr",),
        )


LRM_PRESETS = registry(
    Preset(
        "CPU, 32², 4 layers × 128: learns a few subjects in minutes (tests, benchmarks/lrm_learns.py)",
        model=LRMConfig("tiny", image_size=32, patch=4, width=128, layers=4, heads=4),
        config=LRMTrainConfig(
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
    ),
    Preset(
        "256², 12 layers × 512: a one-GPU model",
        model=LRMConfig("small", image_size=256, patch=8, width=512, layers=12, heads=8, gradient_checkpointing=True),
        config=LRMTrainConfig(
            "small",
            lr=4e-4,
            warmup_steps=1000,
            steps=40_000,
            batch_size=4,
            perceptual_after=2000,
            checkpoint_every=1000,
        ),
    ),
    Preset(
        # FaceLift stage III (heads, 512², fine-tuned from an objects model): lr 1e-4, warm-up 500,
        # 20 k steps, batch 2 per GPU.
        "512², 24 layers × 1024: FaceLift's GS-LRM and its head stage",
        model=LRMConfig(
            "paper", image_size=512, patch=8, width=1024, layers=24, heads=16, gradient_checkpointing=True
        ),
        config=LRMTrainConfig(
            "paper",
            lr=1e-4,
            warmup_steps=500,
            steps=20_000,
            batch_size=2,
            perceptual_after=500,
            checkpoint_every=1000,
        ),
    ),
)

DIFFUSION_PRESETS = registry(
    Preset(
        "CPU, 32², from scratch (its own small VAE first): overfits a few subjects in minutes",
        model=DiffusionConfig("tiny", image_size=32),  # datagen's 64² test views at 32², 16² latents
        config=DiffusionTrainConfig(
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
    ),
    Preset(
        # FaceLift: batch 8 per GPU × 2 accumulation (× 8 GPUs), 20 k steps, lr 1e-4, warm-up 10, fp16.
        "512², sparse attention, fine-tunes --pretrained (SD 2.1-unCLIP-style): FaceLift's recipe",
        model=DiffusionConfig("paper", image_size=512, attention="sparse", gradient_checkpointing=True),
        config=DiffusionTrainConfig(
            "paper", lr=1e-4, steps=20_000, batch_size=8, grad_accum=2, checkpoint_every=1000, validate_every=1000
        ),
    ),
)


def check_pretrained(model: DiffusionConfig) -> None:
    """The paper preset's sizes are a pretrained model's: it cannot start from scratch."""
    if model.preset == "paper" and not model.pretrained:
        raise ValueError(
            "the paper preset fine-tunes a pretrained model: give --pretrained PATH "
            "(an SD 2.1-unCLIP-style diffusers folder)"
        )
