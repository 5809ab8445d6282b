"""Does a face detector believe our heads? MTCNN over the front and ±45° views.

    pip install --no-deps facenet-pytorch==2.6.0 tqdm     # `make realism` does this
    python benchmarks/realism.py OUT [--subjects N]        # an existing datagen output folder
    python benchmarks/realism.py --render 40 --preset preview --size 512
                                  # or render N fresh subjects' three views (one appearance each)

Prints the detection rate (confidence > 0.8, as FaceLift's alignment) on the front view and on
front_right/front_left, and the mean box size ((w + h) / 2, scaled to 512²) and centre of the
front view against FaceLift's 194.27 px at (251.83, 280.01). Images are composited on white.

facenet-pytorch ships the MTCNN weights but pins an old torch/torchvision; it is installed
without dependencies and the one torchvision op it needs (`batched_nms`) is given in plain torch.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from face_views import FIXED_FILES, composite, dataset_views, load_mtcnn, mtcnn_finds_face, rendered_views

FACELIFT_BOX = 194.27
FACELIFT_CENTRE = (251.83, 280.01)
VIEWS = {v: FIXED_FILES[v] for v in ("front", "front_right", "front_left")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", help="datagen output folder (omit with --render)")
    ap.add_argument("--subjects", type=int, default=1000, help="at most this many subjects")
    ap.add_argument(
        "--render", type=int, default=0, help="render this many fresh subjects (1 appearance each) instead"
    )
    ap.add_argument("--preset", default="preview", help="samples and denoising of --render")
    ap.add_argument("--size", type=int, default=512, help="image side of --render (FaceLift's box is measured at 512)")
    ap.add_argument("--seed", type=int, default=0, help="run seed of --render")
    ap.add_argument(
        "--only", default="", help="with --render: these identity indices (comma-separated) instead of 0..N-1"
    )
    ap.add_argument(
        "--save", default="", help="write every measured view here, on white, missed ones named *_MISSED.png"
    )
    args = ap.parse_args()
    if not args.out and not args.render and not args.only:
        ap.error("give OUT, --render N or --only I,J,…")
    detector = load_mtcnn()
    try:
        identities = [int(i) for i in args.only.split(",")] if args.only else list(range(args.render))
    except ValueError:
        ap.error(f"--only {args.only!r}: give comma-separated identity indices, e.g. 3,8,17")
    if args.save:
        os.makedirs(args.save, exist_ok=True)
    source = (
        rendered_views(identities, 1, args.preset, args.size, args.seed, list(VIEWS))
        if args.render or args.only
        else dataset_views(args.out, args.subjects)
    )
    hits = {v: 0 for v in VIEWS}
    sizes, centres, missed, n = [], [], [], 0
    for spec, files in source:
        key = spec["key"]
        n += 1
        for view, name in VIEWS.items():
            img = composite(files[name])
            hit, box = mtcnn_finds_face(detector, img)
            if args.save:
                img.save(os.path.join(args.save, f"{key}_{view}{'' if hit else '_MISSED'}.png"))
            if not hit:
                missed.append(f"{key}/{view}")
                continue
            hits[view] += 1
            if view == "front":
                x1, y1, x2, y2 = box * (512.0 / img.size[0])
                sizes.append(((x2 - x1) + (y2 - y1)) / 2)
                centres.append(((x1 + x2) / 2, (y1 + y2) / 2))
        print(f"{key}: {n} done, {len(missed)} views missed so far", file=sys.stderr, flush=True)
    if n == 0:
        sys.exit("error: no subjects found")
    side = (hits["front_right"] + hits["front_left"]) / (2 * n)
    print(
        f"{n} subjects: front detected {100 * hits['front'] / n:.1f} % (target >= 98 %), "
        f"±45° {100 * side:.1f} % (target >= 90 %)"
    )
    if sizes:
        cx, cy = np.mean(centres, axis=0)
        print(
            f"front box (512² scale): size {np.mean(sizes):.1f} ± {np.std(sizes):.1f} px (FaceLift {FACELIFT_BOX}, "
            f"{100 * (np.mean(sizes) / FACELIFT_BOX - 1):+.1f} %), centre ({cx:.1f}, "
            f"{cy:.1f}) (FaceLift {FACELIFT_CENTRE})"
        )
    if missed:
        print("missed: " + ", ".join(missed))


if __name__ == "__main__":
    main()
