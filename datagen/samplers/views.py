"""The camera views of a subject: the 6 fixed views, then the random ones (DESIGN §3)."""

from __future__ import annotations

import numpy as np

from datagen.samplers.rounding import spec_float
from datagen.samplers.subject import Subject
from facelift_models import cameras


def sample_views(rng: np.random.Generator, subject: Subject) -> list[dict]:
    cfg = subject.cfg
    views = cameras.FIXED_VIEWS + cameras.random_views(rng, cfg.views_random, (cfg.elevation_min, cfg.elevation_max))
    return [
        {
            "name": v.name,
            "kind": v.kind,
            "azimuth_deg": spec_float(v.azimuth_deg),
            "elevation_deg": spec_float(v.elevation_deg),
            "radius": v.radius,
        }
        for v in views
    ]
