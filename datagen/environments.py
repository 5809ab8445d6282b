"""Checking a user's HDR environments (`--hdri-dir`) before a run starts, without Blender.

Blender renders a map it cannot read as a black world, and the heads come out black; so every
`.exr` (OpenEXR) and `.hdr` (Radiance RGBE) is read here and refused in one line unless it decodes,
is at least 8×4 pixels, holds finite values that are not meaningfully negative, and has positive mean
radiance.
"""

from __future__ import annotations

import os
import re

import numpy as np

from datagen.errors import DatagenError

MIN_SIZE = (8, 4)  # width, height
MIN_MEAN = 1e-6  # mean luminance below this is a black world
NEGATIVE_TOLERANCE = -0.01  # filtered HDRIs ring a little below zero; more than this is a broken map


def read_exr(path: str) -> np.ndarray:
    """(H, W, 3) float32 of the first part with R, G, B (or Y) channels, layer prefixes allowed."""
    import OpenEXR

    with OpenEXR.File(path, separate_channels=True) as f:
        for part in f.parts:
            channels = part.channels
            by_suffix = {name.rsplit(".", 1)[-1]: name for name in channels}
            if all(c in by_suffix for c in "RGB"):
                return np.stack([np.asarray(channels[by_suffix[c]].pixels, dtype=np.float32) for c in "RGB"], axis=-1)
            if "Y" in by_suffix:
                y = np.asarray(channels[by_suffix["Y"]].pixels, dtype=np.float32)
                return np.repeat(y[..., None], 3, axis=-1)
    raise ValueError("no R, G, B or Y channels")


_RESOLUTION = re.compile(rb"^-Y (\d+) \+X (\d+)$")


def read_hdr(path: str) -> np.ndarray:
    """(H, W, 3) float32 of a Radiance RGBE file (flat or adaptive run-length scanlines)."""
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith((b"#?RADIANCE", b"#?RGBE")):
        raise ValueError("no #?RADIANCE signature")
    end = data.find(b"\n\n")
    if end < 0:
        raise ValueError("header has no end")
    for line in data[:end].split(b"\n"):
        if line.startswith(b"FORMAT=") and line.strip() != b"FORMAT=32-bit_rle_rgbe":
            raise ValueError(f"unsupported {line.decode(errors='replace')}")
    res_end = data.find(b"\n", end + 2)
    m = _RESOLUTION.match(data[end + 2 : res_end].strip())
    if not m:
        raise ValueError("unsupported or missing resolution line (expected -Y H +X W)")
    h, w = int(m.group(1)), int(m.group(2))
    if h < 1 or w < 1 or h * w > 2**28:
        raise ValueError(f"resolution {w}x{h} is not plausible")
    buf = np.frombuffer(data, dtype=np.uint8, offset=res_end + 1)
    rgbe = np.empty((h, w, 4), dtype=np.uint8)
    pos = 0
    for y in range(h):
        head = buf[pos : pos + 4]
        if (
            8 <= w < 32768
            and len(head) == 4
            and head[0] == 2
            and head[1] == 2
            and (int(head[2]) << 8 | int(head[3])) == w
        ):
            pos += 4
            for c in range(4):  # each channel of the scanline in runs: >128 repeats, else literals
                x = 0
                while x < w:
                    if pos >= len(buf):
                        raise ValueError(f"truncated at scanline {y}")
                    count = int(buf[pos])
                    if count > 128:
                        count -= 128
                        if x + count > w:
                            raise ValueError(f"bad run length at scanline {y}")
                        rgbe[y, x : x + count, c] = buf[pos + 1]
                        pos += 2
                    else:
                        if count == 0 or x + count > w or pos + 1 + count > len(buf):
                            raise ValueError(f"bad literal length at scanline {y}")
                        rgbe[y, x : x + count, c] = buf[pos + 1 : pos + 1 + count]
                        pos += 1 + count
                    x += count
        else:  # flat pixels
            if pos + 4 * w > len(buf):
                raise ValueError(f"truncated at scanline {y}")
            rgbe[y] = buf[pos : pos + 4 * w].reshape(w, 4)
            pos += 4 * w
    e = rgbe[..., 3].astype(np.int32)
    scale = np.where(e > 0, np.ldexp(1.0, e - 136), 0.0)  # 2^(e − 128) / 256
    return (rgbe[..., :3] * scale[..., None]).astype(np.float32)


def read_environment(path: str) -> np.ndarray:
    return read_exr(path) if path.lower().endswith(".exr") else read_hdr(path)


def environment_problem(path: str) -> str | None:
    """Why Blender would light a head badly with this map, or None when it is usable."""
    try:
        rgb = read_environment(path)
    except (OSError, RuntimeError, ValueError) as e:
        return f"does not decode ({str(e).splitlines()[0] if str(e) else e.__class__.__name__})"
    h, w = rgb.shape[:2]
    if w < MIN_SIZE[0] or h < MIN_SIZE[1]:
        return f"is {w}x{h} pixels, smaller than {MIN_SIZE[0]}x{MIN_SIZE[1]}"
    bad = int((~np.isfinite(rgb)).sum())
    if bad:
        return f"holds {bad} NaN or infinite values"
    if float(rgb.min()) < NEGATIVE_TOLERANCE:
        return f"holds negative radiance (min {float(rgb.min()):.3g})"
    mean = float((rgb @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)).mean())
    if mean <= MIN_MEAN:
        return f"is black (mean luminance {mean:.3g})"
    return None


def check_environments(paths: dict[str, str], option: str = "--hdri-dir") -> None:
    """One-line DatagenError naming the first unusable map (name → path)."""
    for _name, path in paths.items():
        problem = environment_problem(path)
        if problem:
            raise DatagenError(
                f"{option}: {os.path.basename(path)} {problem}; fix or remove it (usable: "
                ".exr/.hdr with finite, positive radiance)"
            )
