"""The Gaussian renderer: the CPU reference against analytic splats, deferred backward, gsplat parity."""

import math

import numpy as np
import pytest
import torch

from facelift_models import cameras
from facelift_models.gaussian_render import ALPHA_MIN, EPS_2D, SH_C0, Gaussians, render_gaussians


def front_camera(size: int):
    c2w = cameras.view_c2w(cameras.FIXED_VIEWS[0])
    w2c = torch.tensor(np.linalg.inv(c2w), dtype=torch.float64)[None]
    K = torch.tensor(cameras.intrinsics(size), dtype=torch.float64)[None]
    return w2c, K


def splats(means, scales, opacities, colours, dtype=torch.float64):
    n = len(means)
    colours = torch.tensor(colours, dtype=dtype)
    return Gaussians(
        means=torch.tensor(means, dtype=dtype),
        quats=torch.tensor([[1.0, 0.0, 0.0, 0.0]] * n, dtype=dtype),
        scales=torch.tensor(scales, dtype=dtype),
        opacities=torch.tensor(opacities, dtype=dtype),
        sh_dc=(colours - 0.5) / SH_C0,  # the SH DC that gives exactly this colour
    )


def test_one_gaussian_footprint_and_colour_match_the_analytic_splat():
    size = 64
    w2c, K = front_camera(size)
    f = K[0, 0, 0].item()
    # At the origin, 2.7 in front of the front camera; isotropic std 0.02 → f·0.02/2.7 px on screen.
    g = splats([[0.0, 0.0, 0.0]], [[0.02, 0.02, 0.02]], [0.8], [[1.0, 0.2, 0.0]])
    out = render_gaussians(g, w2c, K, size, size, background=torch.zeros(3, dtype=torch.float64))
    rgb, alpha = out.rgb[0], out.alpha[0, ..., 0]
    var = (f * 0.02 / 2.7) ** 2 + EPS_2D
    # The origin projects to (32, 32): pixel (31, 31)'s centre is 0.5 px off in x and y.
    for row, col in [(31, 31), (31, 33), (35, 30), (28, 36)]:
        dx, dy = col + 0.5 - 32.0, row + 0.5 - 32.0
        expected = 0.8 * math.exp(-0.5 * (dx * dx + dy * dy) / var)
        expected = expected if expected >= ALPHA_MIN else 0.0
        assert alpha[row, col].item() == pytest.approx(expected, rel=1e-6, abs=1e-9)
        np.testing.assert_allclose(rgb[row, col].numpy(), expected * np.array([1.0, 0.2, 0.0]), rtol=1e-6, atol=1e-9)
    # Far from the splat: background only.
    assert alpha[0, 0].item() == 0.0


def test_nearer_splat_occludes_and_background_fills_the_rest():
    size = 32
    w2c, K = front_camera(size)
    # A red splat nearer the camera (−Y) in front of a green one, both nearly opaque.
    g = splats(
        [[0.0, -0.5, 0.0], [0.0, 0.5, 0.0]], [[0.3] * 3, [0.3] * 3], [0.99, 0.99], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    )
    rgb = render_gaussians(g, w2c, K, size, size).rgb[0]
    centre = rgb[16, 16]
    assert centre[0] > 0.95 and centre[1] < 0.05  # red in front
    g_back = splats(
        [[0.0, 0.5, 0.0], [0.0, -0.5, 0.0]], [[0.3] * 3, [0.3] * 3], [0.99, 0.99], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    )
    assert render_gaussians(g_back, w2c, K, size, size).rgb[0, 16, 16, 1] > 0.95  # order comes from depth, not index
    assert torch.allclose(rgb[0, 0], torch.ones(3, dtype=torch.float64))  # white background by default


