"""`facelift infer`: photos -> aligned inputs -> 6 views -> Gaussians -> `.ply` + turntable.

Every stage runs on the whole batch (`batch_size` photos at a time); a photo that cannot be read
is reported and skipped, the others go on. Each photo's outputs are written to a temporary folder
and renamed to `OUT/<name>/` when complete, so `OUT` never holds a half-written result:

    input.png         the photo without background, aligned as FaceLift aligns (512², white)
    multiview.png     the 6 generated views in a row (front, front_right, right, back, left, front_left)
    views/view_0k.png each of them
    gaussians.ply     standard 3DGS layout, SH padded to degree 3
    turntable.mp4     (or .gif) a turn around the head
    result.json       settings, the face box found, versions, the time of each stage

`OUT/run.json` lists every photo with its outcome.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from datagen.versions import software_versions
from facelift_models import cameras
from facelift_models.export import filter_for_export, save_ply, save_turntable, turntable
from inference.errors import InferError
from inference.face_align import (
    AlignmentTarget,
    align_face,
    alignment_target,
    centre_foreground,
    largest_face,
    load_mtcnn,
)
from inference.matting import PortraitMatting, on_white, photo_alpha
from inference.models import load_lrm, load_multiview
from inference.photos import collect_photos, load_photo
from inference.presets import INFER_PRESETS, InferConfig

STAGES = ("preprocess", "diffusion", "reconstruction", "export")
VIEW_COUNT = len(cameras.FIXED_VIEWS)


@dataclass
class Job:
    """One photo (or one set of given views) on its way through the stages."""

    source: str
    name: str
    aligned: Image.Image | None = None
    views: list[Image.Image] = field(default_factory=list)
    gaussians: object = None
    info: dict = field(default_factory=dict)


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise InferError(f"--device {device!r} is not one of auto, cpu, cuda, cuda:N")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InferError(f"--device {device!r}: no CUDA device here")
    return torch.device(device)


def dtypes(precision: str, device: torch.device) -> tuple[torch.dtype, torch.dtype | None]:
    """(diffusion weights dtype, LRM autocast dtype or None)."""
    if device.type != "cuda" or precision == "fp32":
        return torch.float32, None
    if precision == "auto":
        return torch.float16, torch.bfloat16
    half = torch.float16 if precision == "fp16" else torch.bfloat16
    return half, half


def unique_names(paths: list[str]) -> list[str]:
    names, seen = [], {}
    for p in paths:
        stem = os.path.splitext(os.path.basename(p.rstrip(os.sep)))[0] or "photo"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return names


def versions() -> dict:
    return software_versions({p: p for p in ("torch", "diffusers", "facenet-pytorch", "ai-edge-litert")})


def check_out(out: str) -> None:
    if os.path.exists(out) and not os.path.isdir(out):
        raise InferError(f"--out {out!r} is a file; give a folder for the results")


# ----------------------------------------------------------------------------- stages


def preprocess(
    job: Job, photo: Image.Image, matting: PortraitMatting, detector, target: AlignmentTarget, cfg: InferConfig, warn
) -> None:
    alpha, alpha_source = photo_alpha(photo, matting)
    white = on_white(photo, alpha)
    face = largest_face(detector, white)
    job.info.update(
        photo_size=list(photo.size),
        alpha=alpha_source,
        matting=matting.name if alpha_source == "segmentation" else None,
        alignment=dataclasses.asdict(target),
    )
    if face is None:
        if cfg.require_face:
            raise InferError(
                f"photo {job.source!r}: no face found (MTCNN, p > 0.8); "
                "drop --require-face to centre the foreground instead"
            )
        warn(f"warning: {job.source}: no face found (MTCNN, p > 0.8); centring the foreground instead")
        job.aligned, job.info["face"] = centre_foreground(white, alpha, target.canvas), None
    else:
        job.aligned, seen = align_face(white, face, target, detector)
        job.info["face"], job.info["face_aligned"] = face.as_dict(), seen.as_dict() if seen else None


def generate_views(pipe, jobs: list[Job], cfg: InferConfig) -> None:
    out = pipe(
        [j.aligned for j in jobs],
        num_inference_steps=cfg.steps,
        guidance_scale=cfg.guidance,
        eta=cfg.eta,
        seed=cfg.seed,
    ).images
    for job, views in zip(jobs, out):
        job.views = views


def fixed_cameras(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """c2w (6, 4, 4) OpenCV and K (6, 3, 3) of DESIGN §3's fixed views at `size`²."""
    c2w = np.stack([cameras.view_c2w(v) for v in cameras.FIXED_VIEWS])
    K = np.stack([cameras.intrinsics(size)] * VIEW_COUNT)
    return torch.tensor(c2w, dtype=torch.float32), torch.tensor(K, dtype=torch.float32)


