"""Which spec traits move dlib's face recognizer, and how far apart are identities on one neutral look?

    python benchmarks/identity_levers.py --identities 6 --size 256            # every lever
    python benchmarks/identity_levers.py --pairs 30 --levers none             # only the pair spread
    python benchmarks/identity_levers.py --levers sex,tone,sliders-x2 --light courtyard

The recognizer and its 0.6 same-person threshold are those of `identity.py`. Every face here is
the front view on one *neutral look* of its identity (appearance 0's hair and clothing, neutral
expression, straight pose, the same light for all), so distances measure identity alone.

- levers: for each of the first N identities, the neutral look against the same look with one
  trait changed (sex flipped, skin tone moved, sliders doubled, ...); the distance says how much
  the recognizer reads that trait. "another-identity" and "another-appearance" are the scale:
  what a whole different person, and the same person in other hair and clothes, move.
- pairs: distances between the neutral looks of M identities, their share at >= 0.6, split by sex
  and by each face's dominant ancestry, and the closest pairs with their sex, skin tone and age (who
  the sampler makes too alike).
- --mean-shift SD[,SEED]: every identity's face sliders moved by one shared random offset (sd SD per
  slider, sided twins alike), to see how much the population's average face matters to the
  recognizer apart from how faces differ around it.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import itertools
import os
import sys
import time
from collections.abc import Callable

import numpy as np
from face_views import FIXED_FILES, composite
from identity import Recognizer, by_sex, describe, is_male, share_apart, stats

Lever = Callable[[dict, dict], dict]  # (spec, another identity's spec) -> changed spec


def _set_tone(spec: dict, tone: float) -> dict:
    from datagen.samplers.identity import skin_tone_linear

    skin = spec["identity"]["skin"]
    skin["tone"] = float(np.clip(tone, 0.0, 1.0))
    skin["base_color"] = skin_tone_linear(skin["tone"])
    return spec


def _tone_shift(spec: dict, _other: dict) -> dict:
    tone = spec["identity"]["skin"]["tone"]
    return _set_tone(spec, tone + (0.3 if tone < 0.5 else -0.3))


def _sex_flip(spec: dict, _other: dict) -> dict:
    spec["identity"]["macro"]["gender"] = 1.0 - spec["identity"]["macro"]["gender"]
    return spec


def _age_shift(spec: dict, _other: dict) -> dict:
    from datagen.catalogues import head as catalogue

    macro = spec["identity"]["macro"]
    years = catalogue.age_param_to_years(macro["age"])
    macro["age"] = catalogue.age_years_to_param(years + (25.0 if years < 50 else -25.0))
    return spec


def _sliders_times(k: float) -> Lever:
    def lever(spec: dict, _other: dict) -> dict:
        mods = spec["identity"]["modifiers"]
        spec["identity"]["modifiers"] = {key: float(np.clip(k * v, -1.0, 1.0)) for key, v in mods.items()}
        return spec

    return lever


def _take(*path: str) -> Lever:
    """The other identity's value at `path` (a whole sub-tree of the spec)."""

    def lever(spec: dict, other: dict) -> dict:
        node, src = spec, other
        for p in path[:-1]:
            node, src = node[p], src[p]
        node[path[-1]] = copy.deepcopy(src[path[-1]])
        return spec

    return lever


def _brows_scaled(k: float) -> Lever:
    def lever(spec: dict, _other: dict) -> dict:
        brows = spec["hair"]["eyebrows"]
        brows["thickness"] *= k
        brows["density"] = float(np.clip(brows["density"] * k, 0.0, 1.0))
        return spec

    return lever


def _skin_detail_of_other(spec: dict, other: dict) -> dict:
    """The other's freckles, moles, redness, wrinkles, pores and lip tint on this skin tone."""
    tone = spec["identity"]["skin"]["tone"]
    spec["identity"]["skin"] = copy.deepcopy(other["identity"]["skin"])
    return _set_tone(spec, tone)


def _shape_of_other(spec: dict, other: dict) -> dict:
    """The other's whole head shape: sex, age, build and ancestry, the sliders and outlines, the relief."""
    for key in ("macro", "modifiers", "relief"):
        spec["identity"][key] = copy.deepcopy(other["identity"][key])
    return spec


def _look_of_other(spec: dict, other: dict) -> dict:
    """Everything of the other's face that is not its shape: skin (tone and detail), irises, brows, lashes."""
    for key in ("skin", "iris", "eye_color"):
        spec["identity"][key] = copy.deepcopy(other["identity"][key])
    for key in ("eyebrows", "eyelashes"):
        spec["hair"][key] = copy.deepcopy(other["hair"][key])
    return spec


def _no_scalp_hair(spec: dict, _other: dict) -> dict:
    spec["hair"]["style"] = "bald"
    return spec


