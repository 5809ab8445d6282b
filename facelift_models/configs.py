"""The models' typed configs, without torch: presets, the CLI and checkpoint metadata read them
without loading a model."""

from __future__ import annotations

from dataclasses import dataclass

RAY_ENCODINGS = ("facelift", "plucker")
ATTENTION_MODES = ("dense", "sparse", "per_view")
# FaceLift's export filters (ExportFilters' defaults)
MIN_OPACITY = 0.04
MAX_SCALE = 0.1
FLOATER = 0.6
CROP_BOX = (-0.91, 0.91, -0.91, 0.91, -1.0, 1.0)


@dataclass(frozen=True)
class LRMConfig:
    preset: str
    image_size: int  # square input and supervision views
    patch: int
    width: int
    layers: int
    heads: int
    mlp_ratio: float = 4.0
    ray_encoding: str = "facelift"  # "facelift": (d, o + (−o·d)d); "plucker": (o × d, d)
    gradient_checkpointing: bool = False

    def __post_init__(self):
        if self.ray_encoding not in RAY_ENCODINGS:
            raise ValueError(f"ray_encoding {self.ray_encoding!r} is not one of {', '.join(RAY_ENCODINGS)}")
        if self.image_size % self.patch:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch {self.patch}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not a multiple of heads {self.heads}")


@dataclass(frozen=True)
class DiffusionConfig:
    preset: str
    image_size: int
    attention: str = "dense"  # dense | sparse (front + own view) | per_view
    reconstruct_input: bool = True
    pretrained: str | None = None  # diffusers folder or hub id; None builds the tiny model from scratch
    gradient_checkpointing: bool = False
    # From-scratch sizes (ignored with `pretrained`):
    unet_channels: tuple[int, ...] = (32, 64)
    layers_per_block: int = 1
    attention_head_dim: int = 8
    cross_attention_dim: int = 32
    view_tokens: int = 4
    image_embed_dim: int = 64
    vae_channels: tuple[int, ...] = (32, 64)

    def __post_init__(self):
        if self.attention not in ATTENTION_MODES:
            raise ValueError(f"attention {self.attention!r} is not one of {', '.join(ATTENTION_MODES)}")
        down = 2 ** (len(self.vae_channels) - 1) * 2 ** (len(self.unet_channels) - 1)
        if self.pretrained is None and self.image_size % down:
            raise ValueError(f"image_size {self.image_size} is not a multiple of {down} (VAE × UNet downsampling)")


@dataclass(frozen=True)
class ExportFilters:
    """FaceLift's filters; a value of None switches that filter off."""

    min_opacity: float | None = MIN_OPACITY
    max_scale: float | None = MAX_SCALE
    floater: float | None = FLOATER
    crop_box: tuple[float, float, float, float, float, float] | None = CROP_BOX