@torch.no_grad()
def reconstruct(model, jobs: list[Job], device: torch.device, autocast: torch.dtype | None) -> None:
    size = model.cfg.image_size
    images = torch.stack(
        [
            torch.stack(
                [
                    torch.from_numpy(
                        np.asarray(v.convert("RGB").resize((size, size), Image.Resampling.BOX), dtype=np.float32)
                        / 255.0
                    ).permute(2, 0, 1)
                    for v in job.views
                ]
            )
            for job in jobs
        ]
    ).to(device)
    c2w, K = fixed_cameras(size)
    c2w, K = c2w.expand(len(jobs), -1, -1, -1).to(device), K.expand(len(jobs), -1, -1, -1).to(device)
    with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
        gaussians = model(images, c2w, K)
    for job, g in zip(jobs, gaussians):
        job.gaussians = g


def export(job: Job, out: str, cfg: InferConfig, lrm_size: int, settings: dict, seconds: dict) -> str:
    """Write the job's folder under a temporary name, then rename it to OUT/<name>. `seconds`: the
    photo's share of the batch stages; its export time is added, up to writing result.json."""
    from training.checkpoints import CheckpointError, save_folder_atomically

    start = time.perf_counter()
    origins = fixed_cameras(lrm_size)[0][:, :3, 3]
    kept = filter_for_export(job.gaussians, cfg.filters, camera_origins=origins)
    size = cfg.turntable_size or lrm_size
    frames = turntable(kept, frames=cfg.turntable_frames, size=size)

    def write(folder: str) -> None:
        os.makedirs(os.path.join(folder, "views"))
        if job.aligned is not None:
            job.aligned.save(os.path.join(folder, "input.png"))
        w, h = job.views[0].size
        row = Image.new("RGB", (w * len(job.views), h), (255, 255, 255))
        for k, view in enumerate(job.views):
            view.convert("RGB").save(os.path.join(folder, "views", f"view_{k:02d}.png"))
            row.paste(view.convert("RGB"), (k * w, 0))
        row.save(os.path.join(folder, "multiview.png"))
        splats = save_ply(kept, os.path.join(folder, "gaussians.ply"))
        save_turntable(
            frames, os.path.join(folder, "turntable.gif" if cfg.gif else "turntable.mp4"), fps=cfg.turntable_fps
        )
        result = {
            "source": job.source,
            **job.info,
            "splats": {"predicted": len(job.gaussians), "exported": splats},
            "turntable": {"frames": len(frames), "size": size, "fps": cfg.turntable_fps},
            "settings": settings,
            "seconds": {k: round(v, 4) for k, v in {**seconds, "export": time.perf_counter() - start}.items()},
            "versions": versions(),
        }
        with open(os.path.join(folder, "result.json"), "w") as f:
            json.dump(result, f, indent=2)

    try:
        return save_folder_atomically(write, os.path.join(out, job.name))
    except CheckpointError as e:
        raise InferError(str(e)) from None


# ----------------------------------------------------------------------------- the run


def read_given_views(paths: list[str]) -> list[Image.Image]:
    """`--views`: 6 images in the fixed-view order (a folder's image files sorted by name)."""
    files = collect_photos(paths)
    if len(files) != VIEW_COUNT:
        raise InferError(
            f"--views gives {len(files)} images; {VIEW_COUNT} are needed, in the order "
            f"{', '.join(v.name for v in cameras.FIXED_VIEWS)}"
        )
    images = []
    for f in files:
        im = load_photo(f)
        if im.mode == "RGBA":
            im = on_white(im, np.asarray(im.getchannel("A"), dtype=np.float32) / 255.0)
        images.append(im)
    return images


