"""Render quality vs cost: seconds per view and error against converged references, over a grid of
Cycles settings, fixed views (diffusion targets) apart from random views (LRM supervision).

    .venv/bin/python benchmarks/render_quality.py [--preset paper] [--rows all] [--ref-spp 512]
        [--out out/render_quality] [--threads 2]

Subjects are picked from the preset's own specs to cover long hair, dark and light skin, glasses,
ambient and HDR light (`CASES`); each gives one fixed view and its first random view that shows the
face. The reference of a view is rendered far past any preset (`--ref-spp`, no adaptive stopping,
no denoiser, `--ref-bounces` of every kind) as two independent halves with different seeds: their mean is the
reference, their difference measures the reference's own noise (the mean's squared error against the
truth is a quarter of the halves': their PSNR + 6.02 dB). That noise is independent of a row's, so it
adds to a row's squared error against the reference; the tables give both the PSNR against the
reference and against the truth (that noise subtracted), which stays honest when a row comes close to
the reference's own noise. References
are cached under `--out`, keyed by the view's spec and the reference settings, so reruns only
render the grid.

Each row of `ROWS` overrides the preset's render settings; for each it prints wall and CPU seconds
per view (`--threads` Cycles threads, scene already built and synced for the row's settings: the
second of two renders, as a datagen worker renders its views; `--first-render-only` times the first) and
the PSNR of the product's 8-bit PNG against the reference: on the whole image composited on white
(the trainers' input), and inside the face (the convex hull of the 68 landmarks in the view).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import bpy  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from scipy.spatial import ConvexHull  # noqa: E402

from datagen.blender_render import build_scene, configure_render, quiet_fds  # noqa: E402
from datagen.config import DATAGEN_PRESETS  # noqa: E402
from datagen.labels import ViewLabels  # noqa: E402
from datagen.sample import cameras_json  # noqa: E402
from datagen.spec import make_spec, view_samples  # noqa: E402
from facelift_models import cameras  # noqa: E402


@dataclass(frozen=True)
class Case:
    name: str
    wants: dict  # what the subject's spec must show: hair, skin, glasses, light
    fixed_view: str  # which of the 6 fixed views


def shows(spec: dict, wants: dict) -> bool:
    tone = spec["identity"]["skin"]["tone"]  # 0 light … 1 dark
    checks = {
        "hair": lambda v: spec["hair"]["style"].startswith(v),
        "skin": lambda v: tone < 0.25 if v == "light" else tone > 0.7,
        "glasses": lambda v: (spec["accessories"]["glasses"] is not None) == v,
        "light": lambda v: spec["lighting"]["kind"] == v,
    }
    return all(checks[k](v) for k, v in wants.items())


CASES = (
    Case("long hair, light skin, HDR", {"hair": "long", "skin": "light", "light": "hdr"}, "front"),
    Case("dark skin, ambient", {"skin": "dark", "light": "ambient", "glasses": False}, "front_right"),
    Case("glasses, HDR", {"glasses": True, "light": "hdr"}, "front_left"),
    Case("light skin, ambient", {"skin": "light", "light": "ambient", "glasses": False}, "right"),
)

# Render settings to try, as overrides of the preset's (`spec["render"]`); "preset" is the preset as is.
ROWS: dict[str, dict] = {
    "preset": {},
    "64 spp, adaptive 0.05": {"samples": 64, "adaptive_threshold": 0.05},
    "32 spp": {"samples": 32},
    "32 spp, 4 bounces": {"samples": 32, "max_bounces": 4},
    # Noise a path tracer can trade for bias: eye, cornea and glasses caustics, indirect fireflies.
    "32 spp, no caustics, indirect clamp 1": {
        "samples": 32,
        "caustics_reflective": False,
        "caustics_refractive": False,
        "sample_clamp_indirect": 1.0,
    },
    # Cycles' CPU path guiding learns where indirect light comes from: less noise per sample.
    "32 spp, path guiding": {"samples": 32, "use_guiding": True},
    "128 spp, adaptive 0.01": {"samples": 128, "adaptive_threshold": 0.01},
    "32 spp, adaptive 0.05": {"samples": 32, "adaptive_threshold": 0.05},
    "16 spp": {"samples": 16},
    "16 spp, adaptive 0.05": {"samples": 16, "adaptive_threshold": 0.05},
    "32 spp, OIDN BALANCED": {"samples": 32, "denoise": True, "denoise_quality": "BALANCED"},
    "32 spp, OIDN FAST": {"samples": 32, "denoise": True, "denoise_quality": "FAST"},
    "64 spp, no denoiser": {"samples": 64, "denoise": False},
    # The preview preset's neighbours (256², 16 spp, OIDN FAST): fewer samples, a better denoiser.
    "8 spp": {"samples": 8},
    "16 spp, OIDN BALANCED": {"samples": 16, "denoise": True, "denoise_quality": "BALANCED"},
    "16 spp, OIDN HIGH": {"samples": 16, "denoise": True, "denoise_quality": "HIGH"},
    "8 spp, OIDN HIGH": {"samples": 8, "denoise": True, "denoise_quality": "HIGH"},
    # Hair dominates a haired head's cost: how its strands are intersected and shaded.
    "hair ribbons": {"curve_shape": "RIBBONS"},
    "hair linear segments": {"curve_shape": "THICK_LINEAR"},
    "hair 1 subdivision": {"curve_subdivisions": 1},
    "hair Huang BSDF": {"hair_model": "HUANG"},
    "2 transmission bounces": {"transmission_bounces": 2},
    "32 spp, hair linear segments": {"samples": 32, "curve_shape": "THICK_LINEAR"},
}


def set_hair_model(scene, model: str) -> None:
    for mat in bpy.data.materials:
        for node in mat.node_tree.nodes if mat.node_tree else ():
            if node.bl_idname == "ShaderNodeBsdfHairPrincipled":
                node.model = model


def cycles_setting(owner: str, name: str):
    """(read, set) of `scene.<owner>.<name>`."""
    return (lambda s: getattr(getattr(s, owner), name), lambda s, v: setattr(getattr(s, owner), name, v))


# Scene settings outside `spec["render"]` a row may set, as (read the built scene's value, set a value).
# Every row sets all of them, so a row (or a reference rendered in the same run) never leaks into the next.
LEVERS = {
    "curve_shape": cycles_setting("cycles_curves", "shape"),
    "curve_subdivisions": cycles_setting("cycles_curves", "subdivisions"),
    "hair_model": (lambda s: "CHIANG", set_hair_model),  # the product builds every hair BSDF as Chiang
    **{
        k: cycles_setting("cycles", k)
        for k in (
            "diffuse_bounces",
            "glossy_bounces",
            "transmission_bounces",
            "transparent_max_bounces",
            "caustics_reflective",
            "caustics_refractive",
            "sample_clamp_indirect",
            "use_guiding",
        )
    },
}


def configure_row(scene, spec: dict, kind: str, row: dict, built: dict, threads: int) -> None:
    """The preset's render settings for a view of `kind` (fixed or random) with `row`'s overrides;
    levers the row leaves out go back to `built`."""
    preset = {**spec["render"], "samples": view_samples(spec["render"], kind)}
    configure_render(scene, {**preset, **{k: v for k, v in row.items() if k not in LEVERS}}, threads, "cpu")
    for name, (_, set_value) in LEVERS.items():
        set_value(scene, row.get(name, built[name]))
    scene.update_tag()  # Cycles' persistent data re-reads settings (the samples among them) only then


def pick_subjects(cfg, search: int = 400) -> list[tuple[Case, dict]]:
    """The first identity (appearance 0) of the preset whose spec shows each case."""
    picked, used = [], set()
    for case in CASES:
        for identity in range(search):
            spec = make_spec(cfg, identity, 0)
            if identity not in used and shows(spec, case.wants):
                picked.append((case, spec))
                used.add(identity)
                break
        else:
            raise SystemExit(f"no subject among the first {search} shows {case.name!r}")
    return picked


def render_png(scene, path: str) -> tuple[np.ndarray, float]:
    """(H, W, 4) float RGBA in [0, 1] of the 8-bit PNG Cycles writes, wall seconds of the render."""
    scene.render.filepath = path
    t = time.perf_counter()
    with quiet_fds():
        bpy.ops.render.render(write_still=True)
    seconds = time.perf_counter() - t
    return np.asarray(Image.open(path).convert("RGBA"), dtype=np.float64) / 255.0, seconds


def on_white(rgba: np.ndarray) -> np.ndarray:
    return rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:])


def mse(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    d = (a - b) ** 2
    return float(d[mask].mean()) if mask is not None else float(d.mean())


def db(mse_value: float) -> float:
    """PSNR of a mean squared error on [0, 1] images (a non-positive error, below what the reference
    resolves, reads as infinite)."""
    return 10.0 * np.log10(1.0 / mse_value) if mse_value > 0 else float("inf")


def face_mask(labels: ViewLabels, frame: dict, size: int) -> np.ndarray | None:
    """Pixels inside the convex hull of the head's 68 landmarks (`labels`) projected in the view (None
    if the face is turned away: fewer than half its points face the camera)."""
    w2c = np.array(frame["w2c"])
    xy, z = cameras.project(labels.points, w2c, cameras.frame_K(frame))
    centre = np.linalg.inv(w2c)[:3, 3]
    facing = np.einsum("ij,ij->i", labels.normals, centre - labels.points) > 0
    if facing.sum() < len(facing) / 2 or (z <= 0).any():
        return None
    hull = xy[ConvexHull(xy).vertices]
    canvas = Image.new("L", (size, size), 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in hull], fill=1)
    return np.asarray(canvas, dtype=bool)


def reference(scene, spec: dict, frame: dict, args, cache: str) -> tuple[np.ndarray, np.ndarray]:
    """The converged view as its two independent halves (RGBA in [0, 1]); their mean is the reference."""
    key = json.dumps(
        [
            {k: v for k, v in spec.items() if k != "render"},
            frame["c2w"],
            spec["render"]["size"],
            args.ref_spp,
            args.ref_bounces,
        ],
        sort_keys=True,
    )
    path = os.path.join(cache, f"{spec['key']}-{hashlib.sha1(key.encode()).hexdigest()[:12]}-halves.npz")
    if os.path.exists(path):
        with np.load(path) as f:
            return f["half1"].astype(np.float64), f["half2"].astype(np.float64)
    render = {**spec["render"], "samples": args.ref_spp // 2, "denoise": False, "max_bounces": args.ref_bounces}
    halves = []
    for half in range(2):
        configure_render(
            scene, {**render, "cycles_seed": render["cycles_seed"] + 7919 * (half + 1)}, args.threads, "cpu"
        )
        c = scene.cycles
        c.use_adaptive_sampling = False
        # Blender caps each kind of bounce apart from the total (diffuse and glossy at 4): lift them all.
        c.diffuse_bounces = c.glossy_bounces = c.transmission_bounces = args.ref_bounces
        c.transparent_max_bounces = 2 * args.ref_bounces
        with tempfile.TemporaryDirectory() as tmp:
            image, seconds = render_png(scene, os.path.join(tmp, "ref.png"))
        print(f"  reference half {half + 1}: {seconds:.0f} s", flush=True)
        halves.append(image)
    os.makedirs(cache, exist_ok=True)
    tmp_path = path + ".part.npz"
    np.savez_compressed(tmp_path, half1=halves[0].astype(np.float32), half2=halves[1].astype(np.float32))
    os.replace(tmp_path, path)
    return halves[0], halves[1]


@dataclass(frozen=True)
class Reference:
    """A view's reference composited on white, and the mean squared error of that mean of two halves
    against the truth: a quarter of the halves' own (independent noise), inside the face and overall."""

    white: np.ndarray
    face: np.ndarray | None
    noise_mse: float
    face_noise_mse: float | None

    @classmethod
    def from_halves(cls, half1: np.ndarray, half2: np.ndarray, face: np.ndarray | None) -> Reference:
        a, b = on_white(half1), on_white(half2)
        return cls((a + b) / 2, face, mse(a, b) / 4, mse(a, b, face) / 4 if face is not None else None)

    def ceiling_db(self) -> float:
        return db(self.noise_mse)

    def score(self, image: np.ndarray) -> tuple[float, float, float | None, float | None]:
        """PSNR dB of `image` against the reference, and against the truth (the reference's own noise,
        independent of the image's, subtracted), overall and inside the face."""
        white = on_white(image)
        whole = mse(white, self.white)
        scores = [db(whole), db(whole - self.noise_mse)]
        if self.face is None:
            return scores[0], scores[1], None, None
        face = mse(white, self.white, self.face)
        return scores[0], scores[1], db(face), db(face - self.face_noise_mse)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="paper", choices=list(DATAGEN_PRESETS))
    ap.add_argument("--rows", default="all", help=f"names of ROWS separated by ;, or all: {'; '.join(ROWS)}")
    ap.add_argument(
        "--cases",
        default=",".join(str(k) for k in range(len(CASES))),
        help="which of CASES to measure, as indices separated by commas: "
        + "; ".join(f"{k} {c.name}" for k, c in enumerate(CASES)),
    )
    ap.add_argument("--ref-spp", type=int, default=512, help="reference samples per pixel (two halves)")
    ap.add_argument("--ref-bounces", type=int, default=16, help="reference light-path bounces")
    ap.add_argument("--refs-only", action="store_true", help="only render (or find cached) the references")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument(
        "--first-render-only",
        action="store_true",
        help="time each row's first render, which re-syncs the scene for the row's settings (a worker does "
        "that once a subject), instead of a second, steady one: halves the grid's time",
    )
    ap.add_argument("--out", default="out/render_quality", help="reference cache")
    args = ap.parse_args()
    rows = list(ROWS) if args.rows == "all" else [r.strip() for r in args.rows.split(";")]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise SystemExit(f"unknown row {unknown[0]!r} (allowed: {'; '.join(ROWS)})")
    try:
        cases = [int(k) for k in args.cases.split(",")]
        if not all(0 <= k < len(CASES) for k in cases):
            raise ValueError
    except ValueError:
        raise SystemExit(
            f"--cases {args.cases!r} is not allowed (indices 0 to {len(CASES) - 1} separated by commas)"
        ) from None
    cfg = DATAGEN_PRESETS[args.preset].config
    results: dict[tuple[str, str], list[tuple]] = {}  # (seconds, *Reference.score)
    ceilings: dict[str, list[float]] = {"fixed": [], "random": []}
    for case, spec in (pick for k, pick in enumerate(pick_subjects(cfg)) if k in cases):
        print(f"{case.name}: {spec['key']}", flush=True)
        head, _, _ = build_scene(spec, args.threads, "cpu")
        scene = bpy.context.scene
        camera = scene.camera
        built = {name: get_value(scene) for name, (get_value, _) in LEVERS.items()}
        geometry = head.geometry
        frames = cameras_json(spec, geometry.head_matrix[:3, :3], geometry.gaze_directions())["frames"]
        size = spec["render"]["size"]
        labels = ViewLabels.for_head(head, ("landmarks2d",), spec.get("hair") is None, spec["hair"]["eyebrows"])
        names = [v["name"] for v in spec["views"]]
        fixed = frames[names.index(case.fixed_view)]
        randoms = [f for f, v in zip(frames, spec["views"]) if v["kind"] == "random"]
        masks = ((f, face_mask(labels, f, size)) for f in randoms)
        random, random_face = next(((f, m) for f, m in masks if m is not None), (randoms[0], None))
        fixed_face = face_mask(labels, fixed, size)
        for group, frame, face in (("fixed", fixed, fixed_face), ("random", random, random_face)):
            camera.matrix_world = cameras.c2w_to_blender_matrix(np.array(frame["c2w"])).T.tolist()
            ref = Reference.from_halves(*reference(scene, spec, frame, args, args.out), face)
            ceilings[group].append(ref.ceiling_db())
            if args.refs_only:
                print(f"  {group} {frame['file_path']}: reference ceiling {ref.ceiling_db():.2f} dB", flush=True)
                continue
            configure_row(scene, spec, group, {"samples": 1, "denoise": False}, built, args.threads)
            with tempfile.TemporaryDirectory() as tmp:
                render_png(scene, os.path.join(tmp, "warm.png"))  # kernels and BVH, as a worker's first view
                for row in rows:
                    configure_row(scene, spec, group, ROWS[row], built, args.threads)
                    image, seconds = render_png(scene, os.path.join(tmp, "view.png"))
                    if not args.first_render_only:  # the row's re-sync is behind it: time a worker's view
                        image, seconds = render_png(scene, os.path.join(tmp, "view.png"))
                    scores = ref.score(image)
                    results.setdefault((group, row), []).append((seconds, *scores))
                    print(
                        f"  {group} {frame['file_path']} {row}: {seconds:.1f} s, {show_scores(scores)}",
                        flush=True,
                    )
    if not args.refs_only:
        print_table(args, cfg, rows, results, ceilings)


