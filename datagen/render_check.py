"""A render that came out empty or black is a failed subject, not a sample.

Checked on the worker before a subject is staged: every view must show some of the subject
(alpha > 0 somewhere: cameras orbit the head, so an empty view means the scene did not build), and
the subject's views together must not be black. Measured renders put the mean straight-alpha sRGB
of the subject's pixels at 60–115 (of 255) for light to dark skin under the dimmest draws; a corrupt
or black environment gives about 0.1, so the line sits far below any real render.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

BLACK_LEVEL = 2.0  # mean sRGB (0–255) of the subject's pixels, alpha-weighted, over all its views


class BadRender(RuntimeError):
    """The views are empty or black: the subject is retried, then recorded as failed."""


def check_views(files: dict[str, bytes], view_names: list[str]) -> None:
    weighted, weight = 0.0, 0.0
    for name in view_names:
        rgba = np.asarray(Image.open(io.BytesIO(files[name])).convert("RGBA"), dtype=np.float64)
        alpha = rgba[..., 3] / 255.0
        if not (alpha > 0).any():
            raise BadRender(f"{name} is empty: no pixel of the subject in view")
        weighted += float((rgba[..., :3].mean(axis=-1) * alpha).sum())
        weight += float(alpha.sum())
    level = weighted / max(weight, 1e-9)
    if level < BLACK_LEVEL:
        raise BadRender(
            f"the views are black (mean sRGB {level:.2f} of 255 over the subject, "
            f"below {BLACK_LEVEL}): a bad environment map or light"
        )
