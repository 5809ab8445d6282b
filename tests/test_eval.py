"""`facelift eval` on a held-out split, the split itself, and FaceLift's camera format."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from conftest import eval_args, facelift, train_args, trained_models
from datagen.config import make_config
from datagen.spec import make_spec


def test_a_test_split_holds_other_people_than_the_training_split_of_the_same_seed():
    train, test = make_config("test", identities=3, split="train"), make_config("test", identities=3, split="test")
    assert make_spec(train, 0, 0) == make_spec(
        make_config("test", identities=3), 0, 0
    )  # the training split is what runs always drew
    for i in range(3):
        a, b = make_spec(train, i, 0), make_spec(test, i, 0)
        assert (
            b["split"] == "test"
            and a["identity"] != b["identity"]
            and a["seeds"]["identity"] != b["seeds"]["identity"]
        )


def test_trainers_refuse_a_held_out_split(dataset_heldout, tmp_path):
    for model in ("lrm", "diffusion"):
        r = facelift(*train_args(model, dataset_heldout, tmp_path / model, "--steps", "1"))
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert "is a 'test' split (held-out identities" in r.stderr


def test_eval_scores_both_protocols_and_the_baselines_and_its_numbers_can_be_recomputed(
    trained, dataset_heldout, tmp_path
):
    out = tmp_path / "eval"
    r = facelift(*eval_args(dataset_heldout, out, *trained_models(trained), "--preset", "quick", "--steps", "2"))
    assert r.returncode == 0, r.stderr
    for row in ("| reconstruction |", "| full_pipeline |", "| mean_image |", "| untrained |"):
        assert row in r.stdout
    assert "LPIPS" in r.stdout and "unavailable" in r.stdout  # no VGG weights here: reported, not faked
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["split"] == "test" and metrics["data"]["subjects"] == 2
    assert (out / "metrics.md").read_text().count("| id0000") == 2
    # An independent implementation finds the same numbers from the saved images.
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    checked = 0
    for protocol in ("reconstruction", "full_pipeline", "mean_image", "untrained"):
        for key, subject in metrics["subjects"][protocol].items():
            assert len(subject["views"]) == 4
            for view, m in subject["views"].items():
                pred = (
                    np.asarray(Image.open(out / "renders" / protocol / key / f"{view}_pred.png"), dtype=np.float64)
                    / 255
                )
                gt = (
                    np.asarray(Image.open(out / "renders" / protocol / key / f"{view}_gt.png"), dtype=np.float64) / 255
                )
                assert abs(peak_signal_noise_ratio(gt, pred, data_range=1.0) - m["psnr"]) < 0.01
                ref = structural_similarity(
                    gt,
                    pred,
                    channel_axis=2,
                    data_range=1.0,
                    gaussian_weights=True,
                    sigma=1.5,
                    use_sample_covariance=False,
                )
                assert abs(ref - m["ssim"]) < 0.001
                assert m["lpips"] is None
                checked += 1
    assert checked == 4 * 2 * 4


def test_eval_refuses_a_training_split_unless_told(trained, dataset_a, tmp_path):
    out = tmp_path / "eval"
    r = facelift(*eval_args(dataset_a, out, "--lrm", str(trained["lrm"])))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "is a 'train' split" in r.stderr and not out.exists()
    r = facelift(*eval_args(dataset_a, out, "--lrm", str(trained["lrm"]), "--allow-train", "--subjects", "1"))
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "metrics.json").read_text())["data"]["split"] == "train"


def test_eval_reads_facelifts_camera_format(trained, dataset_heldout, tmp_path):
    """A capture converted as FaceLift converts Cafca / Ava-256: opencv_cameras.json + images."""
    capture = tmp_path / "capture"
    capture.mkdir()
    with tarfile.open(sorted((dataset_heldout / "shards").glob("*.tar"))[0]) as tar:
        files, first = {}, None
        for info in tar:
            key, _, member = info.name.partition(".")
            first = first or key
            if key == first:
                files[member] = tar.extractfile(info).read()
    frames = []
    for fr in json.loads(files["cameras.json"])["frames"]:
        name = f"images/cam_{len(frames):02d}.png"
        (capture / "images").mkdir(exist_ok=True)
        Image.open(io.BytesIO(files[fr["file_path"]])).save(capture / name)
        frames.append({k: fr[k] for k in ("w", "h", "fx", "fy", "cx", "cy", "w2c")} | {"file_path": name})
    (capture / "opencv_cameras.json").write_text(json.dumps({"frames": frames}))
    out = tmp_path / "eval"
    r = facelift(*eval_args(capture, out, "--lrm", str(trained["lrm"])))
    assert r.returncode == 0, r.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["kind"] == "opencv_cameras" and metrics["mean"]["reconstruction"]["views"] == 4
    # The 6 frames nearest the fixed views are the inputs: the 4 random views are what is scored.
    assert sorted(metrics["subjects"]["reconstruction"]["capture"]["views"]) == [f"cam_{k:02d}" for k in range(6, 10)]


def test_lpips_loads_torchvision_vgg16_weights_from_a_path_and_is_unavailable_without(tmp_path):
    import torch

    from inference.metrics import LPIPS_TAPS, VGG16_LAYOUT, load_lpips
    from training.perceptual import vgg_features

    model, note = load_lpips(None)
    assert model is None and note.startswith("unavailable")
    state = {
        f"features.{k}": v for k, v in vgg_features(VGG16_LAYOUT, LPIPS_TAPS[-1]).state_dict().items()
    }  # torchvision's key layout
    torch.save(state, tmp_path / "vgg16.pth")
    model, note = load_lpips(str(tmp_path / "vgg16.pth"))
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    assert model(x, x).abs().max() < 1e-6 and (model(x, y) > 0).all() and "LPIPS-VGG" in note
    torch.save({"features.0.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="does not hold torchvision's vgg16 features"):
        load_lpips(str(tmp_path / "other.pth"))