def run_infer(
    photos: list[str],
    out: str,
    lrm: str,
    diffusion: str | None = None,
    cfg: InferConfig | None = None,
    views: list[str] | None = None,
    matting_model: str | None = None,
    device: str = "auto",
    warn=print,
    log=print,
) -> dict:
    """Returns the run summary (also written to OUT/run.json). One-line InferErrors for bad input,
    raised before anything is written."""
    cfg = cfg or INFER_PRESETS["facelift"].config
    check_out(out)
    dev = pick_device(device)
    diffusion_dtype, autocast = dtypes(cfg.precision, dev)
    if views:
        if photos:
            raise InferError("give photos or --views, not both")
        given = read_given_views(views)
        jobs = [
            Job(
                source=os.path.abspath(views[0]),
                name=unique_names(views[:1])[0] if len(views) == 1 else "views",
                views=given,
            )
        ]
        failures: list[dict] = []
    else:
        if diffusion is None:
            raise InferError("--diffusion PIPELINE_DIR is needed to turn photos into views (or give --views)")
        files = collect_photos(photos)
        jobs, loaded, failures = [], [], []
        for path, name in zip(files, unique_names(files)):
            try:
                loaded.append(load_photo(path))
                jobs.append(Job(source=os.path.abspath(path), name=name))
            except InferError as e:
                failures.append({"source": os.path.abspath(path), "error": str(e)})
        if not jobs:
            raise InferError(failures[0]["error"])
    model, lrm_meta = load_lrm(lrm, dev)
    pipe = load_multiview(diffusion, dev, diffusion_dtype)[0] if not views else None
    for f in failures:
        warn(f"error: {f['error']}; skipped")

    settings = {
        "preset": cfg.preset,
        "steps": cfg.steps,
        "guidance": cfg.guidance,
        "seed": cfg.seed,
        "eta": cfg.eta,
        "filters": dataclasses.asdict(cfg.filters),
        "precision": cfg.precision,
        "device": str(dev),
        "diffusion": os.path.abspath(diffusion) if diffusion and not views else None,
        "lrm": os.path.abspath(lrm),
        "lrm_step": lrm_meta.get("step"),
        "lrm_preset": lrm_meta["model"]["preset"],
    }
    if views:
        settings.update(steps=None, guidance=None, seed=None, eta=None, views_given=True)
    matting = detector = None
    if not views:
        matting = PortraitMatting(matting_model)
        detector = load_mtcnn("cpu")  # the reference detector; a few ms a photo
    target = (
        alignment_target(pipe.config.get("face_alignment"), f"the dataset card of {diffusion}")
        if pipe is not None
        else AlignmentTarget()
    )
    totals = dict.fromkeys(STAGES, 0.0)
    done = []
    os.makedirs(out, exist_ok=True)
    for start in range(0, len(jobs), cfg.batch_size):
        batch = jobs[start : start + cfg.batch_size]
        seconds = dict.fromkeys(STAGES, 0.0)
        t = time.perf_counter()
        if not views:
            for job, photo in zip(batch, loaded[start : start + cfg.batch_size]):
                preprocess(job, photo, matting, detector, target, cfg, warn)
        seconds["preprocess"] = time.perf_counter() - t
        t = time.perf_counter()
        if not views:
            generate_views(pipe, batch, cfg)
        seconds["diffusion"] = time.perf_counter() - t
        t = time.perf_counter()
        reconstruct(model, batch, dev, autocast)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        seconds["reconstruction"] = time.perf_counter() - t
        t = time.perf_counter()
        per_photo = {k: v / len(batch) for k, v in seconds.items() if k != "export"}
        for job in batch:
            folder = export(job, out, cfg, model.cfg.image_size, settings, {**per_photo, "batch_of": len(batch)})
            done.append(
                {
                    "source": job.source,
                    "output": folder,
                    "face_found": job.info.get("face") is not None if not views else None,
                }
            )
        seconds["export"] = time.perf_counter() - t
        for k in STAGES:
            totals[k] += seconds[k]
        log(
            "  ".join(f"{k} {seconds[k]:.2f} s" for k in STAGES)
            + f"  ({len(batch)} {'photo' if len(batch) == 1 else 'photos'})"
        )
    summary = {
        "settings": settings,
        "results": done,
        "failed": failures,
        "seconds": {k: round(v, 4) for k, v in totals.items()},
        "versions": versions(),
    }
    with open(os.path.join(out, "run.json.tmp"), "w") as f:
        json.dump(summary, f, indent=2)
    os.replace(os.path.join(out, "run.json.tmp"), os.path.join(out, "run.json"))
    return summary
