"""Render 3D Gaussians: one function, two backends (DESIGN §7).

    render_gaussians(gaussians, w2c, K, height, width, background) -> RenderOutput

- "gsplat" (CUDA): gsplat's `rasterization` in classic mode.
- "torch" (anywhere): a differentiable reference in plain PyTorch with gsplat's classic
  conventions, tile by tile: EWA projection of each Gaussian's covariance, a 0.3 px² low-pass
  added to the 2D covariance, pixel centres at (x + 0.5, y + 0.5), α = min(0.999, o·exp(−½ dᵀΣ⁻¹d)),
  fragments with α < 1/255 dropped, front-to-back compositing by camera depth, colour = SH DC · C0
  + 0.5 clamped at 0, and the background blended by the remaining transmittance.

Memory does not grow with the number of views: `render_views` renders every view without a
graph, and its backward re-renders one view at a time (GS-LRM's deferred backward).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

SH_C0 = 0.28209479177387814  # Y_0^0: colour = SH_C0 · f_dc + 0.5 (3DGS, gsplat)
EPS_2D = 0.3  # px² added to every projected covariance (gsplat's anti-aliasing low-pass, classic mode)
ALPHA_MIN = 1.0 / 255.0  # fragments fainter than this are skipped, as in 3DGS
ALPHA_MAX = 0.999  # keeps a little transmittance so gradients flow through opaque splats
TILE = 16
NEAR, FAR = 0.01, 100.0


@dataclass
class Gaussians:
    """One scene's Gaussians, activated: means (N, 3) world, quats (N, 4) wxyz unit, scales (N, 3)
    world units, opacities (N,) in (0, 1), sh_dc (N, 3) SH degree-0 coefficients."""

    means: torch.Tensor
    quats: torch.Tensor
    scales: torch.Tensor
    opacities: torch.Tensor
    sh_dc: torch.Tensor

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return self.means, self.quats, self.scales, self.opacities, self.sh_dc

    def __len__(self) -> int:
        return self.means.shape[0]


@dataclass
class RenderOutput:
    rgb: torch.Tensor  # (V, H, W, 3)
    alpha: torch.Tensor  # (V, H, W, 1)


def quat_to_rotmat(q: torch.Tensor) -> torch.Tensor:
    """(N, 4) wxyz → (N, 3, 3); normalises first."""
    w, x, y, z = F.normalize(q, dim=-1).unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(-1, 3, 3)


def project(g: Gaussians, w2c: torch.Tensor, K: torch.Tensor):
    """Screen-space splats of one view: means2d (N, 2) px, conics (N, 3) = Σ⁻¹ (a, b, c), depths (N,),
    radii (N,) px (3σ), valid (N,) bool (in front of the near plane)."""
    R, t = w2c[:3, :3], w2c[:3, 3]
    cam = g.means @ R.T + t
    z = cam[:, 2]
    valid = (z > NEAR) & (z < FAR)
    zs = z.clamp(min=NEAR)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    means2d = torch.stack([fx * cam[:, 0] / zs + cx, fy * cam[:, 1] / zs + cy], dim=-1)
    rot = quat_to_rotmat(g.quats)
    M = rot * g.scales[:, None, :]  # R·S
    cov3d = M @ M.transpose(1, 2)
    # Jacobian of the perspective projection at the mean (gsplat clamps x/z, y/z to 1.3× the fov).
    lim_x = 1.3 * 0.5 * (2 * cx) / fx
    lim_y = 1.3 * 0.5 * (2 * cy) / fy
    tx = (cam[:, 0] / zs).clamp(-lim_x, lim_x) * zs
    ty = (cam[:, 1] / zs).clamp(-lim_y, lim_y) * zs
    zero = torch.zeros_like(zs)
    J = torch.stack([fx / zs, zero, -fx * tx / zs**2, zero, fy / zs, -fy * ty / zs**2], dim=-1).reshape(-1, 2, 3)
    cov2d = J @ R @ cov3d @ R.T @ J.transpose(1, 2)
    a = cov2d[:, 0, 0] + EPS_2D
    b = cov2d[:, 0, 1]
    c = cov2d[:, 1, 1] + EPS_2D
    det = (a * c - b * b).clamp(min=1e-12)
    conics = torch.stack([c / det, -b / det, a / det], dim=-1)
    mid = 0.5 * (a + c)
    lam = mid + torch.sqrt((mid * mid - det).clamp(min=0.1))
    radii = torch.ceil(3.0 * torch.sqrt(lam))
    return means2d, conics, z, radii.detach(), valid & (det > 1e-12)


def _render_view_torch(
    g: Gaussians, w2c: torch.Tensor, K: torch.Tensor, height: int, width: int, background: torch.Tensor
):
    """(H, W, 3) colour and (H, W, 1) alpha of one view, differentiable, tile by tile."""
    means2d, conics, depths, radii, valid = project(g, w2c, K)
    colors = (SH_C0 * g.sh_dc + 0.5).clamp(min=0.0)
    order = torch.argsort(depths.detach())
    order = order[valid[order]]
    means2d, conics, radii, colors, opac = (
        means2d[order],
        conics[order],
        radii[order],
        colors[order],
        g.opacities[order],
    )
    rgb_rows, alpha_rows = [], []
    for y0 in range(0, height, TILE):
        rgb_tiles, alpha_tiles = [], []
        for x0 in range(0, width, TILE):
            y1, x1 = min(y0 + TILE, height), min(x0 + TILE, width)
            m = means2d.detach()
            hit = (m[:, 0] + radii > x0) & (m[:, 0] - radii < x1) & (m[:, 1] + radii > y0) & (m[:, 1] - radii < y1)
            idx = torch.nonzero(hit).squeeze(1)
            ys, xs = torch.meshgrid(
                torch.arange(y0, y1, device=m.device), torch.arange(x0, x1, device=m.device), indexing="ij"
            )
            pix = torch.stack([xs, ys], dim=-1).reshape(-1, 2).to(means2d.dtype) + 0.5
            if idx.numel() == 0:
                rgb_tiles.append(background.expand(y1 - y0, x1 - x0, 3))
                alpha_tiles.append(torch.zeros(y1 - y0, x1 - x0, 1, dtype=means2d.dtype, device=m.device))
                continue
            d = pix[:, None, :] - means2d[idx][None]  # (P, n, 2)
            con = conics[idx]
            sigma = 0.5 * (con[:, 0] * d[..., 0] ** 2 + con[:, 2] * d[..., 1] ** 2) + con[:, 1] * d[..., 0] * d[..., 1]
            alpha = (opac[idx] * torch.exp(-sigma)).clamp(max=ALPHA_MAX)
            alpha = torch.where((sigma >= 0) & (alpha >= ALPHA_MIN), alpha, torch.zeros_like(alpha))
            # Transmittance before each fragment, front to back (exclusive cumulative product).
            trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1.0 - alpha[:, :-1]], dim=1), dim=1)
            weights = alpha * trans
            rgb = weights @ colors[idx]
            acc = weights.sum(dim=1, keepdim=True)
            rgb = rgb + (1.0 - acc) * background
            rgb_tiles.append(rgb.reshape(y1 - y0, x1 - x0, 3))
            alpha_tiles.append(acc.reshape(y1 - y0, x1 - x0, 1))
        rgb_rows.append(torch.cat(rgb_tiles, dim=1))
        alpha_rows.append(torch.cat(alpha_tiles, dim=1))
    return torch.cat(rgb_rows, dim=0), torch.cat(alpha_rows, dim=0)


def _render_views_gsplat(
    g: Gaussians, w2c: torch.Tensor, K: torch.Tensor, height: int, width: int, background: torch.Tensor
):
    from gsplat import rasterization

    rgb, alpha, _ = rasterization(
        g.means,
        F.normalize(g.quats, dim=-1),
        g.scales,
        g.opacities,
        g.sh_dc[:, None, :],
        w2c,
        K,
        width,
        height,
        near_plane=NEAR,
        far_plane=FAR,
        sh_degree=0,
        rasterize_mode="classic",
        eps2d=EPS_2D,
    )
    # The background is composited here, as gsplat does (colour + T·background): gsplat 1.5's
    # packed mode rejects per-camera `backgrounds` (it expects one colour for all cameras).
    return rgb + (1.0 - alpha) * background, alpha


def _render_all(backend: str, tensors, w2c, K, height, width, background) -> tuple[torch.Tensor, torch.Tensor]:
    g = Gaussians(*tensors)
    if backend == "gsplat":
        return _render_views_gsplat(g, w2c, K, height, width, background)
    outs = [_render_view_torch(g, w2c[v], K[v], height, width, background) for v in range(w2c.shape[0])]
    return torch.stack([o[0] for o in outs]), torch.stack([o[1] for o in outs])


class _DeferredRender(torch.autograd.Function):
    """Forward: every view without a graph. Backward: re-render one view at a time with a graph,
    push that view's output gradient through it, accumulate into the Gaussians' gradients."""

    @staticmethod
    def forward(ctx, backend, w2c, K, height, width, background, *tensors):
        with torch.no_grad():
            rgb, alpha = _render_all(backend, tensors, w2c, K, height, width, background)
        ctx.backend, ctx.size = backend, (height, width)
        ctx.save_for_backward(w2c, K, background, *tensors)
        return rgb, alpha

    @staticmethod
    def backward(ctx, grad_rgb, grad_alpha):
        w2c, K, background, *tensors = ctx.saved_tensors
        leaves = [t.detach().requires_grad_(need) for t, need in zip(tensors, ctx.needs_input_grad[6:])]
        needs = [t for t in leaves if t.requires_grad]
        grads = [torch.zeros_like(t) for t in leaves]
        if needs:
            for v in range(w2c.shape[0]):
                with torch.enable_grad():
                    rgb, alpha = _render_all(ctx.backend, leaves, w2c[v : v + 1], K[v : v + 1], *ctx.size, background)
                    got = torch.autograd.grad(
                        (rgb, alpha), needs, (grad_rgb[v : v + 1], grad_alpha[v : v + 1]), allow_unused=True
                    )
                it = iter(got)
                for k, t in enumerate(leaves):
                    if t.requires_grad:
                        gk = next(it)
                        if gk is not None:
                            grads[k] += gk
        return (None, None, None, None, None, None, *[gr if t.requires_grad else None for gr, t in zip(grads, leaves)])


def pick_backend(device: torch.device, backend: str = "auto") -> str:
    if backend not in ("auto", "torch", "gsplat"):
        raise ValueError(f"renderer backend {backend!r} is not one of auto, torch, gsplat")
    if backend == "auto":
        if device.type != "cuda":
            return "torch"
        try:
            import gsplat  # noqa: F401
        except ImportError:
            return "torch"
        return "gsplat"
    if backend == "gsplat" and device.type != "cuda":
        raise ValueError("renderer backend 'gsplat' needs CUDA tensors; use 'torch' on the CPU")
    return backend


def render_gaussians(
    gaussians: Gaussians,
    w2c: torch.Tensor,
    K: torch.Tensor,
    height: int,
    width: int,
    background: torch.Tensor | None = None,
    backend: str = "auto",
    deferred: bool = True,
) -> RenderOutput:
    """Render `gaussians` into V views: w2c (V, 4, 4) OpenCV, K (V, 3, 3) pixels, background (3,)
    (white by default). `deferred` keeps one view's graph at a time in the backward pass."""
    if w2c.ndim != 3 or w2c.shape[1:] != (4, 4) or K.shape != (w2c.shape[0], 3, 3):
        raise ValueError(f"w2c must be (V, 4, 4) and K (V, 3, 3), got {tuple(w2c.shape)} and {tuple(K.shape)}")
    device = gaussians.means.device
    backend = pick_backend(device, backend)
    dtype = gaussians.means.dtype
    w2c, K = w2c.to(device, dtype), K.to(device, dtype)
    bg = torch.ones(3, device=device, dtype=dtype) if background is None else background.to(device, dtype)
    tensors = gaussians.tensors()
    if deferred and torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        rgb, alpha = _DeferredRender.apply(backend, w2c, K, height, width, bg, *tensors)
    else:
        rgb, alpha = _render_all(backend, tensors, w2c, K, height, width, bg)
    return RenderOutput(rgb, alpha)