def test_anisotropic_splat_follows_its_rotation():
    size = 64
    w2c, K = front_camera(size)
    # Long along world X (screen x): wide horizontally; rotated 90° about the view axis (world Y): tall.
    half = math.sqrt(0.5)
    wide = splats([[0.0, 0.0, 0.0]], [[0.2, 0.01, 0.01]], [0.9], [[1.0, 1.0, 1.0]])
    tall = Gaussians(
        wide.means,
        torch.tensor([[half, 0.0, half, 0.0]], dtype=torch.float64),
        wide.scales,
        wide.opacities,
        wide.sh_dc,
    )
    a_wide = render_gaussians(wide, w2c, K, size, size).alpha[0, ..., 0]
    a_tall = render_gaussians(tall, w2c, K, size, size).alpha[0, ..., 0]
    assert a_wide[32, 38] > 0.2 and a_wide[38, 32] < 0.01  # screen std ≈ 5 px along the long axis
    assert a_tall[38, 32] > 0.2 and a_tall[32, 38] < 0.01


def random_gaussians(n: int, seed: int = 0, dtype=torch.float64) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    return Gaussians(
        means=(torch.rand(n, 3, generator=gen, dtype=dtype) - 0.5) * 1.2,
        quats=torch.randn(n, 4, generator=gen, dtype=dtype),
        scales=torch.rand(n, 3, generator=gen, dtype=dtype) * 0.08 + 0.01,
        opacities=torch.rand(n, generator=gen, dtype=dtype) * 0.9 + 0.05,
        sh_dc=torch.randn(n, 3, generator=gen, dtype=dtype),
    )


def orbit_cameras(size: int, azimuths=(0.0, 60.0, 150.0)):
    c2w = [cameras.look_at_c2w(cameras.camera_position(a, 10.0)) for a in azimuths]
    w2c = torch.tensor(np.stack([np.linalg.inv(c) for c in c2w]))
    K = torch.tensor(np.stack([cameras.intrinsics(size)] * len(azimuths)))
    return w2c, K


