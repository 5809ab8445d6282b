"""`facelift datagen preview OUT`: a PNG contact sheet, subjects × the 6 fixed views."""

from __future__ import annotations

import io
import json
import posixpath

import numpy as np
from PIL import Image, ImageDraw

from blender_assets.seg_classes import SEG_PALETTE
from datagen.catalogues.head import age_param_to_years
from datagen.errors import DatagenError
from datagen.shard_format import (
    FIXED_VIEW_FILES,
    SUBJECT_PASS_FILES,
    pass_file,
    read_landmarks2d,
    read_samples,
    read_seg,
    require_card,
    shard_path,
)
from datagen.storage import Storage
from facelift_models import cameras

BACKGROUND = (128, 128, 128)
LABEL_W = 120


LABEL_PASSES = ("seg", "landmarks2d")
VISIBLE_POINT, HIDDEN_POINT = (40, 255, 40), (255, 50, 50)


def contact_sheet(out: str, max_subjects: int = 24, tile: int = 160, labels: bool = False) -> Image.Image:
    return _contact_sheet(Storage(out), out, max_subjects, tile, labels)


def _contact_sheet(storage: Storage, out: str, max_subjects: int, tile: int, labels: bool = False) -> Image.Image:
    card = require_card(storage)
    if max_subjects < 1 or tile < 16:
        raise DatagenError(
            f"--subjects {max_subjects} / --tile {tile} not allowed (at least 1 subject, tile at least 16 px)"
        )
    overlays = tuple(p for p in card["config"].get("passes", []) if p in LABEL_PASSES) if labels else ()
    if labels and not overlays:
        passes = ", ".join(card["config"].get("passes", [])) or "none"
        raise DatagenError(
            f"--labels needs a dataset rendered with --passes seg and/or landmarks2d ({out} has passes: {passes})"
        )
    rows: list[tuple[str, list[str], list[Image.Image]]] = []
    for entry in card["shards"]:
        rel = shard_path(entry["name"])
        try:
            with storage.open_read(rel) as f:
                for key, files in read_samples(f):
                    if key not in entry["keys"]:
                        continue  # members the card does not list as a subject
                    rows.append(_row(rel, key, files, tile, overlays))
                    if len(rows) == max_subjects:
                        break
        except DatagenError:
            raise
        except Exception as e:  # a truncated or corrupt tar
            raise DatagenError(
                f"{storage.url_of(rel)} is unreadable ({e.__class__.__name__}: {e}); "
                f"run `facelift datagen verify {out}`"
            ) from None
        if len(rows) == max_subjects:
            break
    if not rows:
        raise DatagenError(f"{out} holds no finished shard yet; run datagen first")
    header = 20
    sheet = Image.new("RGB", (LABEL_W + tile * len(FIXED_VIEW_FILES), header + tile * len(rows)), (40, 40, 40))
    draw = ImageDraw.Draw(sheet)
    for c, view in enumerate(cameras.FIXED_VIEWS):
        draw.text((LABEL_W + c * tile + 4, 4), f"{c} {view.name} az {view.azimuth_deg:+.0f}", fill=(230, 230, 230))
    for r, (key, lines, tiles) in enumerate(rows):
        y = header + r * tile
        draw.text((6, y + 6), key, fill=(230, 230, 230))
        for k, line in enumerate(lines[: (tile - 24) // 12]):
            draw.text((6, y + 22 + 12 * k), line[:19], fill=(180, 180, 180))
        for c, img in enumerate(tiles):
            sheet.paste(img, (LABEL_W + c * tile, y))
    return sheet


def _row(
    rel: str, key: str, files: dict[str, bytes], tile: int, overlays: tuple[str, ...] = ()
) -> tuple[str, list[str], list[Image.Image]]:
    wanted = [pass_file(n[: -len(".png")], "seg") for n in FIXED_VIEW_FILES] if "seg" in overlays else []
    wanted += [SUBJECT_PASS_FILES["landmarks2d"]] if "landmarks2d" in overlays else []
    lacking = [n for n in ["spec.json", *FIXED_VIEW_FILES, *wanted] if n not in files]
    if lacking:
        raise DatagenError(f"{rel}: sample {key} has no {lacking[0]}; run `facelift datagen verify` on the folder")
    try:
        lines = summary(json.loads(files["spec.json"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        lines = ["(spec unreadable)"]
    tiles = [_on_background(files[n], tile) for n in FIXED_VIEW_FILES]
    try:
        if "seg" in overlays:
            tiles = [_with_seg(t, read_seg(files[w])) for t, w in zip(tiles, wanted)]
        if "landmarks2d" in overlays:
            frames = len(json.loads(files["cameras.json"])["frames"])
            doc = read_landmarks2d(files[SUBJECT_PASS_FILES["landmarks2d"]], frames)
            by_view = {frame["file_path"]: frame for frame in doc["frames"]}
            marks = [by_view[n] for n in FIXED_VIEW_FILES]
            size = Image.open(io.BytesIO(files[FIXED_VIEW_FILES[0]])).size[0]
            tiles = [_with_points(t, m, tile / size) for t, m in zip(tiles, marks)]
    except (KeyError, TypeError, ValueError) as e:
        raise DatagenError(f"{rel}: sample {key}'s labels do not read ({e}); run `facelift datagen verify`") from None
    return key, lines, tiles


def _with_seg(tile: Image.Image, seg: np.ndarray) -> Image.Image:
    """The class colours over the view, half and half; background left as it is."""
    colours = Image.fromarray(np.array(SEG_PALETTE, dtype=np.uint8)[seg]).resize(tile.size, Image.NEAREST)
    mask = Image.fromarray(np.where(seg > 0, 128, 0).astype(np.uint8)).resize(tile.size, Image.NEAREST)
    return Image.composite(colours, tile, mask)


def _with_points(tile: Image.Image, frame: dict, scale: float) -> Image.Image:
    """The 68 points, scaled from the view's pixels to the tile's: green where visible, red where hidden."""
    tile = tile.copy()
    draw = ImageDraw.Draw(tile)
    r = max(1.0, tile.size[0] / 160)
    for (x, y), seen in zip(frame["xy"], frame["visible"]):
        x, y = x * scale, y * scale
        draw.ellipse([x - r, y - r, x + r, y + r], fill=VISIBLE_POINT if seen else HIDDEN_POINT)
    return tile


def identity_label(spec: dict) -> str:
    """Who a head subject is in a few words: sex, age, skin tone."""
    ident = spec["identity"]
    macro = ident["macro"]
    sex = "female" if macro["gender"] < 0.5 else "male"
    return f"{sex} {age_param_to_years(macro['age']):.0f}y tone {ident['skin']['tone']:.2f}"


def summary(spec: dict) -> list[str]:
    """A few words per subject for the sheet's label column (absent parts are skipped)."""
    lines = []
    if spec.get("identity", {}).get("macro"):
        lines.append(identity_label(spec))
    hair = spec.get("hair")
    if hair:
        lines.append(f"hair {hair.get('style', '?')}")
        if hair["facial_hair"]["style"] != "none":
            lines.append(hair["facial_hair"]["style"].replace("_", " "))
    if spec.get("clothing"):
        lines.append(spec["clothing"]["garment"])
    for o in spec.get("objects", []):
        lines.append(f"{o['shape']} {o['material']['texture']}")
    worn = [k for k, v in (spec.get("accessories") or {}).items() if v]
    if worn:
        lines.append("+" + ",".join(worn))
    if spec.get("expression"):
        lines.append("/".join(spec["expression"]["archetypes"]))
    light = spec.get("lighting", {})
    if light:
        lines.append(light.get("hdri", light["kind"]).replace("bundled:", "hdr "))
    return lines


def _on_background(png: bytes, tile: int) -> Image.Image:
    rgba = Image.open(io.BytesIO(png)).convert("RGBA").resize((tile, tile), Image.LANCZOS)
    canvas = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def write_contact_sheet(
    out: str, path: str | None = None, max_subjects: int = 24, tile: int = 160, labels: bool = False
) -> str:
    """Write the sheet (default OUT/preview.png, or OUT/preview-labels.png with `labels`: the seg
    classes and landmarks over the views; any local path or fsspec URL); returns where."""
    source = Storage(out)
    sheet = _contact_sheet(source, out, max_subjects, tile, labels)
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    storage, name = (
        (source, "preview-labels.png" if labels else "preview.png")
        if path is None
        else (Storage(posixpath.dirname(path) or "."), posixpath.basename(path))
    )
    storage.check()  # -o on another store: a missing bucket is one line, not a traceback
    storage.write_bytes(name, buf.getvalue())
    return storage.url_of(name)
