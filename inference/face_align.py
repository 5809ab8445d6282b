"""FaceLift's face alignment: MTCNN (facenet-pytorch's weights) finds the face; the photo is scaled
so the face box's size (mean of width and height) is 194.27 px and its centre lands at
(251.83, 280.01) on a 512² white canvas, "derived from training data statistics". Other canvas
sizes scale these. Without a face: FaceLift's fallback, the foreground centred on the canvas."""

from __future__ import annotations

import sys
import types
from dataclasses import asdict, dataclass

import numpy as np
import torch
from PIL import Image

from inference.errors import InferError

CANVAS = 512
FACE_SIZE = 194.2749650813705  # FaceLift's constants at 512² (its utils_folder/face_utils.py)
FACE_CENTRE = (251.83270369057132, 280.01336309)
MIN_CONFIDENCE = 0.8
REFINE_PASSES = 5
REFINE_STEP = 0.5
FOREGROUND_FILL = 0.9  # the fallback: the foreground's longer side fills this share of the canvas
WHITE = (255, 255, 255)


@dataclass(frozen=True)
class AlignmentTarget:
    """Where the face goes: box size and centre in pixels of a `canvas`² image."""

    face_size: float = FACE_SIZE
    centre_x: float = FACE_CENTRE[0]
    centre_y: float = FACE_CENTRE[1]
    canvas: int = CANVAS
    source: str = "facelift"


MIN_CARD_FACES = 16  # fewer faces found in a dataset's front views than this: FaceLift's constants instead


def alignment_target(stats: dict | None, source: str) -> AlignmentTarget:
    """The target from a dataset card's `face_alignment` statistics (carried by the pipeline that
    was trained on it) when they rest on enough faces, else FaceLift's constants."""
    if not isinstance(stats, dict) or (stats.get("found") or 0) < MIN_CARD_FACES or not stats.get("face_size"):
        return AlignmentTarget()
    return AlignmentTarget(
        stats["face_size"]["mean"],
        stats["centre_x"]["mean"],
        stats["centre_y"]["mean"],
        int(stats.get("canvas", CANVAS)),
        source,
    )


@dataclass(frozen=True)
class FaceBox:
    x0: float
    y0: float
    x1: float
    y1: float
    confidence: float

    @property
    def size(self) -> float:
        return ((self.x1 - self.x0) + (self.y1 - self.y0)) / 2.0

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0

    def as_dict(self) -> dict:
        return {
            **{k: round(v, 3) for k, v in asdict(self).items()},
            "size": round(self.size, 3),
            "centre": [round(c, 3) for c in self.centre],
        }


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


def load_mtcnn(device: str = "cpu"):
    """facenet-pytorch's MTCNN with FaceLift's settings. facenet-pytorch pins an old torch and
    torchvision, so it is installed without dependencies; its one torchvision op (batched NMS) is
    given here in plain torch."""
    if "torchvision" not in sys.modules:
        tv, ops, boxes = (
            types.ModuleType("torchvision"),
            types.ModuleType("torchvision.ops"),
            types.ModuleType("torchvision.ops.boxes"),
        )
        tr, fn = types.ModuleType("torchvision.transforms"), types.ModuleType("torchvision.transforms.functional")
        boxes.batched_nms, ops.boxes, tv.ops, tr.functional, tv.transforms = batched_nms, boxes, ops, fn, tr
        sys.modules.update(
            {
                "torchvision": tv,
                "torchvision.ops": ops,
                "torchvision.ops.boxes": boxes,
                "torchvision.transforms": tr,
                "torchvision.transforms.functional": fn,
            }
        )
    try:
        from facenet_pytorch import MTCNN
    except ImportError as e:
        raise InferError(
            f"the face detector is missing ({e}): pip install --no-deps facenet-pytorch==2.6.0 tqdm"
        ) from None
    return MTCNN(
        image_size=CANVAS,
        margin=0,
        min_face_size=20,
        thresholds=[0.6, 0.7, 0.7],
        factor=0.709,
        keep_all=True,
        device=device,
    )


