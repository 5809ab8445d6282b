"""Shared fixtures: one real test-preset dataset rendered through the CLI, Ray and Cycles."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

FACELIFT = str(Path(sys.executable).parent / "facelift")


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """A real S3 API (moto's standalone server) on 127.0.0.1 for the whole session. Its endpoint
    and test credentials go into os.environ, so this process and every process it starts (the CLI,
    Ray nodes, torchrun ranks) use it as S3; they are restored at the end. Yields the S3Server."""
    from s3_server import S3Server

    server = S3Server(tmp_path_factory.mktemp("s3"))
    saved = {k: os.environ.get(k) for k in server.env}
    os.environ.update(server.env)
    try:
        yield server
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def facelift(*args: str, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the installed `facelift` console script."""
    return subprocess.run(
        [FACELIFT, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def datagen_args(out, identities: int, appearances: int, *options: str) -> list[str]:
    """The arguments of `facelift datagen` for identities × appearances subjects at the test preset
    into `out` (a folder or a URL), without a progress bar; `options` add the case's own."""
    subjects = ["--identities", str(identities), "--appearances", str(appearances)]
    return ["datagen", *subjects, "--preset", "test", "--out", str(out), *options, "--no-progress"]


def train_args(model: str, data, out, *options: str) -> list[str]:
    """The arguments of `facelift train MODEL` on `data` (a folder or a URL) into `out`, without a
    progress bar; `options` add the case's own."""
    return ["train", model, "--data", str(data), "--out", str(out), *options, "--no-progress"]


def eval_args(data, out, *options: str) -> list[str]:
    """The arguments of `facelift eval` on `data` (a folder or a URL) into `out`; `options` name the
    models and add the case's own."""
    return ["eval", "--data", str(data), "--out", str(out), *options]


def trained_models(trained: dict) -> list[str]:
    """The `--lrm` and `--diffusion` options that name the models of the `trained` fixture."""
    return ["--lrm", str(trained["lrm"]), "--diffusion", str(trained["pipeline"])]


@pytest.fixture(scope="session")
def dataset_a(tmp_path_factory) -> Path:
    """The issue's acceptance run: 3 identities × 2 appearances, test preset, 2 workers."""
    out = tmp_path_factory.mktemp("datagen") / "a"
    r = facelift(*datagen_args(out, 3, 2, "--workers", "2"))
    assert r.returncode == 0, r.stderr + r.stdout
    return out


@pytest.fixture(scope="session")
def dataset_heldout(tmp_path_factory) -> Path:
    """A held-out split: 2 identities × 1 appearance, test preset, 4 random views each."""
    out = tmp_path_factory.mktemp("datagen") / "heldout"
    r = facelift(*datagen_args(out, 2, 1, "--views-random", "4", "--split", "test", "--workers", "2"))
    assert r.returncode == 0, r.stderr + r.stdout
    return out


@pytest.fixture(scope="session")
def trained(dataset_a, tmp_path_factory) -> dict:
    """A tiny diffusion pipeline and a tiny LRM checkpoint, each trained 2 steps on dataset_a."""
    root = tmp_path_factory.mktemp("trained")
    tiny_steps = ("--preset", "tiny", "--steps", "2")
    r = facelift(
        *train_args("diffusion", dataset_a, root / "mv", *tiny_steps, "--vae-steps", "2", "--batch-size", "2")
    )
    assert r.returncode == 0, r.stderr
    r = facelift(*train_args("lrm", dataset_a, root / "lrm", *tiny_steps))
    assert r.returncode == 0, r.stderr
    return {
        "pipeline": root / "mv" / "pipeline",
        "lrm": root / "lrm",
        "diffusion_ckpt": root / "mv" / "checkpoints" / "step-00000002",
    }


def write_card_listing(folder: Path, like: Path) -> None:
    """A valid dataset card in `folder` (the config of the dataset `like`) that lists exactly the
    tars in folder/shards as shards 0, 1, ... with their real sizes and hashes: how a card looks
    when it lists shards of any content."""
    import hashlib
    import json

    from datagen.card import save_card
    from datagen.config import make_config
    from datagen.shard_format import read_samples, shard_name
    from datagen.storage import Storage

    card = json.loads((like / "dataset.json").read_text())
    cfg = make_config(card["config"]["preset"], **{k: v for k, v in card["config"].items() if k != "preset"})
    card["shards"] = []
    first = sorted((folder / "shards").glob("*.tar"))[0]
    with open(first, "rb") as f:
        card["members_per_sample"] = sorted(next(read_samples(f))[1])  # what the shards really hold
    for k, tar in enumerate(sorted((folder / "shards").glob("*.tar"))):
        if tar.name != shard_name(k):
            tar.rename(tar.with_name(shard_name(k)))
            tar = tar.with_name(shard_name(k))
        data = tar.read_bytes()
        card["shards"].append(
            {
                "index": k,
                "name": tar.name,
                "samples": 1,
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
                "keys": ["id00000_ap000"],
            }
        )
    save_card(Storage(str(folder)), card, cfg)


def foreign_tar() -> bytes:
    """A tar of another dataset's format (an ImageNet-style webdataset sample)."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("000.jpg", b"not a png"), ("000.cls", b"3")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def keys_in(out: Path) -> list[str]:
    """The sample keys of a local datagen output's shards, in shard order (duplicates kept)."""
    from datagen.shard_format import read_samples

    keys = []
    for shard in sorted((out / "shards").glob("heads-*.tar")):
        with open(shard, "rb") as f:
            keys += [k for k, _ in read_samples(f)]
    return keys


@contextlib.contextmanager
def silent_port():
    """A TCP port on 127.0.0.1 that accepts connections and never speaks: an endpoint that hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for c in held:
            c.close()
        server.close()


def samples_of(out: Path) -> dict[str, dict[str, bytes]]:
    """Every sample of a local output folder's shards, by key (a key twice fails)."""
    from datagen.shard_format import read_samples

    result = {}
    for shard in sorted((out / "shards").glob("heads-*.tar")):
        with open(shard, "rb") as f:
            for key, files in read_samples(f):
                assert key not in result, f"duplicate key {key}"
                result[key] = files
    return result


def alpha(png: bytes):
    """The alpha channel (H, W) uint8 of an RGBA PNG."""
    import io

    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)))[..., 3]
