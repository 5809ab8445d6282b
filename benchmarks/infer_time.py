"""`facelift infer` time per stage on this machine, with `tiny` models (random weights: time does
not depend on what the weights learned) on real photos that ship in pip packages.

    python benchmarks/infer_time.py [--photos 2] [--steps 50] [--frames 150]

Prints the seconds of each stage per photo (preprocess: segmentation, MTCNN, alignment;
diffusion; reconstruction; export: filters, .ply, turntable encode) at FaceLift's settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from facelift_models.lrm import GSLRM  # noqa: E402
from facelift_models.mv_diffusion import MultiViewDenoiser, build_components  # noqa: E402
from inference.infer import run_infer  # noqa: E402
from inference.presets import INFER_PRESETS  # noqa: E402
from presets import override  # noqa: E402
from training.checkpoints import save_checkpoint  # noqa: E402
from training.diffusion_pipeline import make_pipeline  # noqa: E402
from training.presets import DIFFUSION_PRESETS, LRM_PRESETS  # noqa: E402

PHOTOS = (
    ("skimage", "data", "astronaut.png"),
    ("skimage", "data", "camera.png"),
    ("matplotlib", "mpl-data", "sample_data", "grace_hopper.jpg"),
)


def photo_paths(n: int) -> list[str]:
    found = []
    for package, *parts in PHOTOS:
        spec = importlib.util.find_spec(package)
        if (
            spec
            and spec.submodule_search_locations
            and os.path.isfile(os.path.join(spec.submodule_search_locations[0], *parts))
        ):
            found.append(os.path.join(spec.submodule_search_locations[0], *parts))
    if not found:
        sys.exit("error: no real photo found: pip install --no-deps scikit-image==0.26.0")
    return (found * n)[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=2)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--frames", type=int, default=150)
    args = ap.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        mv_cfg = DIFFUSION_PRESETS["tiny"].model
        c = build_components(mv_cfg)
        make_pipeline(MultiViewDenoiser(c, mv_cfg), c.vae, c.noise_scheduler, mv_cfg).save_pretrained(
            os.path.join(tmp, "pipeline")
        )
        lrm_cfg = LRM_PRESETS["tiny"].model
        save_checkpoint(
            os.path.join(tmp, "lrm"), 0, GSLRM(lrm_cfg), {"step": 0}, {"model": dataclasses.asdict(lrm_cfg)}
        )
        cfg = override(
            INFER_PRESETS["facelift"].config,
            dict(steps=args.steps, turntable_frames=args.frames, batch_size=args.photos),
        )
        t = time.perf_counter()
        summary = run_infer(
            photo_paths(args.photos),
            os.path.join(tmp, "out"),
            os.path.join(tmp, "lrm"),
            os.path.join(tmp, "pipeline"),
            cfg,
            log=lambda _: None,
        )
        wall = time.perf_counter() - t
        n = len(summary["results"])
        per = "  ".join(f"{k} {v / n:.2f} s" for k, v in summary["seconds"].items())
        print(
            f"tiny models, {n} photos in one batch, DDIM {args.steps} steps with guidance, "
            f"{args.frames}-frame turntable at 32², {summary['settings']['device']}:"
        )
        print(f"  per photo: {per}; {wall:.1f} s in all with model loading")


if __name__ == "__main__":
    main()
