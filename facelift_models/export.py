"""Gaussians out: the standard 3DGS `.ply` (DESIGN §7) and a turntable of renders.

The `.ply` stores what the original 3DGS code and every viewer read: positions, zero normals,
SH DC colour, 45 zero higher-order SH coefficients (`f_rest_*`: the reference loader reads SH of
degree 3 and refuses a file without them), opacity as a logit, log scales and wxyz rotations,
binary little-endian float32.

Before export FaceLift drops splats by four filters (its `inference.py` defaults, used here):
opacity > 0.04, largest scale < 0.1, floaters (0.6, see `floater_mask`) and a crop box
[−0.91, 0.91, −0.91, 0.91, −1, 1] (x, y, z in DESIGN §3's world).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from facelift_models import cameras
from facelift_models.configs import ExportFilters
from facelift_models.gaussian_render import Gaussians, render_gaussians

SH_REST = 45  # (degree 3: 16 coefficients per channel) − the DC one, × 3 channels
PLY_FIELDS = (
    "x",
    "y",
    "z",
    "nx",
    "ny",
    "nz",
    "f_dc_0",
    "f_dc_1",
    "f_dc_2",
    *(f"f_rest_{k}" for k in range(SH_REST)),
    "opacity",
    "scale_0",
    "scale_1",
    "scale_2",
    "rot_0",
    "rot_1",
    "rot_2",
    "rot_3",
)

# FaceLift's turntable: 150 frames at elevation 0, 30 fps, azimuth 270 → 630 in its convention
# (x = cos az, y = sin az), which starts at the front and turns the camera toward +X. In DESIGN §3's
# azimuths that is 0 → −360 (the camera passes the head's left side first).
TURNTABLE_FRAMES = 150
TURNTABLE_FPS = 30.0
TURNTABLE_START_DEG = 0.0
TURNTABLE_SWEEP_DEG = -360.0


def floater_mask(means: torch.Tensor, camera_origins: torch.Tensor, threshold: float) -> torch.Tensor:
    """True for a floater: a splat nearer to one of the input cameras than `threshold` × the median
    distance of all splats from that camera. Pixel-aligned splats that stop short of the surface
    float in front of the camera that made them; the head itself lies near the median distance."""
    dist = torch.cdist(means.double(), camera_origins.to(means.device).double())  # (N, C)
    return (dist < threshold * dist.median(dim=0).values).any(dim=1)


def filter_for_export(
    g: Gaussians, filters: ExportFilters = ExportFilters(), camera_origins: torch.Tensor | None = None
) -> Gaussians:
    """The splats that pass every filter that is on (the floater filter needs the input cameras)."""
    keep = torch.ones(len(g), dtype=torch.bool, device=g.means.device)
    if filters.min_opacity is not None:
        keep &= g.opacities > filters.min_opacity
    if filters.max_scale is not None:
        keep &= g.scales.max(dim=-1).values < filters.max_scale
    if filters.crop_box is not None:
        lo = g.means.new_tensor(filters.crop_box[0::2])
        hi = g.means.new_tensor(filters.crop_box[1::2])
        keep &= ((g.means >= lo) & (g.means <= hi)).all(dim=-1)
    if filters.floater is not None and camera_origins is not None and len(g):
        keep &= ~floater_mask(g.means, camera_origins, filters.floater)
    return Gaussians(*(t[keep] for t in g.tensors()))


def save_ply(g: Gaussians, path: str) -> int:
    """Write `g` as a 3DGS .ply; returns the number of splats written."""
    n = len(g)
    opacity = g.opacities.detach().double().cpu().clamp(1e-6, 1 - 1e-6)
    cols = [
        g.means.detach().double().cpu(),
        torch.zeros(n, 3, dtype=torch.float64),
        g.sh_dc.detach().double().cpu(),
        torch.zeros(n, SH_REST, dtype=torch.float64),
        torch.log(opacity / (1 - opacity))[:, None],
        torch.log(g.scales.detach().double().cpu().clamp(min=1e-12)),
        torch.nn.functional.normalize(g.quats.detach().double().cpu(), dim=-1),
    ]
    data = torch.cat(cols, dim=1).numpy().astype("<f4")
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        + f"element vertex {n}\n"
        + "".join(f"property float {f}\n" for f in PLY_FIELDS)
        + "end_header\n"
    )
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(data.tobytes())
    return n


def load_ply(path: str) -> Gaussians:
    """Read a 3DGS .ply (this module's or any with the same float properties; SH beyond DC is ignored)."""
    with open(path, "rb") as f:
        raw = f.read()
    end = raw.index(b"end_header\n") + len(b"end_header\n")
    lines = raw[:end].decode("ascii").splitlines()
    if lines[:2] != ["ply", "format binary_little_endian 1.0"]:
        raise ValueError(f"{path} is not a binary little-endian .ply")
    n = int(next(ln for ln in lines if ln.startswith("element vertex")).split()[-1])
    names = [ln.split()[-1] for ln in lines if ln.startswith("property float")]
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
def turntable(
    g: Gaussians,
    frames: int = TURNTABLE_FRAMES,
    size: int = 256,
    elevation_deg: float = 0.0,
    start_deg: float = TURNTABLE_START_DEG,
    sweep_deg: float = TURNTABLE_SWEEP_DEG,
    backend: str = "auto",
) -> list[Image.Image]:
    """Renders from `frames` azimuths (DESIGN §3 cameras) start, start + sweep/frames, …, on white."""
    images = []
    K = torch.tensor(cameras.intrinsics(size))[None]
    for k in range(frames):
        c2w = cameras.look_at_c2w(cameras.camera_position(start_deg + sweep_deg * k / frames, elevation_deg))
        w2c = torch.tensor(np.linalg.inv(c2w))[None]
        rgb = render_gaussians(g, w2c, K, size, size, backend=backend).rgb[0]
        images.append(Image.fromarray((rgb.clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)))
    return images


def save_turntable(images: list[Image.Image], path: str, fps: float = TURNTABLE_FPS) -> None:
    """`.mp4`: H.264 (yuv420p, what every player and browser plays) through the ffmpeg binary that
    the `imageio-ffmpeg` wheel ships; `.gif`: an animated GIF that loops."""
    if path.endswith(".gif"):
        images[0].save(path, save_all=True, append_images=images[1:], duration=int(math.ceil(1000 / fps)), loop=0)
        return
    if not path.endswith(".mp4"):
        raise ValueError(f"turntable path {path!r} must end in .mp4 or .gif")
    import imageio_ffmpeg

    w, h = images[0].size
    # yuv420p needs even sides: pad by one white pixel where odd (macro_block_size=1 keeps the size as given)
    pw, ph = w + w % 2, h + h % 2
    writer = imageio_ffmpeg.write_frames(
        path,
        (pw, ph),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        macro_block_size=1,
        output_params=["-crf", "18"],
        ffmpeg_log_level="error",
    )
    writer.send(None)
    for im in images:
        frame = Image.new("RGB", (pw, ph), (255, 255, 255))
        frame.paste(im.convert("RGB"), (0, 0))
        writer.send(np.ascontiguousarray(np.asarray(frame)).tobytes())
    writer.close()
