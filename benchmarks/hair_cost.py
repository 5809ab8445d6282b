"""Render cost of hair: seconds per view with no hair vs each scalp density, at a preset's settings.

    .venv/bin/python benchmarks/hair_cost.py [--preset paper] [--style medium]
        [--densities low,medium,high] [--threads 2]

The issue's budget: a 512² view with hair under 2× the same head without hair. Each case builds
the same subject (identity 0, appearance 0, front view), renders one warm-up-free view and reports
wall time; facial hair is left out so the scalp density is what is measured (brows and lashes stay).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import bpy  # noqa: E402

from blender_assets.hair import build_hair  # noqa: E402
from blender_assets.head import build_head  # noqa: E402
from blender_assets.lighting import apply_lighting  # noqa: E402
from datagen.blender_render import add_camera, configure_render, quiet_fds, reset_scene  # noqa: E402
from datagen.catalogues.hair import DENSITIES, HAIRSTYLES, STYLE_SHAPE  # noqa: E402
from datagen.config import DATAGEN_PRESETS  # noqa: E402
from datagen.samplers import draw  # noqa: E402
from datagen.samplers.lighting import hdri_paths_for_spec  # noqa: E402
from datagen.samplers.subject import Subject  # noqa: E402
from datagen.spec import make_spec  # noqa: E402
from facelift_models import cameras  # noqa: E402


def render_once(spec: dict, hair: dict | None, threads: int) -> tuple[float, int]:
    """(seconds for one front view, scalp strands) of the subject with `hair` (None: no hair at all)."""
    reset_scene()
    scene = bpy.context.scene
    configure_render(scene, spec["render"], threads, "cpu")
    head = build_head(spec["identity"], spec["expression"], spec["pose"], spec["makeup"], None, None)
    strands = 0
    if hair is not None:
        objs = build_hair(hair, head.objects[0], head.geometry)
        scalp = [o for o in objs if o.name == "hair_scalp"]
        if scalp:
            strands = len(scalp[0].evaluated_get(bpy.context.evaluated_depsgraph_get()).data.curves)
    apply_lighting(spec["lighting"], hdri_paths_for_spec(spec))
    cam = add_camera(scene, spec["render"]["fov_deg"])
    cam.matrix_world = cameras.c2w_to_blender_matrix(cameras.look_at_c2w(cameras.camera_position(0.0, 0.0))).T.tolist()
    with tempfile.TemporaryDirectory() as tmp:
        scene.render.filepath = os.path.join(tmp, "view.png")
        t = time.perf_counter()
        with quiet_fds():
            bpy.ops.render.render(write_still=True)
        return time.perf_counter() - t, strands


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="paper", choices=list(DATAGEN_PRESETS))
    ap.add_argument("--size", type=int, default=None, help="override the preset's image size")
    ap.add_argument("--style", default="medium", choices=[s for s in HAIRSTYLES if s != "bald"])
    ap.add_argument("--densities", default=",".join(DENSITIES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--identity", type=int, default=0)
    args = ap.parse_args()
    cfg = DATAGEN_PRESETS[args.preset].config
    spec = make_spec(cfg, args.identity, 0)
    if args.size:
        spec["render"]["size"] = args.size
    hair = draw("hair", Subject(cfg.seed, args.identity, 0, drawn={"identity": spec["identity"]}))
    shape = STYLE_SHAPE[args.style]
    hair.update(
        style=args.style,
        length=sum(shape[0]) / 2,
        curl_radius=shape[2],
        curl_frequency=shape[3],
        frizz=shape[4],
        clump=shape[5],
        recession=0.0,
    )
    hair["facial_hair"] = {"style": "none", "length": 0.0, "density": 0.0}
    r = spec["render"]
    print(
        f"{args.preset}: {r['size']}² {r['samples']} spp adaptive {r['adaptive_threshold']} "
        f"denoise {r['denoise_quality'] if r['denoise'] else 'off'}, "
        f"{args.threads} threads, style {args.style}",
        flush=True,
    )
    base, _ = render_once(spec, None, args.threads)
    print(f"  no hair            {base:7.1f} s/view", flush=True)
    for density in args.densities.split(","):
        seconds, strands = render_once(spec, {**hair, "density": density}, args.threads)
        print(
            f"  {density:<7} {strands:6d} strands {seconds:7.1f} s/view  ({seconds / base:.2f}× no hair)", flush=True
        )


if __name__ == "__main__":
    main()
