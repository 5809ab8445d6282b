"""Training at scale (issue 14, the trainers' part): sources streamed from S3 (a real moto server),
the per-epoch split between processes and loader workers, several sources mixed by weight, and
`torchrun --nproc_per_node 2` (DDP over gloo on the CPU) for both trainers, resume included.

What each rank trained on comes from the FACELIFT_RECORD_KEYS hook (`training.stream`): one line
"epoch source key" per subject of every trained batch, in <folder>/rank<r>.txt.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import pytest

from conftest import FACELIFT, eval_args, facelift, train_args
from s3_server import S3Server, free_port
from training.diffusion_data import face_statistics
from training.shards import Source, open_source
from training.stream import RECORD_ENV, SeededMap, SubjectStream, mixing_weights

BUCKET = "training-heads"


@pytest.fixture(scope="module")
def s3_heads(s3, dataset_a) -> str:
    """dataset_a uploaded to the session's S3 server, as a trainer reads it: s3://training-heads/a."""
    s3.make_bucket(BUCKET)
    fsspec.filesystem("s3", skip_instance_cache=True).put(str(dataset_a), f"{BUCKET}/a", recursive=True)
    return f"s3://{BUCKET}/a"


@pytest.fixture(scope="module")
def dataset_b(dataset_a, tmp_path_factory) -> Path:
    """A second source: dataset_a's card listing only its second shard (2 of its 6 subjects)."""
    out = tmp_path_factory.mktemp("sources") / "b"
    shutil.copytree(dataset_a, out)
    card = json.loads((out / "dataset.json").read_text())
    card["shards"] = card["shards"][1:]
    (out / "dataset.json").write_text(json.dumps(card))
    return out


def keys_of(data: Path) -> set[str]:
    return {k for s in json.loads((data / "dataset.json").read_text())["shards"] for k in s["keys"]}


def key_only(files: dict, rng) -> dict:
    return {"key": files["__key__"]}


def read_stream(
    sources: list[Source], rank: int, world: int, monkeypatch, weights=None, epochs: int | None = 2, seed: int = 0
):
    """(epoch, source, key) of what reader `rank` of `world` (no loader workers) reads."""
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", str(world))
    stream = SubjectStream(
        sources,
        mixing_weights(sources, weights),
        SeededMap(key_only, seed, [s.members for s in sources]),
        1,
        seed,
        epochs=epochs,
    )
    return ((b["epoch"][0], b["source"][0], b["key"][0]) for b in stream)


def records(folder: Path) -> dict[int, list[tuple[int, int, str]]]:
    """rank → [(epoch, source, key)] of the FACELIFT_RECORD_KEYS files."""
    out = {}
    for f in sorted(folder.glob("rank*.txt")):
        out[int(f.stem.removeprefix("rank"))] = [
            (int(e), int(s), k) for e, s, k in (ln.split() for ln in f.read_text().splitlines())
        ]
    return out


def assert_split(
    seen: dict[int, list[tuple[int, int, str]]], every: set[str], complete: set[int], source: int = 0
) -> None:
    """In every epoch the readers' subjects are disjoint (and none repeats); in `complete` epochs
    they are every subject."""
    epochs = {e for rows in seen.values() for e, s, _ in rows if s == source}
    assert complete <= epochs, (complete, epochs)
    for epoch in epochs:
        read = [k for rows in seen.values() for e, s, k in rows if e == epoch and s == source]
        assert len(read) == len(set(read)), f"epoch {epoch}: a subject read twice {sorted(read)}"
        if epoch in complete:
            assert set(read) == every, f"epoch {epoch}: {sorted(read)}"