def show_scores(scores: tuple) -> str:
    whole, whole_truth, face, face_truth = scores
    text = f"{whole:.2f} dB (vs truth {whole_truth:.2f})"
    return text + (f", face {face:.2f} dB (vs truth {face_truth:.2f})" if face is not None else ", face —")


def print_table(args, base, rows, results, ceilings) -> None:
    print(
        f"\n{args.preset} preset ({base.size}², {base.samples} spp"
        + (f" ({base.random_view_samples} on random views)" if base.random_view_samples else "")
        + f", adaptive {base.adaptive_threshold}, "
        f"denoise {base.denoise_quality if base.denoise else 'off'}, {base.max_bounces} bounces); "
        f"{args.threads} threads; reference {args.ref_spp} spp, {args.ref_bounces} bounces, no denoiser; "
        "'truth': the reference's own noise subtracted"
    )

    def mean_min(values: list) -> str:
        values = [v for v in values if v is not None]
        return f"{np.mean(values):.2f}, {min(values):.2f}" if values else "—"

    for group in ("fixed", "random"):
        c = ceilings[group]
        print(f"\n{group} views ({len(c)}): reference vs truth {np.mean(c):.1f} dB (min {min(c):.1f})")
        print(
            "| settings | s/view | CPU-s/view | vs preset | PSNR dB vs ref (mean, min) | vs truth | "
            "face PSNR dB vs ref (mean, min) | vs truth |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        preset_s = np.mean([r[0] for r in results[(group, rows[0])]]) if rows[0] == "preset" else None
        for row in rows:
            r = results[(group, row)]
            seconds = float(np.mean([x[0] for x in r]))
            columns = [mean_min([x[i] for x in r]) for i in range(1, 5)]
            ratio = f"{preset_s / seconds:.2f}×" if preset_s else "—"
            print(f"| {row} | {seconds:.1f} | {seconds * args.threads:.1f} | {ratio} | {' | '.join(columns)} |")


if __name__ == "__main__":
    main()
