"""`facelift infer`: tiny diffusion + tiny LRM trained a few steps on real test shards, run on a real
photo that ships in a pip package and on one of our renders, every output checked."""

from __future__ import annotations

import importlib.util
import json
import os
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import datagen_args, facelift, trained_models

ASTRONAUT = os.path.join(importlib.util.find_spec("skimage").submodule_search_locations[0], "data", "astronaut.png")


def shard_views(dataset: Path) -> dict[str, bytes]:
    """The fixed views of the first subject of the dataset's first shard."""
    with tarfile.open(sorted((dataset / "shards").glob("*.tar"))[0]) as tar:
        first = None
        views = {}
        for info in tar:
            key, _, member = info.name.partition(".")
            first = first or key
            if key == first and member.startswith("fixed_"):
                views[member] = tar.extractfile(info).read()
    return views


def infer(trained, *args):
    return facelift(
        "infer", *args, *trained_models(trained), "--preset", "quick", "--steps", "2", "--turntable-frames", "12"
    )


def test_infer_turns_a_real_photo_and_a_render_into_views_gaussians_and_a_turntable(trained, dataset_a, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "astronaut.png").write_bytes(Path(ASTRONAUT).read_bytes())
    (photos / "render.png").write_bytes(shard_views(dataset_a)["fixed_00.png"])  # RGBA: its own alpha is the matte
    (photos / "notes.jpg").write_text("not an image")  # one bad file does not stop the others
    out = tmp_path / "out"
    r = infer(trained, str(photos), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "notes.jpg' is not an image" in r.stderr and "1 failed" in r.stdout
    for stage in ("preprocess", "diffusion", "reconstruction", "export"):
        assert f"{stage} " in r.stdout
    run = json.loads((out / "run.json").read_text())
    assert len(run["results"]) == 2 and run["failed"][0]["source"].endswith("notes.jpg")

    from inference.face_align import FACE_CENTRE, FACE_SIZE, largest_face, load_mtcnn

    detector = load_mtcnn()
    for name in ("astronaut", "render"):
        folder = out / name
        result = json.loads((folder / "result.json").read_text())
        aligned = Image.open(folder / "input.png")
        assert aligned.size == (512, 512)
        views = sorted((folder / "views").iterdir())
        assert [v.name for v in views] == [f"view_{k:02d}.png" for k in range(6)]
        assert Image.open(folder / "multiview.png").size == (6 * 32, 32)
        # An independent PLY reader sees the standard 3DGS layout with SH padded to degree 3.
        from plyfile import PlyData

        vertex = PlyData.read(str(folder / "gaussians.ply"))["vertex"]
        names = {p.name for p in vertex.properties}
        assert {"x", "y", "z", "f_dc_0", "opacity", "scale_2", "rot_3"} <= names and {
            f"f_rest_{k}" for k in range(45)
        } <= names
        assert vertex.count == result["splats"]["exported"] > 0 and result["splats"]["predicted"] == 6 * 32 * 32
        import imageio_ffmpeg

        reader = imageio_ffmpeg.read_frames(str(folder / "turntable.mp4"))
        assert next(reader)["codec"] == "h264" and sum(1 for _ in reader) == 12
        assert set(result["seconds"]) >= {"preprocess", "diffusion", "reconstruction", "export"}
        assert result["settings"]["steps"] == 2 and result["versions"]["torch"]
    photo = json.loads((out / "astronaut" / "result.json").read_text())
    assert photo["alpha"] == "segmentation" and photo["face"]["confidence"] > 0.8
    # The face in the aligned input, found again by MTCNN, sits where FaceLift's constants put it.
    face = largest_face(detector, Image.open(out / "astronaut" / "input.png"))
    assert (
        abs(face.size - FACE_SIZE) < 3
        and abs(face.centre[0] - FACE_CENTRE[0]) < 3
        and abs(face.centre[1] - FACE_CENTRE[1]) < 3
    )
    # The background is gone: the corners of the aligned photo are white.
    corners = np.asarray(Image.open(out / "astronaut" / "input.png"))[[0, 0, -1], [0, -1, -1]]
    assert (corners > 245).all()
    assert json.loads((out / "render" / "result.json").read_text())["alpha"] == "alpha"


def test_infer_reconstructs_from_six_given_views_without_diffusion(trained, dataset_a, tmp_path):
    views = tmp_path / "views"
    views.mkdir()
    for name, png in shard_views(dataset_a).items():
        (views / name).write_bytes(png)
    r = facelift(
        "infer",
        "--views",
        str(views),
        "--lrm",
        str(trained["lrm"]),
        "--out",
        str(tmp_path / "out"),
        "--turntable-frames",
        "4",
        "--gif",
    )
    assert r.returncode == 0, r.stderr
    folder = tmp_path / "out" / "views"
    assert (folder / "gaussians.ply").stat().st_size > 0 and (folder / "turntable.gif").exists()
    assert Image.open(folder / "turntable.gif").n_frames == 4
    assert json.loads((folder / "result.json").read_text())["settings"]["views_given"] is True


def test_infer_bad_inputs_are_one_line_errors_and_write_nothing(trained, dataset_a, tmp_path):
    out = tmp_path / "out"

    def fails(*args, lrm=None, diffusion=None):
        r = facelift(
            "infer",
            *args,
            "--lrm",
            str(lrm or trained["lrm"]),
            "--diffusion",
            str(diffusion or trained["pipeline"]),
            "--out",
            str(out),
        )
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert not out.exists()
        return r.stderr

    text = tmp_path / "face.jpg"
    text.write_text("hello")
    assert "is not an image (allowed: jpg, png, webp)" in fails(str(text))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no images" in fails(str(empty))
    small = tmp_path / "small.png"
    Image.new("RGB", (48, 40), (200, 150, 120)).save(small)
    assert "is 48×40 px; at least 64 px a side" in fails(str(small))
    assert "is not an LRM checkpoint" in fails(ASTRONAUT, lrm=trained["diffusion_ckpt"])
    four = tmp_path / "four"
    import shutil

    shutil.copytree(trained["pipeline"], four)
    index = json.loads((four / "model_index.json").read_text())
    (four / "model_index.json").write_text(json.dumps({**index, "num_views": 4}))
    assert "generates 4 views; the LRM takes the 6 fixed views" in fails(ASTRONAUT, diffusion=four)
    five = tmp_path / "five"
    five.mkdir()
    for name, png in list(shard_views(dataset_a).items())[:5]:
        (five / name).write_bytes(png)
    assert "--views gives 5 images; 6 are needed" in fails("--views", str(five))
    assert "--crop-box '1,2,3' must be six numbers" in fails(ASTRONAUT, "--crop-box", "1,2,3")


def test_the_dataset_card_records_front_view_face_statistics_and_the_pipeline_carries_them(
    dataset_a, trained, tmp_path
):
    import shutil

    card = json.loads((dataset_a / "dataset.json").read_text())
    stats = card["face_alignment"]
    assert stats["subjects"] == 6 and stats["canvas"] == 512 and stats["detector"].startswith("MTCNN")
    assert 0 <= stats["found"] <= 6 and (stats["face_size"] is None) == (stats["found"] == 0)
    index = json.loads((trained["pipeline"] / "model_index.json").read_text())
    assert index["face_alignment"] == stats  # infer aligns photos to the data the model saw
    # verify wants them; rerunning the command on the finished dataset adds them back without rendering.
    copy = tmp_path / "a"
    shutil.copytree(dataset_a, copy)
    (copy / "dataset.json").write_text(json.dumps({k: v for k, v in card.items() if k != "face_alignment"}))
    r = facelift("datagen", "verify", str(copy))
    assert r.returncode == 1 and "no face_alignment statistics" in r.stdout + r.stderr
    r = facelift(*datagen_args(copy, 3, 2, "--workers", "2"))
    assert r.returncode == 0 and "0 subjects rendered" in r.stdout, r.stderr
    assert json.loads((copy / "dataset.json").read_text())["face_alignment"] == stats
    assert facelift("datagen", "verify", str(copy)).returncode == 0


def test_alignment_follows_the_card_when_enough_faces_were_measured():
    from inference.face_align import FACE_SIZE, MIN_CARD_FACES, alignment_target

    stats = {
        "found": MIN_CARD_FACES,
        "canvas": 512,
        "face_size": {"mean": 201.5, "sd": 9.0},
        "centre_x": {"mean": 254.0, "sd": 3.0},
        "centre_y": {"mean": 278.5, "sd": 4.0},
    }
    target = alignment_target(stats, "card of runs/mv")
    assert (target.face_size, target.centre_x, target.centre_y, target.source) == (
        201.5,
        254.0,
        278.5,
        "card of runs/mv",
    )
    assert (
        alignment_target({**stats, "found": MIN_CARD_FACES - 1}, "x").face_size == FACE_SIZE
    )  # too few faces: FaceLift's
    assert alignment_target(None, "x").source == "facelift"
