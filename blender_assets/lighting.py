"""World lighting (DESIGN §6): an ambient world or a rotated HDR environment.

`ambient` is a grey world with no light source and no visible background; `sky_ratio` (1 when
absent: uniform) makes it brighter towards `sky_direction_deg` (the zenith when absent) than away
from it, at the same mean radiance, and `sky_sharpness` (1 when absent: a linear ramp) gathers
that light into a soft key lobe. A perfectly uniform world leaves a convex face without shading
(no nose or eye-socket shadow) and a face detector misses it (benchmarks/realism.py); a linear
ramp still leaves it flat enough that a face recognizer reads different people as one
(benchmarks/identity_levers.py).

The film is transparent either way (set by the renderer), so the world lights the head but
never shows; training composites onto its own background.
"""

from __future__ import annotations

import math

import bpy
import numpy as np

HDR_FACE_RADIANCE = 0.5  # about the ambient world's colour × strength
FACE_NORMAL = (0.0, -1.0, 0.0)  # the head faces −Y (DESIGN §3)


def face_radiance(image, rotation_deg: float) -> float:
    """Cosine-weighted radiance arriving at a surface facing the front camera, as an incident-light
    meter held at the face reads it: (1/π)∫ L(ω) max(0, ω·n) dω, which is L for a uniform world.

    Blender looks an equirectangular map up at u = 0.5 − atan2(y, x)/2π, v = 0.5 + elevation/π
    (pixel rows bottom-up), in the Mapping node's frame: the world normal rotated by `rotation_deg`.
    """
    w, h = image.size
    px = np.empty(w * h * 4, dtype=np.float32)
    image.pixels.foreach_get(px)
    lum = px.reshape(h, w, 4)[..., :3] @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    elevation = ((np.arange(h) + 0.5) / h - 0.5) * np.pi
    azimuth = -((np.arange(w) + 0.5) / w - 0.5) * 2.0 * np.pi
    rot = math.radians(rotation_deg)
    nx, ny, _ = FACE_NORMAL
    n = (nx * math.cos(rot) - ny * math.sin(rot), nx * math.sin(rot) + ny * math.cos(rot))
    cos_n = np.cos(elevation)[:, None] * (n[0] * np.cos(azimuth) + n[1] * np.sin(azimuth))[None, :]
    solid_angle = np.cos(elevation)[:, None] * (2.0 * np.pi / w) * (np.pi / h)  # per pixel
    return float(max((lum * np.clip(cos_n, 0.0, None) * solid_angle).sum() / np.pi, 1e-6))


_KEYS = {"ambient": ("color", "strength"), "hdr": ("hdri", "rotation_deg", "strength")}
SKY_RATIO_MAX = 30.0
SKY_SHARPNESS_MAX = 64.0
SKY_ELEVATION_MIN = 0.0  # the brightest direction stays at or above the horizon: a sky, not a floor lamp


