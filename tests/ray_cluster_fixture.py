"""A real multi-node Ray cluster on this machine for tests: a head and more nodes, each its own
`ray start --block` process tree with its own resources, ports and --temp-dir.

Token authentication as on a real cluster (Ray 2.60: RAY_AUTH_MODE=token for head and nodes; the
driver finds the token through RAY_AUTH_TOKEN_PATH), with the token and HOME in a temporary folder so
nothing under the real ~ is read or written. Nodes are stopped by their own process trees (never
`ray stop`, which would stop every Ray of this user, other tests' included).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

RAY = str(Path(sys.executable).parent / "ray")
START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RayNode:
    """One `ray start --block`: the raylet, its agents and workers (and, on the head, the GCS)."""

    def __init__(self, name: str, temp_dir: Path, args: list[str], env: dict):
        self.name, self.temp_dir = name, temp_dir
        self.log = temp_dir.parent / f"{name}.log"
        with open(self.log, "w") as log:
            # Its own session: a Ctrl-C of the test run does not reach it; stop() ends it.
            self.proc = subprocess.Popen(
                [RAY, "start", "--block", "--temp-dir", str(temp_dir), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.node_id = ""
        deadline = time.time() + START_TIMEOUT_S
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"ray start for {name} exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}"
                )
            if "Ray runtime started" in self.log.read_text():
                self.node_id = self._read_node_id()
                if self.node_id:
                    return
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(
            f"ray start for {name} did not start within {START_TIMEOUT_S:.0f} s:\n{self.log.read_text()[-3000:]}"
        )

    def _read_node_id(self) -> str:
        for log in self.temp_dir.glob("session_*/logs/raylet.out"):
            m = re.search(r"Setting node ID node_id=([0-9a-f]+)", log.read_text(errors="replace"))
            if m:
                return m.group(1)
        return ""

    def processes(self) -> list[psutil.Process]:
        """Every process of this node: the `ray start` tree (Ray workers run in their own process
        groups, so a process-group kill would miss them), and any process naming its temp dir."""
        found: dict[int, psutil.Process] = {}
        try:
            root = psutil.Process(self.proc.pid)
            for p in [root, *root.children(recursive=True)]:
                found[p.pid] = p
        except psutil.NoSuchProcess:
            pass
        marker = str(self.temp_dir)
        for p in psutil.process_iter(["cmdline"]):
            if any(arg.endswith(marker) or marker + "/" in arg for arg in p.info["cmdline"] or ()):
                found.setdefault(p.pid, p)
                for child in _children(p):
                    found.setdefault(child.pid, child)
        return [p for p in found.values() if _running(p)]

    def kill(self, sig: int = signal.SIGKILL) -> list[int]:
        """Signal every process of the node at once (kill -9 by default: the node is lost)."""
        procs = self.processes()
        for p in procs:
            try:
                p.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        if sig == signal.SIGKILL:
            psutil.wait_procs(procs, timeout=10)
            self.proc.poll()  # reap `ray start`, our child
        return [p.pid for p in procs]

    def stop(self) -> None:
        procs = self.processes()
        for p in procs:
            try:
                p.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=3)
        for p in alive + self.processes():  # workers started meanwhile, or deaf to SIGTERM
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


def _running(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _children(p: psutil.Process) -> list[psutil.Process]:
    try:
        return p.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


class RayTestCluster:
    """A head and any number of nodes joined to it, all on this machine."""

    def __init__(self):
        # Short paths: Ray's Unix sockets live under --temp-dir and their names are limited to 107 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="flray-", dir="/tmp"))
        self.home = self.root / "home"
        self.home.mkdir()
        self.nodes: dict[str, RayNode] = {}
        base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        self.node_env = {**base, "HOME": str(self.home), "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
        r = subprocess.run(
            [RAY, "get-auth-token", "--generate"], capture_output=True, text=True, env=self.node_env, timeout=60
        )
        self.token_path = self.home / ".ray" / "auth_token"
        if r.returncode != 0 or not self.token_path.is_file():
            raise RuntimeError(f"ray get-auth-token --generate failed: {r.stderr}")
        self.token_path.chmod(0o600)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        # The driver (`facelift datagen --ray-address`) finds the token by path; RAY_ADDRESS of the
        # caller must not point it elsewhere.
        self.driver_env = {"RAY_AUTH_TOKEN_PATH": str(self.token_path), "RAY_ADDRESS": ""}

    def _ports(self) -> list[str]:
        names = (
            "--node-manager-port",
            "--object-manager-port",
            "--dashboard-agent-listen-port",
            "--dashboard-agent-grpc-port",
            "--metrics-export-port",
            "--runtime-env-agent-port",
        )
        return [x for name in names for x in (name, str(free_port()))]

    def _node_args(self, num_cpus: int, num_gpus: int) -> list[str]:
        """What every node is started with: its CPUs and GPUs, a small object store, no usage
        stats, and free ports of its own."""
        resources = ["--num-cpus", str(num_cpus), "--num-gpus", str(num_gpus)]
        return [*resources, "--object-store-memory", str(200 * 2**20), "--disable-usage-stats", *self._ports()]

    def start_head(self, num_cpus: int, num_gpus: int = 0) -> RayNode:
        ports = ["--port", str(self.port), "--ray-client-server-port", str(free_port())]
        args = ["--head", *ports, "--include-dashboard", "false", *self._node_args(num_cpus, num_gpus)]
        return self._add("head", args, self.node_env)

    def add_node(self, name: str, num_cpus: int, num_gpus: int = 0, env: dict | None = None) -> RayNode:
        args = ["--address", self.address, *self._node_args(num_cpus, num_gpus)]
        return self._add(name, args, {**self.node_env, **(env or {})})

    def _add(self, name: str, args: list[str], env: dict) -> RayNode:
        temp_dir = self.root / name
        if temp_dir.exists():
            shutil.rmtree(temp_dir, ignore_errors=True)  # a node started again under its old name
        node = RayNode(name, temp_dir, args, env)
        self.nodes[name] = node
        return node

    def stop(self) -> None:
        """Nodes first, the head last; then the folder."""
        for name in sorted(self.nodes, key=lambda n: n == "head"):
            self.nodes[name].stop()
        shutil.rmtree(self.root, ignore_errors=True)
