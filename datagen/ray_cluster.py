"""Which Ray cluster a run uses, checked in seconds before anything is touched; starting it with
this code shipped to it, and what the driver asks of it later (its nodes, whether one is lost).

`--ray-address auto` joins only a cluster the user pointed at: `RAY_ADDRESS` when set, else the
cluster whose head this user started on this machine with `ray start --head` (Ray records its
address in `<tmp>/ray/ray_current_cluster`; a file owned by another user is not ours). Ray's own
fallback, joining any Ray process found on the machine, is never used. A host:port must answer a
Ray GCS request within PROBE_S, a ray:// address must complete a gRPC handshake: a port that is
open but not Ray fails fast instead of hanging.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import socket
import tempfile
import threading
import time
from urllib.parse import urlparse

from datagen.errors import DatagenError

PROBE_S = 5.0
GCS_VERDICT_S = 45.0  # Ray marks a silent node dead after its health checks miss (3 s period × 5, plus timeouts)
SHIPPED_PACKAGES = ("blender_assets", "datagen", "facelift_models")  # what runtime_env py_modules sends to a cluster


def ray_address_file() -> str:
    """Where `ray start --head` writes the cluster address (Ray's default temp dir rule)."""
    base = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"
    return os.path.join(base, "ray", "ray_current_cluster")


def _auto_address() -> str:
    env = os.environ.get("RAY_ADDRESS", "").strip()
    if env:
        return env
    path = ray_address_file()
    try:
        st = os.stat(path)
        with open(path) as f:
            recorded = f.read().strip()
    except OSError:
        st, recorded = None, ""
    if st is None or st.st_uid != os.getuid() or not recorded:
        raise DatagenError(
            "--ray-address auto found no Ray cluster of yours (RAY_ADDRESS is unset "
            "and no `ray start --head` by this user "
            f"recorded one in {path}); start one with `ray start --head` or give --ray-address host:port"
        )
    return recorded


def _split(address: str) -> tuple[str, str, int]:
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    try:
        port = parsed.port
    except ValueError:
        port = None
    if parsed.scheme not in ("tcp", "ray") or not parsed.hostname or not port:
        raise DatagenError(
            f"--ray-address {address!r} is not allowed (use auto, host:port or ray://host:port with a port 1-65535)"
        )
    return parsed.scheme, parsed.hostname, port


def _probe_gcs(host: str, port: int) -> str | None:
    """ "open" or "token" when a Ray GCS answers at host:port, else None. GetClusterId is the first
    call every Ray client makes; a cluster with token authentication answers UNAUTHENTICATED to a
    caller without the token, which still proves it is Ray's GCS."""
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    with grpc.insecure_channel(f"{host}:{port}") as channel:
        try:
            gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId(
                gcs_service_pb2.GetClusterIdRequest(), timeout=PROBE_S
            )
            return "open"
        except grpc.RpcError as e:
            return "token" if e.code() == grpc.StatusCode.UNAUTHENTICATED else None


def _use_auth_token(shown: str) -> None:
    """The cluster wants Ray's auth token: send ours (ray.init only does when RAY_AUTH_MODE=token)."""
    if os.environ.get("RAY_AUTH_MODE"):
        return  # the user chose the mode
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
    if not os.environ.get("RAY_AUTH_TOKEN") and not os.path.isfile(path):
        raise DatagenError(
            f"--ray-address {shown} requires a Ray auth token and none was found (set RAY_AUTH_TOKEN, "
            "or copy the head's ~/.ray/auth_token)"
        )
    os.environ["RAY_AUTH_MODE"] = "token"
    from ray._raylet import Config

    Config.initialize("")  # Ray read its config when the probe imported it: refresh, as Ray's own token setup does


def _probe_grpc(host: str, port: int) -> bool:
    import grpc

    with grpc.insecure_channel(f"{host}:{port}") as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=PROBE_S)
            return True
        except grpc.FutureTimeoutError:
            return False


