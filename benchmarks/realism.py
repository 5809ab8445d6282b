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
import io
import os
import sys
import types

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FACELIFT_BOX = 194.27
FACELIFT_CENTRE = (251.83, 280.01)
MIN_CONFIDENCE = 0.8
VIEWS = {"front": "fixed_00.png", "front_right": "fixed_01.png", "front_left": "fixed_05.png"}


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """torchvision.ops.batched_nms in plain torch: greedy NMS, boxes of different idxs never interact."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64)
    shifted = boxes + (idxs.to(boxes) * (boxes.max() + 1))[:, None]
    x1, y1, x2, y2 = shifted.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for i in scores.argsort(descending=True).tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        w = (torch.minimum(x2[i], x2) - torch.maximum(x1[i], x1)).clamp(min=0)
        h = (torch.minimum(y2[i], y2) - torch.maximum(y1[i], y1)).clamp(min=0)
        suppressed |= w * h / (areas[i] + areas - w * h) > iou_threshold
    return torch.tensor(keep, dtype=torch.int64)


def load_mtcnn():
    """facenet-pytorch's MTCNN with a stand-in for the torchvision modules it imports."""
    if "torchvision" not in sys.modules:
        tv, ops, boxes = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops"), types.ModuleType("torchvision.ops.boxes")
        tr, fn = types.ModuleType("torchvision.transforms"), types.ModuleType("torchvision.transforms.functional")
        boxes.batched_nms, ops.boxes, tv.ops, tr.functional, tv.transforms = batched_nms, boxes, ops, fn, tr
        sys.modules.update({"torchvision": tv, "torchvision.ops": ops, "torchvision.ops.boxes": boxes, "torchvision.transforms": tr, "torchvision.transforms.functional": fn})
    try:
        from facenet_pytorch import MTCNN
    except ImportError as e:
        sys.exit(f"error: facenet-pytorch is not installed ({e}); run: pip install --no-deps facenet-pytorch==2.6.0 tqdm")
    return MTCNN(keep_all=True, device="cpu")


def on_white(png: bytes) -> Image.Image:
    rgba = Image.open(io.BytesIO(png)).convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def subjects(out: str, limit: int):
    from datagen.card import SHARD_DIR, load_card
    from datagen.sample import read_samples
    from datagen.storage import Storage

    storage = Storage(out)
    card = load_card(storage)
    if card is None:
        sys.exit(f"error: {out} has no dataset.json; run facelift datagen first")
    count = 0
    for entry in card["shards"]:
        with storage.open_read(f"{SHARD_DIR}/{entry['name']}") as f:
            for key, files in read_samples(f):
                yield key, files
                count += 1
                if count == limit:
                    return


def rendered(identities: list[int], preset: str, size: int, seed: int):
    """(key, files) of fresh subjects (one appearance each), only the three views measured, rendered in this process."""
    import dataclasses

    from datagen.blender_render import render_subject
    from datagen.config import make_config
    from datagen.spec import make_spec

    cfg = dataclasses.replace(make_config(preset, identities=max(identities) + 1, appearances=1, views_random=0, seed=seed), size=size)
    for i in identities:
        spec = make_spec(cfg, i, 0)
        spec["views"] = spec["views"][:2] + spec["views"][5:6]  # fixed_00 front, fixed_01 and fixed_05 at ±45°
        files = render_subject(spec, threads=os.cpu_count() or 1).files
        # render_subject names views by their order in the trimmed list: map back to the fixed names
        yield spec["key"], {"fixed_00.png": files["fixed_00.png"], "fixed_01.png": files["fixed_01.png"], "fixed_05.png": files["fixed_02.png"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", help="datagen output folder (omit with --render)")
    ap.add_argument("--subjects", type=int, default=1000, help="at most this many subjects")
    ap.add_argument("--render", type=int, default=0, help="render this many fresh subjects (1 appearance each) instead")
    ap.add_argument("--preset", default="preview", help="samples and denoising of --render")
    ap.add_argument("--size", type=int, default=512, help="image side of --render (FaceLift's box is measured at 512)")
    ap.add_argument("--seed", type=int, default=0, help="run seed of --render")
    ap.add_argument("--only", default="", help="with --render: these identity indices (comma-separated) instead of 0..N-1")
    ap.add_argument("--save", default="", help="write every measured view here, on white, missed ones named *_MISSED.png")
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
    source = rendered(identities, args.preset, args.size, args.seed) if args.render or args.only else subjects(args.out, args.subjects)
    hits = {v: 0 for v in VIEWS}
    sizes, centres, missed, n = [], [], [], 0
    for key, files in source:
        n += 1
        for view, name in VIEWS.items():
            img = on_white(files[name])
            boxes, probs = detector.detect(img)
            hit = boxes is not None and probs.max() >= MIN_CONFIDENCE
            if args.save:
                img.save(os.path.join(args.save, f"{key}_{view}{'' if hit else '_MISSED'}.png"))
            if not hit:
                missed.append(f"{key}/{view}")
                continue
            hits[view] += 1
            if view == "front":
                x1, y1, x2, y2 = boxes[int(np.argmax(probs))] * (512.0 / img.size[0])
                sizes.append(((x2 - x1) + (y2 - y1)) / 2)
                centres.append(((x1 + x2) / 2, (y1 + y2) / 2))
        print(f"{key}: {n} done, {len(missed)} views missed so far", file=sys.stderr, flush=True)
    if n == 0:
        sys.exit("error: no subjects found")
    side = (hits["front_right"] + hits["front_left"]) / (2 * n)
    print(f"{n} subjects: front detected {100 * hits['front'] / n:.1f} % (target >= 98 %), ±45° {100 * side:.1f} % (target >= 90 %)")
    if sizes:
        cx, cy = np.mean(centres, axis=0)
        print(f"front box (512² scale): size {np.mean(sizes):.1f} ± {np.std(sizes):.1f} px (FaceLift {FACELIFT_BOX}, "
              f"{100 * (np.mean(sizes) / FACELIFT_BOX - 1):+.1f} %), centre ({cx:.1f}, {cy:.1f}) (FaceLift {FACELIFT_CENTRE})")
    if missed:
        print("missed: " + ", ".join(missed))


if __name__ == "__main__":
    main()