LEVERS: dict[str, Lever] = {
    "another-identity": lambda spec, other: other,
    "sex": _sex_flip,
    "tone": _tone_shift,
    "age": _age_shift,
    "ethnicity": _take("identity", "macro"),  # the other's sex, age, build and ancestry mix
    "sliders-other": _take("identity", "modifiers"),
    "sliders-x2": _sliders_times(2.0),
    "sliders-x0": _sliders_times(0.0),
    "shape-other": _shape_of_other,
    "look-other": _look_of_other,
    "relief-other": _take("identity", "relief"),
    "relief-flat": lambda spec, _other: {**spec, "identity": {**spec["identity"], "relief": None}},
    "skin-detail-other": _skin_detail_of_other,
    "iris-other": _take("identity", "eye_color"),
    "brows-other": _take("hair", "eyebrows"),
    "brows-thin": _brows_scaled(0.5),
    "scalp-hair-other": lambda spec, other: {
        **spec,
        "hair": {
            **copy.deepcopy(other["hair"]),
            "eyebrows": spec["hair"]["eyebrows"],
            "eyelashes": spec["hair"]["eyelashes"],
        },
    },
    "bald": _no_scalp_hair,
    "clothing-other": _take("clothing"),
}
SCALE_LEVERS = ("another-identity", "another-appearance")


def dominant_ancestry(spec: dict) -> str:
    from blender_assets.shape import ETHNICITIES

    macro = spec["identity"]["macro"]
    return max(ETHNICITIES, key=lambda a: macro[a])


def by_ancestry(pairs: list[tuple[float, str, str]]) -> str:
    """Distances split by the two faces' dominant ancestries, as (distance, a's, b's)."""
    from blender_assets.shape import ETHNICITIES

    lines = []
    for a, b in itertools.combinations_with_replacement(ETHNICITIES, 2):
        d = np.array([p[0] for p in pairs if sorted(p[1:]) == [a, b]])
        if len(d):
            lines.append(f"  {a + '-' + b:19s} {stats(d)}; {share_apart(d)}")
    return "\n".join(lines)


def mean_shift(sd: float, seed: int) -> Callable[[dict], dict]:
    """A spec's face sliders moved by one offset shared by every identity (one draw per slider, sided
    twins alike), clipped to the sliders' range."""
    from datagen.catalogues import head as catalogue

    bases = sorted({s.key.split(":")[0] for s in catalogue.identity_sliders()})
    offset = dict(zip(bases, np.random.default_rng(seed).normal(0.0, sd, len(bases))))

    def shifted(spec: dict) -> dict:
        mods = spec["identity"]["modifiers"]
        for key, value in mods.items():
            mods[key] = float(np.clip(value + offset.get(key.split(":")[0], 0.0), -1.0, 1.0))
        return spec

    return shifted


def neutral_look(spec: dict, light: str, sky: tuple[float, ...] = (3.0, 0.0, 90.0, 1.0)) -> dict:
    """The spec with a neutral face, a straight pose and the benchmark's one light."""
    from datagen.samplers.lighting import metering_ev
    from datagen.shard_format import FIXED_VIEW_FILES

    spec = copy.deepcopy(spec)
    spec["expression"] = {"archetypes": ["neutral"], "gaze_deg": [0.0, 0.0], "units": {}}
    spec["pose"] = {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}
    spec["makeup"] = {"lipstick": None, "eyeshadow": None, "blush": 0.0}
    spec["accessories"] = {"glasses": None, "earrings": None, "hat": None}
    exposure = metering_ev(spec["identity"]["skin"]["base_color"])
    if light == "ambient":
        spec["lighting"] = {
            "kind": "ambient",
            "color": [0.8, 0.8, 0.8],
            "strength": 0.7,
            "sky_ratio": sky[0],
            "sky_direction_deg": [sky[1], sky[2]],
            "sky_sharpness": sky[3],
            "exposure_ev": exposure,
        }
    else:
        spec["lighting"] = {
            "kind": "hdr",
            "hdri": f"bundled:{light}",
            "rotation_deg": 30.0,
            "strength": 1.0,
            "exposure_ev": exposure,
        }
    front = FIXED_VIEW_FILES.index(FIXED_FILES["front"])
    spec["views"] = [spec["views"][front]]
    return spec


class FrontEmbedder:
    def __init__(self, save: str = "") -> None:
        self.rec = Recognizer()
        self.save = save
        self.renders = 0
        self.t0 = time.perf_counter()

    def __call__(self, spec: dict) -> np.ndarray | None:
        from datagen.blender_render import render_subject
        from datagen.shard_format import FIXED_VIEW_FILES

        files = render_subject(spec, threads=os.cpu_count() or 1).files
        self.renders += 1
        img = composite(files[FIXED_VIEW_FILES[0]], "white")  # the spec's one view, the front
        if self.save:
            os.makedirs(self.save, exist_ok=True)
            img.save(os.path.join(self.save, f"{self.renders:03d}_{spec['key']}.png"))
        emb, _ = self.rec.face(np.asarray(img))
        return emb


