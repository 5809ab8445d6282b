"""GS-LRM: rays, activations, view picks, and `facelift train lrm` on real test shards."""

import json
import math

import numpy as np
import pytest
import torch

from conftest import facelift, foreign_tar, train_args, write_card_listing
from facelift_models import cameras
from facelift_models.lrm import (
    DEPTH_HALF_RANGE,
    GSLRM,
    OPACITY_SHIFT,
    activate,
    pixel_rays,
    ray_channels,
)
from presets import override
from training.loop import warmup_cosine
from training.lrm_data import ViewPick, pick_views
from training.presets import LRM_PRESETS
from training.shards import DataError


def fixed_cameras(size: int, views=(0, 2, 3, 4)):
    c2w = torch.tensor(np.stack([cameras.view_c2w(cameras.FIXED_VIEWS[v]) for v in views]))
    K = torch.tensor(np.stack([cameras.intrinsics(size)] * len(views)))
    return c2w, K


def test_pixel_rays_go_through_the_pixels_they_name():
    c2w, K = fixed_cameras(16)
    origins, dirs = pixel_rays(c2w, K, 16, 16)
    w2c = np.linalg.inv(c2w[1].numpy())
    # A point along any pixel's ray projects back onto that pixel's centre.
    for r, c in [(0, 0), (5, 11), (15, 15)]:
        p = (origins[1, r, c] + 2.5 * dirs[1, r, c]).numpy()
        uv, z = cameras.project(p, w2c, K[1].numpy())
        np.testing.assert_allclose(uv[0], [c + 0.5, r + 0.5], atol=1e-6)
        assert z[0] > 0
    torch.testing.assert_close(dirs.norm(dim=-1), torch.ones(4, 16, 16, dtype=torch.float64))


def test_ray_encodings():
    c2w, K = fixed_cameras(8)
    o, d = pixel_rays(c2w, K, 8, 8)
    facelift_rays = ray_channels(o, d, "facelift")
    nearest = facelift_rays[..., 3:]
    assert torch.allclose(
        (nearest * d).sum(-1), torch.zeros(()).double(), atol=1e-9
    )  # ⟂ to the ray: its closest point to the origin
    plucker = ray_channels(o, d, "plucker")
    torch.testing.assert_close(plucker[..., :3], torch.cross(o, d, dim=-1))
    with pytest.raises(ValueError, match="ray_encoding 'polar'"):
        override(LRM_PRESETS["tiny"].model, {"ray_encoding": "polar"})


def test_activations_keep_splats_on_their_rays_within_the_documented_bounds():
    c2w, K = fixed_cameras(8)
    o, d = pixel_rays(c2w, K, 8, 8)
    raw = torch.randn(4, 8, 8, 14, dtype=torch.float64) * 10
    g = activate(raw, o, d)
    t = ((g.means - o.reshape(-1, 3)) * d.reshape(-1, 3)).sum(-1)
    closest = -(o.reshape(-1, 3) * d.reshape(-1, 3)).sum(-1)
    assert ((t - closest).abs() <= DEPTH_HALF_RANGE + 1e-9).all()  # depth within ±1.8 of the ray's closest approach
    torch.testing.assert_close(
        torch.cross(g.means - o.reshape(-1, 3), d.reshape(-1, 3), dim=-1),
        torch.zeros(256, 3, dtype=torch.float64),
        atol=1e-9,
        rtol=0,
    )
    assert g.scales.max() <= math.exp(-1.2) + 1e-12 and g.scales.min() > 0
    torch.testing.assert_close(g.quats.norm(dim=-1), torch.ones(256, dtype=torch.float64))
    zero = activate(torch.zeros(1, 1, 1, 14, dtype=torch.float64), o[:1, :1, :1], d[:1, :1, :1])
    assert zero.opacities.item() == pytest.approx(1 / (1 + math.exp(OPACITY_SHIFT)))
    o1, d1 = o[0, 0, 0], d[0, 0, 0]
    torch.testing.assert_close(
        zero.means[0], o1 - (o1 @ d1) * d1
    )  # a zero output sits at the ray's closest approach to the centre


def test_model_maps_views_to_one_gaussian_per_pixel():
    cfg = LRM_PRESETS["tiny"].model
    model = GSLRM(cfg)
    c2w, K = fixed_cameras(cfg.image_size)
    images = torch.rand(2, 4, 3, cfg.image_size, cfg.image_size)
    out = model(images, c2w[None].float().expand(2, -1, -1, -1), K[None].float().expand(2, -1, -1, -1))
    assert len(out) == 2 and len(out[0]) == 4 * cfg.image_size**2
    # Each view's Gaussians depend on the other views' pixels too (cross-view attention).
    images2 = images.clone()
    images2[:, 3] = 1.0 - images2[:, 3]
    out2 = model(images2, c2w[None].float().expand(2, -1, -1, -1), K[None].float().expand(2, -1, -1, -1))
    first = slice(0, cfg.image_size**2)
    assert not torch.allclose(out[0].sh_dc[first], out2[0].sh_dc[first])


