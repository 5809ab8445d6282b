"""FaceLift's multi-view latent diffusion model: one front image -> the 6 fixed views.

    x_v      = [noisy latent of view v ; VAE latent of the input image]   conv_in 4 -> 8 channels
    class    = image embedding (CLIP, or a small trainable encoder)      UNet class-embedding path
    context  = the embedding of view v                                   cross-attention
    v-pred   = UNet(x, t, context, class), self-attention across the 6 views (mv_attention)

View 0 is the input's own camera (the front view), so the model reconstructs its input as part of
the task; `reconstruct_input=False` (the ablation) leaves view 0 out of the loss and hands the
input back as view 0 at inference. Components are plain diffusers / transformers models; this
module builds them (`tiny` from scratch, `paper` from a user's SD 2.1-unCLIP-style folder) and
wraps the trained part in `MultiViewDenoiser`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import torch
import torch.nn as nn

from facelift_models.cameras import FIXED_VIEWS
from facelift_models.configs import DiffusionConfig
from facelift_models.mv_attention import set_multiview_attention
from facelift_models.mv_conditioning import SmallImageEncoder, ViewEmbeddings, embed_image, is_clip, predict_v

NUM_VIEWS = len(FIXED_VIEWS)  # the 6 fixed views of DESIGN §3
LATENT_CHANNELS = 4
PIPELINE_CLASS = "MultiViewPipeline"


class PretrainedError(ValueError):
    """A --pretrained model that cannot be used; the message is one line for the user."""


# ----------------------------------------------------------------------------- components


@dataclass
class Components:
    """Everything a pipeline holds; `image_encoder` and `view_embeddings` are trainable unless frozen."""

    unet: nn.Module
    vae: nn.Module
    noise_scheduler: object  # DDPMScheduler, v-prediction
    image_encoder: nn.Module
    view_embeddings: ViewEmbeddings
    feature_extractor: object = None  # CLIPImageProcessor when image_encoder is CLIP
    frozen_conditioning: bool = False  # CLIP encoder + text view embeddings stay fixed (FaceLift)


def training_scheduler(config: dict | None = None):
    """DDPM with SD's scaled-linear betas (or the pretrained model's), always v-prediction."""
    from diffusers import DDPMScheduler

    base = (
        dict(config)
        if config
        else dict(
            num_train_timesteps=1000,
            beta_schedule="scaled_linear",
            beta_start=0.00085,
            beta_end=0.012,
            clip_sample=False,
        )
    )
    base.update(prediction_type="v_prediction")
    return DDPMScheduler.from_config(base)


def tiny_vae(cfg: DiffusionConfig):
    from diffusers import AutoencoderKL

    n = len(cfg.vae_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=LATENT_CHANNELS,
        block_out_channels=cfg.vae_channels,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        layers_per_block=1,
        norm_num_groups=16,
        sample_size=cfg.image_size,
    )


def tiny_unet(cfg: DiffusionConfig, latent_size: int):
    from diffusers import UNet2DConditionModel

    n = len(cfg.unet_channels)
    return UNet2DConditionModel(
        sample_size=latent_size,
        in_channels=2 * LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        down_block_types=("CrossAttnDownBlock2D",) * n,
        up_block_types=("CrossAttnUpBlock2D",) * n,
        block_out_channels=cfg.unet_channels,
        layers_per_block=cfg.layers_per_block,
        norm_num_groups=8,
        attention_head_dim=cfg.attention_head_dim,
        cross_attention_dim=cfg.cross_attention_dim,
        class_embed_type="projection",
        projection_class_embeddings_input_dim=cfg.image_embed_dim,
    )


def build_tiny(cfg: DiffusionConfig, vae=None) -> Components:
    """Random-initialised components of the from-scratch model (the VAE may be a trained one)."""
    vae = vae or tiny_vae(cfg)
    latent_size = cfg.image_size // 2 ** (len(vae.config.block_out_channels) - 1)
    return Components(
        unet=tiny_unet(cfg, latent_size),
        vae=vae,
        noise_scheduler=training_scheduler(),
        image_encoder=SmallImageEncoder(embed_dim=cfg.image_embed_dim),
        view_embeddings=ViewEmbeddings(NUM_VIEWS, cfg.view_tokens, cfg.cross_attention_dim),
    )


def resolve_pretrained(name: str) -> str:
    """A local diffusers folder, or a hub id fetched (once, into the HF cache) when online."""
    if os.path.exists(name) and not os.path.isdir(name):
        raise PretrainedError(
            f"--pretrained {name!r} is a file; give a diffusers model folder (with "
            "model_index.json or unet/config.json)"
        )
    path = name
    if not os.path.isdir(name):
        try:
            from huggingface_hub import snapshot_download

            path = snapshot_download(name, allow_patterns=["*.json", "*.txt", "*.safetensors", "*.model"])
        except Exception as e:  # offline, unknown id, gated: all one line
            raise PretrainedError(
                f"--pretrained {name!r} is not a local folder and could not be fetched "
                f"from the hub ({type(e).__name__})"
            ) from None
    if not os.path.exists(os.path.join(path, "unet", "config.json")) or not os.path.exists(
        os.path.join(path, "vae", "config.json")
    ):
        raise PretrainedError(
            f"--pretrained {name!r} is not a diffusers model: it has no unet/config.json and vae/config.json"
        )
    return path


def read_json(path: str) -> dict | None:
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def expand_conv_in(unet, in_channels: int) -> None:
    """conv_in 4 -> 8: the first channels keep the pretrained weights, the new ones start at zero,
    so the pretrained UNet's output is unchanged until training uses the input latent."""
    old = unet.conv_in
    if old.in_channels == in_channels:
        return
    new = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding)
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, : old.in_channels] = old.weight
        new.bias.copy_(old.bias)
    unet.conv_in = new
    unet.register_to_config(in_channels=in_channels)


