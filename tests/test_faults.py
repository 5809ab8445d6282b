"""Nothing lost, nothing run, nothing hung: the hostile cases of issue 11, each for real.

Disk-full cases run on a real tmpfs (`mount -t tmpfs -o size=...`; these machines run tests as
root), concurrent runs are real processes, the checkpoint pickle is a real payload. Cases about the
run's machinery render `--kind objects` subjects: the same driver, workers, staging, shards and
card as heads, in a fraction of the time (a haired head costs 5–15 s of one core at 64²).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import FACELIFT, datagen_args, facelift, foreign_tar, keys_in, silent_port, train_args
from datagen.sample import pack_sample
from datagen.shard_format import read_samples


def small_args(out, *options: str) -> list[str]:
    """The `facelift datagen` arguments of dataset_small into `out`; `options` add the case's own."""
    return datagen_args(out, 1, 4, "--kind", "objects", "--views-random", "0", "--subjects-per-shard", "1", *options)


def one_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{text}"
    assert "Traceback" not in text
    return lines[0]


def error_line(stderr: str) -> str:
    """The one `error:` line of a command that also logged progress (trainers log INFO/WARNING lines)."""
    assert "Traceback" not in stderr, stderr
    errors = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def tree_digest(root: Path) -> dict[str, str]:
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def card_of(out: Path) -> dict:
    return json.loads((out / "dataset.json").read_text())


def write_card(out: Path, card: dict) -> None:
    (out / "dataset.json").write_text(json.dumps(card, indent=1, sort_keys=True))


@contextlib.contextmanager
def tmpfs(path: Path, size: str, readonly: bool = False):
    """A real size-limited file system at `path` for the test's life."""
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if readonly else "")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}); these cases need root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)


@pytest.fixture(scope="session")
def dataset_small(tmp_path_factory) -> Path:
    """4 objects subjects, the 6 fixed views only, one subject per shard: 4 shards in ~15 s."""
    out = tmp_path_factory.mktemp("small") / "s"
    r = facelift(*small_args(out, "--workers", "2"))
    assert r.returncode == 0, r.stderr + r.stdout
    return out


