"""Photos in: files or folders of jpg/png/webp, EXIF orientation applied, transparency kept."""

from __future__ import annotations

import os

from PIL import Image, ImageOps, UnidentifiedImageError

from inference.errors import InferError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MIN_SIDE = 64  # MTCNN's smallest face is 20 px; below 64 px a photo holds no usable face


def collect_photos(paths: list[str]) -> list[str]:
    """The image files named by `paths` (files as given; folders: their image files, sorted)."""
    if not paths:
        raise InferError("no photos given: name image files (jpg, png, webp) or folders of them")
    found = []
    for path in paths:
        if os.path.isdir(path):
            inside = sorted(
                os.path.join(path, n)
                for n in os.listdir(path)
                if n.lower().endswith(IMAGE_SUFFIXES) and not n.startswith(".")
            )
            if not inside:
                raise InferError(f"folder {path!r} holds no images (jpg, jpeg, png, webp)")
            found += inside
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise InferError(f"photo {path!r} does not exist")
    return found


def load_photo(path: str) -> Image.Image:
    """RGB, or RGBA where the file has transparency, upright as its EXIF orientation says."""
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            im.load()
    except (UnidentifiedImageError, OSError, ValueError) as e:
        reason = (
            "not an image" if isinstance(e, UnidentifiedImageError) else f"unreadable: {str(e).splitlines()[0][:120]}"
        )
        raise InferError(f"photo {path!r} is {reason} (allowed: jpg, png, webp)") from None
    if min(im.size) < MIN_SIDE:
        raise InferError(f"photo {path!r} is {im.size[0]}×{im.size[1]} px; at least {MIN_SIDE} px a side is needed")
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    return im.convert("RGBA" if has_alpha else "RGB")
