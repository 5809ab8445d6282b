"""Make-up per appearance: lipstick, eye shadow, blush."""

from __future__ import annotations

import numpy as np

from datagen.samplers.rounding import spec_float
from datagen.samplers.subject import Subject

MAKEUP_PROBABILITY = {"female": 0.45, "male": 0.05}
LIPSTICKS = {
    "nude": (0.45, 0.2, 0.16),
    "rose": (0.5, 0.12, 0.15),
    "red": (0.45, 0.03, 0.04),
    "berry": (0.25, 0.03, 0.08),
    "coral": (0.6, 0.2, 0.12),
}
EYESHADOWS = {
    "brown": (0.15, 0.08, 0.05),
    "taupe": (0.22, 0.17, 0.14),
    "smoky": (0.05, 0.05, 0.06),
    "bronze": (0.3, 0.16, 0.07),
}


def sample_makeup(rng: np.random.Generator, subject: Subject) -> dict:
    """Occasional make-up per appearance: lipstick, eye shadow, blush (more likely for women)."""
    female = subject.drawn["identity"]["macro"]["gender"] < 0.5
    if rng.random() >= MAKEUP_PROBABILITY["female" if female else "male"]:
        return {"lipstick": None, "eyeshadow": None, "blush": 0.0}
    lip, shadow = rng.choice(list(LIPSTICKS)), rng.choice(list(EYESHADOWS))
    return {
        "lipstick": {"name": str(lip), "color": list(LIPSTICKS[lip]), "opacity": spec_float(rng.uniform(0.4, 0.9))}
        if rng.random() < 0.8
        else None,
        "eyeshadow": {
            "name": str(shadow),
            "color": list(EYESHADOWS[shadow]),
            "opacity": spec_float(rng.uniform(0.3, 0.7)),
        }
        if rng.random() < 0.6
        else None,
        "blush": spec_float(rng.uniform(0.1, 0.5) if rng.random() < 0.6 else 0.0),
    }
