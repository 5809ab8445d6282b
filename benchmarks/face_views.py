"""The face benchmarks' inputs: fixed views of subjects from a datagen folder or rendered now, and
the composites and detectors they are judged with (MTCNN from facenet-pytorch, dlib's models)."""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import os
import sys
from collections.abc import Iterator

import numpy as np
import torch  # noqa: F401  (unused here; kept so torch still loads before bpy, as it always has)
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from datagen.shard_format import CARD_NAME, FIXED_VIEW_FILES, load_card, read_samples, shard_path  # noqa: E402
from facelift_models.cameras import FIXED_VIEWS  # noqa: E402

FIXED_FILES = {v.name: name for v, name in zip(FIXED_VIEWS, FIXED_VIEW_FILES)}
BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0)}


def composite(png: bytes, background: str = "white") -> Image.Image:
    """The straight-alpha RGBA view over a flat background, as RGB."""
    rgba = Image.open(io.BytesIO(png)).convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (*BACKGROUNDS[background], 255))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def dataset_views(out: str, limit: int) -> Iterator[tuple[dict, dict[str, bytes]]]:
    """(spec, files) of the first `limit` samples of a datagen output folder."""
    import json

    from datagen.storage import Storage

    storage = Storage(out)
    card = load_card(storage)
    if card is None:
        sys.exit(f"error: {out} has no {CARD_NAME}; run facelift datagen first")
    count = 0
    for entry in card["shards"]:
        with storage.open_read(shard_path(entry["name"])) as f:
            for _, files in read_samples(f):
                yield json.loads(files["spec.json"]), files
                count += 1
                if count == limit:
                    return


def rendered_views(
    identities: list[int], appearances: int, preset: str, size: int, seed: int, views: list[str]
) -> Iterator[tuple[dict, dict[str, bytes]]]:
    """(spec, files) of fresh subjects rendered in this process, only the named fixed views."""
    from datagen.blender_render import render_subject
    from datagen.config import make_config
    from datagen.spec import make_spec

    cfg = dataclasses.replace(
        make_config(preset, identities=max(identities) + 1, appearances=appearances, views_random=0, seed=seed),
        size=size,
    )
    order = [FIXED_FILES[v] for v in views]
    for i in identities:
        for j in range(appearances):
            spec = make_spec(cfg, i, j)
            spec["views"] = [spec["views"][FIXED_VIEW_FILES.index(name)] for name in order]
            files = render_subject(spec, threads=os.cpu_count() or 1).files
            # render_subject numbers views by their order in the trimmed list: map back to the fixed names
            yield (
                spec,
                {
                    "spec.json": files["spec.json"],
                    **{name: files[FIXED_VIEW_FILES[k]] for k, name in enumerate(order)},
                },
            )


def package_file(package: str, *parts: str) -> str:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(
            f"error: the package {package!r} is not installed; run `make identity` (or see the benchmark's docstring)"
        )
    return os.path.join(spec.submodule_search_locations[0], *parts)


def load_mtcnn():
    """facenet-pytorch's MTCNN, as `facelift infer` loads it."""
    from inference.errors import InferError
    from inference.face_align import load_mtcnn as product_mtcnn

    try:
        return product_mtcnn("cpu")
    except InferError as e:
        sys.exit(f"error: {e}")


def mtcnn_finds_face(detector, img: Image.Image, min_confidence: float = 0.8):
    """(found, box of the most confident face or None) at FaceLift's alignment confidence."""
    boxes, probs = detector.detect(img)
    if boxes is None or probs.max() < min_confidence:
        return False, None
    return True, boxes[int(np.argmax(probs))]


def mtcnn_last_stage_score(detector, img: Image.Image, box) -> float:
    """MTCNN's last stage (O-Net) alone on `box` of `img`: its face probability for that crop.

    MTCNN is a cascade: P-Net proposes windows over an image pyramid, R-Net filters them, O-Net
    scores what is left. Given a box found on another composite of the same view, this says whether
    a miss is the face (O-Net rejects it) or the proposal stages (O-Net accepts a box they never
    offered). The crop is made as facenet-pytorch makes it: squared, clipped to the image, resized."""
    from facenet_pytorch.models.utils.detect_face import imresample, pad, rerec

    image = torch.tensor(np.array(img.convert("RGB")), dtype=torch.float32).permute(2, 0, 1)[None]
    square = rerec(torch.tensor([[*map(float, box), 1.0]]))
    y, ey, x, ex = pad(square, image.shape[3], image.shape[2])
    crop = image[:, :, y[0] - 1 : ey[0], x[0] - 1 : ex[0]]
    with torch.no_grad():
        _, _, probs = detector.onet((imresample(crop, (48, 48)) - 127.5) * 0.0078125)
    return float(probs[0, 1])
