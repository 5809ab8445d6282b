"""Image metrics of `facelift eval`, as FaceLift's evaluation helpers compute them.

- PSNR on the full image in [0, 1], no mask.
- SSIM with an 11-px Gaussian window (σ 1.5), K1 0.01, K2 0.03, data range 1, population
  covariances (Wang et al.'s settings; scikit-image's `structural_similarity(gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False)`), per channel, the map's border of 5 px left out.
- LPIPS with the VGG-16 backbone (FaceLift's choice; other repos use AlexNet, so numbers across
  repos are not directly comparable): the backbone's ImageNet weights from a local file
  (torchvision's `vgg16-397923af.pth`), the linear heads from the `lpips` wheel
  (`lpips/weights/v0.1/vgg.pth`). Without the backbone file LPIPS is unavailable: never computed
  with random weights.
"""

from __future__ import annotations

import importlib.util
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from training.perceptual import vgg_features

SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """pred, target (3, H, W) in [0, 1]."""
    mse = float(((pred.double() - target.double()) ** 2).mean())
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(pred: torch.Tensor, target: torch.Tensor) -> float:
    """pred, target (3, H, W) in [0, 1] (H, W ≥ 11)."""
    x, y = pred.double()[:, None], target.double()[:, None]  # channels as a batch of grey images
    g = _gaussian_window(SSIM_WINDOW, SSIM_SIGMA)
    kernel = (g[:, None] * g[None, :])[None, None]

    def blur(t: torch.Tensor) -> torch.Tensor:  # 'valid' filtering: exactly the map without its 5-px border
        return F.conv2d(t, kernel)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.mean())


# ----------------------------------------------------------------------------- LPIPS (VGG)

VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
LPIPS_TAPS = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 in torchvision's vgg16().features
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
LPIPS_HEADS = ("lpips", "weights", "v0.1", "vgg.pth")


class LPIPS(nn.Module):
    """LPIPS-VGG: unit-normalised VGG-16 activations at five taps, squared differences weighted by
    the learned 1×1 heads, averaged over the image, summed over the taps."""

    def __init__(self, backbone: dict, heads: dict):
        super().__init__()
        self.features = vgg_features(VGG16_LAYOUT, LPIPS_TAPS[-1])
        self.features.load_state_dict(
            {
                k[len("features.") :]: v
                for k, v in backbone.items()
                if k.startswith("features.") and int(k.split(".")[1]) <= LPIPS_TAPS[-1]
            }
        )
        self.heads = nn.ParameterList(
            [
                nn.Parameter(heads[f"lin{k}.model.1.weight"].float(), requires_grad=False)
                for k in range(len(LPIPS_TAPS))
            ]
        )
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False).eval()

    @torch.no_grad()
    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """pred, target (N, 3, H, W) in [0, 1] -> (N,)."""
        x = ((torch.cat([pred, target]).float() * 2 - 1) - self.shift) / self.scale
        total, tap = 0.0, 0
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i == LPIPS_TAPS[tap]:
                a, b = x.chunk(2)
                a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
                b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
                total = total + F.conv2d((a - b) ** 2, self.heads[tap]).mean(dim=(1, 2, 3))
                tap += 1
        return total


def lpips_heads_path() -> str | None:
    spec = importlib.util.find_spec(
        LPIPS_HEADS[0]
    )  # the wheel's files, without importing lpips (it needs torchvision)
    path = (
        os.path.join(spec.submodule_search_locations[0], *LPIPS_HEADS[1:])
        if spec and spec.submodule_search_locations
        else None
    )
    return path if path and os.path.isfile(path) else None


def load_lpips(vgg16_path: str | None) -> tuple[LPIPS | None, str]:
    """(the metric or None, why it is unavailable or what it is)."""
    if not vgg16_path:
        return (
            None,
            "unavailable: give --lpips-vgg PATH (torchvision's vgg16-397923af.pth); not computed with random weights",
        )
    heads = lpips_heads_path()
    if heads is None:
        return (
            None,
            "unavailable: the lpips wheel (its linear heads) is not installed: pip install --no-deps lpips==0.1.4",
        )
    if not os.path.isfile(vgg16_path):
        raise ValueError(
            f"--lpips-vgg {vgg16_path!r} is not a file; give torchvision's vgg16 weights (vgg16-397923af.pth)"
        )
    try:
        backbone = torch.load(vgg16_path, map_location="cpu", weights_only=True)
        model = LPIPS(backbone, torch.load(heads, map_location="cpu", weights_only=True))
    except Exception as e:  # a file of another network, or not a state dict
        raise ValueError(
            f"--lpips-vgg {vgg16_path!r} does not hold torchvision's vgg16 features ({e.__class__.__name__})"
        ) from None
    return model, "LPIPS-VGG (lpips 0.1.4 heads, v0.1)"
