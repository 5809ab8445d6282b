"""Scale-out (issue 14): GPUs reserved through Ray, and a real multi-node Ray cluster.

GPU rendering cannot run here (no GPU), so the GPU scheduling runs on Ray's logical GPU resources
(`ray start --num-gpus 2` on this CPU machine: Ray still hands each actor its own
CUDA_VISIBLE_DEVICES) and the device choice is tested as the pure function it is. The cluster is
real: `ray start --head` and `ray start --address` on this machine, token-authenticated, each node
with its own resources and --temp-dir; the node-loss test kills a node's processes with SIGKILL
mid-run. The cluster is shared by the module; the node-loss test kills node b, so it comes last.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import FACELIFT, facelift, keys_in
from datagen.devices import GpuAssignment, choose_gpu_devices, gpu_worker_env, gpus_per_worker, worker_slots
from datagen.errors import DatagenError
from datagen.ray_cluster import code_fingerprint
from ray_cluster_fixture import RayTestCluster

HEADS = [
    "--preset",
    "test",
    "--identities",
    "3",
    "--appearances",
    "2",
    "--views-random",
    "2",
    "--subjects-per-shard",
    "2",
]
# Runs about the cluster's machinery render objects: same workers, staging, shards and card, a fraction of the time.
OBJECTS = [
    "--kind",
    "objects",
    "--preset",
    "test",
    "--identities",
    "1",
    "--appearances",
    "6",
    "--views-random",
    "2",
    "--subjects-per-shard",
    "2",
]
PLANNED = [f"id{i:05d}_ap{j:03d}" for i in range(3) for j in range(2)]
PLANNED_OBJECTS = [f"id00000_ap{j:03d}" for j in range(6)]


def one_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in text, f"expected one line, got:\n{text}"
    return lines[0]


def last_run(out: Path) -> dict:
    return json.loads((out / "dataset.json").read_text())["runs"][-1]


def verified(out: Path, samples: int) -> None:
    v = facelift("datagen", "verify", str(out))
    assert v.returncode == 0 and f"{samples} samples" in v.stdout, v.stdout + v.stderr


# ------------------------------------------------------------------------------ the device choice, pure


def test_device_choice_enables_exactly_the_gpus_ray_assigned():
    one = GpuAssignment(("1",), "CUDA_VISIBLE_DEVICES=1")
    two = GpuAssignment(("0", "3"), "CUDA_VISIBLE_DEVICES=0,3")
    # CUDA lists only the visible cards: everything the preferred backend lists, checked by count
    listed = {"OPTIX": ["OPTIX_0000:41:00"], "CUDA": ["CUDA_0000:41:00"], "HIP": [], "ONEAPI": []}
    assert choose_gpu_devices(listed, one) == ("OPTIX", ["OPTIX_0000:41:00"])
    both = {"OPTIX": ["OPTIX_0000:01:00", "OPTIX_0000:81:00"], "CUDA": ["CUDA_0000:01:00", "CUDA_0000:81:00"]}
    assert choose_gpu_devices(both, two) == ("OPTIX", ["OPTIX_0000:01:00", "OPTIX_0000:81:00"])
    # a backend that lists another number than Ray assigned is passed over for one that matches
    one_optix = {"OPTIX": ["OPTIX_0000:01:00"], "CUDA": ["CUDA_0000:01:00", "CUDA_0000:81:00"]}
    assert choose_gpu_devices(one_optix, two) == ("CUDA", ["CUDA_0000:01:00", "CUDA_0000:81:00"])
    # none matching: one line naming the assignment (a card CUDA_VISIBLE_DEVICES did not hide, or none at all)
    with pytest.raises(DatagenError) as e:
        choose_gpu_devices(both, one, where="node7")
    assert (
        "node7 GPU 1 (CUDA_VISIBLE_DEVICES=1)" in str(e.value)
        and "OPTIX backend lists 2 devices" in str(e.value)
        and "\n" not in str(e.value)
    )
    with pytest.raises(DatagenError, match=r"GPU 0,3 \(CUDA_VISIBLE_DEVICES=0,3\), but Cycles lists no OptiX/CUDA"):
        choose_gpu_devices({"OPTIX": [], "CUDA": []}, two)
    # without a Ray assignment (a GPU Ray does not see, e.g. Metal): every device of the first backend listing any
    assert choose_gpu_devices({"OPTIX": [], "CUDA": [], "METAL": ["METAL_0"]}, None) == ("METAL", ["METAL_0"])
    assert choose_gpu_devices({"OPTIX": [], "CUDA": []}, None) is None


def test_workers_fit_per_node_and_gpus_per_worker_defaults():
    # an actor's CPUs and GPUs come from one node: 2 nodes × 1 CPU hold no 2-thread worker
    assert worker_slots([(1, 0), (1, 0)], threads=2, gpus=0) == 0
    assert worker_slots([(4, 0), (3, 0)], threads=2, gpus=0) == 3
    assert worker_slots([(8, 2), (8, 0)], threads=1, gpus=1) == 2  # the GPU-less node holds no GPU worker
    assert worker_slots([(2, 4)], threads=1, gpus=0.5) == 2  # CPUs bound it
    assert worker_slots([(16, 1)], threads=1, gpus=0.1) == 10
    assert gpus_per_worker("auto", None, cluster_gpus=8) == 1.0
    assert gpus_per_worker("gpu", None, cluster_gpus=2) == 1.0
    assert gpus_per_worker("auto", None, cluster_gpus=0) == 0.0
    assert gpus_per_worker("cpu", None, cluster_gpus=8) == 0.0
    assert gpus_per_worker("auto", 2.0, cluster_gpus=8) == 2.0
    with pytest.raises(DatagenError, match="--gpus-per-worker 1 needs GPUs but the Ray cluster has none"):
        gpus_per_worker("auto", 1.0, cluster_gpus=0)


def test_gpu_workers_share_one_kernel_cache_per_node():
    env = gpu_worker_env("/scratch/facelift-gpu-kernels-0")
    assert (
        env["CUDA_CACHE_PATH"] == "/scratch/facelift-gpu-kernels-0/cuda"
        and env["OPTIX_CACHE_PATH"] == "/scratch/facelift-gpu-kernels-0/optix"
    )
    assert int(env["CUDA_CACHE_MAXSIZE"]) == 4 * 2**30 and int(env["OPTIX_CACHE_MAXSIZE"]) >= 2**30
    assert env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"


def test_gpu_worker_env_is_set_before_blender_and_keeps_the_nodes_own(tmp_path, monkeypatch):
    from datagen.worker import use_node_kernel_cache

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for name in (
        "CUDA_CACHE_PATH",
        "CUDA_CACHE_MAXSIZE",
        "OPTIX_CACHE_PATH",
        "OPTIX_CACHE_MAXSIZE",
        "CUDA_DEVICE_ORDER",
    ):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / f"facelift-gpu-kernels-{os.getuid()}"
    assert (
        use_node_kernel_cache() == str(folder / "cuda") and (folder / "cuda").is_dir() and (folder / "optix").is_dir()
    )
    assert os.environ["OPTIX_CACHE_PATH"] == str(folder / "optix") and os.environ["CUDA_CACHE_MAXSIZE"] == str(
        4 * 2**30
    )
    monkeypatch.setenv("CUDA_CACHE_PATH", str(tmp_path / "site-cache"))  # a node's own setting wins
    assert use_node_kernel_cache() == str(tmp_path / "site-cache") and (tmp_path / "site-cache").is_dir()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--gpus-per-worker", "0"], "--gpus-per-worker 0 is not allowed (must be more than 0)"),
        (["--gpus-per-worker", "-1"], "--gpus-per-worker -1 is not allowed (must be more than 0)"),
        (
            ["--gpus-per-worker", "1.5"],
            "--gpus-per-worker 1.5 is not allowed (a fraction of one GPU, or a whole number",
        ),
        (["--gpus-per-worker", "1", "--device", "cpu"], "--gpus-per-worker 1 does not go with --device cpu"),
    ],
)
def test_bad_gpus_per_worker_is_one_line_and_writes_nothing(tmp_path, extra, message):
    out = tmp_path / "out"
    r = facelift("datagen", *OBJECTS, "--out", str(out), "--no-progress", *extra, timeout=120)
    assert r.returncode == 2 and message in one_line(r.stderr), r.stderr
    assert not out.exists()


# ------------------------------------------------------------------------------ a real two-node cluster


@pytest.fixture(scope="module")
def stale_datagen() -> Path:
    """An older copy of `datagen` put first on node b's Python path, as an old install would be."""
    root = Path(os.environ.get("TMPDIR", "/tmp")) / f"facelift-stale-{os.getpid()}"
    shutil.copytree(Path(code_fingerprint()["path"]), root / "datagen", ignore=shutil.ignore_patterns("__pycache__"))
    with open(root / "datagen" / "__init__.py", "a") as f:
        f.write("\nSTALE_COPY = True  # not the code the driver runs\n")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(stale_datagen):
    """Head (1 CPU) + node b (1 CPU, the stale datagen first on its PYTHONPATH), stopped at the end
    by their own process trees whatever happened."""
    c = RayTestCluster()
    try:
        c.start_head(num_cpus=1)
        c.add_node("b", num_cpus=1, env={"PYTHONPATH": str(stale_datagen)})
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def gpu_cluster():
    """One node with 2 CPUs and 2 logical GPUs."""
    c = RayTestCluster()
    try:
        c.start_head(num_cpus=2, num_gpus=2)
        yield c
    finally:
        c.stop()


