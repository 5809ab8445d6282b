"""`MultiViewPipeline`: one image -> the 6 fixed views (front, front_right, right, back, left,
front_left), with DDIM and classifier-free guidance. A saved folder is self-describing: this file
and the few it imports are copied beside `model_index.json`, so diffusers' own entry point opens it
on any machine with diffusers, facelift installed or not:

    pipe = DiffusionPipeline.from_pretrained("runs/diffusion/pipeline", trust_remote_code=True)
    views = pipe(Image.open("face.png"), num_inference_steps=50, guidance_scale=3.0, seed=4).images

The unconditional branch zeroes both the input latent and the image embedding (FaceLift).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput
from PIL import Image

# Relative imports only: these files are copied beside model_index.json (see `save_pretrained`).
from .configs import ATTENTION_MODES
from .mv_attention import set_multiview_attention
from .mv_conditioning import embed_image, predict_v

# The code a saved folder carries: the pipeline with its relative imports, and the module of the
# custom components (view embeddings, the small image encoder) in each such component's folder.
PIPELINE_CODE = (
    "mv_pipeline.py",
    "mv_attention.py",
    "mv_conditioning.py",
    "configs.py",
)  # (diffusers copies direct relative imports only)
COMPONENT_CODE = ("mv_conditioning.py",)


@dataclass
class MultiViewOutput(BaseOutput):
    images: list  # V PIL images (a list of such lists for a list of inputs), or a (V, 3, H, W) /
    #               (B, V, 3, H, W) tensor in [0, 1] with output_type="pt"


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
            raise ValueError(
                f"the input must be a PIL image, a uint8 array or a (3, H, W) tensor, not {type(image).__name__}"
            )
        rgba = pil.convert("RGBA").resize((size, size), Image.Resampling.BICUBIC)
        a = np.asarray(rgba, dtype=np.float32) / 255.0
        x = torch.from_numpy(a[..., :3] * a[..., 3:] + (1.0 - a[..., 3:])).permute(2, 0, 1)
    return (x.clamp(0, 1) * 2 - 1)[None]


class MultiViewPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "image_encoder->unet->vae"
    _optional_components = ["feature_extractor"]

    def __init__(
        self,
        unet,
        vae,
        scheduler,
        image_encoder,
        view_embeddings,
        feature_extractor=None,
        num_views: int = 6,
        attention: str = "dense",
        reconstruct_input: bool = True,
        image_size: int = 512,
        face_alignment: dict | None = None,
    ):
        super().__init__()
        if attention not in ATTENTION_MODES:
            raise ValueError(f"attention {attention!r} is not one of {', '.join(ATTENTION_MODES)}")
        if view_embeddings.config.num_views != num_views:
            raise ValueError(
                f"the pipeline generates {num_views} views but has {view_embeddings.config.num_views} view embeddings"
            )
        self.register_modules(
            unet=unet, vae=vae, scheduler=scheduler, image_encoder=image_encoder, view_embeddings=view_embeddings
        )
        self.register_modules(feature_extractor=feature_extractor)  # optional: None where the encoder is not CLIP
        # face_alignment: the training data's front-view face box statistics (its dataset card), which
        # `facelift infer` aligns photos to; None: FaceLift's constants
        self.register_to_config(
            num_views=num_views,
            attention=attention,
            reconstruct_input=reconstruct_input,
            image_size=image_size,
            face_alignment=face_alignment,
        )
        set_multiview_attention(unet, num_views, attention)  # processors are code, not weights: set on every load

    @torch.no_grad()
    def __call__(
        self,
        image,
        num_inference_steps: int = 50,
        guidance_scale: float = 3.0,
        eta: float = 1.0,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        output_type: str = "pil",
    ) -> MultiViewOutput:
        """`image`: one image, or a list of them generated as one batch. Each image of a batch gets
        the noise it would get alone (a generator per image, seeded `seed`), so batching never
        changes a result."""
        if output_type not in ("pil", "pt"):
            raise ValueError(f"output_type {output_type!r} is not one of pil, pt")
        batched = isinstance(image, (list, tuple))
        images = list(image) if batched else [image]
        if not images:
            raise ValueError("no input images")
        device, dtype = self._execution_device, self.unet.dtype
        if generator is None:
            generators = [torch.Generator().manual_seed(0 if seed is None else seed) for _ in images]
        else:
            generators = [generator] * len(images)
        pixels = torch.cat([image_to_pixels(im, self.config.image_size) for im in images]).to(device)
        sf = self.vae.config.scaling_factor
        cond_latent = self.vae.encode(pixels.to(self.vae.dtype)).latent_dist.mode().to(dtype) * sf
        embeds = embed_image(self.image_encoder, pixels.to(self.image_encoder.dtype), self.feature_extractor).to(dtype)
        guided = guidance_scale > 1.0
        if guided:  # [unconditional ; conditional]
            cond_latent = torch.cat([torch.zeros_like(cond_latent), cond_latent])
            embeds = torch.cat([torch.zeros_like(embeds), embeds])

        b, v = len(images), self.config.num_views
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        shape = (b, v, *cond_latent.shape[1:])
        latents = torch.stack([torch.randn(shape[1:], generator=g, dtype=torch.float32) for g in generators])
        latents = latents.to(device, dtype) * self.scheduler.init_noise_sigma
        step_generators = [
            g for g in generators for _ in range(v)
        ]  # the DDIM noise of image k's views from its own generator
        for t in self.progress_bar(self.scheduler.timesteps):
            x = torch.cat([latents] * 2) if guided else latents
            x = self.scheduler.scale_model_input(x, t)
            pred = predict_v(self.unet, self.view_embeddings, x, t.reshape(1).to(device), cond_latent, embeds)
            if guided:
                uncond, cond = pred.chunk(2)
                pred = uncond + guidance_scale * (cond - uncond)
            step = self.scheduler.step(
                pred.flatten(0, 1), t, latents.flatten(0, 1), eta=eta, generator=step_generators
            )
            latents = step.prev_sample.view(shape)
        out = self.vae.decode(latents.flatten(0, 1).to(self.vae.dtype) / sf).sample.float()
        out = ((out + 1) / 2).clamp(0, 1).view(b, v, *out.shape[1:])
        if not self.config.reconstruct_input:  # the ablation never learned view 0: hand the input back
            out[:, 0] = (pixels.float() + 1) / 2
        self.maybe_free_model_hooks()
        if output_type == "pt":
            return MultiViewOutput(images=out.cpu() if batched else out[0].cpu())
        arr = (out.permute(0, 1, 3, 4, 2).cpu().numpy() * 255).round().astype(np.uint8)
        pils = [[Image.fromarray(a) for a in views] for views in arr]
        return MultiViewOutput(images=pils if batched else pils[0])

    def save_pretrained(self, save_directory, **kwargs):
        """diffusers' save, plus the code that makes the folder open with
        `DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)` without facelift."""
        super().save_pretrained(save_directory, **kwargs)
        here = os.path.dirname(os.path.abspath(__file__))
        for name in PIPELINE_CODE:
            shutil.copyfile(os.path.join(here, name), os.path.join(save_directory, name))
        index_path = os.path.join(save_directory, "model_index.json")
        with open(index_path) as f:
            index = json.load(f)
        index["_class_name"] = ["mv_pipeline", type(self).__name__]  # the file beside model_index.json
        for component in ("view_embeddings", "image_encoder"):
            module = getattr(self, component, None)
            if module is not None and type(module).__module__.rsplit(".", 1)[-1] == "mv_conditioning":
                index[component] = ["mv_conditioning", type(module).__name__]
                for name in COMPONENT_CODE:
                    shutil.copyfile(os.path.join(here, name), os.path.join(save_directory, component, name))
        with open(index_path, "w") as f:
            json.dump(index, f, indent=2, sort_keys=True)
            f.write("\n")