def add_class_embedding(unet, input_dim: int) -> None:
    """A UNet without a class-embedding path (plain SD) gets a projection one whose output starts
    at zero, so it begins as the pretrained model."""
    from diffusers.models.embeddings import TimestepEmbedding

    if unet.class_embedding is not None:
        return
    time_dim = unet.time_embedding.linear_2.out_features
    emb = TimestepEmbedding(input_dim, time_dim)
    nn.init.zeros_(emb.linear_2.weight)
    nn.init.zeros_(emb.linear_2.bias)
    unet.class_embedding = emb
    unet.register_to_config(class_embed_type="projection", projection_class_embeddings_input_dim=input_dim)


VIEW_PROMPT = "a rendering image of 3D models, {} view, color map."  # FaceLift's per-view "text"


def view_embeddings_from_text(tokenizer, text_encoder, num_views: int) -> ViewEmbeddings:
    """FaceLift's fixed view embeddings: the text encoder's last hidden states of the view prompts."""
    prompts = [VIEW_PROMPT.format(v.name) for v in FIXED_VIEWS[:num_views]]
    ids = tokenizer(
        prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids
    with torch.no_grad():
        hidden = text_encoder(ids.to(text_encoder.device))[0].float().cpu()
    out = ViewEmbeddings(num_views=num_views, tokens=hidden.shape[1], dim=hidden.shape[2])
    out.embeddings.data.copy_(hidden)
    return out


def is_facelift_pipeline(index: dict) -> bool:
    """A model_index.json of a facelift pipeline folder: `_class_name` is "MultiViewPipeline", or
    ["mv_pipeline", "MultiViewPipeline"] where the folder carries its code."""
    name = index.get("_class_name")
    return (name[-1] if isinstance(name, list) and name else name) == PIPELINE_CLASS


def load_pretrained(cfg: DiffusionConfig) -> Components:
    """Components from a diffusers folder: an SD 2.1-unCLIP-style model (unet, vae, scheduler,
    image_encoder + feature_extractor, text_encoder + tokenizer) gets FaceLift's surgery; a saved
    facelift pipeline folder loads as it is (fine-tune further)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    path = resolve_pretrained(cfg.pretrained)
    index = read_json(os.path.join(path, "model_index.json")) or {}
    if is_facelift_pipeline(index):
        views = index.get("num_views", NUM_VIEWS)
        if views != NUM_VIEWS:
            raise PretrainedError(
                f"--pretrained {cfg.pretrained!r} generates {views} views; "
                f"this model needs {NUM_VIEWS} (the fixed views of DESIGN §3)"
            )
    try:
        unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet")
        vae = AutoencoderKL.from_pretrained(path, subfolder="vae")
    except (OSError, ValueError, TypeError) as e:
        raise PretrainedError(
            f"--pretrained {cfg.pretrained!r}: its unet/vae do not load as diffusers "
            f"models ({str(e).splitlines()[0][:160]})"
        ) from None
    if unet.config.in_channels not in (LATENT_CHANNELS, 2 * LATENT_CHANNELS):
        raise PretrainedError(
            f"--pretrained {cfg.pretrained!r} has a UNet with {unet.config.in_channels} input channels; "
            f"expected {LATENT_CHANNELS} (SD) or {2 * LATENT_CHANNELS} (a facelift pipeline)"
        )
    expand_conv_in(unet, 2 * LATENT_CHANNELS)
    noise_scheduler = training_scheduler(read_json(os.path.join(path, "scheduler", "scheduler_config.json")))

    feature_extractor, frozen = None, False
    if (
        os.path.isdir(os.path.join(path, "image_encoder"))
        and index.get("image_encoder", [None, ""])[1] != "SmallImageEncoder"
    ):
        from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

        image_encoder = CLIPVisionModelWithProjection.from_pretrained(path, subfolder="image_encoder")
        if os.path.isdir(os.path.join(path, "feature_extractor")):
            feature_extractor = CLIPImageProcessor.from_pretrained(path, subfolder="feature_extractor")
        frozen = True
    elif os.path.isdir(os.path.join(path, "image_encoder")):
        image_encoder = SmallImageEncoder.from_pretrained(path, subfolder="image_encoder")
    else:
        image_encoder = SmallImageEncoder(embed_dim=cfg.image_embed_dim)
    embed_dim = image_encoder.config.projection_dim if is_clip(image_encoder) else image_encoder.config.embed_dim
    add_class_embedding(unet, 2 * embed_dim if frozen else embed_dim)  # unCLIP-style: [CLIP ; noise level]

    if os.path.isdir(os.path.join(path, "view_embeddings")):
        view_embeddings = ViewEmbeddings.from_pretrained(path, subfolder="view_embeddings")
    elif os.path.isdir(os.path.join(path, "text_encoder")) and os.path.isdir(os.path.join(path, "tokenizer")):
        from transformers import AutoTokenizer, CLIPTextModel

        text_encoder = CLIPTextModel.from_pretrained(path, subfolder="text_encoder")
        view_embeddings = view_embeddings_from_text(
            AutoTokenizer.from_pretrained(path, subfolder="tokenizer"), text_encoder, NUM_VIEWS
        )
        del text_encoder
    else:
        view_embeddings = ViewEmbeddings(NUM_VIEWS, cfg.view_tokens, unet.config.cross_attention_dim)
    if view_embeddings.config.dim != unet.config.cross_attention_dim:
        raise PretrainedError(
            f"--pretrained {cfg.pretrained!r}: view embeddings of width {view_embeddings.config.dim} "
            f"do not fit the UNet's cross-attention ({unet.config.cross_attention_dim})"
        )
    return Components(
        unet, vae, noise_scheduler, image_encoder, view_embeddings, feature_extractor, frozen_conditioning=frozen
    )


def build_components(cfg: DiffusionConfig, vae=None) -> Components:
    return load_pretrained(cfg) if cfg.pretrained else build_tiny(cfg, vae)


# ----------------------------------------------------------------------------- the trained part


class MultiViewDenoiser(nn.Module):
    """UNet + conditioning encoders: (noisy view latents, t, input latent, input image) -> v.

    Frozen conditioning (CLIP, text view embeddings) is held but not trained or checkpointed."""

    def __init__(self, c: Components, cfg: DiffusionConfig):
        super().__init__()
        self.unet, self.image_encoder, self.view_embeddings = c.unet, c.image_encoder, c.view_embeddings
        self.feature_extractor = c.feature_extractor
        self.frozen_conditioning = c.frozen_conditioning
        if c.frozen_conditioning:
            self.image_encoder.requires_grad_(False)
            self.view_embeddings.requires_grad_(False)
        set_multiview_attention(self.unet, NUM_VIEWS, cfg.attention)
        if cfg.gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()

    def trainable_modules(self) -> nn.ModuleDict:
        """What a checkpoint holds (and EMA tracks)."""
        mods = {"unet": self.unet}
        if not self.frozen_conditioning:
            mods.update(image_encoder=self.image_encoder, view_embeddings=self.view_embeddings)
        return nn.ModuleDict(mods)

    def image_embeds(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.frozen_conditioning:
            with torch.no_grad():
                return embed_image(self.image_encoder, pixels, self.feature_extractor)
        return embed_image(self.image_encoder, pixels)

    def forward(
        self,
        noisy: torch.Tensor,
        timesteps: torch.Tensor,
        cond_latent: torch.Tensor,
        pixels: torch.Tensor,
        keep_embed: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The training call: embeds the input image (pixels in [-1, 1]) here, inside forward, so DDP
        sees the image encoder's parameters; `keep_embed` (B,) zeroes dropped embeddings (CFG)."""
        embeds = self.image_embeds(pixels)
        if keep_embed is not None:
            embeds = embeds * keep_embed[:, None].to(embeds.dtype)
        return predict_v(self.unet, self.view_embeddings, noisy, timesteps, cond_latent, embeds)
