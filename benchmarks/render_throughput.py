"""Render throughput: datagen overhead over pure Cycles time, and 1 vs 2 workers.

    python benchmarks/render_throughput.py [--preset preview] [--views-random 6] [--subjects 4]

1. One worker, in this process: datagen wall time per view (spec, scene reset, head build,
   lighting, every render, PNG/EXR reads, JSON, staging tar write) against the pure Cycles render
   time of the same views (the `bpy.ops.render.render` calls). Target: overhead under 10 %.
2. The full Ray pipeline with 1 and then 2 workers (1 Cycles thread each) on the same subjects:
   subjects per second in steady state, from all actors ready (Blender imported, asset data
   parsed) to the last shard; Ray and actor start-up are excluded. Target on 2 cores: 2 workers
   >= 1.85x one (issue 17).
3. `--hair-cost`: seconds per view of the same subjects with their hair and with it removed
   (bald, no facial hair; brows and lashes stay), front and ±45° views, at the preset's settings.
   Target at `paper`: with hair under 2x without. `hair_cost.py` sweeps the scalp densities.
4. `--pass-cost`: seconds per view of the same subjects (front and ±45° views) without extra passes
   and with each `--passes` output alone (the render, the compositor's EXR, its split and encoding,
   the mesh export, the label maps): what each adds, and seg + landmarks2d together
   (`--variants depth,seg+landmarks2d` picks). Target at `paper` (issue 16): seg + landmarks2d under 10 %.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from datagen.config import PASSES, RunOptions, make_config  # noqa: E402
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
    return {
        "per_view_s": total / views,
        "cycles_per_view_s": render / views,
        "overhead": (total - render) / total,
        "rss_mb": result["rss_mb"],
    }


def hairless(spec: dict) -> dict:
    """The same subject with scalp and facial hair removed."""
    hair = {
        **spec["hair"],
        "style": "bald",
        "length": 0.0,
        "facial_hair": {"style": "none", "length": 0.0, "density": 0.0},
    }
    accessories = {**spec["accessories"], "hat": None}
    return {**spec, "hair": hair, "accessories": accessories}


def hair_cost(cfg, subjects: int) -> tuple[float, float]:
    """(s/view with hair, s/view without) over the first `subjects` with scalp hair, 3 views each."""
    from datagen.blender_render import render_subject

    with_s = without_s = views = 0.0
    i = 0
    while views < 3 * subjects:
        spec = make_spec(cfg, i, 0)
        i += 1
        if spec["hair"]["style"] == "bald":
            continue
        spec["views"] = spec["views"][:2] + spec["views"][5:6]
        with_s += render_subject(spec, threads=os.cpu_count() or 1).timing["render_s"]
        without_s += render_subject(hairless(spec), threads=os.cpu_count() or 1).timing["render_s"]
        views += 3
    return with_s / views, without_s / views


def pass_cost(cfg, subjects: int, variants: list[str]) -> dict[str, float]:
    """Seconds per view (whole subject time / views) with no extra pass and with each variant (a
    pass, or several joined by commas)."""
    from datagen.blender_render import render_subject

    threads = os.cpu_count() or 1
    specs = []
    for i in range(subjects):
        spec = make_spec(cfg, i, 0)
        spec["views"] = spec["views"][:2] + spec["views"][5:6]
        specs.append(spec)
    render_subject(specs[0], threads=threads)  # warm-up: kernels, asset caches
    per_view = {}
    for name in ("none", *variants):
        total = 0.0
        for spec in specs:
            spec = {**spec, "render": {**spec["render"], "passes": [] if name == "none" else name.split(",")}}
            total += render_subject(spec, threads=threads).timing["total_s"]
        per_view[name] = total / (3 * len(specs))
    return per_view


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
    ap.add_argument("--hair-cost", action="store_true", help="only the with vs without hair measurement")
    ap.add_argument("--pass-cost", action="store_true", help="only what each --passes output adds per view")
    ap.add_argument(
        "--variants",
        default=",".join(PASSES) + ",seg+landmarks2d",
        help="with --pass-cost: the passes to time, comma-separated; join passes timed together with +",
    )
    args = ap.parse_args()
    cfg = make_config(
        args.preset,
        identities=args.subjects,
        appearances=1,
        views_random=args.views_random,
        size=args.size,
        samples=args.samples,
    )
    views = 6 + cfg.views_random
    print(f"preset {cfg.preset}: {cfg.size}² / {cfg.samples} spp, {views} views per subject, {os.cpu_count()} cores")

    if args.hair_cost:
        with_hair, without = hair_cost(cfg, args.subjects)
        print(
            f"hair: {with_hair:.2f} s/view with hair, {without:.2f} s/view for the same heads without "
            f"({with_hair / without:.2f}x, target < 2x), {args.subjects} subjects x 3 views"
        )
        return
    if args.pass_cost:
        cost = pass_cost(cfg, args.subjects, [v.replace("+", ",") for v in args.variants.split(",")])
        base = cost.pop("none")
        print(
            f"passes: none {base:.2f} s/view; "
            + ", ".join(f"{name} +{100 * (s - base) / base:.1f} % ({s:.2f} s/view)" for name, s in cost.items())
            + f" ({args.subjects} subjects x 3 views)"
        )
        return
    if not args.skip_overhead:
        report_overhead(cfg, args.subjects)
    if args.skip_ray:
        return
    one = throughput(cfg, 1)
    two = throughput(cfg, 2)
    print(
        f"Ray, 1 thread per worker: 1 worker {one:.4g} subjects/s ({one * views:.4g} views/s, "
        f"{1 / (one * views):.1f} s a view), 2 workers {two:.4g} subjects/s ({two * views:.4g} views/s, "
        f"{1 / (two * views):.1f} s a view): {two / one:.2f}x (target >= 1.85x)"
    )


def report_overhead(cfg, subjects: int) -> None:
    o = overhead(cfg, subjects)
    print(
        f"one worker ({os.cpu_count()} threads): datagen {o['per_view_s']:.3f} s/view, "
        f"pure Cycles {o['cycles_per_view_s']:.3f} s/view, "
        f"overhead {100 * o['overhead']:.1f} % (target < 10 %), worker RSS {o['rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