def torchrun(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`facelift ...` as 2 processes (DDP over gloo on the CPU)."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(free_port()),
        FACELIFT,
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


# ----------------------------------------------------------------------------- the split and the mix, in process


@pytest.mark.parametrize("world", [1, 2, 3, 6])  # 2 shards: by shard for 1-2 readers, by subject for 3 and 6
def test_each_epoch_splits_every_subject_once_between_the_readers(dataset_a, world, monkeypatch):
    source = open_source(str(dataset_a))
    seen = {r: list(read_stream([source], r, world, monkeypatch)) for r in range(world)}
    assert_split(seen, keys_of(dataset_a), complete={0, 1})
    assert all(rows for rows in seen.values())
    orders = [[k for rows in seen.values() for e, _, k in rows if e == epoch] for epoch in (0, 1)]
    assert orders[0] != orders[1] or world == 6  # each epoch its own shuffle (one subject per reader cannot show it)


def test_sources_mix_by_weight_default_by_subject_count(dataset_a, dataset_b, monkeypatch):
    sources = [open_source(str(dataset_a)), open_source(str(dataset_b))]  # 6 and 2 subjects
    for weights, share in ((None, 0.75), ([1.0, 3.0], 0.25)):
        drawn = [s for _, s, _ in itertools.islice(read_stream(sources, 0, 1, monkeypatch, weights, epochs=None), 400)]
        assert abs(drawn.count(0) / len(drawn) - share) < 0.07, (weights, drawn.count(0))
    # Several sources with finite epochs: every subject of every source once per epoch.
    read = list(read_stream(sources, 0, 1, monkeypatch, epochs=1))
    assert sorted(k for _, s, k in read if s == 0) == sorted(keys_of(dataset_a))
    assert sorted(k for _, s, k in read if s == 1) == sorted(keys_of(dataset_b))


def test_face_statistics_of_several_sources_are_pooled_by_mixing_weight():
    def source(stats):
        return Source("x", {"face_alignment": stats} if stats else {}, ())

    def stats(size, sd, found):
        return {
            "detector": "MTCNN",
            "canvas": 512,
            "subjects": found,
            "found": found,
            "face_size": {"mean": size, "sd": sd},
            "centre_x": {"mean": 250.0, "sd": 0.0},
            "centre_y": {"mean": 280.0, "sd": 0.0},
        }

    a, b = stats(190.0, 2.0, 40), stats(200.0, 2.0, 20)
    assert face_statistics([source(a)], [1.0]) == a
    pooled = face_statistics([source(a), source(b), source(None)], [3.0, 1.0, 5.0])  # objects (no faces) do not count
    assert pooled["face_size"]["mean"] == pytest.approx(192.5) and pooled["found"] == 60
    assert pooled["face_size"]["sd"] == pytest.approx(
        (4 + 0.75 * 6.25 + 0.25 * 56.25) ** 0.5, abs=1e-3
    )  # within + between sources
    assert face_statistics([source(None), source(b)], [1.0, 1.0]) == b


# ------------------------------------------------------------------------ bad input: one line, exit 2, nothing written


def assert_refused(r: subprocess.CompletedProcess, out: Path, message: str, seconds: float) -> None:
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert not out.exists()
    assert seconds < 30, f"took {seconds:.0f} s"


def timed(*args: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    r = facelift(*args, env=env, timeout=120)
    return r, time.perf_counter() - t0


def test_a_missing_bucket_refused_credentials_and_a_dead_endpoint_are_one_line(s3_heads, tmp_path):
    out = tmp_path / "run"
    r, s = timed(*train_args("lrm", "s3://no-such-bucket/heads", out, "--steps", "1"))
    assert_refused(r, out, "the bucket 'no-such-bucket' does not exist", s)
    dead = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}  # nothing listens there
    r, s = timed(*train_args("lrm", s3_heads, out, "--steps", "1"), env=dead)
    assert_refused(r, out, "does not answer", s)
    r, s = timed(*eval_args(s3_heads, out, "--lrm", str(tmp_path / "no-lrm")), env=dead)
    assert_refused(r, out, "does not answer", s)
    strict = S3Server(tmp_path, auth=True)  # checks credentials: the test keys are unknown to it
    try:
        r, s = timed(
            *train_args("diffusion", s3_heads, out, "--steps", "1"), env={"AWS_ENDPOINT_URL": strict.endpoint}
        )
        assert_refused(r, out, "refused the credentials", s)
    finally:
        strict.stop()


def test_mixing_weights_out_of_range_and_more_readers_than_subjects_are_one_line(dataset_a, dataset_b, tmp_path):
    out = tmp_path / "run"
    two = ["--data", str(dataset_a), "--data", str(dataset_b), "--out", str(out), "--steps", "1", "--no-progress"]
    for model, weights, message in (
        ("lrm", ["1"], "--data-weight is given 1 time for 2 --data; give one weight per --data"),
        ("lrm", ["1", "0"], "--data-weight 0.0 is not allowed (must be a finite number above 0)"),
        ("diffusion", ["-2", "1"], "--data-weight -2.0 is not allowed"),
        ("lrm", ["nan", "1"], "--data-weight nan is not allowed"),
        ("diffusion", ["1", "inf"], "--data-weight inf is not allowed"),
    ):
        r, s = timed("train", model, *two, *itertools.chain.from_iterable(("--data-weight", w) for w in weights))
        assert_refused(r, out, message, s)
    r, s = timed(*train_args("lrm", dataset_b, out, "--workers", "3", "--steps", "1"))
    assert_refused(r, out, "has 2 subjects, fewer than the 3 readers (1 process(es) × 3 loader worker(s))", s)


# ----------------------------------------------------------------------------- streaming from S3


def test_train_lrm_streams_two_sources_one_from_s3_mixed_by_weight(dataset_a, s3_heads, tmp_path):
    out, seen = tmp_path / "run", tmp_path / "seen"
    seen.mkdir()
    weighted = ("--data", s3_heads, "--data-weight", "3", "--data-weight", "1")
    r = facelift(*train_args("lrm", dataset_a, out, *weighted, "--steps", "12"), env={RECORD_ENV: str(seen)})
    assert r.returncode == 0, r.stderr
    rows = records(seen)[0]
    assert len(rows) == 12 and {s for _, s, _ in rows} == {0, 1}
    assert {k for _, _, k in rows} <= keys_of(dataset_a)
    meta = json.loads((out / "checkpoints" / "step-00000012" / "checkpoint.json").read_text())
    assert meta["data"] == [str(dataset_a), s3_heads] and meta["data_weights"] == [3.0, 1.0]
    assert files_under(out) == {
        f"checkpoints/step-00000012/{f}" for f in ("checkpoint.json", "model.safetensors", "training_state.pt")
    } | {str(p.relative_to(out)) for p in (out / "logs").iterdir()}  # nothing downloaded, no copy of the data


def test_eval_reads_a_held_out_split_from_s3(trained, dataset_heldout, s3, tmp_path):
    s3.make_bucket("training-heldout")
    fsspec.filesystem("s3", skip_instance_cache=True).put(
        str(dataset_heldout), "training-heldout/test", recursive=True
    )
    out = tmp_path / "eval"
    quick_one = ("--preset", "quick", "--subjects", "1")
    r = facelift(*eval_args("s3://training-heldout/test", out, "--lrm", str(trained["lrm"]), *quick_one))
    assert r.returncode == 0, r.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert (
        metrics["data"]["path"] == "s3://training-heldout/test"
        and metrics["data"]["split"] == "test"
        and metrics["data"]["subjects"] == 1
    )
    assert metrics["mean"]["reconstruction"]["views"] == 4 and metrics["mean"]["reconstruction"]["psnr"] > 0


# ----------------------------------------------------------------------------- torchrun, 2 processes


@pytest.mark.slow
def test_torchrun_train_lrm_from_s3_splits_each_epoch_writes_on_rank_0_and_resumes(dataset_a, s3_heads, tmp_path):
    out, seen = tmp_path / "run", tmp_path / "seen"
    seen.mkdir()
    args = train_args("lrm", s3_heads, out, "--steps", "10", "--checkpoint-every", "3")
    r = torchrun(*args, "--stop-at", "6", env={RECORD_ENV: str(seen)})
    assert r.returncode == 0, r.stderr[-3000:]
    assert "2 process(es) (MULTI_CPU)" in r.stderr  # DDP over gloo, not two lone runs
    assert r.stdout.count("done: step 6") == 1  # one summary: rank 0's
    first = records(seen)
    assert sorted(first) == [0, 1] and [len(rows) for rows in first.values()] == [
        6,
        6,
    ]  # both ranks stepped, in lockstep
    # 2 shards (4 + 2 subjects), 2 ranks: one shard each per epoch, so 6 steps are epochs 0 and 1 whole.
    assert_split(first, keys_of(dataset_a), complete={0, 1})

    r = torchrun(*args, "--resume", env={RECORD_ENV: str(seen)})
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("done: step 10") == 1
    after = {rank: rows[6:] for rank, rows in records(seen).items()}
    assert [len(rows) for rows in after.values()] == [4, 4]
    assert (
        min(e for rows in after.values() for e, _, _ in rows) == 2
    )  # the resumed run starts the data at the next epoch
    assert_split(records(seen), keys_of(dataset_a), complete={0, 1, 2})
    state_meta = json.loads((out / "checkpoints" / "step-00000010" / "checkpoint.json").read_text())
    assert state_meta["step"] == 10 and state_meta["data"] == [s3_heads]
    # Only rank 0 wrote: the last 3 checkpoints and one tensorboard file per run, nothing else.
    ckpts = {
        f"checkpoints/step-{s:08d}/{f}"
        for s in (6, 9, 10)
        for f in ("checkpoint.json", "model.safetensors", "training_state.pt")
    }
    events = {str(p.relative_to(out)) for p in (out / "logs").glob("events.out.tfevents.*")}
    assert len(events) == 2 and files_under(out) == ckpts | events


@pytest.mark.slow
def test_torchrun_train_diffusion_with_loader_workers_splits_by_subject_and_writes_on_rank_0(dataset_a, tmp_path):
    out, seen = tmp_path / "run", tmp_path / "seen"
    seen.mkdir()
    # 2 processes × 2 workers = 4 readers for 2 shards: the epoch's subjects are dealt out one by one.
    options = ("--steps", "6", "--batch-size", "1", "--vae-steps", "2", "--workers", "2")
    every = ("--checkpoint-every", "3", "--validate-every", "100")
    r = torchrun(*train_args("diffusion", dataset_a, out, *options, *every), env={RECORD_ENV: str(seen)})
    assert r.returncode == 0, r.stderr[-3000:]
    assert "2 process(es) (MULTI_CPU)" in r.stderr and r.stdout.count("done: step 6") == 1
    seen_rows = records(seen)
    assert sorted(seen_rows) == [0, 1] and [len(rows) for rows in seen_rows.values()] == [6, 6]
    # Each reader holds 1 or 2 subjects an epoch and each worker serves 3 of its process's 6 batches: epoch 0 is whole.
    assert_split(seen_rows, keys_of(dataset_a), complete={0})
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "logs", "pipeline", "vae"]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000003", "step-00000006"]
    assert len(list((out / "logs").iterdir())) == 1
    assert (out / "pipeline" / "model_index.json").exists() and (out / "vae" / "config.json").exists()
    assert not [p for p in out.rglob("*") if p.name.endswith((".tmp", ".old")) or ".write-probe" in p.name]