def test_deferred_backward_gives_the_same_gradients_as_plain_autograd():
    size = 24
    w2c, K = orbit_cameras(size)
    target = torch.rand(3, size, size, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    grads = []
    for deferred in (True, False):
        g = random_gaussians(60)
        for t in g.tensors():
            t.requires_grad_(True)
        out = render_gaussians(g, w2c, K, size, size, deferred=deferred)
        loss = ((out.rgb - target) ** 2).mean() + out.alpha.mean()
        loss.backward()
        grads.append([t.grad.clone() for t in g.tensors()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    assert all(gr.abs().sum() > 0 for gr in grads[0])  # every parameter receives a gradient


def test_reference_gradients_match_finite_differences():
    size = 12
    w2c, K = orbit_cameras(size, (20.0,))
    g = random_gaussians(5, seed=3)
    for t in g.tensors():
        t.requires_grad_(True)

    def f(means, quats, scales, opacities, sh_dc):
        out = render_gaussians(Gaussians(means, quats, scales, opacities, sh_dc), w2c, K, size, size)
        return out.rgb.sum() + out.alpha.sum()

    assert torch.autograd.gradcheck(f, g.tensors(), eps=1e-6, atol=1e-4, rtol=1e-3)


def test_bad_cameras_and_backend_are_one_line_errors():
    g = random_gaussians(3)
    w2c, K = orbit_cameras(8)
    with pytest.raises(ValueError, match="w2c must be"):
        render_gaussians(g, w2c[0], K, 8, 8)
    with pytest.raises(ValueError, match="backend 'splatty'"):
        render_gaussians(g, w2c, K, 8, 8, backend="splatty")
    with pytest.raises(ValueError, match="needs CUDA"):
        render_gaussians(g, w2c, K, 8, 8, backend="gsplat")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="gsplat parity needs CUDA")
def test_gsplat_and_reference_agree():
    pytest.importorskip("gsplat")
    size = 64
    w2c, K = orbit_cameras(size)
    g = random_gaussians(400, dtype=torch.float32)
    ref = render_gaussians(g, w2c.float(), K.float(), size, size, backend="torch")
    gc = Gaussians(*(t.cuda() for t in g.tensors()))
    fast = render_gaussians(gc, w2c.float(), K.float(), size, size, backend="gsplat")
    assert (fast.rgb.cpu() - ref.rgb).abs().mean() < 2e-3
    assert (fast.alpha.cpu() - ref.alpha).abs().mean() < 2e-3


def test_ply_round_trip_and_turntable(tmp_path):
    from facelift_models.export import PLY_FIELDS, filter_for_export, load_ply, save_ply, save_turntable, turntable

    g = random_gaussians(50, seed=5)
    g.scales = g.scales.clamp(max=0.09)
    path = str(tmp_path / "head.ply")
    assert save_ply(g, path) == 50
    header = open(path, "rb").read(4000).split(b"end_header")[0].decode()
    assert "element vertex 50" in header and all(f"property float {f}" in header for f in PLY_FIELDS)
    back = load_ply(path)
    for a, b in zip(g.tensors(), back.tensors()):
        torch.testing.assert_close(
            b, torch.nn.functional.normalize(a, dim=-1) if a.shape[-1] == 4 else a, rtol=1e-5, atol=1e-5
        )
    faint = Gaussians(g.means, g.quats, g.scales, torch.full((50,), 0.01, dtype=torch.float64), g.sh_dc)
    assert len(filter_for_export(faint)) == 0
    # The reference loader's reading: an independent PLY reader finds every standard property, SH to degree 3.
    from plyfile import PlyData

    vertex = PlyData.read(path)["vertex"]
    names = [p.name for p in vertex.properties]
    assert names[:9] == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"] and names[-8:] == list(
        PLY_FIELDS[-8:]
    )
    assert [n for n in names if n.startswith("f_rest_")] == [f"f_rest_{k}" for k in range(45)]
    np.testing.assert_allclose(vertex["f_dc_1"], g.sh_dc[:, 1].numpy(), rtol=1e-5, atol=1e-6)
    assert vertex.count == 50 and not np.asarray(vertex["f_rest_44"]).any()
    frames = turntable(g, frames=4, size=32)
    assert len(frames) == 4 and frames[0].size == (32, 32)
    assert (
        np.abs(np.asarray(frames[0], dtype=float) - np.asarray(frames[2], dtype=float)).mean() > 1.0
    )  # the views differ
    save_turntable(frames, str(tmp_path / "turn.gif"))
    assert (tmp_path / "turn.gif").stat().st_size > 0
    import imageio_ffmpeg

    save_turntable(frames[:3] * 5, str(tmp_path / "turn.mp4"), fps=30)  # 15 frames of 32²
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "turn.mp4"))
    meta = next(reader)
    assert meta["codec"] == "h264" and meta["size"] == (32, 32) and sum(1 for _ in reader) == 15


def test_export_filters_drop_floaters_and_what_lies_outside_the_crop_box():
    from facelift_models.export import ExportFilters, filter_for_export

    torch.manual_seed(0)
    head = torch.randn(400, 3, dtype=torch.float64) * 0.3  # a blob at the origin, inside the crop box
    floaters = torch.tensor([[0.0, -2.0, 0.0], [0.0, -1.9, 0.1]], dtype=torch.float64)  # 0.7-0.8 from the front camera
    outside = torch.tensor([[0.0, 0.0, 1.5]], dtype=torch.float64)  # above the box, far from every camera
    means = torch.cat([head, floaters, outside])
    n = len(means)
    g = Gaussians(
        means,
        torch.tensor([[1.0, 0, 0, 0]], dtype=torch.float64).expand(n, 4),
        torch.full((n, 3), 0.01, dtype=torch.float64),
        torch.full((n,), 0.9, dtype=torch.float64),
        torch.zeros(n, 3, dtype=torch.float64),
    )
    origins = torch.tensor(np.stack([cameras.view_c2w(v)[:3, 3] for v in cameras.FIXED_VIEWS]))
    kept = filter_for_export(g, ExportFilters(), camera_origins=origins)
    inside = (head.abs() <= torch.tensor([0.91, 0.91, 1.0], dtype=torch.float64)).all(dim=1)
    assert len(kept) == int(inside.sum())
    torch.testing.assert_close(kept.means, head[inside])
    assert len(filter_for_export(g, ExportFilters(floater=None, crop_box=None), camera_origins=origins)) == n
