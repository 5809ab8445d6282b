"""Where on the face dlib's recognizer reads identity: our renders against real photos.

    python benchmarks/identity_levers.py --pairs 40 --levers none --save out/fronts   # neutral fronts
    python benchmarks/identity_regions.py out/fronts

Every face is cut to dlib's aligned 150² chip (the one its ResNet embeds). For pairs of different
people, face A gets one region of face B pasted in (feathered; brows, eyes, nose, mouth, those four
together, or everything else: cheeks, forehead, jaw line, hair), and the distance A moves says how
much identity that region carries; then whole chips are smoothed (a Gaussian blur, and an
edge-preserving bilateral filter that keeps outlines but flattens low-contrast shading and texture).
The same is done on the real photos that ship in pip packages (`identity.py`'s controls), which are
only three and also differ in light, pose, age and camera: read them as a scale, not a target.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import os
import sys

import numpy as np
from identity import REAL_PHOTOS, package_file, recognizer
from PIL import Image, ImageFilter

CHIP, PADDING = 150, 0.25  # dlib's face chip, as compute_face_descriptor cuts it
FEATHER_PX = 3.0
REGIONS = {  # 68-point landmark indices (iBUG 300-W) and the margin around them, chip pixels
    "brows": ((range(17, 22), range(22, 27)), 6),
    "eyes": ((range(36, 42), range(42, 48)), 7),
    "nose": ((range(27, 36),), 6),
    "mouth": ((range(48, 68),), 7),
}


class Chips:
    """dlib's aligned chips of faces and their 68 landmarks in chip coordinates."""

    def __init__(self) -> None:
        self.rec = recognizer()
        self.dlib = self.rec.dlib

    def chip(self, rgb: np.ndarray) -> np.ndarray | None:
        box, _ = self.rec.find(rgb)
        if box is None:
            return None
        return np.asarray(self.dlib.get_face_chip(rgb, self.rec.landmarks(rgb, box), size=CHIP, padding=PADDING))

    def landmarks(self, chip: np.ndarray) -> np.ndarray:
        shape = self.rec.landmarks(chip, self.dlib.rectangle(0, 0, CHIP - 1, CHIP - 1))
        return np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], dtype=float)

    def embed(self, chip: np.ndarray) -> np.ndarray:
        return np.array(self.rec.net.compute_face_descriptor(np.ascontiguousarray(chip.astype(np.uint8))))


def region_masks(points: np.ndarray) -> dict[str, np.ndarray]:
    """Feathered (150, 150, 1) masks around each feature's landmarks (each part's box plus discs
    around its points), the four together, and everything else."""
    from scipy.ndimage import gaussian_filter

    yy, xx = np.mgrid[0:CHIP, 0:CHIP]
    hard = {}
    for name, (parts, pad) in REGIONS.items():
        m = np.zeros((CHIP, CHIP), bool)
        for part in parts:
            p = points[list(part)]
            for x, y in p:
                m |= (xx - x) ** 2 + (yy - y) ** 2 <= pad**2
            (x0, y0), (x1, y1) = p.min(axis=0) - pad / 2, p.max(axis=0) + pad / 2
            m |= (xx >= x0) & (xx <= x1) & (yy >= y0) & (yy <= y1)
        hard[name] = m
    inner = np.logical_or.reduce(list(hard.values()))
    hard["all four"], hard["everything else"] = inner, ~inner
    return {k: np.clip(gaussian_filter(v.astype(float), FEATHER_PX), 0, 1)[..., None] for k, v in hard.items()}


def bilateral(chip: np.ndarray, passes: int) -> np.ndarray:
    from skimage.restoration import denoise_bilateral

    img = chip / 255.0
    for _ in range(passes):
        img = denoise_bilateral(img, sigma_color=0.08, sigma_spatial=3, channel_axis=-1)
    return img * 255.0


SMOOTHING = {
    "Gaussian blur r 1.5 px": lambda c: np.asarray(Image.fromarray(c).filter(ImageFilter.GaussianBlur(1.5)), float),
    "Gaussian blur r 3 px": lambda c: np.asarray(Image.fromarray(c).filter(ImageFilter.GaussianBlur(3)), float),
    "bilateral ×3": lambda c: bilateral(c, 3),
    "bilateral ×8": lambda c: bilateral(c, 8),
}


def report(chips: Chips, faces: list[np.ndarray], label: str, max_pairs: int) -> None:
    pairs = list(itertools.permutations(range(len(faces)), 2))
    if len(pairs) > max_pairs:  # a fixed spread of ordered pairs, every face in some
        pairs = [pairs[k] for k in np.linspace(0, len(pairs) - 1, max_pairs).round().astype(int)]
    emb = [chips.embed(f) for f in faces]
    marks = [chips.landmarks(f) for f in faces]
    whole = np.mean([np.linalg.norm(emb[a] - emb[b]) for a, b in pairs])
    print(f"{label}: {len(faces)} faces, {len(pairs)} ordered pairs; whole faces {whole:.3f} apart")
    print("  face A with one region of face B: how far A moves (share of the whole-face distance)")
    moved: dict[str, list[float]] = {}
    for a, b in pairs:
        for name, m in region_masks((marks[a] + marks[b]) / 2).items():
            mixed = faces[a] * (1 - m) + faces[b] * m
            moved.setdefault(name, []).append(float(np.linalg.norm(emb[a] - chips.embed(mixed))))
    for name, d in moved.items():
        print(f"    {name:16s} {np.mean(d):.3f} ({np.mean(d) / whole:.2f})")
    print("  every face smoothed: mean distance of the pairs")
    for name, smooth in SMOOTHING.items():
        e = [chips.embed(smooth(f)) for f in faces]
        print(f"    {name:22s} {np.mean([np.linalg.norm(e[a] - e[b]) for a, b in pairs]):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("fronts", help="a folder of front views (PNG), one face each, different people")
    ap.add_argument("--pairs", type=int, default=80, help="at most this many ordered pairs of our faces")
    args = ap.parse_args()
    if args.pairs < 1:
        ap.error(f"--pairs {args.pairs}: give at least 1")
    files = sorted(glob.glob(os.path.join(args.fronts, "*.png")))
    if len(files) < 2:
        sys.exit(f"error: {args.fronts!r} holds {len(files)} PNG front views; give a folder with at least 2")
    chips = Chips()
    real = [
        chips.chip(np.asarray(Image.open(package_file(p[0], *p[1:])).convert("RGB"))) for p in REAL_PHOTOS.values()
    ]
    report(chips, [c for c in real if c is not None], "real photos (shipped in pip packages)", args.pairs)
    ours = [chips.chip(np.asarray(Image.open(f).convert("RGB"))) for f in files]
    found = [c for c in ours if c is not None]
    if len(found) < len(ours):
        print(f"(dlib found no face in {len(ours) - len(found)} of {len(ours)} of ours)")
    if len(found) < 2:
        sys.exit(
            f"error: dlib found a face in {len(found)} of the {len(ours)} views in {args.fronts!r}; need 2 or more"
        )
    report(chips, found, f"ours ({args.fronts})", args.pairs)


if __name__ == "__main__":
    main()
