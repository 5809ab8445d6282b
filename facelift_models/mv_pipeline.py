"""`MultiViewPipeline`: one image -> the 6 fixed views (front, front_right, right, back, left,
front_left), with DDIM and classifier-free guidance. Saves and loads like any diffusers pipeline:

    pipe = MultiViewPipeline.from_pretrained("runs/diffusion/pipeline")
    views = pipe(Image.open("face.png"), num_inference_steps=50, guidance_scale=3.0, seed=0).images

The unconditional branch zeroes both the input latent and the image embedding (FaceLift).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput
from PIL import Image

from facelift_models.mv_attention import set_multiview_attention
from facelift_models.mv_conditioning import embed_image
from facelift_models.mv_diffusion import predict_v


@dataclass
class MultiViewOutput(BaseOutput):
    images: list  # V PIL images, or a (V, 3, H, W) tensor in [0, 1] with output_type="pt"


def image_to_pixels(image, size: int) -> torch.Tensor:
    """PIL / uint8 HWC array / float (3, H, W) tensor in [0, 1] -> (1, 3, size, size) in [-1, 1];
    transparency is composited on white, as the shards' conditioning images are at inference."""
    if isinstance(image, torch.Tensor):
        x = image.float()
        if x.ndim != 3 or x.shape[0] != 3:
            raise ValueError(f"an image tensor must be (3, H, W) in [0, 1], got {tuple(x.shape)}")
        x = torch.nn.functional.interpolate(x[None], size=(size, size), mode="area")[0]
    else:
        pil = Image.fromarray(image) if isinstance(image, np.ndarray) else image
        if not isinstance(pil, Image.Image):
            raise ValueError(f"the input must be a PIL image, a uint8 array or a (3, H, W) tensor, not {type(image).__name__}")
        rgba = pil.convert("RGBA").resize((size, size), Image.Resampling.BICUBIC)
        a = np.asarray(rgba, dtype=np.float32) / 255.0
        x = torch.from_numpy(a[..., :3] * a[..., 3:] + (1.0 - a[..., 3:])).permute(2, 0, 1)
    return (x.clamp(0, 1) * 2 - 1)[None]


class MultiViewPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "image_encoder->unet->vae"
    _optional_components = ["feature_extractor"]

    def __init__(self, unet, vae, scheduler, image_encoder, view_embeddings, feature_extractor=None,
                 num_views: int = 6, attention: str = "dense", reconstruct_input: bool = True, image_size: int = 512):
        super().__init__()
        if view_embeddings.config.num_views != num_views:
            raise ValueError(f"the pipeline generates {num_views} views but has {view_embeddings.config.num_views} view embeddings")
        self.register_modules(unet=unet, vae=vae, scheduler=scheduler, image_encoder=image_encoder,
                              view_embeddings=view_embeddings, feature_extractor=feature_extractor)
        self.register_to_config(num_views=num_views, attention=attention, reconstruct_input=reconstruct_input, image_size=image_size)
        set_multiview_attention(unet, num_views, attention)  # processors are code, not weights: set on every load

    @torch.no_grad()
    def __call__(self, image, num_inference_steps: int = 50, guidance_scale: float = 3.0, eta: float = 1.0,
                 seed: int | None = None, generator: torch.Generator | None = None, output_type: str = "pil") -> MultiViewOutput:
        if output_type not in ("pil", "pt"):
            raise ValueError(f"output_type {output_type!r} is not one of pil, pt")
        device, dtype = self._execution_device, self.unet.dtype
        if generator is None:
            generator = torch.Generator().manual_seed(0 if seed is None else seed)
        pixels = image_to_pixels(image, self.config.image_size).to(device)
        sf = self.vae.config.scaling_factor
        cond_latent = self.vae.encode(pixels.to(self.vae.dtype)).latent_dist.mode().to(dtype) * sf
        embeds = embed_image(self.image_encoder, pixels.to(self.image_encoder.dtype), self.feature_extractor).to(dtype)
        guided = guidance_scale > 1.0
        if guided:  # [unconditional ; conditional]
            cond_latent = torch.cat([torch.zeros_like(cond_latent), cond_latent])
            embeds = torch.cat([torch.zeros_like(embeds), embeds])

        v = self.config.num_views
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        shape = (1, v, *cond_latent.shape[1:])
        latents = torch.randn(shape, generator=generator, dtype=torch.float32).to(device, dtype) * self.scheduler.init_noise_sigma
        for t in self.progress_bar(self.scheduler.timesteps):
            x = torch.cat([latents] * 2) if guided else latents
            x = self.scheduler.scale_model_input(x, t)
            pred = predict_v(self.unet, self.view_embeddings, x, t.reshape(1).to(device), cond_latent, embeds)
            if guided:
                uncond, cond = pred.chunk(2)
                pred = uncond + guidance_scale * (cond - uncond)
            step = self.scheduler.step(pred.flatten(0, 1), t, latents.flatten(0, 1), eta=eta, generator=generator)
            latents = step.prev_sample.view(shape)
        images = self.vae.decode(latents.flatten(0, 1).to(self.vae.dtype) / sf).sample.float()
        images = ((images + 1) / 2).clamp(0, 1)
        if not self.config.reconstruct_input:  # the ablation never learned view 0: hand the input back
            images[0] = (pixels[0].float() + 1) / 2
        self.maybe_free_model_hooks()
        if output_type == "pt":
            return MultiViewOutput(images=images.cpu())
        arr = (images.permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
        return MultiViewOutput(images=[Image.fromarray(a) for a in arr])
