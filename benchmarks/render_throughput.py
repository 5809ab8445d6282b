"""Render throughput: datagen overhead over pure Cycles time, and 1 vs 2 workers.

    python benchmarks/render_throughput.py [--preset preview] [--views-random 6] [--subjects 4]

1. One worker, in this process: datagen wall time per view (spec, scene reset, head build,
   lighting, every render, PNG/EXR reads, JSON, staging tar write) against the pure Cycles render
   time of the same views (the `bpy.ops.render.render` calls). Target: overhead under 10 %.
2. The full Ray pipeline with 1 and then 2 workers (1 Cycles thread each) on the same subjects:
   subjects per second in steady state, from all actors ready (Blender imported, asset data
   parsed) to the last shard; Ray and actor start-up are excluded. Target on 2 cores: 2 workers
   >= 1.7x one.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from datagen.config import RunOptions, make_config  # noqa: E402
from datagen.run import run_datagen  # noqa: E402
from datagen.spec import make_spec  # noqa: E402


def overhead(cfg, subjects: int) -> dict:
    from datagen.worker import RenderWorker

    with tempfile.TemporaryDirectory() as out:
        worker = RenderWorker(out, threads=os.cpu_count() or 1, device="cpu")
        worker.render(make_spec(cfg, 0, 0))  # warm-up: asset caches, kernels
        total = render = views = 0.0
        for k in range(subjects):
            t = time.perf_counter()
            result = worker.render(make_spec(cfg, 1 + k // cfg.appearances, k % cfg.appearances))
            total += time.perf_counter() - t
            render += result["timing"]["render_s"]
            views += result["timing"]["views"]
    return {"per_view_s": total / views, "cycles_per_view_s": render / views, "overhead": (total - render) / total, "rss_mb": result["rss_mb"]}


def throughput(cfg, workers: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        summary = run_datagen(cfg, RunOptions(workers=workers, threads_per_worker=1), out, show_progress=False)
    return summary.rendered_now / summary.render_wall_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="preview")
    ap.add_argument("--views-random", type=int, default=6)
    ap.add_argument("--subjects", type=int, default=4, help="subjects per measurement")
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--skip-ray", action="store_true", help="only the overhead measurement")
    ap.add_argument("--skip-overhead", action="store_true", help="only the 1 vs 2 workers measurement")
    args = ap.parse_args()
    cfg = make_config(args.preset, identities=args.subjects, appearances=1, views_random=args.views_random, size=args.size, samples=args.samples)
    views = 6 + cfg.views_random
    print(f"preset {cfg.preset}: {cfg.size}² / {cfg.samples} spp, {views} views per subject, {os.cpu_count()} cores")

    if not args.skip_overhead:
        report_overhead(cfg, args.subjects)
    if args.skip_ray:
        return
    one = throughput(cfg, 1)
    two = throughput(cfg, 2)
    print(f"Ray, 1 thread per worker: 1 worker {one:.3f} subjects/s ({one * views:.2f} views/s), "
          f"2 workers {two:.3f} subjects/s ({two * views:.2f} views/s): {two / one:.2f}x (target >= 1.7x)")


def report_overhead(cfg, subjects: int) -> None:
    o = overhead(cfg, subjects)
    print(f"one worker ({os.cpu_count()} threads): datagen {o['per_view_s']:.3f} s/view, pure Cycles {o['cycles_per_view_s']:.3f} s/view, "
          f"overhead {100 * o['overhead']:.1f} % (target < 10 %), worker RSS {o['rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
