"""Loader throughput: decoded samples per second from shards, for both trainers, against what one
training step consumes.

    python benchmarks/loader_throughput.py --data data/heads [--workers 0,1,2,4] [--seconds 30]

For each trainer's sample (`training.diffusion_data.diffusion_loader`: the 6 fixed views;
`training.lrm_data.lrm_loader`: 4 input + 4 supervision views with their cameras) at the paper
presets' image size and batch size, and for each loader worker count: subjects and decoded views
per second in steady state (after the first batch, which pays the workers' start). The diffusion
trainer's need is its measured paper step on one GPU (README: 1.12 s per step of 8 subjects,
`--step-s`); the target (issue 17) is a loader ≥ 3× that with the defaults (4 workers).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from training.diffusion_data import diffusion_loader  # noqa: E402
from training.lrm_data import ViewPick, lrm_loader  # noqa: E402
from training.presets import DIFFUSION_PRESETS, LRM_PRESETS  # noqa: E402

PAPER_DIFFUSION_STEP_S = 1.12  # README "Performance": one H100, 8 subjects × (6 views + input) at 512²


def rate(loader, views_per_subject: int, seconds: float) -> tuple[float, float]:
    """(subjects/s, views/s) over `seconds` after the first batch."""
    batches = iter(loader)
    next(batches)  # start-up: workers, first shard opened
    subjects, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        batch = next(batches)
        subjects += len(batch["key"])
    elapsed = time.perf_counter() - t0
    return subjects / elapsed, subjects * views_per_subject / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a datagen output folder or URL")
    ap.add_argument("--workers", default="0,1,2,4", help="loader worker counts to measure, comma-separated")
    ap.add_argument("--seconds", type=float, default=30.0, help="steady-state time per measurement")
    ap.add_argument("--step-s", type=float, default=PAPER_DIFFUSION_STEP_S, help="the diffusion trainer's s/step")
    args = ap.parse_args()

    diffusion = DIFFUSION_PRESETS["paper"]
    lrm = LRM_PRESETS["paper"]
    pick = ViewPick()
    trainers = {
        "diffusion": (
            diffusion,
            lambda w: diffusion_loader(args.data, diffusion.model.image_size, diffusion.config.batch_size, w),
            6,
            diffusion.config.batch_size / args.step_s,
        ),
        "lrm": (
            lrm,
            lambda w: lrm_loader(args.data, lrm.model.image_size, lrm.config.batch_size, w),
            pick.num_input + pick.num_supervision,
            None,  # no measured paper step time yet
        ),
    }
    print(f"{os.cpu_count()} cores; {args.seconds:.0f} s per measurement; data {args.data}")
    print(
        "| trainer | image | batch | loader workers | subjects/s | decoded views/s | step needs subjects/s | margin |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, (preset, make, views, need) in trainers.items():
        for workers in (int(w) for w in args.workers.split(",")):
            subjects_s, views_s = rate(make(workers), views, args.seconds)
            needs = f"{need:.2f}" if need else "not measured"
            margin = f"{subjects_s / need:.1f}x" if need else "—"
            print(
                f"| {name} | {preset.model.image_size}² | {preset.config.batch_size} | {workers} | "
                f"{subjects_s:.2f} | {views_s:.1f} | {needs} | {margin} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