def largest_face(detector, image: Image.Image, min_confidence: float = MIN_CONFIDENCE) -> FaceBox | None:
    """FaceLift's choice: of the faces with p > min_confidence, the largest box."""
    boxes, probs = detector.detect(image.convert("RGB"))
    if boxes is None:
        return None
    faces = [FaceBox(*map(float, b), float(p)) for b, p in zip(boxes, probs) if p is not None and p > min_confidence]
    return max(faces, key=lambda f: (f.x1 - f.x0) * (f.y1 - f.y0)) if faces else None


def place(
    image: Image.Image, scale: float, src_centre: tuple[float, float], dst_centre: tuple[float, float], canvas: int
) -> Image.Image:
    """`image` scaled by `scale` about `src_centre`, that point put at `dst_centre`, on white."""
    w, h = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    scaled = image.convert("RGB").resize((w, h), Image.Resampling.LANCZOS)
    sx, sy = w / image.width, h / image.height  # the scale really applied after rounding the size
    out = Image.new("RGB", (canvas, canvas), WHITE)
    out.paste(scaled, (round(dst_centre[0] - src_centre[0] * sx), round(dst_centre[1] - src_centre[1] * sy)))
    return out


def alignment_error(seen: FaceBox, target: AlignmentTarget) -> float:
    """Pixels between a face box and the target: the largest of the size and centre differences."""
    return max(
        abs(seen.size - target.face_size), abs(seen.centre[0] - target.centre_x), abs(seen.centre[1] - target.centre_y)
    )


def align_face(
    image: Image.Image, face: FaceBox, target: AlignmentTarget, detector=None, refine: int = REFINE_PASSES
) -> tuple[Image.Image, FaceBox | None]:
    """`image` placed so `face` meets `target` (FaceLift's alignment). MTCNN's box is not
    scale-invariant: found again on the aligned image it can be 5 % larger or a few pixels off. With
    a `detector`, the placement is corrected by half the error seen on the aligned image (the box
    jitters: a full step overshoots) for up to `refine` passes, and the placement whose face box
    is nearest the target is kept, so the face the model sees sits where FaceLift's statistics put
    it. Returns (aligned image, its face box as the detector sees it, or None without a detector)."""
    size, (cx, cy) = face.size, face.centre
    best = None
    for _ in range(1 + (refine if detector is not None else 0)):
        scale = target.face_size / size
        aligned = place(image, scale, (cx, cy), (target.centre_x, target.centre_y), target.canvas)
        if detector is None:
            return aligned, None
        seen = largest_face(detector, aligned)
        if seen is None:
            break
        if best is None or alignment_error(seen, target) < alignment_error(best[1], target):
            best = (aligned, seen)
        if alignment_error(seen, target) < 0.5:
            break
        # the box seen on the aligned image, in the photo's pixels: move half way toward it
        cx += REFINE_STEP * (seen.centre[0] - target.centre_x) / scale
        cy += REFINE_STEP * (seen.centre[1] - target.centre_y) / scale
        size *= (seen.size / target.face_size) ** REFINE_STEP
    if best is None:  # not found again (rare): FaceLift's single placement
        return place(
            image, target.face_size / face.size, face.centre, (target.centre_x, target.centre_y), target.canvas
        ), None
    return best


def centre_foreground(image: Image.Image, alpha: np.ndarray, canvas: int) -> Image.Image:
    """The fallback without a face: the foreground's box centred, its longer side filling 90 %."""
    ys, xs = np.nonzero(alpha > 0.5)
    if len(xs) == 0:  # no foreground either: the whole photo
        x0, y0, x1, y1 = 0, 0, image.width, image.height
    else:
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    scale = FOREGROUND_FILL * canvas / max(x1 - x0, y1 - y0)
    return place(image, scale, ((x0 + x1) / 2, (y0 + y1) / 2), (canvas / 2, canvas / 2), canvas)
