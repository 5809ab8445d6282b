"""Soft face regions per head vertex (numpy): where the T-zone, cheeks (flush) and the face's front are.

Decided on the rest head (before pose and expression) relative to the identity's own eyes, nose
and mouth, so they sit right on every face shape; the skin shader reads them as a colour attribute.
Distances are in units of the interpupillary distance (≈ 63 mm on an adult).
"""

from __future__ import annotations

import numpy as np

from blender_assets.shape import HeadGeometry, landmark_vertices

# Channel order of the `skin_regions` attribute the skin shader reads.
REGIONS = ("tzone", "cheeks", "front")


def _gauss(d2: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * d2 / sigma**2)


def rest_landmarks(geo: HeadGeometry) -> dict[str, np.ndarray]:
    """Landmarks on the rest head; eye centres taken back through the head bone's pose."""
    marks = {name: geo.rest[geo.topology.remap[i]] for name, i in landmark_vertices().items()}
    to_rest = np.linalg.inv(geo.head_matrix)
    for side, eye in geo.eyes.items():
        marks[f"eye_{side}"] = (to_rest @ eye.matrix[:, 3])[:3]
    return marks


def face_regions(geo: HeadGeometry) -> np.ndarray:
    """(N, 3) weights in [0, 1] per kept vertex, channels as REGIONS ("front": the face's side of the head,
    where the age lines of `wrinkles` apply)."""
    m = rest_landmarks(geo)
    r = geo.rest
    ipd = float(np.linalg.norm(m["eye_left"] - m["eye_right"]))
    eye_z = (m["eye_left"][2] + m["eye_right"][2]) / 2
    xz = r[:, [0, 2]] / ipd
    # The face is the front half: in front of the ears, so the back of the head never gets a T-zone.
    front = np.clip((m["ear_left"][1] - r[:, 1]) / (0.5 * ipd), 0.0, 1.0)
    ez, nose_z = eye_z / ipd, m["nose_tip"][2] / ipd

    forehead = _gauss((xz[:, 0] / 1.3) ** 2 + (xz[:, 1] - ez - 0.75) ** 2, 0.3)
    nose_band = np.clip((ez + 0.1 - xz[:, 1]) / 0.15, 0, 1) * np.clip((xz[:, 1] - nose_z + 0.15) / 0.15, 0, 1)
    nose = _gauss(xz[:, 0] ** 2, 0.14) * nose_band
    tzone = np.maximum(forehead, nose)
    cheeks = sum(_gauss((xz[:, 0] - s * 0.6) ** 2 + (xz[:, 1] - ez + 0.55) ** 2, 0.25) for s in (-1, 1))
    out = np.stack([tzone * front, np.clip(cheeks, 0, 1) * front, front], axis=1)
    return np.clip(out, 0.0, 1.0)
