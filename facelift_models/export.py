"""Gaussians out: the standard 3DGS `.ply` (DESIGN §7) and a turntable of renders.

The `.ply` stores what the original 3DGS code and every viewer read: positions, zero normals,
SH DC colour, opacity as a logit, log scales and wxyz rotations, binary little-endian float32.
FaceLift filters before export (opacity > 0.04, scale < 0.1); `filter_for_export` does the same.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from facelift_models import cameras
from facelift_models.gaussian_render import Gaussians, render_gaussians

PLY_FIELDS = ("x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
              "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")
MIN_OPACITY = 0.04
MAX_SCALE = 0.1


def filter_for_export(g: Gaussians, min_opacity: float = MIN_OPACITY, max_scale: float = MAX_SCALE) -> Gaussians:
    keep = (g.opacities > min_opacity) & (g.scales.max(dim=-1).values < max_scale)
    return Gaussians(*(t[keep] for t in g.tensors()))


def save_ply(g: Gaussians, path: str) -> int:
    """Write `g` as a 3DGS .ply; returns the number of splats written."""
    n = len(g)
    opacity = g.opacities.detach().double().clamp(1e-6, 1 - 1e-6)
    cols = [
        g.means.detach().double(),
        torch.zeros(n, 3, dtype=torch.float64),
        g.sh_dc.detach().double(),
        torch.log(opacity / (1 - opacity))[:, None],
        torch.log(g.scales.detach().double().clamp(min=1e-12)),
        torch.nn.functional.normalize(g.quats.detach().double(), dim=-1),
    ]
    data = torch.cat(cols, dim=1).cpu().numpy().astype("<f4")
    header = "ply\nformat binary_little_endian 1.0\n" + f"element vertex {n}\n" + "".join(f"property float {f}\n" for f in PLY_FIELDS) + "end_header\n"
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(data.tobytes())
    return n


def load_ply(path: str) -> Gaussians:
    """Read a 3DGS .ply written by `save_ply` (or any with the same float properties)."""
    with open(path, "rb") as f:
        raw = f.read()
    end = raw.index(b"end_header\n") + len(b"end_header\n")
    lines = raw[:end].decode("ascii").splitlines()
    if lines[:2] != ["ply", "format binary_little_endian 1.0"]:
        raise ValueError(f"{path} is not a binary little-endian .ply")
    n = int(next(l for l in lines if l.startswith("element vertex")).split()[-1])
    names = [l.split()[-1] for l in lines if l.startswith("property float")]
    table = np.frombuffer(raw[end:], dtype="<f4", count=n * len(names)).reshape(n, len(names))
    col = {name: torch.from_numpy(table[:, k].astype(np.float64)) for k, name in enumerate(names)}
    stack = lambda *ks: torch.stack([col[k] for k in ks], dim=-1)  # noqa: E731
    return Gaussians(
        means=stack("x", "y", "z"),
        quats=stack("rot_0", "rot_1", "rot_2", "rot_3"),
        scales=torch.exp(stack("scale_0", "scale_1", "scale_2")),
        opacities=torch.sigmoid(col["opacity"]),
        sh_dc=stack("f_dc_0", "f_dc_1", "f_dc_2"),
    )


@torch.no_grad()
def turntable(g: Gaussians, frames: int = 36, size: int = 256, elevation_deg: float = 10.0, backend: str = "auto") -> list[Image.Image]:
    """Renders from `frames` azimuths around the head (DESIGN §3 cameras), on white."""
    images = []
    K = torch.tensor(cameras.intrinsics(size))[None]
    for k in range(frames):
        c2w = cameras.look_at_c2w(cameras.camera_position(360.0 * k / frames, elevation_deg))
        w2c = torch.tensor(np.linalg.inv(c2w))[None]
        rgb = render_gaussians(g, w2c, K, size, size, backend=backend).rgb[0]
        images.append(Image.fromarray((rgb.clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)))
    return images


def save_turntable(images: list[Image.Image], path: str, fps: float = 12.0) -> None:
    """An animated GIF that loops."""
    if not path.endswith(".gif"):
        raise ValueError(f"turntable path {path!r} must end in .gif")
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(math.ceil(1000 / fps)), loop=0)
