"""Age lines as a height map (numpy, no bpy): forehead lines, frown lines, crow's feet, under-eye lines,
nasolabial folds, marionette lines and upper-lip lines, laid out from the identity's own landmarks.

The map is a front projection of the rest head (x across, z up, in build units) onto a square around
the face; the skin shader looks it up with the rest position and bumps the normal and darkens the
albedo in each groove. Where each line runs, how many there are and how deep is the identity's own
(seeded by its skin `detail_seed`); how deep they all are follows its `wrinkles` (age) value. Every
groove is a Gaussian cross-section along a polyline; real age lines are 0.1-1 mm deep and 0.5-2 mm
wide (nasolabial folds wider), sizes given here in millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from blender_assets.face_regions import rest_landmarks
from blender_assets.landmarks68 import ibug68_rest
from blender_assets.shape import HeadGeometry
from datagen.catalogues.head import BUILD_UNIT_M

MM = 1.0 / (BUILD_UNIT_M * 1000.0)  # build units per millimetre
RESOLUTION = 1024  # pixels across the map: about 0.2 mm each
HALF_SIZE_IPD = 1.6  # the map's half-width in interpupillary distances: ear to ear, hairline to chin


@dataclass(frozen=True)
class WrinkleMap:
    height: np.ndarray  # (RESOLUTION, RESOLUTION) groove depth in mm (≤ 0), row 0 at the bottom (Blender's)
    origin: tuple[float, float]  # rest (x, z) of the map's lower-left corner, build units
    size: float  # the map's width and height, build units


@dataclass(frozen=True)
class Groove:
    points: np.ndarray  # (K, 2) rest (x, z), build units
    depth_mm: float
    width_mm: float  # the Gaussian cross-section's sigma


def _arc(a: np.ndarray, b: np.ndarray, bow: float, count: int = 12) -> np.ndarray:
    """Points from a to b, bowed sideways by `bow` (build units) at the middle, to the left of a→b."""
    t = np.linspace(0.0, 1.0, count)[:, None]
    d = b - a
    normal = np.array([-d[1], d[0]]) / (np.linalg.norm(d) + 1e-12)
    return a + t * d + np.sin(np.pi * t) * bow * normal


def _eye_centres(marks: dict[str, np.ndarray]) -> np.ndarray:
    return np.stack([marks["eye_right"], marks["eye_left"]])


def grooves(points68: np.ndarray, marks: dict[str, np.ndarray], skin: dict) -> list[Groove]:
    """The identity's age lines from its rest landmarks: (68, 3) iBUG points (`ibug68_rest`) and
    `face_regions.rest_landmarks`."""
    eye_centres = _eye_centres(marks)
    strength = float(skin.get("wrinkles", 0.0))
    if strength <= 0.0:
        return []
    rng = np.random.default_rng(int(round(float(skin["detail_seed"]) * 1e4)) + 17)
    p = points68[:, [0, 2]]
    ipd = float(np.linalg.norm(eye_centres[0] - eye_centres[1]))
    mid_x = float(eye_centres[:, 0].mean())
    out: list[Groove] = []

    def add(points, depth, width):
        if depth > 0.0:
            out.append(Groove(np.asarray(points, float), float(depth), float(width)))

    def late(onset: float) -> float:
        """The strength of a line that starts to show at `onset` (crow's feet later than forehead lines)."""
        return float(np.clip((strength - onset) / (1.0 - onset), 0.0, 1.0))

    # Forehead lines: 2-5 wavy, slightly arched lines 8-11 mm apart from 12 mm above the brows.
    brow_top = float(p[17:27, 1].max())
    half = 0.75 * ipd
    z = brow_top + rng.uniform(10.0, 15.0) * MM
    for _ in range(int(rng.integers(2, 6))):
        x0, x1 = mid_x - rng.uniform(0.45, 1.0) * half, mid_x + rng.uniform(0.45, 1.0) * half
        xs = np.linspace(x0, x1, 24)
        wave = rng.uniform(0.5, 2.5) * MM * np.sin(xs / (rng.uniform(25.0, 60.0) * MM) + rng.uniform(0, 2 * np.pi))
        arch = -rng.uniform(1.0, 5.0) * MM * ((xs - mid_x) / half) ** 2
        line = np.c_[xs, z + wave + arch]
        if rng.random() < 0.3:  # broken at the middle
            cut = len(xs) // 2 + int(rng.integers(-4, 5))
            add(line[: cut - 2], rng.uniform(0.25, 0.5) * strength, rng.uniform(0.5, 0.8))
            add(line[cut + 2 :], rng.uniform(0.25, 0.5) * strength, rng.uniform(0.5, 0.8))
        else:
            add(line, rng.uniform(0.25, 0.5) * strength, rng.uniform(0.5, 0.8))
        z += rng.uniform(8.0, 11.0) * MM
    # Frown lines between the brows.
    if rng.random() < 0.6:
        inner = (p[21] + p[22]) / 2
        for s in (-1, 1):
            if rng.random() < 0.8:
                x = inner[0] + s * rng.uniform(2.0, 5.0) * MM
                a = np.array([x, inner[1] - 3.0 * MM])
                b = np.array([x + s * rng.uniform(0.0, 2.0) * MM, inner[1] + rng.uniform(8.0, 14.0) * MM])
                add(_arc(a, b, s * rng.uniform(-1.0, 1.0) * MM), rng.uniform(0.2, 0.45) * late(0.2), 0.5)
    # Crow's feet: 2-5 lines fanning out beside each outer eye corner.
    for corner, side in ((p[36], -1.0), (p[45], 1.0)):
        origin = corner + np.array([side * rng.uniform(5.0, 8.0) * MM, 0.0])
        for angle in np.sort(rng.uniform(-40.0, 35.0, int(rng.integers(2, 6)))):
            direction = np.array([side * np.cos(np.radians(angle)), np.sin(np.radians(angle))])
            a = origin + direction * rng.uniform(1.0, 3.0) * MM
            b = origin + direction * rng.uniform(7.0, 14.0) * MM
            add(_arc(a, b, rng.uniform(-1.0, 1.0) * MM, 6), rng.uniform(0.2, 0.4) * late(0.15), 0.4)
    # Under-eye lines: 1-2 arcs following the lower lid 4-8 mm below it.
    for idx in ((36, 41, 40, 39), (45, 46, 47, 42)):
        lid = p[list(idx)]
        for k in range(int(rng.integers(1, 3))):
            line = lid - np.array([0.0, rng.uniform(4.0, 8.0) * MM + k * 2.5 * MM])
            add(line[1:] if rng.random() < 0.5 else line, rng.uniform(0.15, 0.3) * late(0.3), 0.5)
    # Nasolabial folds: from beside the nose wing to beside and below the mouth corner, bowed outward;
    # faint on young faces too.
    for wing, mouth, side in ((p[31], p[48], -1.0), (p[35], p[54], 1.0)):
        a = wing + np.array([side * 2.0, 2.0]) * MM
        b = mouth + np.array([side * rng.uniform(4.0, 8.0), -rng.uniform(2.0, 8.0)]) * MM
        add(_arc(a, b, side * rng.uniform(2.0, 4.0) * MM), rng.uniform(0.4, 0.8) * (0.25 + 0.75 * strength), 1.6)
    # Marionette lines down from the mouth corners.
    for mouth, side in ((p[48], -1.0), (p[54], 1.0)):
        a = mouth + np.array([side * 1.0, -2.0]) * MM
        b = mouth + np.array([side * rng.uniform(0.0, 4.0), -rng.uniform(10.0, 18.0)]) * MM
        add(_arc(a, b, side * rng.uniform(0.0, 2.0) * MM), rng.uniform(0.25, 0.45) * late(0.4), 1.0)
    # Upper-lip lines: short vertical lines above the vermilion.
    top = p[49:54]
    for _ in range(int(rng.integers(3, 9))):
        i = int(rng.integers(0, len(top)))
        x = top[i, 0] + rng.uniform(-3.0, 3.0) * MM
        a = np.array([x, top[i, 1] + 0.5 * MM])
        add([a, a + np.array([rng.uniform(-1.0, 1.0), rng.uniform(3.0, 6.0)]) * MM], 0.12 * late(0.5), 0.3)
    return out


def wrinkle_map(geo: HeadGeometry, skin: dict) -> WrinkleMap:
    """The identity's age lines laid out on its rest face and rasterised into a front-projected height map
    (mm, 0 where smooth)."""
    marks = rest_landmarks(geo)
    eye_centres = _eye_centres(marks)
    ipd = float(np.linalg.norm(eye_centres[0] - eye_centres[1]))
    size = 2.0 * HALF_SIZE_IPD * ipd
    centre = np.array([eye_centres[:, 0].mean(), eye_centres[:, 2].mean() - 0.4 * ipd])
    origin = centre - size / 2
    px = size / RESOLUTION
    height = np.zeros((RESOLUTION, RESOLUTION), np.float32)
    for g in grooves(ibug68_rest(geo), marks, skin):
        sigma = g.width_mm * MM
        reach = 3.0 * sigma
        lo = np.floor((g.points.min(0) - reach - origin) / px).astype(int).clip(0, RESOLUTION)
        hi = np.ceil((g.points.max(0) + reach - origin) / px).astype(int).clip(0, RESOLUTION)
        if (hi <= lo).any():
            continue
        xs = origin[0] + (np.arange(lo[0], hi[0]) + 0.5) * px
        zs = origin[1] + (np.arange(lo[1], hi[1]) + 0.5) * px
        q = np.stack(np.meshgrid(xs, zs), -1)  # (rows = z, cols = x, 2)
        d2 = np.full(q.shape[:2], np.inf)
        for a, b in zip(g.points[:-1], g.points[1:]):
            ab = b - a
            t = np.clip(((q - a) @ ab) / max(ab @ ab, 1e-18), 0.0, 1.0)
            d2 = np.minimum(d2, ((q - (a + t[..., None] * ab)) ** 2).sum(-1))
        # Grooves meet rather than add: the deepest one wins where two cross.
        patch = height[lo[1] : hi[1], lo[0] : hi[0]]
        np.minimum(patch, -g.depth_mm * np.exp(-0.5 * d2 / sigma**2), out=patch)
    return WrinkleMap(height, (float(origin[0]), float(origin[1])), float(size))
