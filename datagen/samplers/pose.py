"""Head pose per appearance: yaw, pitch and roll of the head on the neck."""

from __future__ import annotations

import numpy as np

from datagen.samplers.rounding import spec_float
from datagen.samplers.subject import Subject

# Head pose (degrees): (sd, bound) per axis. The front view is the model's input, aligned like
# FaceLift's real photos (near-frontal, roll removed by the eye line), and the ±45° views must stay
# short of profile: at sd 12° yaw, one ±45° view in ten turned past 60° and lost its face.
POSE_SD_MAX_DEG = {"yaw": (8.0, 25.0), "pitch": (5.0, 15.0), "roll": (4.0, 10.0)}


def sample_pose(rng: np.random.Generator, subject: Subject) -> dict:
    return {
        axis: spec_float(np.clip(rng.normal(0.0, sd), -bound, bound)) for axis, (sd, bound) in POSE_SD_MAX_DEG.items()
    }