def test_supervision_views_lie_within_60_degrees_of_an_input():
    rng = np.random.default_rng(0)
    views = cameras.FIXED_VIEWS + cameras.random_views(rng, 32, cameras.ELEVATION_RANGE_DEG)
    pos = np.array([cameras.camera_position(v.azimuth_deg, v.elevation_deg) for v in views])
    unit = pos / np.linalg.norm(pos, axis=1, keepdims=True)
    for _ in range(50):
        inputs, targets = pick_views(pos, rng, ViewPick())
        assert len(set(inputs) | set(targets)) == 8
        angles = np.degrees(np.arccos(np.clip(unit[targets] @ unit[inputs].T, -1, 1))).min(axis=1)
        assert (angles <= 60.0 + 1e-6).all()
    with pytest.raises(DataError, match="at least 8"):
        pick_views(pos[:5], rng, ViewPick())


def test_schedule_warms_up_then_decays_to_zero():
    f = warmup_cosine(10, 110)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.5) and f(110) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="--steps 0"):
        override(LRM_PRESETS["tiny"].config, {"steps": 0})


def _meta(out, step):
    return json.loads((out / "checkpoints" / f"step-{step:08d}" / "checkpoint.json").read_text())


def test_train_lrm_runs_checkpoints_logs_and_resumes(dataset_a, tmp_path):
    out = tmp_path / "run"
    args = train_args("lrm", dataset_a, out, "--preset", "tiny", "--steps", "20", "--checkpoint-every", "5")
    r = facelift(*args, "--stop-at", "12")
    assert r.returncode == 0, r.stderr
    assert "step 12" in r.stdout
    steps = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert steps == ["step-00000005", "step-00000010", "step-00000012"]
    assert list((out / "logs").glob("events.out.tfevents.*"))
    meta = _meta(out, 12)
    assert meta["step"] == 12 and meta["model"]["preset"] == "tiny" and meta["perceptual_pretrained"] is False
    from safetensors.torch import load_file

    weights = load_file(str(out / "checkpoints" / "step-00000012" / "model.safetensors"))
    assert set(weights) == set(GSLRM(LRM_PRESETS["tiny"].model).state_dict())
    # Resume: continues at step 13 on the same schedule and finishes the 20.
    r = facelift(*args, "--resume")
    assert r.returncode == 0, r.stderr
    assert "step 20" in r.stdout
    cfg = override(LRM_PRESETS["tiny"].config, {"steps": 20})
    schedule = warmup_cosine(cfg.warmup_steps, cfg.steps)
    for step in (12, 15, 20):
        assert _meta(out, step)["lr"] == pytest.approx(cfg.lr * schedule(step), rel=1e-9)


def _shard_of_another_format(folder, dataset_a):
    (folder / "shards").mkdir(parents=True)
    (folder / "shards" / "imagenet-000000.tar").write_bytes(foreign_tar())
    write_card_listing(folder, dataset_a)  # a valid facelift card that lists a foreign shard


def test_bad_inputs_are_one_line_errors(dataset_a, tmp_path):
    r = facelift(*train_args("lrm", tmp_path / "missing", tmp_path / "r"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "is not a folder" in r.stderr
    other = tmp_path / "other"
    _shard_of_another_format(other, dataset_a)
    r = facelift(*train_args("lrm", other, tmp_path / "r", "--steps", "1"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith("error: sample '000' ")
    assert "not a facelift head shard" in r.stderr
    # A checkpoint of another preset (here: another ray encoding) as --init-from or --resume.
    run = tmp_path / "plucker"
    r = facelift(*train_args("lrm", dataset_a, run, "--steps", "1", "--ray-encoding", "plucker"))
    assert r.returncode == 0, r.stderr
    ckpt = run / "checkpoints" / "step-00000001"
    r = facelift(*train_args("lrm", dataset_a, tmp_path / "r2", "--init-from", str(ckpt)))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "ray_encoding='plucker'" in r.stderr
    r = facelift(*train_args("lrm", dataset_a, tmp_path / "r3", "--resume"))
    assert r.returncode == 2 and "holds no checkpoints" in r.stderr
