"""VGG-19 feature loss (GS-LRM / CRN): L1 on the image and on five conv layers' activations.

The network mirrors torchvision's `vgg19().features` layer for layer, so its ImageNet weights load
by name: from a local file (`--vgg-weights PATH`, torchvision's `vgg19-dcbb9e9d.pth`) or, when the
machine can reach it, torchvision's download URL through torch.hub's cache. Without either the
network keeps random weights (tests do this, and the trainer says so in its log): the loss still
compares multi-scale features, only not ImageNet-trained ones.
"""

from __future__ import annotations

import logging
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
# torchvision vgg19 "E" configuration: channels per conv, "M" = max-pool.
VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
# ReLU outputs after conv1_2, conv2_2, conv3_2, conv4_2, conv5_2 (indices in `features`) and the
# weights GS-LRM gives them, after the image term's 1.0.
TAPS = (3, 8, 13, 22, 31)
TAP_WEIGHTS = (1 / 2.6, 1 / 4.8, 1 / 3.7, 1 / 5.6, 10 / 1.5)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

log = logging.getLogger(__name__)


def vgg_features(layout: tuple, last: int) -> nn.Sequential:
    """torchvision's `vgg*().features` for a layout (channels per conv, "M" = max-pool), layer for
    layer so its state dict loads by name, cut after layer `last` (nothing past the last tap is needed)."""
    layers, c = [], 3
    for v in layout:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=False)]
            c = v
    return nn.Sequential(*layers[: last + 1])


def vgg19_features() -> nn.Sequential:
    return vgg_features(VGG19_LAYOUT, TAPS[-1])


class PerceptualLoss(nn.Module):
    def __init__(self, weights: str | None = None):
        """`weights`: a local torchvision vgg19 state dict, "download" for torchvision's URL, or None (random)."""
        super().__init__()
        self.features = vgg19_features()
        self.pretrained = False
        if weights:
            if weights == "download":
                state = torch.hub.load_state_dict_from_url(VGG19_URL, progress=False, map_location="cpu")
            elif not os.path.exists(weights):
                raise ValueError(
                    f"--vgg-weights {weights!r} does not exist; give torchvision's vgg19 .pth or 'download'"
                )
            else:
                try:
                    state = torch.load(weights, map_location="cpu", weights_only=True)
                except Exception as e:
                    raise ValueError(
                        f"--vgg-weights {weights!r} is not a torchvision state dict ({e.__class__.__name__}); "
                        "give vgg19's .pth"
                    ) from None
            own = (
                {k: v for k, v in state.items() if k.startswith("features.") and int(k.split(".")[1]) <= TAPS[-1]}
                if isinstance(state, dict)
                else {}
            )
            try:
                self.features.load_state_dict({k[len("features.") :]: v for k, v in own.items()})
            except RuntimeError:
                raise ValueError(f"--vgg-weights {weights!r} does not hold torchvision's vgg19 features") from None
            self.pretrained = True
        else:
            log.warning(
                "perceptual loss uses a randomly initialised VGG-19 (no --vgg-weights): "
                "fine for tests, not for real training"
            )
        self.features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.features.eval()  # frozen
        return self

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """pred, target (N, 3, H, W) in [0, 1]."""
        loss = F.l1_loss(pred, target)
        x = (torch.cat([pred, target]) - self.mean) / self.std
        tap = 0
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i == TAPS[tap]:
                p, t = x.chunk(2)
                loss = loss + TAP_WEIGHTS[tap] * F.l1_loss(p, t)
                tap += 1
                if tap == len(TAPS):
                    break
        return loss
