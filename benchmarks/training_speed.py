"""Training speed on this machine: shard loader throughput against what a step consumes, and the
step time of the `tiny` LRM and multi-view diffusion presets.

    python benchmarks/training_speed.py [--data OUT] [--subjects 4] [--steps 40]

1. Loader: views decoded per second by each trainer's loader (LRM: 8 views per subject at its
   preset size; diffusion: 6 fixed views), one process, no workers; against the views a step of
   each preset consumes (batch × views), so `--workers` can be sized: decode rate needed =
   views per step / seconds per step.
2. Steps: seconds per optimiser step of the `tiny` presets on the CPU, median after warm-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench_data import data_or_render  # noqa: E402

from presets import override  # noqa: E402
from training import train_diffusion as td  # noqa: E402
from training import train_lrm as tl  # noqa: E402
from training.diffusion_data import diffusion_loader  # noqa: E402
from training.lrm_data import lrm_loader  # noqa: E402
from training.presets import DIFFUSION_PRESETS, LRM_PRESETS  # noqa: E402
from training.shards import guarded  # noqa: E402

LRM_VIEWS, DIFFUSION_VIEWS = 8, 6


def views_per_second(loader, views_per_subject: int, batches: int) -> float:
    it = iter(guarded(loader))
    next(it)  # first batch: shard open, decoder warm-up
    t, n = time.perf_counter(), 0
    for _ in range(batches):
        batch = next(it)
        n += len(next(iter(batch.values()))) * views_per_subject
    return n / (time.perf_counter() - t)


def median_step(train, *args, warmup: int = 5) -> float:
    """Median seconds between steps after `warmup` steps of `train(*args)` (a trainer's entry point)."""
    stamps = []
    train(*args, progress=False, callback=lambda *_: stamps.append(time.perf_counter()))
    gaps = [b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1 :])]
    return statistics.median(gaps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="a datagen output; default: render --subjects test-preset subjects")
    ap.add_argument("--subjects", type=int, default=4)
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = data_or_render(args.data, args.subjects, tmp)
        print("loader (1 process, no workers): views decoded per second", flush=True)
        for lrm_preset, mv_preset, size in (("tiny", "tiny", 32), ("small", None, 256), ("paper", "paper", 512)):
            lrm_batch = LRM_PRESETS[lrm_preset].config.batch_size
            line = (
                f"  {size:3d}²: LRM {views_per_second(lrm_loader(data, size, 2), LRM_VIEWS, 10):6.1f} views/s "
                f"({lrm_batch} × {LRM_VIEWS} = {lrm_batch * LRM_VIEWS} views per {lrm_preset} step)"
            )
            if mv_preset:
                mv_batch = DIFFUSION_PRESETS[mv_preset].config.batch_size
                line += (
                    f"; diffusion {views_per_second(diffusion_loader(data, size, 2), DIFFUSION_VIEWS, 10):6.1f} "
                    "views/s "
                    f"({mv_batch} × {DIFFUSION_VIEWS} = {mv_batch * DIFFUSION_VIEWS} per {mv_preset} step)"
                )
            print(line, flush=True)
        steps = args.steps
        lrm, diffusion = LRM_PRESETS["tiny"], DIFFUSION_PRESETS["tiny"]
        lrm_cfg = override(lrm.config, dict(steps=steps, checkpoint_every=10**9))
        lrm_s = median_step(tl.train_lrm, lrm_cfg, data, os.path.join(tmp, "lrm"), lrm.model)
        mv_cfg = override(
            diffusion.config, dict(steps=steps, checkpoint_every=10**9, validate_every=10**9, vae_steps=5)
        )
        mv_s = median_step(td.train_diffusion, mv_cfg, data, os.path.join(tmp, "mv"), diffusion.model)
        print(
            f"tiny LRM step (batch {lrm_cfg.batch_size}, 32², 4 + 4 views): "
            f"{lrm_s * 1000:.0f} ms median over {steps - 6} steps ({1 / lrm_s:.1f} steps/s)"
        )
        print(
            f"tiny diffusion step (batch {mv_cfg.batch_size}, 32², 6 views): "
            f"{mv_s * 1000:.0f} ms median over {steps - 6} steps ({1 / mv_s:.1f} steps/s)"
        )


if __name__ == "__main__":
    main()
