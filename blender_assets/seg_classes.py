"""The face-part segmentation classes (`--passes seg`): one table that the renderer, the shard
format, `verify`, `preview --labels` and the docs all read.

A `<view>.seg.png` is an 8-bit greyscale PNG whose value is the class index below. Left and right
are the subject's own (the subject's left eye is on the image's right in a front view). Hair
strands, eyelashes and lenses are labelled by what they are, wherever they cover something else.
"""

from __future__ import annotations

# (name, sRGB colour for overlays, what it covers), index = position in the table.
SEG_TABLE: tuple[tuple[str, tuple[int, int, int], str], ...] = (
    ("background", (0, 0, 0), "no surface: alpha 0"),
    ("face_skin", (230, 180, 140), "head skin not named below: face, forehead, scalp skin, behind the ears"),
    ("nose", (255, 120, 60), "the external nose from the bridge between the eyes to the nostrils"),
    ("left_eye", (60, 120, 255), "the subject's left eyeball as seen between the lids, and its eyelashes"),
    ("right_eye", (0, 200, 255), "the subject's right eyeball as seen between the lids, and its eyelashes"),
    ("left_eyebrow", (140, 60, 20), "the subject's left eyebrow hairs"),
    ("right_eyebrow", (200, 110, 40), "the subject's right eyebrow hairs"),
    ("left_ear", (160, 255, 100), "the subject's left auricle"),
    ("right_ear", (60, 180, 60), "the subject's right auricle"),
    ("mouth_interior", (120, 0, 40), "inside the mouth: tongue, inner cheeks and palate"),
    ("upper_lip", (255, 40, 120), "the upper lip's red part (vermilion)"),
    ("lower_lip", (200, 0, 200), "the lower lip's red part (vermilion)"),
    ("teeth", (255, 255, 220), "upper and lower teeth and gums"),
    ("neck", (200, 150, 200), "neck and chest skin below the jaw line"),
    ("scalp_hair", (100, 70, 40), "the scalp's hair"),
    ("facial_hair", (150, 100, 255), "beard and moustache"),
    ("clothing", (70, 70, 180), "garments"),
    ("glasses", (255, 230, 0), "glasses' frame and lenses"),
    ("headwear", (0, 130, 130), "hats"),
    ("earrings", (255, 255, 255), "earrings, both sides"),
)

SEG_CLASSES: tuple[str, ...] = tuple(name for name, _, _ in SEG_TABLE)
SEG_PALETTE: tuple[tuple[int, int, int], ...] = tuple(colour for _, colour, _ in SEG_TABLE)


def seg_class(name: str) -> int:
    """The index of class `name`; a ValueError naming the allowed classes otherwise."""
    if name not in SEG_CLASSES:
        raise ValueError(f"unknown segmentation class {name!r} (allowed: {', '.join(SEG_CLASSES)})")
    return SEG_CLASSES.index(name)


# Classes that come in the subject's left and right: (left index, right index).
SIDE_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (seg_class(f"left_{part}"), seg_class(f"right_{part}")) for part in ("eye", "eyebrow", "ear")
)


def markdown_table() -> str:
    """The class table for the README (`python presets.py README.md` writes it)."""
    rows = ["| index | class | overlay colour | covers |", "| --- | --- | --- | --- |"]
    rows += [f"| {k} | `{name}` | {colour} | {what} |" for k, (name, colour, what) in enumerate(SEG_TABLE)]
    return "\n".join(rows)
