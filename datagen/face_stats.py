"""The dataset card's face statistics (`dataset.json` → `face_alignment`): where MTCNN finds the face
in the front views, so `facelift infer` aligns a photo the way the trained model saw its faces.

FaceLift's own constants (a 194.27 px box centred at (251.83, 280.01) on 512²) were "derived from
training data statistics" of its data; these are ours, measured the same way: MTCNN from
facenet-pytorch, faces with p > 0.8, the largest box, size = mean of width and height, on each
subject's `fixed_00` composited on white and scaled to 512² (so the figures compare at any
dataset size). At most MAX_SUBJECTS subjects, the first ones, are measured.

This is the one place datagen uses a model from `inference` (DESIGN §2 amended): the statistics
must come from the very detector and settings infer aligns photos with.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from datagen.shard_format import FACE_STATS_FIELD, FRONT_VIEW_FILE, read_samples, shard_path
from datagen.storage import Storage

MAX_SUBJECTS = 64
CANVAS = 512
DETECTOR = "MTCNN (facenet-pytorch 2.6.0), p > 0.8, the largest box; fixed_00 on white, scaled to 512²"


def front_on_white(png: bytes) -> Image.Image:
    rgba = Image.open(io.BytesIO(png)).convert("RGBA")
    if rgba.size != (CANVAS, CANVAS):
        rgba = rgba.resize((CANVAS, CANVAS), Image.Resampling.BICUBIC)
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _stat(values: list[float]) -> dict | None:
    return {"mean": round(float(np.mean(values)), 3), "sd": round(float(np.std(values)), 3)} if values else None


def measure(storage: Storage, card: dict) -> dict:
    """The statistics, or {"unavailable": why} when the detector is not installed."""
    try:
        from inference.errors import InferError
        from inference.face_align import largest_face, load_mtcnn

        detector = load_mtcnn("cpu")
    except (ImportError, InferError) as e:
        return {"unavailable": str(e).splitlines()[0]}
    sizes, xs, ys, measured = [], [], [], 0
    for entry in sorted(card["shards"], key=lambda e: e["index"]):
        if measured >= MAX_SUBJECTS:
            break
        with storage.open_read(shard_path(entry["name"])) as f:
            for _, files in read_samples(f):
                if FRONT_VIEW_FILE not in files or measured >= MAX_SUBJECTS:
                    continue
                measured += 1
                face = largest_face(detector, front_on_white(files[FRONT_VIEW_FILE]))
                if face is not None:
                    sizes.append(face.size)
                    xs.append(face.centre[0])
                    ys.append(face.centre[1])
    return {
        "detector": DETECTOR,
        "canvas": CANVAS,
        "subjects": measured,
        "found": len(sizes),
        "face_size": _stat(sizes),
        "centre_x": _stat(xs),
        "centre_y": _stat(ys),
    }


def needs_update(card: dict) -> bool:
    """Heads datasets get statistics once shards exist, and again when more shards finished since."""
    if card["config"].get("kind", "heads") != "heads" or not card["shards"]:
        return False
    stats = card.get(FACE_STATS_FIELD)
    if not isinstance(stats, dict) or "unavailable" in stats:
        return True
    total = sum(e["samples"] for e in card["shards"])
    return stats.get("subjects", 0) < min(total, MAX_SUBJECTS)


def problem(card: dict) -> str | None:
    """What `facelift datagen verify` says when a heads dataset lacks its face statistics."""
    if card["config"].get("kind", "heads") != "heads" or not card["shards"]:
        return None
    stats = card.get(FACE_STATS_FIELD)
    if not isinstance(stats, dict):
        return f"the card has no {FACE_STATS_FIELD} statistics; rerun the datagen command to add them"
    if "unavailable" in stats:
        return (
            f"the card's {FACE_STATS_FIELD} statistics are unavailable ({stats['unavailable']}); "
            "install facenet-pytorch and rerun the datagen command"
        )
    for k in ("subjects", "found", "face_size", "centre_x", "centre_y"):
        if k not in stats:
            return f"the card's {FACE_STATS_FIELD} lacks {k}; rerun the datagen command"
    return None
