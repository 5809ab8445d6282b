"""Which devices render: the GPUs Ray reserves for each actor, and the Cycles devices that match them.

Pure functions (no bpy, no Ray) so every choice is testable on a machine without a GPU. Ray hands an
actor that reserves GPUs its own cards by setting CUDA_VISIBLE_DEVICES (or the AMD/Intel
equivalent) before the actor starts; CUDA then lists only those cards to Cycles, so enabling every
device the backend lists enables exactly the assigned ones. That is checked, not assumed: the number
of devices enabled must equal the number Ray assigned.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from datagen.errors import DatagenError

GPU_BACKENDS = ("OPTIX", "CUDA", "HIP", "ONEAPI", "METAL")  # Cycles' compute device types, preferred first
KERNEL_CACHE_BYTES = (
    4 * 2**30
)  # CUDA_CACHE_MAXSIZE's documented maximum; Cycles' JIT-compiled kernels outgrow the default


@dataclass(frozen=True)
class GpuAssignment:
    """The GPUs Ray gave one actor: Ray's ids and the visible-devices variable it set from them."""

    ids: tuple[str, ...]
    visible: str  # e.g. "CUDA_VISIBLE_DEVICES=0,1"

    def describe(self) -> str:
        return f"GPU {','.join(self.ids)} ({self.visible})"


def gpus_per_worker(device: str, asked: float | None, cluster_gpus: float) -> float:
    """GPUs each render actor reserves: the asked number, else 1 when the run renders on GPUs
    (--device auto or gpu on a cluster where Ray sees GPUs), else 0."""
    if asked is not None:
        if cluster_gpus <= 0:
            raise DatagenError(
                f"--gpus-per-worker {asked:g} needs GPUs but the Ray cluster has none "
                "(start its nodes with GPUs, or leave --gpus-per-worker out to render on CPUs)"
            )
        return asked
    return 1.0 if device != "cpu" and cluster_gpus > 0 else 0.0


def worker_slots(nodes: Sequence[tuple[float, float]], threads: int, gpus: float) -> int:
    """Render actors the cluster holds at once. An actor takes its CPUs and GPUs from one node, so
    each node (cpus, gpus) fits as many as both allow; a cluster-wide total would over-count."""
    total = 0
    for cpus, node_gpus in nodes:
        fit = int(cpus // threads)
        if gpus > 0:
            fit = min(fit, math.floor(node_gpus / gpus + 1e-6))  # Ray counts fractions to 1e-4
        total += max(fit, 0)
    return total


def choose_gpu_devices(
    listings: Mapping[str, Sequence[str]], assigned: GpuAssignment | None, where: str = ""
) -> tuple[str, list[str]] | None:
    """(backend, Cycles device ids to enable) or None for no GPU.

    `listings` maps each backend this Blender has to the ids of the devices Cycles lists for it
    (`CUDA_0000:01:00`, `OPTIX_0000:01:00`, ...). Without an assignment every device of the first
    backend that lists any is used. With one, a backend qualifies only if it lists exactly as many
    devices as Ray assigned; none qualifying is a one-line DatagenError naming the assignment.
    """
    mismatch = ""
    for backend in GPU_BACKENDS:
        ids = list(listings.get(backend, ()))
        if not ids:
            continue
        if assigned is None or len(ids) == len(assigned.ids):
            return backend, ids
        mismatch = mismatch or (
            f"Cycles' {backend} backend lists {len(ids)} devices ({', '.join(ids)}) "
            f"where Ray assigned {len(assigned.ids)}"
        )
    if assigned is None:
        return None
    place = f" on {where}" if where else ""
    found = mismatch or "Cycles lists no OptiX/CUDA/HIP/oneAPI/Metal device there"
    raise DatagenError(
        f"Ray gave the render worker{place} {assigned.describe()}, but {found}; "
        "check that Blender sees the GPU driver, or render on CPUs with --device cpu"
    )


def gpu_worker_env(folder: str) -> dict[str, str]:
    """Environment of a GPU render worker, set before bpy loads: compiled kernels kept in `folder`,
    shared by every actor of the node (the NVIDIA driver's JIT cache, which compiles the PTX for a
    card without a shipped cubin, and OptiX's), and CUDA's device numbering matched to Ray's."""
    return {
        "CUDA_CACHE_PATH": f"{folder}/cuda",
        "CUDA_CACHE_MAXSIZE": str(KERNEL_CACHE_BYTES),
        "OPTIX_CACHE_PATH": f"{folder}/optix",
        "OPTIX_CACHE_MAXSIZE": str(KERNEL_CACHE_BYTES),
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",  # CUDA's device indices in the order nvidia-smi and Ray number them
    }
