"""A contact sheet of N people (one appearance each, the front view) and how far apart dlib's face
recognizer puts them: the issue-12 sheet, reproducible.

    python benchmarks/people_sheet.py docs/images/people-24.jpg --identities 24 --seed 1 --size 256

Renders appearance 0 of identities 0..N-1 of the run seed (preview preset unless --preset), tiles
their fronts 6 across with their keys, and prints the share of the N·(N-1)/2 pairs at >= 0.6 (dlib's
same-person threshold, as in `identity.py`) and the closest pairs. Needs `make identity`'s packages.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time

import numpy as np
from face_views import FIXED_FILES, composite, rendered_views
from identity import SAME_PERSON, recognizer, stats
from PIL import Image, ImageDraw

TILE, LABEL, COLUMNS = 200, 14, 6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="the sheet to write (.jpg or .png)")
    ap.add_argument("--identities", type=int, default=24)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--preset", default="preview")
    args = ap.parse_args()
    if args.identities < 2:
        ap.error(f"--identities {args.identities}: needs at least 2 people to compare")
    rec, t0 = recognizer(), time.perf_counter()
    tiles, embeddings = [], {}
    views = rendered_views(list(range(args.identities)), 1, args.preset, args.size, args.seed, ["front"])
    for spec, files in views:
        person = spec["key"].split("_")[0]  # one appearance each: the identity names the tile
        img = composite(files[FIXED_FILES["front"]], "white")
        emb, _ = rec.face(np.asarray(img))
        if emb is not None:
            embeddings[person] = emb
        tile = Image.new("RGB", (TILE, TILE + LABEL), "white")
        tile.paste(img.resize((TILE, TILE)), (0, LABEL))
        ImageDraw.Draw(tile).text((2, 1), person + ("" if emb is not None else " (no face)"), "black")
        tiles.append(tile)
    rows = (len(tiles) + COLUMNS - 1) // COLUMNS
    sheet = Image.new("RGB", (COLUMNS * TILE, rows * (TILE + LABEL)), "white")
    for k, tile in enumerate(tiles):
        sheet.paste(tile, ((k % COLUMNS) * TILE, (k // COLUMNS) * (TILE + LABEL)))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    sheet.save(args.out, quality=90)
    pairs = sorted(
        (float(np.linalg.norm(embeddings[a] - embeddings[b])), a, b) for a, b in itertools.combinations(embeddings, 2)
    )
    distances = [d for d, _, _ in pairs]
    print(f"{args.out}: {len(tiles)} people, {len(embeddings)} faces found by dlib")
    print(
        f"different people: {stats(distances)}; at >= {SAME_PERSON}: {np.mean(np.array(distances) >= SAME_PERSON):.1%}"
    )
    print("closest pairs: " + ", ".join(f"{a}–{b} {d:.3f}" for d, a, b in pairs[:5]))
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
