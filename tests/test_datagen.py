"""`facelift datagen` end to end: shards, card, verify, determinism, resume, failures, bad input."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from PIL import Image

from conftest import FACELIFT, alpha, datagen_args, facelift, samples_of
from facelift_models import cameras


def shard_files(out: Path) -> list[Path]:
    return sorted((out / "shards").glob("heads-*.tar"))


def tree_digest(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def test_acceptance_run_verifies(dataset_a):
    r = facelift("datagen", "verify", str(dataset_a))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("OK:") and "6 samples" in r.stdout and len(r.stdout.strip().splitlines()) == 1
    samples = samples_of(dataset_a)
    assert sorted(samples) == [f"id{i:05d}_ap{j:03d}" for i in range(3) for j in range(2)]
    for files in samples.values():
        assert {"spec.json", "cameras.json", "landmarks.json"} <= set(files)
        assert sum(n.startswith("fixed_") and n.endswith(".png") for n in files) == 6
        assert sum(n.startswith("random_") and n.endswith(".png") for n in files) == 32
        a = alpha(files["fixed_00.png"])
        assert 0.05 < (a > 0).mean() < 0.8, "the head should fill part of the front view"
        assert a[0, 0] == 0, "background is transparent"
    card = json.loads((dataset_a / "dataset.json").read_text())
    assert card["complete"] and card["counts"]["samples_written"] == 6
    for entry in card["shards"]:
        assert hashlib.sha256((dataset_a / "shards" / entry["name"]).read_bytes()).hexdigest() == entry["sha256"]


def test_webdataset_reads_the_shards(dataset_a):
    urls = [str(p) for p in shard_files(dataset_a)]
    ds = wds.WebDataset(urls, shardshuffle=False).decode("pilrgba")
    seen = []
    for sample in ds:
        seen.append(sample["__key__"])
        assert sample["fixed_03.png"].mode == "RGBA" and sample["random_31.png"].size == (64, 64)
        assert sample["cameras.json"]["id"] == sample["__key__"]
    assert len(seen) == 6


def test_landmarks_project_inside_the_head_and_on_the_right_side(dataset_a):
    for key, files in samples_of(dataset_a).items():
        marks = {k: np.array(v) for k, v in json.loads(files["landmarks.json"])["points"].items()}
        frames = {f["name"]: f for f in json.loads(files["cameras.json"])["frames"]}

        def uv_depth(view: str, name: str, frames=frames, marks=marks):  # this sample's, bound now
            f = frames[view]
            uv, depth = cameras.project(marks[name], np.array(f["w2c"]), cameras.frame_K(f))
            return uv[0], depth[0]

        front_mask = alpha(files["fixed_00.png"]) > 0
        for name in ("eye_left", "eye_right", "nose_tip", "mouth_left", "mouth_right", "chin"):
            (u, v), _ = uv_depth("front", name)
            assert front_mask[int(v), int(u)], f"{key}: {name} projects outside the head in the front view"
        u = {n: uv_depth("front", n)[0][0] for n in marks}
        vv = {n: uv_depth("front", n)[0][1] for n in marks}
        assert u["eye_left"] > u["nose_tip"] > u["eye_right"], (
            f"{key}: the subject's left is image right in the front view"
        )
        assert u["mouth_left"] > u["mouth_right"]
        assert vv["head_top"] < vv["eye_left"] < vv["nose_tip"] < vv["chin"], f"{key}: top-to-bottom order"
        # az +90 (fixed_02) sees the head's right side: the right ear is nearer than the left.
        for view, near, far, image in (
            ("right", "ear_right", "ear_left", "fixed_02.png"),
            ("left", "ear_left", "ear_right", "fixed_04.png"),
        ):
            (un, vn), dn = uv_depth(view, near)
            _, df = uv_depth(view, far)
            assert dn < df, f"{key}: {near} should face the {view} camera"
            assert (alpha(files[image]) > 0)[int(vn), int(un)], f"{key}: {near} outside the mask in the {view} view"


def test_every_view_carries_the_heads_pose_and_gaze_in_its_camera(dataset_a):
    for key, files in samples_of(dataset_a).items():
        spec = json.loads(files["spec.json"])
        frames = {f["name"]: f for f in json.loads(files["cameras.json"])["frames"]}
        assert all({"head_pose_deg", "gaze"} <= set(f) for f in frames.values()), key
        # The spec's pose is split over four neck bones; their composition differs from one rotation by
        # the spec's angles by up to 1.4° at the pose bounds (the exact values are what cameras.json holds).
        front = frames["front"]["head_pose_deg"]
        assert front == pytest.approx(spec["pose"], abs=2.0), key
        back = frames["back"]["head_pose_deg"]["yaw"]
        assert (back - spec["pose"]["yaw"]) % 360.0 == pytest.approx(180.0, abs=2.0), key
        for eye in ("left", "right"):  # the drawn gaze (about the head) plus the head's own turn
            gaze = frames["front"]["gaze"][eye]
            assert gaze["yaw_deg"] == pytest.approx(spec["expression"]["gaze_deg"][0] + front["yaw"], abs=2.0), key


def test_same_seed_gives_same_dataset(dataset_a, tmp_path):
    # Two of dataset_a's subjects again, by a run of another size with another worker count: a
    # subject's bytes depend on the seed and its (identity, appearance) only.
    out_b = tmp_path / "b"
    r = facelift(*datagen_args(out_b, 2, 1, "--workers", "1"))
    assert r.returncode == 0, r.stderr
    a, b = samples_of(dataset_a), samples_of(out_b)
    assert sorted(b) == ["id00000_ap000", "id00001_ap000"]
    for key in b:
        assert a[key]["spec.json"] == b[key]["spec.json"]
        assert a[key]["cameras.json"] == b[key]["cameras.json"]
        assert a[key]["landmarks.json"] == b[key]["landmarks.json"]
        for name in a[key]:
            if name.endswith(".png"):
                x = np.asarray(Image.open(io.BytesIO(a[key][name])), dtype=np.float32)
                y = np.asarray(Image.open(io.BytesIO(b[key][name])), dtype=np.float32)
                assert np.abs(x - y).mean() < 2.0, f"{key}/{name} differs between identical runs"


def test_rerun_of_finished_dataset_renders_nothing(dataset_a):
    before = tree_digest(dataset_a)
    r = facelift(*datagen_args(dataset_a, 3, 2))
    assert r.returncode == 0, r.stderr
    assert "0 subjects rendered, 0 shards written" in r.stdout
    after = tree_digest(dataset_a)
    assert {k: v for k, v in after.items() if k != "dataset.json"} == {
        k: v for k, v in before.items() if k != "dataset.json"
    }


def test_kill_9_mid_run_then_rerun_completes_without_duplicates(tmp_path):
    out = tmp_path / "k"
    args = datagen_args(out, 4, 2, "--views-random", "4", "--subjects-per-shard", "2", "--workers", "2")
    proc = subprocess.Popen(
        [FACELIFT, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 300
    while time.time() < deadline and not shard_files(out):
        time.sleep(0.2)
    assert shard_files(out), "no shard appeared before the kill"
    os.kill(proc.pid, signal.SIGKILL)  # kill -9 of the driver: its local Ray cluster dies with it
    proc.wait()
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # reap Ray helper processes that outlive the driver
    except ProcessLookupError:
        pass
    survivors = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in shard_files(out)}
    assert len(survivors) < 4, "the run finished before it could be killed"
    r = facelift(*args)
    assert r.returncode == 0, r.stderr
    v = facelift("datagen", "verify", str(out))
    assert v.returncode == 0 and "8 samples" in v.stdout, v.stdout
    assert len(samples_of(out)) == 8  # samples_of asserts no key repeats
    for name, stamp in survivors.items():  # finished shards were not rewritten
        p = out / "shards" / name
        assert (p.stat().st_ino, p.stat().st_mtime_ns) == stamp
    assert not list((out / "staging").iterdir()), "staging is emptied once shards are written"
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]


def test_failing_subject_is_recorded_and_a_crashed_worker_is_replaced(tmp_path):
    out = tmp_path / "f"
    crash_dir = tmp_path / "crash-markers"
    crash_dir.mkdir()
    env = {"FACELIFT_TEST_FAIL_KEYS": "id00000_ap001", "FACELIFT_TEST_CRASH_ONCE": f"id00000_ap000@{crash_dir}"}
    # objects subjects: the same workers, retries and card as heads, a fraction of the render time
    args = datagen_args(out, 1, 3, "--kind", "objects", "--views-random", "2", "--workers", "1")
    r = facelift(*args, "--retries", "1", env=env)
    assert r.returncode == 0, r.stderr
    assert "1 failed" in r.stdout
    assert (crash_dir / "id00000_ap000").exists(), "the worker crash was injected"
    card = json.loads((out / "dataset.json").read_text())
    assert list(card["failed"]) == ["id00000_ap001"]
    assert (
        "injected failure" in card["failed"]["id00000_ap001"]["error"]
        and card["failed"]["id00000_ap001"]["attempts"] == 2
    )
    assert sorted(samples_of(out)) == ["id00000_ap000", "id00000_ap002"]
    v = facelift("datagen", "verify", str(out))
    assert v.returncode == 0 and "1 subjects recorded as failed" in v.stdout, v.stdout
    # --keep-failed leaves the failure as it is; a plain rerun retries it (its cause is gone now)
    # and rewrites the shard with it.
    r = facelift(*args, "--keep-failed")
    assert r.returncode == 0 and "0 subjects rendered, 0 shards written" in r.stdout and "1 failed" in r.stdout, (
        r.stdout + r.stderr
    )
    r = facelift(*args)
    assert r.returncode == 0 and "1 subjects rendered, 1 shards written" in r.stdout and "failed" not in r.stdout, (
        r.stdout + r.stderr
    )
    assert sorted(samples_of(out)) == ["id00000_ap000", "id00000_ap001", "id00000_ap002"]
    assert json.loads((out / "dataset.json").read_text())["failed"] == {}
    v = facelift("datagen", "verify", str(out))
    assert v.returncode == 0 and "3 samples" in v.stdout and "failed" not in v.stdout, v.stdout


def test_verify_catches_corruption(dataset_a, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(dataset_a, bad)
    shard = shard_files(bad)[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    r = facelift("datagen", "verify", str(bad))
    assert r.returncode == 1 and r.stdout.startswith("FAILED:") and "sha256" in r.stdout


def test_preview_contact_sheet(dataset_a, tmp_path):
    target = tmp_path / "sheet.png"
    r = facelift("datagen", "preview", str(dataset_a), "--output", str(target), "--tile", "64")
    assert r.returncode == 0, r.stderr
    sheet = Image.open(target)
    assert sheet.size == (120 + 6 * 64, 20 + 6 * 64)
    assert np.asarray(sheet).std() > 10


@pytest.mark.parametrize(
    "args, message",
    [
        (["--identities", "0"], "--identities 0 is not allowed"),
        (["--appearances", "-1"], "--appearances -1 is not allowed"),
        (["--preset", "huge"], "unknown preset 'huge'"),
        (["--hdri-dir", "/nonexistent/hdris"], "--hdri-dir /nonexistent/hdris does not exist"),
        (["--ray-address", "127.0.0.1:9"], "--ray-address 127.0.0.1:9 does not answer"),
        (["--size", "96"], "was made by a different config (size 64 vs 96"),
        (["--workers", "-3"], "--workers -3 is not allowed"),
        (["--kind", "objects", "--passes", "mesh,seg"], "--passes mesh,seg is not allowed with --kind objects"),
        (["--passes", "uv"], "--passes uv is not allowed (allowed: depth, normal, albedo, seg, landmarks2d, mesh)"),
        (["--identities", "many"], "Invalid value for '--identities'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_leaves_out_intact(dataset_a, args, message):
    before = tree_digest(dataset_a)
    opts = {"--identities": "3", "--appearances": "2", "--preset": "test", "--out": str(dataset_a)}
    opts.update(zip(args[::2], args[1::2]))
    r = facelift("datagen", *[x for kv in opts.items() for x in kv], "--no-progress")
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert tree_digest(dataset_a) == before


def test_unwritable_out_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = facelift(*datagen_args(blocker / "sub", 1, 1))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "is not writable" in r.stderr, r.stderr


def test_depth_and_normal_passes_are_openexr(tmp_path):
    import OpenEXR

    out = tmp_path / "p"
    r = facelift(*datagen_args(out, 1, 1, "--views-random", "1", "--passes", "depth,normal"))
    assert r.returncode == 0, r.stderr
    assert facelift("datagen", "verify", str(out)).returncode == 0
    files = samples_of(out)["id00000_ap000"]
    assert {f"{s}.{p}.exr" for s in ("fixed_00", "random_00") for p in ("depth", "normal")} <= set(files)
    mask = alpha(files["fixed_00.png"]) > 128
    for name, channels in (("fixed_00.depth.exr", "Z"), ("fixed_00.normal.exr", "XYZ")):
        path = tmp_path / name
        path.write_bytes(files[name])
        with OpenEXR.File(str(path), separate_channels=True) as exr:
            data = {k: np.array(v.pixels) for k, v in exr.channels().items()}
        assert set(data) == set(channels) and all(a.dtype == np.float32 and a.shape == (64, 64) for a in data.values())
        if name.endswith("depth.exr"):
            z = data["Z"]
            # camera-z distance of the head surface: between the face (~2.7 − 0.6) and the centre
            assert 1.7 < np.median(z[mask]) < 2.7 and (z[~(alpha(files["fixed_00.png"]) > 0)] == 0).all()
        else:
            n = np.stack([data[c] for c in "XYZ"], -1)[mask]
            assert np.allclose(np.linalg.norm(n, axis=-1), 1, atol=0.05)
            assert n[:, 1].mean() < -0.3  # world-space normals of the front view mostly face the camera (−Y)


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine may have a GPU for Cycles")
def test_device_gpu_without_a_gpu_is_one_line(tmp_path):
    r = facelift(*datagen_args(tmp_path / "g", 1, 1, "--device", "gpu"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--device gpu" in r.stderr, r.stderr
    assert not (tmp_path / "g").exists(), "the device check comes before OUT is created"


def test_more_workers_than_cpus_is_one_line(tmp_path):
    r = facelift(*datagen_args(tmp_path / "w", 1, 1, "--workers", "999"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--workers 999" in r.stderr, r.stderr
    assert not (tmp_path / "w").exists(), "the CPU check comes before OUT is created"