def sky_direction(azimuth_deg: float, elevation_deg: float) -> tuple[float, float, float]:
    """Unit vector of the ambient world's brightest direction: azimuth 0 in front of the face (−Y),
    positive towards the subject's left (+X); elevation 90 the zenith."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    return (math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), math.sin(el))


def sky_gradient(
    nodes,
    links,
    background,
    ratio: float,
    direction: tuple[float, float, float] = (0.0, 0.0, 1.0),
    sharpness: float = 1.0,
) -> None:
    """World strength × (floor + ((1 + ω·direction) / 2)^sharpness), scaled to mean 1 over the sphere,
    brightest/darkest = ratio. Sharpness 1 is a linear ramp; higher gathers the light into a lobe
    around `direction`, a soft key like an overcast sun or a window (ω·d is uniform on the sphere,
    so the lobe's mean is 1 / (sharpness + 1))."""
    floor = 1.0 / (ratio - 1.0)
    mean = floor + 1.0 / (sharpness + 1.0)
    coords, dot, ramp = (
        nodes.new("ShaderNodeTexCoord"),
        nodes.new("ShaderNodeVectorMath"),
        nodes.new("ShaderNodeMapRange"),
    )
    dot.operation = "DOT_PRODUCT"
    dot.inputs[1].default_value = direction
    ramp.inputs["From Min"].default_value, ramp.inputs["From Max"].default_value = -1.0, 1.0
    ramp.inputs["To Min"].default_value, ramp.inputs["To Max"].default_value = 0.0, 1.0
    lobe = nodes.new("ShaderNodeMath")
    lobe.operation = "POWER"
    lobe.inputs[1].default_value = sharpness
    level = nodes.new("ShaderNodeMath")
    level.operation = "MULTIPLY_ADD"  # (lobe + floor) × strength / mean, as lobe × a + b
    gain = background.inputs["Strength"].default_value / mean
    level.inputs[1].default_value, level.inputs[2].default_value = gain, floor * gain
    links.new(coords.outputs["Generated"], dot.inputs[0])  # in a world: the unit view direction
    links.new(dot.outputs["Value"], ramp.inputs["Value"])
    links.new(ramp.outputs["Result"], lobe.inputs[0])
    links.new(lobe.outputs[0], level.inputs[0])
    links.new(level.outputs[0], background.inputs["Strength"])


def apply_lighting(lighting: dict, hdri_paths: dict[str, str]) -> None:
    """Replace the scene's world with the spec's lighting; `hdri_paths` maps HDRI names to files.

    An optional `exposure_ev` (the spec's face metering, 0 when absent) sets the camera's exposure.
    """
    kind = lighting.get("kind")
    if kind not in _KEYS:
        raise ValueError(f"lighting kind {kind!r} is not one of {', '.join(_KEYS)}")
    missing = [k for k in _KEYS[kind] if k not in lighting]
    if missing:
        raise ValueError(f"{kind} lighting lacks {missing}")
    exposure = lighting.get("exposure_ev", 0.0)
    if not isinstance(exposure, (int, float)) or not -4.0 <= exposure <= 4.0:
        raise ValueError(f"lighting exposure_ev {exposure!r} is not a number of stops in [-4, 4]")
    bpy.context.scene.view_settings.exposure = float(exposure)
    world = bpy.data.worlds.new("lighting")
    bpy.context.scene.world = world
    nodes, links = world.node_tree.nodes, world.node_tree.links
    background = nodes["Background"]
    background.inputs["Strength"].default_value = lighting["strength"]
    if kind == "ambient":
        background.inputs["Color"].default_value = (*lighting["color"], 1.0)
        ratio = lighting.get("sky_ratio", 1.0)
        if not isinstance(ratio, (int, float)) or not 1.0 <= ratio <= SKY_RATIO_MAX:
            raise ValueError(f"ambient sky_ratio {ratio!r} is not a number in [1, {SKY_RATIO_MAX:g}] (1: uniform)")
        azimuth, elevation = lighting.get("sky_direction_deg", (0.0, 90.0))
        if not (
            isinstance(azimuth, (int, float))
            and isinstance(elevation, (int, float))
            and -180.0 <= azimuth <= 180.0
            and SKY_ELEVATION_MIN <= elevation <= 90.0
        ):
            raise ValueError(
                f"ambient sky_direction_deg {lighting.get('sky_direction_deg')!r} is not "
                f"[azimuth in [-180, 180], elevation in [{SKY_ELEVATION_MIN:g}, 90]]"
            )
        sharpness = lighting.get("sky_sharpness", 1.0)
        if not isinstance(sharpness, (int, float)) or not 1.0 <= sharpness <= SKY_SHARPNESS_MAX:
            raise ValueError(
                f"ambient sky_sharpness {sharpness!r} is not a number in [1, {SKY_SHARPNESS_MAX:g}] (1: a linear ramp)"
            )
        if ratio > 1.0:
            sky_gradient(nodes, links, background, float(ratio), sky_direction(azimuth, elevation), float(sharpness))
    else:
        name = lighting["hdri"]
        if name not in hdri_paths:
            raise ValueError(f"HDRI {name!r} not found (have: {', '.join(sorted(hdri_paths))})")
        env = nodes.new("ShaderNodeTexEnvironment")
        env.image = bpy.data.images.load(hdri_paths[name], check_existing=True)
        mapping = nodes.new("ShaderNodeMapping")
        mapping.inputs["Rotation"].default_value = (0.0, 0.0, math.radians(lighting["rotation_deg"]))
        coords = nodes.new("ShaderNodeTexCoord")
        links.new(coords.outputs["Generated"], mapping.inputs["Vector"])
        links.new(mapping.outputs["Vector"], env.inputs["Vector"])
        links.new(env.outputs["Color"], background.inputs["Color"])
        # HDRIs differ by stops in brightness, and one map by up to ~4 stops on the face as it turns
        # (a sun in front or behind): meter the light reaching the face, as a portrait is exposed, so
        # `strength` means the same face exposure for every map and rotation (and an ambient world of
        # that radiance); the direction of the light, shadows and rim, stays the map's.
        meter = face_radiance(env.image, lighting["rotation_deg"])
        background.inputs["Strength"].default_value = lighting["strength"] * HDR_FACE_RADIANCE / meter