def resolve_ray_address(address: str) -> str:
    """The address to join, proven to be a Ray head (or Ray client server); else a one-line DatagenError."""
    given = address
    if address == "auto":
        address = _auto_address()
    scheme, host, port = _split(address)
    shown = address if given == address else f"{given} ({address})"
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as e:
        raise DatagenError(f"--ray-address {shown} does not answer ({e.strerror or e})") from None
    if scheme == "ray":
        if not _probe_grpc(host, port):
            raise DatagenError(
                f"--ray-address {shown} is open but is not a Ray client server (no gRPC "
                f"handshake within {PROBE_S:.0f} s)"
            )
        return address
    answer = _probe_gcs(host, port)
    if answer is None:
        raise DatagenError(
            f"--ray-address {shown} is open but is not a Ray head (no Ray GCS reply within {PROBE_S:.0f} s)"
        )
    if answer == "token":
        _use_auth_token(shown)
    return address


def code_fingerprint() -> dict:
    """Which code this process runs: a sha256 over the .py files of the shipped packages as
    imported here, and where `datagen` was imported from. The driver compares its own with each
    actor's, so an older copy installed on a node cannot render in its place unnoticed."""
    digest = hashlib.sha256()
    for name in SHIPPED_PACKAGES:
        root = os.path.dirname(importlib.import_module(name).__file__)
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for file in sorted(f for f in files if f.endswith(".py")):
                path = os.path.join(folder, file)
                digest.update(f"{name}/{os.path.relpath(path, root)}\0".encode())
                with open(path, "rb") as f:
                    digest.update(hashlib.sha256(f.read()).digest())
    return {
        "fingerprint": digest.hexdigest()[:16],
        "path": os.path.dirname(importlib.import_module("datagen").__file__),
    }


def cluster_nodes(ray) -> list[dict]:
    """The cluster's alive nodes: id, address, CPUs and GPUs (totals: actors hold theirs for life)."""
    return [
        {
            "id": n["NodeID"],
            "address": n["NodeManagerAddress"],
            "cpus": n["Resources"].get("CPU", 0.0),
            "gpus": n["Resources"].get("GPU", 0.0),
        }
        for n in ray.nodes()
        if n["Alive"]
    ]


def node_gone(ray, node_id: str, verdict_s: float = GCS_VERDICT_S) -> bool:
    """Whether a node is lost: the GCS marked it dead, or its raylet's port refuses connections.
    The GCS notices a dead node only when its health checks have missed (~15 s), a refused port
    tells at once; a node that does not answer at all (gone from the network, or out of this
    driver's reach) is left to the GCS's verdict, awaited up to `verdict_s`."""

    def entry():
        return next((n for n in ray.nodes() if n["NodeID"] == node_id), None)

    n = entry()
    if n is None or not n["Alive"]:
        return True
    try:
        socket.create_connection((n["NodeManagerAddress"], n["NodeManagerPort"]), timeout=PROBE_S).close()
        return False  # the raylet is up: only the worker process died
    except ConnectionRefusedError:
        return True
    except OSError:
        pass
    deadline = time.monotonic() + verdict_s
    while time.monotonic() < deadline:
        time.sleep(1.0)
        n = entry()
        if n is None or not n["Alive"]:
            return True
    return False


def start_ray(address: str | None):
    """Join the resolved cluster (shipping this code to it), or start a local one for this run."""
    import ray

    from datagen.interrupts import interrupt_on_sigterm

    kwargs = dict(log_to_driver=False, include_dashboard=False, configure_logging=True, logging_level=logging.ERROR)
    if address:
        # Ship this code to the cluster so nodes only need the dependencies installed. Without a
        # working_dir Ray puts the driver's current folder (and its script's) first on every
        # worker's path: a node that has a checkout at that path (a shared home) would import
        # datagen from there, not the shipped copy. An empty working_dir stops that; workers run
        # in it, so every path they get is absolute.
        with tempfile.TemporaryDirectory(prefix="facelift-ray-cwd-") as empty:
            kwargs["runtime_env"] = {
                "py_modules": [importlib.import_module(name) for name in SHIPPED_PACKAGES],
                "working_dir": empty,
            }
            try:
                ray.init(address=address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise DatagenError(f"--ray-address {address} could not be joined ({str(e).splitlines()[0]})") from None
    else:
        # "local": a new cluster for this run, whatever RAY_ADDRESS says.
        ray.init(address="local", num_cpus=os.cpu_count(), object_store_memory=256 * 2**20, **kwargs)
    if threading.current_thread() is threading.main_thread():
        interrupt_on_sigterm()  # ray.init installs its own SIGTERM handler (a stack dump and exit 15)
    return ray
