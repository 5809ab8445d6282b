"""What the trainers see of a view: its PNG composited on a background, and batches handed from
loader workers to the training process intact."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from training.shards import decode_view, decode_views
from training.stream import collate


def png_bytes(pixels: np.ndarray, mode: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels, mode).save(buf, format="PNG")
    return buf.getvalue()


def composited(rgba: np.ndarray, background: float) -> np.ndarray:
    """(3, H, W) float64: rgb · a + background · (1 − a), the definition."""
    x = rgba.astype(np.float64) / 255.0
    return (x[..., :3] * x[..., 3:] + background * (1.0 - x[..., 3:])).transpose(2, 0, 1)


@pytest.mark.parametrize("background", [1.0, 0.0, 0.5])
def test_a_view_is_its_png_composited_on_the_background_at_any_size(background):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (32, 32, 4), dtype=np.uint8)
    rgba[:4, :, 3] = 0  # transparent rows: the background alone
    rgba[4:8, :, 3] = 255  # opaque rows: the colour alone
    view = decode_view(png_bytes(rgba, "RGBA"), 32, background)
    assert view.shape == (3, 32, 32) and view.dtype == torch.float32 and view.is_contiguous()
    np.testing.assert_allclose(view.numpy(), composited(rgba, background), atol=1e-6)
    assert (view[:, :4] == background).all()
    # Half size: area-resampled first (PIL's BOX filter), then composited.
    small = np.asarray(Image.fromarray(rgba, "RGBA").resize((16, 16), Image.Resampling.BOX))
    np.testing.assert_allclose(
        decode_view(png_bytes(rgba, "RGBA"), 16, background).numpy(), composited(small, background), atol=1e-6
    )
    # A PNG without alpha is opaque.
    rgb = rgba[..., :3].copy()
    np.testing.assert_allclose(
        decode_view(png_bytes(rgb, "RGB"), 32, background).numpy(), rgb.transpose(2, 0, 1) / 255.0, atol=1e-6
    )


def test_several_views_decode_into_one_tensor_as_each_alone():
    rng = np.random.default_rng(1)
    pngs = [png_bytes(rng.integers(0, 256, (16, 16, 4), dtype=np.uint8), "RGBA") for _ in range(3)]
    views = decode_views(pngs, 16, 0.5)
    assert views.shape == (3, 3, 16, 16)
    assert all(torch.equal(views[k], decode_view(p, 16, 0.5)) for k, p in enumerate(pngs))


class WorkerBatches(torch.utils.data.IterableDataset):
    def __iter__(self):
        for b in range(3):
            samples = [{"key": f"s{b}{k}", "views": torch.full((2, 3, 4, 4), 10.0 * b + k)} for k in range(4)]
            batch = collate(samples)
            yield {**batch, "stacked_in_shared_memory": batch["views"].is_shared()}


def test_a_batch_from_a_loader_worker_arrives_whole_through_shared_memory():
    batches = list(torch.utils.data.DataLoader(WorkerBatches(), batch_size=None, num_workers=1))
    assert [b["key"] for b in batches] == [[f"s{b}{k}" for k in range(4)] for b in range(3)]
    for b, batch in enumerate(batches):
        expected = torch.stack([torch.full((2, 3, 4, 4), 10.0 * b + k) for k in range(4)])
        assert torch.equal(batch["views"], expected)
        # Stacked straight into shared memory in the worker, as torch's default collate does: not
        # copied there once more on its way out.
        assert batch["stacked_in_shared_memory"]
    # In the training process itself (no workers) a batch is an ordinary tensor.
    assert not collate([{"key": "a", "views": torch.zeros(2)}])["views"].is_shared()