def main() -> None:
    from datagen.catalogues import head as catalogue
    from datagen.config import make_config
    from datagen.spec import make_spec

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--identities", type=int, default=6, help="identities each lever is measured on")
    ap.add_argument(
        "--levers",
        default="all",
        help=f"comma-separated, 'all' or 'none'; of: {', '.join(list(LEVERS) + ['another-appearance'])}",
    )
    ap.add_argument("--pairs", type=int, default=0, help="also the pair spread of this many identities' neutral looks")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--preset", default="preview")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--light", default="ambient", help="'ambient' or a bundled HDRI name (e.g. city, courtyard, sunset)"
    )
    ap.add_argument(
        "--sky",
        default="15,40,45,10",
        help="ambient light: brightest/darkest ratio, azimuth and elevation (degrees) of the brightest direction, "
        "lobe sharpness (1: linear ramp; the default is a typical spec-7 key)",
    )
    ap.add_argument("--save", default="", help="write every rendered front view here (numbered in render order)")
    ap.add_argument(
        "--mean-shift",
        default="",
        help="SD[,SEED]: move every identity's face sliders by one shared random offset (sd SD per slider)",
    )
    args = ap.parse_args()
    names = (
        list(LEVERS) + ["another-appearance"]
        if args.levers == "all"
        else []
        if args.levers == "none"
        else [n.strip() for n in args.levers.split(",")]
    )
    bad = [n for n in names if n not in LEVERS and n != "another-appearance"]
    if bad:
        ap.error(
            f"--levers: unknown {', '.join(bad)} (allowed: "
            f"{', '.join(list(LEVERS) + ['another-appearance'])}, all, none)"
        )
    if args.light != "ambient" and args.light not in catalogue.bundled_hdris():
        ap.error(f"--light {args.light!r}: give 'ambient' or one of {', '.join(sorted(catalogue.bundled_hdris()))}")

    n_ids = max(args.identities * 2 if names else 0, args.pairs)
    cfg = dataclasses.replace(
        make_config(args.preset, identities=n_ids, appearances=2, views_random=0, seed=args.seed), size=args.size
    )
    try:
        sky = tuple(float(v) for v in args.sky.split(","))
        assert len(sky) == 4
    except (ValueError, AssertionError):
        ap.error(f"--sky {args.sky!r}: give ratio,azimuth,elevation,sharpness (e.g. 15,40,45,10)")
    shift = lambda spec: spec  # noqa: E731
    if args.mean_shift:
        try:
            sd, *rest = args.mean_shift.split(",")
            sd, shift_seed = float(sd), int(rest[0]) if rest else 0
            assert sd >= 0 and len(rest) <= 1
        except (ValueError, AssertionError):
            ap.error(f"--mean-shift {args.mean_shift!r}: give SD or SD,SEED with SD >= 0 (e.g. 0.3,1)")
        shift = mean_shift(sd, shift_seed)
    look = lambda i, j=0: neutral_look(shift(make_spec(cfg, i, j)), args.light, sky)  # noqa: E731
    embed = FrontEmbedder(args.save)
    cache: dict[int, np.ndarray | None] = {}

    def base(i: int) -> np.ndarray | None:
        if i not in cache:
            cache[i] = embed(look(i))
        return cache[i]

    for name in names:
        moved = []
        for i in range(args.identities):
            other = i + args.identities  # a partner outside the measured set
            changed = look(i, 1) if name == "another-appearance" else LEVERS[name](look(i), look(other))
            a, b = base(i), embed(changed)
            if a is not None and b is not None:
                moved.append(float(np.linalg.norm(a - b)))
        print(f"{name:20s} {stats(moved)}", flush=True)

    if args.pairs:
        embs = {i: base(i) for i in range(args.pairs)}
        found = [i for i, e in embs.items() if e is not None]
        pairs = sorted((float(np.linalg.norm(embs[a] - embs[b])), a, b) for a, b in itertools.combinations(found, 2))
        d = np.array([p[0] for p in pairs])
        print(
            f"\n{len(found)} of {args.pairs} neutral looks embedded; different identities: {stats(d)}; "
            f"{share_apart(d)}"
        )
        specs = {i: make_spec(cfg, i, 0) for i in found}
        print(by_sex([(dist, is_male(specs[a]), is_male(specs[b])) for dist, a, b in pairs]))
        print("by dominant ancestry:")
        print(by_ancestry([(dist, dominant_ancestry(specs[a]), dominant_ancestry(specs[b])) for dist, a, b in pairs]))

        print("closest pairs:")
        for dist, a, b in pairs[:8]:
            print(f"  {dist:.3f}  {a} ({describe(specs[a])}) — {b} ({describe(specs[b])})")
    print(f"{embed.renders} renders in {time.perf_counter() - embed.t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
