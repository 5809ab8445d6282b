"""GS-LRM: posed views → one 3D Gaussian per pixel (FaceLift's reconstructor).

    tokens  = Linear(patchify([RGB·2−1, ray channels]))        per view, patch p, no bias
    x       = LayerNorm(concat of all views' tokens)
    x       = Transformer(x)                                    pre-LN, no biases, GELU MLP ×4, SDPA
    params  = unpatchify(Linear(LayerNorm(x)))                 14 per pixel
    splats  = activations(params, rays)                         depth along the pixel's ray, …

Every constant of the activations is FaceLift's (../shared/NOTES-recipes.md) and documented below.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from facelift_models.configs import LRMConfig
from facelift_models.gaussian_render import Gaussians

PARAMS_PER_PIXEL = 14  # xyz 3 (→ depth), SH-DC colour 3, scale 3, rotation 4 (wxyz), opacity 1

# Activations (FaceLift / GS-LRM):
DEPTH_HALF_RANGE = 1.8  # depth = (2·sigmoid(mean xyz) − 1)·1.8 + (−o·d): within ±1.8 of the ray's closest
#                         approach to the origin, i.e. [0.9, 4.5] from a camera at radius 2.7
SCALE_SHIFT = 2.3  # scale = exp(min(s − 2.3, −1.2)): a zero output is exp(−2.3) ≈ 0.1 …
SCALE_MAX_LOG = -1.2  # … and no splat grows past exp(−1.2) ≈ 0.30 scene units
OPACITY_SHIFT = 2.0  # opacity = sigmoid(x − 2): a zero output starts at 0.12, mostly transparent
INIT_STD = 0.02


# ----------------------------------------------------------------------------- rays


def pixel_rays(c2w: torch.Tensor, K: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Origins and unit directions (…, H, W, 3) through pixel centres of OpenCV cameras c2w (…, 4, 4), K (…, 3, 3)."""
    ys, xs = torch.meshgrid(
        torch.arange(height, device=c2w.device, dtype=c2w.dtype) + 0.5,
        torch.arange(width, device=c2w.device, dtype=c2w.dtype) + 0.5,
        indexing="ij",
    )
    fx, fy = K[..., 0, 0, None, None], K[..., 1, 1, None, None]
    cx, cy = K[..., 0, 2, None, None], K[..., 1, 2, None, None]
    cam = torch.stack([(xs - cx) / fx, (ys - cy) / fy, torch.ones_like((xs - cx) / fx)], dim=-1)
    dirs = F.normalize(torch.einsum("...ij,...hwj->...hwi", c2w[..., :3, :3], cam), dim=-1)
    origins = c2w[..., None, None, :3, 3].expand_as(dirs)
    return origins, dirs


def ray_channels(origins: torch.Tensor, dirs: torch.Tensor, encoding: str) -> torch.Tensor:
    """6 ray channels per pixel (…, 6)."""
    if encoding == "plucker":
        return torch.cat([torch.cross(origins, dirs, dim=-1), dirs], dim=-1)
    nearest = origins + (-(origins * dirs).sum(-1, keepdim=True)) * dirs  # the ray's point closest to the origin
    return torch.cat([dirs, nearest], dim=-1)


# ----------------------------------------------------------------------------- transformer


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.proj = nn.Linear(width, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # flash / memory-efficient kernels on GPU
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, bias=False)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width, bias=False)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden, bias=False), nn.GELU(), nn.Linear(hidden, width, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


# ----------------------------------------------------------------------------- model


class GSLRM(nn.Module):
    def __init__(self, cfg: LRMConfig):
        super().__init__()
        self.cfg = cfg
        p = cfg.patch
        self.tokenize = nn.Linear(9 * p * p, cfg.width, bias=False)
        self.input_norm = nn.LayerNorm(cfg.width, bias=False)
        self.blocks = nn.ModuleList(Block(cfg.width, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.layers))
        self.head_norm = nn.LayerNorm(cfg.width, bias=False)
        self.head = nn.Linear(cfg.width, PARAMS_PER_PIXEL * p * p, bias=False)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=INIT_STD)

    def forward(self, images: torch.Tensor, c2w: torch.Tensor, K: torch.Tensor) -> list[Gaussians]:
        """images (B, V, 3, H, W) in [0, 1], c2w (B, V, 4, 4) OpenCV, K (B, V, 3, 3) → one `Gaussians`
        per batch element (B·V·H·W splats in all), as a list."""
        b, v, _, h, w = images.shape
        p = self.cfg.patch
        origins, dirs = pixel_rays(c2w, K, h, w)  # (B, V, H, W, 3)
        rays = ray_channels(origins, dirs, self.cfg.ray_encoding).permute(0, 1, 4, 2, 3)
        x = torch.cat([images * 2.0 - 1.0, rays.to(images.dtype)], dim=2)  # (B, V, 9, H, W)
        x = (
            x.reshape(b, v, 9, h // p, p, w // p, p)
            .permute(0, 1, 3, 5, 2, 4, 6)
            .reshape(b, v * (h // p) * (w // p), 9 * p * p)
        )
        x = self.input_norm(self.tokenize(x))
        for block in self.blocks:
            x = (
                checkpoint(block, x, use_reentrant=False)
                if self.cfg.gradient_checkpointing and self.training
                else block(x)
            )
        out = self.head(self.head_norm(x))  # (B, V·h'·w', p·p·14)
        out = (
            out.reshape(b, v, h // p, w // p, PARAMS_PER_PIXEL, p, p)
            .permute(0, 1, 2, 5, 3, 6, 4)
            .reshape(b, v, h, w, PARAMS_PER_PIXEL)
        )
        return [activate(out[i].float(), origins[i].float(), dirs[i].float()) for i in range(b)]


def activate(raw: torch.Tensor, origins: torch.Tensor, dirs: torch.Tensor) -> Gaussians:
    """(V, H, W, 14) raw outputs and their pixels' rays → Gaussians (V·H·W)."""
    raw, origins, dirs = raw.reshape(-1, PARAMS_PER_PIXEL), origins.reshape(-1, 3), dirs.reshape(-1, 3)
    xyz, colour, scale, rotation, opacity = raw.split([3, 3, 3, 4, 1], dim=-1)
    closest = -(origins * dirs).sum(-1, keepdim=True)
    depth = (2.0 * torch.sigmoid(xyz.mean(-1, keepdim=True)) - 1.0) * DEPTH_HALF_RANGE + closest
    return Gaussians(
        means=origins + depth * dirs,
        quats=F.normalize(rotation, dim=-1),
        scales=torch.exp((scale - SCALE_SHIFT).clamp(max=SCALE_MAX_LOG)),
        opacities=torch.sigmoid(opacity.squeeze(-1) - OPACITY_SHIFT),
        sh_dc=colour,
    )


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def lr_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: weight decay on matrices (≥ 2-D) only, as GS-LRM."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    rest = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