@pytest.fixture
def small_copy(dataset_small, tmp_path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(dataset_small, out)
    return out


# ---------------------------------------------------------------------------------------- 1. disk full


def test_disk_full_while_staging_stops_the_run_and_the_rerun_finishes(tmp_path):
    with tmpfs(tmp_path / "fs", "32k") as fs:  # room for the card and the lock, not for a subject
        out = fs / "ds"
        args = datagen_args(out, 1, 4, "--kind", "objects", "--views-random", "0", "--retries", "1", "--workers", "2")
        r = facelift(*args)
        assert r.returncode == 1, r.stdout + r.stderr
        line = one_line(r.stderr)
        assert "No space left on device" in line and "rerun the same command to finish" in line, line
        card = card_of(out)
        assert card["failed"] == {} and card["shards"] == [], (
            "a full disk is not the subjects' fault and publishes nothing"
        )
        assert not [p for p in out.rglob("*") if ".facelift-tmp-" in p.name]
        remount(fs, "64m")
        r = facelift(*args)
        assert r.returncode == 0, r.stderr
        assert "4 subjects rendered, 1 shards written" in r.stdout
        v = facelift("datagen", "verify", str(out))
        assert v.returncode == 0 and "4 samples" in v.stdout, v.stdout


def test_disk_full_while_publishing_keeps_the_staged_subject(dataset_small, tmp_path):
    # A folder whose shard 0 is still staged (a run stopped before publishing it).
    src = tmp_path / "src"
    shutil.copytree(dataset_small, src)
    card = card_of(src)
    shard0 = src / "shards" / "heads-000000.tar"
    with open(shard0, "rb") as f:
        [(key, files)] = list(read_samples(f))
    (src / "staging" / f"{key}.tar").write_bytes(pack_sample(key, files))
    shard0.unlink()
    card["shards"] = [s for s in card["shards"] if s["index"] != 0]
    card["complete"] = False
    write_card(src, card)
    staged_bytes = (src / "staging" / f"{key}.tar").stat().st_size
    used = sum(-(-p.stat().st_size // 4096) * 4096 for p in src.rglob("*") if p.is_file())  # tmpfs counts pages
    with tmpfs(tmp_path / "fs", str(used + staged_bytes // 2)) as fs:
        out = fs / "ds"
        shutil.copytree(src, out)
        r = facelift(*small_args(out))
        assert r.returncode == 1, r.stdout + r.stderr
        line = one_line(r.stderr)
        assert "writing" in line and "heads-000000.tar" in line and "No space left on device" in line, line
        assert (out / "staging" / f"{key}.tar").stat().st_size == staged_bytes, "the staged subject is kept"
        assert not (out / "shards" / "heads-000000.tar").exists()
        assert not [p for p in out.rglob("*") if ".facelift-tmp-" in p.name], "no half-written shard is left"
        remount(fs, "64m")
        r = facelift(*small_args(out))
        assert r.returncode == 0 and "0 subjects rendered, 1 shards written" in r.stdout, r.stdout + r.stderr
        assert facelift("datagen", "verify", str(out)).returncode == 0


# ---------------------------------------------------------------------------------------- 2. HDRIs and black renders


def _write_exr(path: Path, rgb: np.ndarray) -> None:
    import OpenEXR

    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(
        header, {c: np.ascontiguousarray(rgb[..., k].astype(np.float32)) for k, c in enumerate("RGB")}
    ) as f:
        f.write(str(path))


def test_bad_environment_maps_are_refused_before_anything_is_touched(tmp_path):
    from datagen.config import make_config
    from datagen.errors import DatagenError

    sky = np.full((16, 32, 3), 0.5, np.float32)
    cases = {
        "corrupt.exr": lambda p: p.write_bytes(os.urandom(20_000)),
        "nan.exr": lambda p: _write_exr(
            p, np.where(np.arange(32) % 7 == 0, np.nan, sky[..., 0])[..., None].repeat(3, -1)
        ),
        "black.exr": lambda p: _write_exr(p, np.zeros_like(sky)),
        "negative.exr": lambda p: _write_exr(p, sky - 1.0),
        "truncated.hdr": lambda p: p.write_bytes(
            b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 16 +X 32\n" + b"\x02\x02\x00\x20" + b"\x80"
        ),
        "text.hdr": lambda p: p.write_text("not a radiance file"),
    }
    for name, make in cases.items():
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        make(folder / name)
        with pytest.raises(DatagenError, match=rf"--hdri-dir: {name} "):
            make_config("test", hdri_dir=str(folder))
    good = tmp_path / "good"
    good.mkdir()
    _write_exr(good / "sky.exr", sky)
    assert make_config("test", hdri_dir=str(good)).hdri_dir == str(good)
    # Through the CLI: one line, exit 2, OUT never created.
    out = tmp_path / "out"
    r = facelift(*small_args(out, "--hdri-dir", str(tmp_path / "corrupt_exr")))
    assert r.returncode == 2 and "corrupt.exr does not decode" in one_line(r.stderr), r.stderr
    assert not out.exists()


def test_radiance_hdr_reader_matches_blender(tmp_path):
    import bpy

    from datagen.environments import environment_problem, read_hdr

    rng = np.random.default_rng(0)
    rgb = rng.uniform(0.0, 8.0, (12, 40, 3)).astype(np.float32)
    rgb[3, 5:20] = 0.0  # a run of zeros for the run-length coder
    image = bpy.data.images.new("env", 40, 12, float_buffer=True)
    image.colorspace_settings.is_data = True  # saved as the numbers given, no view transform
    image.pixels.foreach_set(
        np.concatenate([rgb, np.ones((12, 40, 1), np.float32)], -1)[::-1].ravel()
    )  # Blender: bottom row first
    image.filepath_raw = str(tmp_path / "env.hdr")
    image.file_format = "HDR"
    image.save()
    got = read_hdr(str(tmp_path / "env.hdr"))
    assert got.shape == (12, 40, 3)
    assert open(tmp_path / "env.hdr", "rb").read().count(b"\x02\x02\x00\x28") == 12, (
        "Blender wrote run-length scanlines"
    )
    # RGBE: one shared exponent and 8 mantissa bits per pixel, so the error scales with the brightest channel.
    assert (np.abs(got - rgb) <= rgb.max(axis=-1, keepdims=True) * 2**-7 + 1e-6).all()
    assert environment_problem(str(tmp_path / "env.hdr")) is None


def test_empty_or_black_views_fail_the_subject(dataset_a):
    from datagen.render_check import BadRender, check_views

    with open(dataset_a / "shards" / "heads-000000.tar", "rb") as f:
        _, files = next(read_samples(f))
    views = sorted(n for n in files if n.endswith(".png"))
    check_views(files, views)  # a real render passes

    def png(rgba):
        buf = io.BytesIO()
        Image.fromarray(rgba.astype(np.uint8), "RGBA").save(buf, format="PNG")
        return buf.getvalue()

    real = np.asarray(Image.open(io.BytesIO(files["fixed_00.png"])))
    black = real.copy()
    black[..., :3] = 0
    with pytest.raises(BadRender, match="views are black"):
        check_views({**files, **{v: png(black) for v in views}}, views)
    with pytest.raises(BadRender, match="fixed_03.png is empty"):
        check_views({**files, "fixed_03.png": png(np.zeros_like(real))}, views)


# ---------------------------------------------------------------------------------------- 3. checkpoints are data


class _Payload:
    """A pickle that runs a shell command when loaded."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _tiny_checkpoint(out: Path) -> Path:
    import dataclasses

    import torch

    from facelift_models.lrm import GSLRM
    from training.checkpoints import save_checkpoint
    from training.presets import LRM_PRESETS

    cfg = LRM_PRESETS["tiny"].model
    torch.manual_seed(0)
    meta = {"model": dataclasses.asdict(cfg), "train": dataclasses.asdict(LRM_PRESETS["tiny"].config)}
    return Path(save_checkpoint(str(out), 1, GSLRM(cfg), {"step": 1}, meta))


def test_resume_refuses_a_pickle_that_runs_code(dataset_a, tmp_path):
    import torch

    run = tmp_path / "run"
    ckpt = _tiny_checkpoint(run)
    marker = tmp_path / "pwned"
    torch.save({"step": 1, "optimizer": _Payload(marker)}, ckpt / "training_state.pt")
    # The payload is live: unpickling it the unsafe way runs the command (in a throwaway process).
    probe = tmp_path / "probe-pwned"
    torch.save({"x": _Payload(probe)}, tmp_path / "probe.pt")
    subprocess.run(
        [
            str(Path(FACELIFT).parent / "python"),
            "-c",
            f"import torch; torch.load({str(tmp_path / 'probe.pt')!r}, weights_only=False)",
        ],
        check=False,
        capture_output=True,
    )
    assert probe.exists(), "control: the planted pickle does run code when unpickled unsafely"
    r = facelift(*train_args("lrm", dataset_a, run, "--steps", "2", "--resume"))
    assert r.returncode == 2, r.stdout + r.stderr
    line = one_line(r.stderr)
    assert (
        "training_state.pt' is not a facelift training state (Trying to load unsupported GLOBAL posix.system" in line
    ), line
    assert "code that would run on loading" in line and "was not loaded" in line, line
    assert not marker.exists(), "the checkpoint's code ran"


def test_training_states_are_plain_data_and_older_ones_still_load(tmp_path):
    import random

    import torch

    from training.checkpoints import load_state
    from training.loop import rng_state, set_rng_state

    (tmp_path / "new").mkdir()
    torch.save(
        {"step": 3, "optimizer": {}, "scheduler": {}, "rng": rng_state()}, tmp_path / "new" / "training_state.pt"
    )
    expected = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(load_state(str(tmp_path / "new"))["rng"])  # weights_only=True inside
    assert (
        torch.equal(torch.rand(3), expected[0])
        and np.array_equal(np.random.rand(3), expected[1])
        and random.random() == expected[2]
    )
    # A state written before RNG states were plain data: numpy's tuple with its array still loads.
    (tmp_path / "old").mkdir()
    old = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(), "cuda": None}
    torch.save({"step": 3, "optimizer": {}, "scheduler": {}, "rng": old}, tmp_path / "old" / "training_state.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(load_state(str(tmp_path / "old"))["rng"])
    assert (
        torch.equal(torch.rand(3), expected[0])
        and np.array_equal(np.random.rand(3), expected[1])
        and random.random() == expected[2]
    )


@pytest.mark.parametrize(
    "damage, flag, message",
    [
        ("model.safetensors", "--resume", "is not a readable safetensors file"),
        ("model.safetensors", "--init-from", "is not a readable safetensors file"),
        ("training_state.pt", "--resume", "is not a facelift training state"),
        ("checkpoint.json", "--init-from", "is not readable JSON"),
    ],
)
def test_corrupt_checkpoints_are_one_line(dataset_a, tmp_path, damage, flag, message):
    run = tmp_path / "run"
    ckpt = _tiny_checkpoint(run)
    (ckpt / damage).write_bytes(os.urandom(300))
    target = (
        ["--resume", "--out", str(run)]
        if flag == "--resume"
        else ["--init-from", str(ckpt), "--out", str(tmp_path / "new")]
    )
    r = facelift("train", "lrm", "--data", str(dataset_a), "--steps", "2", *target, "--no-progress")
    assert r.returncode == 2 and message in one_line(r.stderr), r.stderr


def test_a_full_disk_while_checkpointing_leaves_no_temporary(dataset_a, tmp_path):
    with tmpfs(tmp_path / "fs", "1m") as fs:
        run = fs / "run"
        r = facelift(*train_args("lrm", dataset_a, run, "--steps", "1"))
        assert r.returncode == 2, r.stdout + r.stderr
        line = error_line(r.stderr)
        assert "step-00000001" in line and "No space left on device" in line, r.stderr
        assert not [p.name for p in (run / "checkpoints").iterdir()], "no step-…tmp or half checkpoint"


# ---------------------------------------------------------------------------------------- 4. the user's files


def test_only_files_this_tool_made_are_ever_deleted(small_copy, tmp_path):
    out = small_copy
    user = {
        "notes.tmp-1": b"mine",
        "draft.facelift-tmp-abcdefgh": b"mine too",
        "staging/mine.tar": b"my tar",
        "staging/id00009_ap000.tar": b"outside the plan",
        "shards/readme.txt": b"read me",
        "shards/heads-000009.tar": b"outside the plan",
    }
    ours = [
        "dataset.json.facelift-tmp-abcd1234",
        "shards/heads-000001.tar.facelift-tmp-zz_99xyz",
        "staging/id00000_ap002.tar.facelift-tmp-00000000",
    ]
    for rel, data in user.items():
        (out / rel).write_bytes(data)
    for rel in ours:
        (out / rel).write_bytes(b"half-written")
    shards_before = {p.name: p.read_bytes() for p in (out / "shards").glob("heads-00000[0-3].tar")}
    r = facelift(*small_args(out))
    assert r.returncode == 0 and "0 subjects rendered" in r.stdout, r.stdout + r.stderr
    for rel, data in user.items():
        assert (out / rel).read_bytes() == data, f"{rel} was touched"
    assert not [rel for rel in ours if (out / rel).exists()], "our own leftovers are cleaned"
    assert {p.name: p.read_bytes() for p in (out / "shards").glob("heads-00000[0-3].tar")} == shards_before


def test_a_non_empty_folder_without_a_card_is_refused(tmp_path):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"jpeg")
    (out / "staging").mkdir()
    (out / "staging" / "work.tar").write_bytes(b"tar")
    before = tree_digest(out)
    r = facelift(*small_args(out))
    assert r.returncode == 2 and "is not empty and holds no dataset.json" in one_line(r.stderr), r.stderr
    assert tree_digest(out) == before and sorted(p.name for p in out.iterdir()) == ["holiday.jpg", "staging"]


# ---------------------------------------------------------------------------------------- 5. the lock, and SIGTERM


def test_second_run_on_one_folder_is_refused_and_sigterm_stops_like_ctrl_c(tmp_path):
    out = tmp_path / "l"
    out.mkdir()
    # A lock file left by a run killed with -9: the kernel released its lock, so it is stale.
    (out / ".facelift.lock").write_text(
        json.dumps({"host": socket.gethostname(), "pid": 999_999, "started": "yesterday"})
    )
    args = datagen_args(out, 1, 2, "--views-random", "0", "--subjects-per-shard", "1", "--workers", "1")
    first = subprocess.Popen([FACELIFT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (out / "dataset.json").exists():
            time.sleep(0.2)
        assert (out / "dataset.json").exists(), "the first run did not start"
        t = time.time()
        second = facelift(*args)
        assert second.returncode == 2, second.stdout + second.stderr
        line = one_line(second.stderr)
        assert "is in use by another facelift datagen run" in line and f"pid {first.pid}" in line, line
        assert time.time() - t < 30
        while time.time() < deadline and not list((out / "shards").glob("heads-*.tar")):
            time.sleep(0.2)
        survivors = {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("heads-*.tar")}
        assert survivors, "no shard before the SIGTERM"
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 143, err
    assert one_line(err).startswith("interrupted:") and "rerun the same command to resume" in err, err
    assert not (out / ".facelift.lock").exists()
    r = facelift(*args)
    assert r.returncode == 0, r.stderr
    v = facelift("datagen", "verify", str(out))
    assert v.returncode == 0 and "2 shards, 2 samples" in v.stdout, v.stdout
    assert all((out / "shards" / n).stat().st_mtime_ns == m for n, m in survivors.items()), (
        "finished shards were rewritten"
    )


# ------------------------------------------------------------------------------- 6. shards the card does not vouch for


def test_reruns_adopt_only_checked_shards_and_set_the_rest_aside(small_copy):
    out = small_copy
    shards = out / "shards"
    originals = {k: (shards / f"heads-00000{k}.tar").read_bytes() for k in range(4)}
    planted = {
        0: originals[0][: len(originals[0]) // 2],  # recorded, then truncated
        1: originals[3],  # unrecorded: a real facelift shard, of another subject
        2: foreign_tar(),  # unrecorded: someone else's tar under our name
        3: originals[3][: len(originals[3]) // 3],  # unrecorded and truncated
    }
    for k, data in planted.items():
        (shards / f"heads-00000{k}.tar").write_bytes(data)
    (out / "staging" / "id00000_ap001.tar").write_bytes(b"\0" * 1024)  # a staged subject that does not decode
    card = card_of(out)
    card["shards"] = [s for s in card["shards"] if s["index"] == 0]
    card["complete"] = False
    write_card(out, card)
    r = facelift(*small_args(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "4 subjects rendered, 4 shards written" in r.stdout and "5 bad files set aside" in r.stdout, r.stdout
    v = facelift("datagen", "verify", str(out))
    assert v.returncode == 0 and "4 samples" in v.stdout, v.stdout
    assert keys_in(out) == [f"id00000_ap{j:03d}" for j in range(4)]
    for k, data in planted.items():  # set aside, never deleted
        [aside] = shards.glob(f"heads-00000{k}.tar.rejected-*")
        assert aside.read_bytes() == data
    assert len(list((out / "staging").glob("id00000_ap001.tar.rejected-*"))) == 1
    assert card_of(out)["runs"][-1]["set_aside"]


def test_a_published_but_unrecorded_shard_is_adopted_without_rendering(small_copy):
    out = small_copy
    stamp = (out / "shards" / "heads-000002.tar").stat().st_mtime_ns
    card = card_of(out)
    entry = next(s for s in card["shards"] if s["index"] == 2)
    card["shards"].remove(entry)
    card["complete"] = False
    write_card(out, card)
    r = facelift(*small_args(out))
    assert r.returncode == 0 and "0 subjects rendered, 0 shards written" in r.stdout, r.stdout + r.stderr
    assert next(s for s in card_of(out)["shards"] if s["index"] == 2) == entry
    assert (out / "shards" / "heads-000002.tar").stat().st_mtime_ns == stamp
    assert facelift("datagen", "verify", str(out)).returncode == 0


# ---------------------------------------------------------------------------------------- 7. no hangs


def test_ray_address_auto_without_a_cluster_of_ours_and_a_port_that_is_not_ray_fail_fast(tmp_path):
    out = tmp_path / "out"
    ray_tmp = tmp_path / "raytmp"
    env = {"RAY_TMPDIR": str(ray_tmp), "RAY_ADDRESS": ""}
    cases = [(["--ray-address", "auto"], "--ray-address auto found no Ray cluster of yours")]
    if os.geteuid() == 0:  # a cluster another user started on this machine: never joined
        (ray_tmp / "ray").mkdir(parents=True)
        (ray_tmp / "ray" / "ray_current_cluster").write_text("127.0.0.1:6379")
        os.chown(ray_tmp / "ray" / "ray_current_cluster", 65534, 65534)
    with silent_port() as port:
        cases += [
            (["--ray-address", f"127.0.0.1:{port}"], f"--ray-address 127.0.0.1:{port} is open but is not a Ray head"),
            (["--ray-address", f"ray://127.0.0.1:{port}"], "is open but is not a Ray client server"),
        ]
        for extra, message in cases:
            t = time.time()
            r = facelift(*small_args(out, *extra), env=env, timeout=60)
            assert r.returncode == 2 and message in one_line(r.stderr), r.stderr
            assert time.time() - t < 30, f"{extra} took {time.time() - t:.0f} s"
            assert not out.exists()


# --------------------------------------------------------------------------------------- 8. training checks its shards


def _flip_a_member_header(shard: Path) -> None:
    """Corrupt the tar header of the sample's third member: same size, the stream ends there."""
    data = bytearray(shard.read_bytes())
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tar:
        offset = tar.getmembers()[2].offset
    data[offset + 100] ^= 0xFF
    shard.write_bytes(bytes(data))


def test_training_checks_shards_before_and_names_them_when_reading_fails(small_copy):
    data = small_copy
    shards = data / "shards"

    def train(*extra):
        few_steps = ("--steps", "2", "--vae-steps", "1", "--batch-size", "1")
        r = facelift(*train_args("diffusion", data, data.parent / "run", *few_steps, *extra))
        assert r.returncode == 2, r.stdout + r.stderr
        return error_line(r.stderr)

    original = (shards / "heads-000001.tar").read_bytes()
    (shards / "heads-000001.tar").unlink()
    assert "heads-000001.tar is listed in dataset.json but missing" in train()
    (shards / "heads-000001.tar").write_bytes(original[:-512])
    assert f"heads-000001.tar is {len(original) - 512} bytes, dataset.json says {len(original)}" in train()
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0x01
    (shards / "heads-000001.tar").write_bytes(bytes(flipped))
    assert "heads-000001.tar has another sha256 than dataset.json records" in train("--verify-data")
    for shard in shards.glob("heads-*.tar"):  # every sample now loses members mid-stream: a read error mid-run
        _flip_a_member_header(shard)
    for workers in ("0", "1"):
        line = train("--workers", workers)
        assert (
            "sample 'id00000_ap00" in line
            and str(shards) in line
            and "that dataset.json lists: the shard is damaged" in line
        ), line


# -------------------------------------------------------------------------------- 9. memory from valid-looking options


def test_a_hundred_million_subject_plan_costs_no_memory(tmp_path):
    import itertools
    import tracemalloc

    from datagen.card import new_card
    from datagen.config import make_config
    from datagen.shard_book import ShardBook
    from datagen.storage import Storage

    cfg = make_config("paper", identities=99999, appearances=999)
    tracemalloc.start()
    try:
        t = time.time()
        book = ShardBook(Storage(str(tmp_path / "big")), new_card(cfg, []), cfg)
        book.reconcile()
        assert book.todo_count == 99999 * 999
        first = list(itertools.islice(book.pending(), 1000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()  # tracing every allocation would slow the rest of the session
    assert first[0] == (0, 0) and first[-1] == (1, 0) and len(first) == 1000
    assert book.plan.shard_of("id99998_ap998") == book.plan.shard_count - 1
    assert peak < 20 * 2**20 and time.time() - t < 5, f"{peak / 2**20:.1f} MB, {time.time() - t:.1f} s"


# ------------------------------------------------------------------------------------- 10, 11. one line, OUT unchanged


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--ray-address", "127.0.0.1:99999"], "--ray-address '127.0.0.1:99999' is not allowed"),
        (["--ray-address", "127.0.0.1:abc"], "--ray-address '127.0.0.1:abc' is not allowed"),
        (["--views-random", "100000000"], "--views-random 100000000 is not allowed (0 to 999)"),
        (["--identities", "100000"], "--identities must be at most 99999"),
        (["--threads-per-worker", "64"], "needs 64 CPUs"),
    ],
)
def test_bad_datagen_input_is_one_line_and_out_is_never_created(tmp_path, extra, message):
    out = tmp_path / "new"
    r = facelift(*small_args(out, *extra), timeout=120)
    assert r.returncode == 2 and message in one_line(r.stderr), r.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "target, message",
    [
        ("", "--out '' is not allowed"),
        ("memory://x", "--out memory://x is not allowed: memory:// lives in one process"),
    ],
)
def test_output_locations_workers_cannot_share_are_refused(tmp_path, target, message):
    before = sorted(os.listdir(tmp_path))
    r = subprocess.run([FACELIFT, *small_args(target)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and message in one_line(r.stderr), r.stderr
    assert sorted(os.listdir(tmp_path)) == before


def _card_edits():
    def listed(card):
        return card

    return {
        "a list": (lambda card: [card], 2, "is not a facelift dataset card (format 'a JSON list'"),
        "no failed": (
            lambda card: {k: v for k, v in card.items() if k != "failed"},
            2,
            "not a valid facelift dataset card (failed is missing)",
        ),
        "no sha256": (
            lambda card: {**card, "shards": [{k: v for k, v in s.items() if k != "sha256"} for s in card["shards"]]},
            2,
            "not a valid facelift dataset card (shards[0].sha256 is missing)",
        ),
        "counts lie": (
            lambda card: {**card, "counts": {**card["counts"], "samples_written": 9}},
            1,
            "card counts samples_written = 9, its entries say 4",
        ),
        "failed but present": (
            lambda card: {
                **card,
                "failed": {"id00000_ap002": {"error": "x", "attempts": 1}},
                "counts": {**card["counts"], "failed": 1},
            },
            1,
            "id00000_ap002 is recorded as failed but is in a shard",
        ),
    }


@pytest.mark.parametrize("case", list(_card_edits()))
def test_verify_reads_the_card_it_is_given_critically(small_copy, case):
    edit, code, message = _card_edits()[case]
    (small_copy / "dataset.json").write_text(json.dumps(edit(card_of(small_copy))))
    r = facelift("datagen", "verify", str(small_copy))
    out = r.stdout + r.stderr
    assert r.returncode == code and message in one_line(out), out


def test_preview_reads_a_shard_with_extra_members(small_copy, tmp_path):
    shard = small_copy / "shards" / "heads-000000.tar"
    with open(shard, "rb") as f:
        [(key, files)] = list(read_samples(f))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in [
            *((f"{key}.{m}", d) for m, d in files.items()),
            (f"{key}.notes.txt", b"extra"),
            ("README", b"no key"),
            ("zz.extra.bin", b"1"),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    shard.write_bytes(buf.getvalue())
    r = facelift("datagen", "preview", str(small_copy), "--output", str(tmp_path / "sheet.png"), "--tile", "32")
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "sheet.png").size[1] == 20 + 4 * 32


def test_training_options_out_of_range_are_one_line(dataset_a, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    cases = [
        (["lrm", "--lr", "inf"], "--lr inf is not allowed (must be a finite number above 0)"),
        (["lrm", "--lr", "nan"], "--lr nan is not allowed"),
        (["lrm", "--stop-at", "0"], "--stop-at 0 is not allowed"),
        (["lrm", "--workers", "-1"], "--workers -1 is not allowed"),
        (["diffusion", "--vae-steps", "-1"], "--vae-steps -1 is not allowed (must be 0 or more)"),
        (["lrm", "--out", str(blocker)], "is a file; give a folder for the run"),
    ]
    for extra, message in cases:
        args = ["train", extra[0], "--data", str(dataset_a), "--steps", "1", "--no-progress"]
        if "--out" not in extra:
            args += ["--out", str(tmp_path / "run")]
        r = facelift(*args, *extra[1:])
        assert r.returncode == 2 and message in one_line(r.stderr), f"{extra}: {r.stderr}"
    assert not (tmp_path / "run").exists()
    with tmpfs(tmp_path / "ro", "1m", readonly=True) as ro:
        r = facelift(*train_args("lrm", dataset_a, ro / "run", "--steps", "1"))
        assert r.returncode == 2 and "is not writable (Read-only file system)" in one_line(r.stderr), r.stderr
