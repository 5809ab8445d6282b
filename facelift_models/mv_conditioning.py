"""What the multi-view UNet is conditioned on, besides the input image's VAE latent:

- a global image embedding through the UNet's class-embedding path: a pretrained CLIP image
  encoder (frozen; SD-unCLIP style, with the noise-level-0 embedding appended) or, without one,
  a small trainable conv encoder (`SmallImageEncoder`);
- one embedding per output view as `encoder_hidden_states` (`ViewEmbeddings`): learned, or
  FaceLift's fixed CLIP text embeddings of the view prompts, computed once from a text encoder.

Both are diffusers models, so a pipeline folder saves and loads them with `save_pretrained`. This
file imports torch and diffusers only: saved pipeline folders carry a copy of it.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import get_timestep_embedding
from diffusers.models.modeling_utils import ModelMixin

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # CLIPImageProcessor's defaults
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class SmallImageEncoder(ModelMixin, ConfigMixin):
    """A trainable global image embedding when no CLIP encoder is given: strided convs, mean pool, linear."""

    @register_to_config
    def __init__(self, embed_dim: int = 64, channels: tuple[int, ...] = (32, 64, 128)):
        super().__init__()
        layers, c_in = [], 3
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.GroupNorm(8, c), nn.SiLU()]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.proj = nn.Linear(c_in, embed_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, embed_dim)."""
        return self.proj(self.features(pixels).mean(dim=(2, 3)))


class ViewEmbeddings(ModelMixin, ConfigMixin):
    """(V, tokens, dim): the `encoder_hidden_states` of each output view, shared by all subjects."""

    @register_to_config
    def __init__(self, num_views: int = 6, tokens: int = 4, dim: int = 32):
        super().__init__()
        self.embeddings = nn.Parameter(torch.randn(num_views, tokens, dim) * 0.02)

    def forward(self) -> torch.Tensor:
        return self.embeddings


def is_clip(image_encoder) -> bool:
    # by name: a pipeline folder loads its own copy of this module, a class distinct from ours
    return type(image_encoder).__name__ != SmallImageEncoder.__name__


def embed_image(image_encoder, pixels: torch.Tensor, feature_extractor=None) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> (B, E) global embedding. CLIP gets its own preprocessing, done in
    torch (resize to its input size, normalise), so training and the pipeline share one path."""
    if not is_clip(image_encoder):
        return image_encoder(pixels)
    size = image_encoder.config.image_size
    mean = getattr(feature_extractor, "image_mean", None) or CLIP_MEAN
    std = getattr(feature_extractor, "image_std", None) or CLIP_STD
    x = (pixels.float() + 1) / 2
    x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    x = (x - x.new_tensor(mean)[:, None, None]) / x.new_tensor(std)[:, None, None]
    return image_encoder(pixel_values=x.to(image_encoder.dtype)).image_embeds


def class_vector(image_embeds: torch.Tensor, class_input_dim: int) -> torch.Tensor:
    """The UNet's class-embedding input. SD-unCLIP UNets expect [image embedding ; noise-level
    embedding] (2·E): FaceLift conditions at noise level 0, whose sinusoidal embedding is exact."""
    e = image_embeds.shape[-1]
    if class_input_dim == e:
        return image_embeds
    if class_input_dim == 2 * e:
        level0 = get_timestep_embedding(
            torch.zeros(image_embeds.shape[0], device=image_embeds.device),
            e,
            flip_sin_to_cos=True,
            downscale_freq_shift=0,
        )
        return torch.cat([image_embeds, level0.to(image_embeds.dtype)], dim=1)
    raise ValueError(
        f"the UNet's class embedding takes {class_input_dim} values; "
        f"the image encoder gives {e} (expected {e} or {2 * e})"
    )


def predict_v(
    unet,
    view_embeddings: ViewEmbeddings,
    noisy: torch.Tensor,
    timesteps: torch.Tensor,
    cond_latent: torch.Tensor,
    image_embeds: torch.Tensor,
) -> torch.Tensor:
    """One denoiser call, shared by training and the pipeline. noisy (B, V, 4, h, w); timesteps (B,)
    shared by a subject's views; cond_latent (B, 4, h, w) and image_embeds (B, E), either zeroed
    for classifier-free guidance -> v (B, V, 4, h, w)."""
    b, v = noisy.shape[:2]
    if v != view_embeddings.config.num_views:
        raise ValueError(f"got {v} views per subject; the model generates {view_embeddings.config.num_views}")
    x = torch.cat([noisy, cond_latent[:, None].expand(-1, v, -1, -1, -1)], dim=2).flatten(0, 1)
    cls = class_vector(image_embeds, unet.config.projection_class_embeddings_input_dim)
    context = view_embeddings().to(x.dtype).repeat(b, 1, 1)
    t = timesteps.reshape(-1).expand(b) if timesteps.numel() == 1 else timesteps
    out = unet(x, t.repeat_interleave(v), context, class_labels=cls.to(x.dtype).repeat_interleave(v, 0)).sample
    return out.view(b, v, *out.shape[1:])