@pytest.mark.slow
def test_two_node_cluster_renders_with_the_drivers_code_and_verifies(cluster, stale_datagen, tmp_path):
    head, b = cluster.nodes["head"], cluster.nodes["b"]
    # Without shipping, node b's workers would import the stale copy: it shadows the installed code there.
    probe = (
        "import datagen; from datagen.ray_cluster import code_fingerprint; "
        "print(datagen.__file__, code_fingerprint()['fingerprint'])"
    )
    r = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd="/",
        env={**os.environ, "PYTHONPATH": str(stale_datagen)},
    )
    stale_file, stale_print = r.stdout.split()
    assert stale_file.startswith(str(stale_datagen)), r.stdout + r.stderr
    mine = code_fingerprint()["fingerprint"]
    assert stale_print != mine

    out = tmp_path / "two"
    # --recycle-every 2: each worker's Blender is replaced once or twice, and so is shipped code again
    r = facelift(
        "datagen",
        *OBJECTS,
        "--ray-address",
        cluster.address,
        "--recycle-every",
        "2",
        "--out",
        str(out),
        "--no-progress",
        env=cluster.driver_env,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "6 subjects rendered, 3 shards written" in r.stdout
    verified(out, 6)
    assert sorted(keys_in(out)) == PLANNED_OBJECTS  # every planned subject exactly once

    run = last_run(out)
    assert (
        run["cluster"]["address"] == cluster.address and run["cluster"]["nodes"] == 2 and run["cluster"]["cpus"] == 2
    )
    workers = run["workers"]
    assert len(workers) == 2 and {w["node"] for w in workers} == {head.node_id, b.node_id}, "one worker on each node"
    assert all(w["device"] == "CPU" and w["gpus"] == [] and w["cycles_devices"] == [] for w in workers)
    assert sum(w["starts"] for w in workers) >= 3, "a fresh Blender every 2 subjects while subjects remain"
    # The code every worker ran is the code the driver shipped: same fingerprint, imported from the
    # package Ray unpacked on that node, not from node b's stale copy nor from this checkout.
    code = run["code"]
    assert code["shipped"] and code["fingerprint"] == mine and code["driver"] == code_fingerprint()["path"]
    paths = code["workers"]
    assert len(paths) == 2 and all("/runtime_resources/py_modules_files/" in p for p in paths), paths
    assert sorted(p.split("/session_")[0] for p in paths) == sorted([str(b.temp_dir), str(head.temp_dir)])
    assert run["nodes_lost"] == []


@pytest.mark.slow
def test_workers_that_fit_no_node_are_one_line(cluster, tmp_path):
    out = tmp_path / "nofit"
    args = ["datagen", *OBJECTS, "--ray-address", cluster.address, "--out", str(out), "--no-progress"]
    r = facelift(*args, "--gpus-per-worker", "1", env=cluster.driver_env, timeout=120)
    assert r.returncode == 2 and "--gpus-per-worker 1 needs GPUs but the Ray cluster has none" in one_line(r.stderr), (
        r.stderr
    )
    assert not out.exists()
    # 2 CPUs in the cluster, but 1 per node: a 2-thread worker fits nowhere (it would wait forever)
    r = facelift(*args, "--threads-per-worker", "2", env=cluster.driver_env, timeout=120)
    assert r.returncode == 2 and "needs 2 CPUs; the Ray cluster has 2, at most 1 on one node" in one_line(r.stderr), (
        r.stderr
    )
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("nvidia-smi") is not None, reason="on a GPU machine Blender may see the cards the logical GPUs name"
)
def test_each_actor_reserves_its_own_gpus_and_blender_must_see_exactly_them(gpu_cluster, tmp_path):
    out = tmp_path / "g"
    args = ["datagen", *OBJECTS, "--ray-address", gpu_cluster.address, "--out", str(out), "--no-progress"]
    # --device auto on a cluster with GPUs: one worker per GPU, each given its own card by Ray. Cycles
    # finds no GPU on this machine, so the check refuses, naming what each worker was given.
    r = facelift(*args, env=gpu_cluster.driver_env, timeout=180)
    line = one_line(r.stderr)
    assert (
        r.returncode == 2 and "Ray gave the render worker on" in line and "but Cycles lists no OptiX/CUDA" in line
    ), r.stderr
    assert (
        "(CUDA_VISIBLE_DEVICES=0)" in line
        and "(CUDA_VISIBLE_DEVICES=1)" in line
        and "(1 more workers failed the same check: " in line
    ), line
    assert not out.exists(), "the device check comes before anything is written"
    # two GPUs per worker: one worker, both cards
    r = facelift(*args, "--gpus-per-worker", "2", env=gpu_cluster.driver_env, timeout=180)
    line = one_line(r.stderr)
    assert r.returncode == 2 and "GPU 0,1 (CUDA_VISIBLE_DEVICES=0,1)" in line and "more workers" not in line, line
    # more workers than GPUs would wait forever: refused before any actor starts
    r = facelift(*args, "--workers", "3", env=gpu_cluster.driver_env, timeout=120)
    assert r.returncode == 2 and "--workers 3 × --gpus-per-worker 1 needs 3 GPUs" in one_line(r.stderr), r.stderr
    # --device cpu on the same cluster reserves no GPU: CPU workers, recorded as such
    r = facelift(*args, "--device", "cpu", env=gpu_cluster.driver_env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    verified(out, 6)
    run = last_run(out)
    assert run["cluster"]["gpus"] == 2 and run["cluster"]["gpus_per_worker"] == 0
    assert len(run["workers"]) == 2 and all(
        w["device"] == "CPU" and w["gpus"] == [] and "visible" not in w for w in run["workers"]
    )


@pytest.mark.slow
def test_losing_a_node_mid_run_loses_and_duplicates_no_subject(cluster, tmp_path):
    """Node b's raylet, agents and Blender workers are killed -9 while it renders heads; the run
    finishes on the head node and the card says which node was lost and what went again."""
    b = cluster.nodes["b"]
    assert b.alive, "node b is killed by this test: it must run last in the module"
    out = tmp_path / "loss"
    log_path = tmp_path / "driver.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [FACELIFT, "datagen", *HEADS, "--ray-address", cluster.address, "--out", str(out), "--no-progress"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **cluster.driver_env},
            start_new_session=True,
        )
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            if any(
                (out / d).is_dir() and any(p.suffix == ".tar" for p in (out / d).iterdir())
                for d in ("staging", "shards")
            ):
                break  # a subject is done: both workers are busy rendering the next ones
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before the node could be lost:\n" + log_path.read_text()
        killed = b.kill()
        assert len(killed) >= 3, "raylet, agents and the Blender worker of node b"
        assert proc.wait(timeout=420) == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert not b.processes(), "every process of node b is gone"
    stdout = log_path.read_text()
    assert "6 subjects rendered" in stdout and "1 Ray nodes lost" in stdout, stdout
    verified(out, 6)
    keys = keys_in(out)
    assert sorted(keys) == PLANNED and len(keys) == len(set(keys)), "every planned subject exactly once"
    run = last_run(out)
    assert run["rendered"] == 6
    [lost] = run["nodes_lost"]
    assert lost["node"] == b.node_id and lost["subjects_resubmitted"], lost
    assert set(lost["subjects_resubmitted"]) <= set(PLANNED)
    assert any(w["node"] == b.node_id for w in run["workers"]) and any(
        w["node"] == cluster.nodes["head"].node_id for w in run["workers"]
    )
    assert json.loads((out / "dataset.json").read_text())["failed"] == {}
