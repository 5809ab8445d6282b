"""Lighting per appearance (DESIGN §6): an ambient sky with a key lobe or a rotated HDRI, metered on the face;
and the HDRI names a spec may use, resolved where it renders."""

from __future__ import annotations

import numpy as np

from datagen.catalogues.head import bundled_hdris
from datagen.config import DatagenConfig, user_hdris
from datagen.samplers.rounding import spec_float
from datagen.samplers.subject import Subject

# The ambient world (see blender_assets/lighting.py): brightest/darkest radiance, and a soft key lobe around a
# direction in front of the face and above it, as an overcast sun or a window lights a portrait. A
# linear top/bottom ramp (DESIGN §6's sky, sharpness 1) leaves the face flat: dlib's recognizer then
# reads our different identities as one person (32 % of 8 neutral fronts' pairs at >= 0.6; a lobe
# of sharpness 8-24 from 45° up and 40° aside: 61-68 %, as under the courtyard HDRI's sun, 64 %).
SKY_RATIO = (10.0, 25.0)
SKY_KEY_AZIMUTH_DEG = 75.0  # either side of the face's front
SKY_KEY_ELEVATION_DEG = (15.0, 65.0)
SKY_SHARPNESS = (4.0, 24.0)  # log-uniform: a broad overcast lobe to a window's


def hdri_table(hdri_dir: str | None) -> dict[str, str]:
    """Name → file: Blender's bundled HDRIs (`bundled:<name>`, sorted), then `dir:<file>` from --hdri-dir."""
    table = {f"bundled:{n}": p for n, p in sorted(bundled_hdris().items())}
    if hdri_dir:
        table.update(user_hdris(hdri_dir))
    return table


def hdri_names(cfg: DatagenConfig) -> list[str]:
    return list(hdri_table(cfg.hdri_dir))


def hdri_paths_for_spec(spec: dict) -> dict[str, str]:
    """Every HDRI the spec's lighting may name, resolved on the rendering machine."""
    return hdri_table(spec["render"]["hdri_dir"])


# Face-priority metering, as a phone or a portrait photographer exposes: skin darker than
# METERING_REFERENCE_Y (linear luminance of a mid Monk tone) gets METERING_WEIGHT of the stops that
# would bring it there, at most METERING_MAX_EV; lighter skin keeps the calibrated exposure. Half
# compensation keeps the tone range visible while the darkest faces (Y ≈ 0.06, +1.2 EV) stop
# rendering near-black under dim ambient light, where MTCNN lost them.
METERING_REFERENCE_Y = 0.3
METERING_WEIGHT = 0.5
METERING_MAX_EV = 1.25


def metering_ev(base_color) -> float:
    y = float(np.dot(base_color, (0.2126, 0.7152, 0.0722)))
    return float(np.clip(METERING_WEIGHT * np.log2(METERING_REFERENCE_Y / max(y, 1e-3)), 0.0, METERING_MAX_EV))


def sample_lighting(rng: np.random.Generator, subject: Subject) -> dict:
    """Ambient or HDR light as `--lighting` asks; without a drawn identity (objects) no face to meter:
    the calibrated exposure."""
    cfg, identity = subject.cfg, subject.drawn.get("identity")
    kind = cfg.lighting if cfg.lighting != "mixed" else ("ambient" if rng.random() < 0.5 else "hdr")
    exposure = {"exposure_ev": spec_float(metering_ev(identity["skin"]["base_color"])) if identity else 0.0}
    if kind == "ambient":
        grey = spec_float(rng.uniform(0.6, 1.0))
        # The world reflects about albedo × grey × strength: keep mid-tones off the AgX shoulder.
        strength = spec_float(rng.uniform(0.35, 0.7))
        sky = {
            "sky_ratio": spec_float(rng.uniform(*SKY_RATIO)),
            "sky_direction_deg": [
                spec_float(rng.uniform(-SKY_KEY_AZIMUTH_DEG, SKY_KEY_AZIMUTH_DEG)),
                spec_float(rng.uniform(*SKY_KEY_ELEVATION_DEG)),
            ],
            "sky_sharpness": spec_float(np.exp(rng.uniform(*np.log(SKY_SHARPNESS)))),
        }
        return {"kind": "ambient", "color": [grey, grey, grey], "strength": strength, **sky} | exposure
    names = hdri_names(cfg)
    return {
        "kind": "hdr",
        "hdri": names[int(rng.integers(len(names)))],
        "rotation_deg": spec_float(rng.uniform(0.0, 360.0)),
        "strength": spec_float(rng.uniform(0.7, 1.5)),
    } | exposure
