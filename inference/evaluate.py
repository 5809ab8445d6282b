"""`facelift eval`: the paper's metrics on held-out heads, under two protocols reported apart.

    reconstruction   the LRM from the subject's 6 ground-truth fixed views, scored on its other views
    full_pipeline    the multi-view diffusion from the front view, then the LRM on the 6 generated
                     views (at DESIGN §3's fixed cameras), scored on the same views

and the two baselines a reader needs to judge them: the per-pixel mean of the training images (what
a model that ignores its input can reach) and the untrained LRM (the same architecture, random
weights, protocol `reconstruction`).

Metrics per scored view, per subject and overall: PSNR, SSIM, LPIPS-VGG (`inference.metrics`) and an
identity distance between the predicted and the ground-truth face (dlib's recognizer,
`inference.face_identity`; views where either face is not found are counted, not scored). Every
image scored is written as an 8-bit PNG and the metrics are computed on exactly those pixels, so
anyone can recompute them: `OUT/renders/<protocol>/<key>/<view>_{pred,gt}.png`.

Data: a `facelift datagen` folder made with `--split test` (held-out identities; a training split is
refused unless `--allow-train`), or a folder in FaceLift's camera format (`opencv_cameras.json` and
its images, as Cafca and Ava-256 are converted): there the 6 frames nearest the fixed views'
directions are the inputs, the frame nearest the front the diffusion's input, the rest are scored.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from datagen.errors import DatagenError
from datagen.shard_format import read_samples
from facelift_models import cameras
from facelift_models.gaussian_render import render_gaussians
from facelift_models.lrm import GSLRM
from inference.errors import InferError
from inference.face_identity import load_recognizer
from inference.infer import check_out, dtypes, fixed_cameras, pick_device, versions
from inference.metrics import load_lpips, psnr, ssim
from inference.models import load_lrm, load_multiview
from inference.presets import EVAL_PRESETS, EvalConfig
from training.checkpoints import CheckpointError, save_folder_atomically
from training.lrm_data import frame_K_at, normalize_cameras
from training.shards import DataError, dataset_card_and_shards, decode_view, location, open_shard, shard_urls

PROTOCOLS = ("reconstruction", "full_pipeline")
BASELINES = ("mean_image", "untrained")
CAMERA_FILE = "opencv_cameras.json"


@dataclass
class Subject:
    key: str
    inputs: torch.Tensor  # (6, 3, S, S) the fixed views, on white, in [0, 1] (8-bit values)
    input_c2w: torch.Tensor  # (6, 4, 4)
    front: Image.Image  # the diffusion's input, full size
    names: list[str]  # scored views
    targets: torch.Tensor  # (T, 3, S, S)
    c2w: torch.Tensor  # (T, 4, 4)
    K: torch.Tensor  # (T, 3, 3)


# ----------------------------------------------------------------------------- reading the data


def decoded(blob: bytes, size: int, what: str) -> torch.Tensor:
    """A view composited on white at size² (the trainers' `decode_view`), with the values an 8-bit
    PNG keeps: the metrics are computed on the images as saved."""
    try:
        return quantise(decode_view(blob, size))
    except OSError as e:  # PIL's UnidentifiedImageError is one
        raise InferError(f"{what} is not a readable image ({e})") from None


def full_size(blob: bytes) -> Image.Image:
    """The diffusion's input as stored (the pipeline composites transparency on white itself)."""
    im = Image.open(io.BytesIO(blob))
    im.load()
    return im


def datagen_subjects(data: str, size: int, limit: int, allow_train: bool) -> tuple[list[Subject], dict]:
    """Subjects of a datagen folder; refuses a training split unless allowed."""
    try:
        card, urls = dataset_card_and_shards(data)
    except DataError as e:
        raise InferError(str(e)) from None
    split = card["config"].get("split", "train")
    if split != "test" and not allow_train:
        raise InferError(
            f"--data {data!r} is a {split!r} split: its identities are the ones models train on; "
            "evaluate on held-out people (`facelift datagen --split test`) or pass --allow-train"
        )
    subjects = []
    for url in urls:
        with open_shard(url) as f:  # streamed, also from an object store
            for key, files in read_samples(f):
                frames = json.loads(files["cameras.json"])["frames"]
                fixed = sorted((fr for fr in frames if fr["kind"] == "fixed"), key=lambda fr: fr["file_path"])
                scored = [fr for fr in frames if fr["kind"] != "fixed"]
                if len(fixed) != len(cameras.FIXED_VIEWS) or not scored:
                    raise InferError(
                        f"--data {data!r}: subject {key!r} has {len(fixed)} fixed and {len(scored)} random views; "
                        f"eval needs the {len(cameras.FIXED_VIEWS)} fixed views and at least one random view"
                    )
                c2w = normalize_cameras(np.array([fr["c2w"] for fr in fixed + scored]))
                subjects.append(
                    Subject(
                        key=key,
                        inputs=torch.stack(
                            [decoded(files[fr["file_path"]], size, f"{key} {fr['file_path']}") for fr in fixed]
                        ),
                        input_c2w=torch.tensor(c2w[: len(fixed)], dtype=torch.float32),
                        front=full_size(files[fixed[0]["file_path"]]),
                        names=[os.path.splitext(fr["file_path"])[0] for fr in scored],
                        targets=torch.stack(
                            [decoded(files[fr["file_path"]], size, f"{key} {fr['file_path']}") for fr in scored]
                        ),
                        c2w=torch.tensor(c2w[len(fixed) :], dtype=torch.float32),
                        K=torch.tensor(np.stack([frame_K_at(fr, size) for fr in scored]), dtype=torch.float32),
                    )
                )
                if len(subjects) == limit:
                    return subjects, {"kind": "datagen", "split": split, "card_config": card["config"]}
    return subjects, {"kind": "datagen", "split": split, "card_config": card["config"]}


def camera_format_subjects(data: str, size: int) -> tuple[list[Subject], dict]:
    """One subject from a folder (or fsspec URL) in FaceLift's camera format (`opencv_cameras.json` + images)."""
    from datagen.errors import StorageError
    from datagen.storage import Storage

    storage = Storage(data)
    try:
        frames = json.loads(storage.read_bytes(CAMERA_FILE))["frames"]
        c2w = normalize_cameras(np.array([np.linalg.inv(np.array(fr["w2c"], dtype=np.float64)) for fr in frames]))
    except (OSError, StorageError, ValueError, KeyError, TypeError, np.linalg.LinAlgError) as e:
        raise InferError(
            f"--data {data!r}: {CAMERA_FILE} is not FaceLift's camera format ({e.__class__.__name__}: {e})"
        ) from None
    if len(frames) < len(cameras.FIXED_VIEWS) + 1:
        raise InferError(
            f"--data {data!r} has {len(frames)} frames; eval needs at least {len(cameras.FIXED_VIEWS) + 1}"
        )
    directions = c2w[:, :3, 3] / np.linalg.norm(c2w[:, :3, 3], axis=1, keepdims=True)
    fixed = []
    for view in cameras.FIXED_VIEWS:  # the nearest unused frame to each fixed direction
        want = cameras.camera_position(view.azimuth_deg, view.elevation_deg) / cameras.RADIUS
        order = np.argsort(-(directions @ want))
        fixed.append(next(int(k) for k in order if int(k) not in fixed))
    scored = [k for k in range(len(frames)) if k not in fixed]

    def read(k: int) -> bytes:
        try:
            return storage.read_bytes(frames[k]["file_path"])
        except StorageError as e:
            raise InferError(f"--data {data!r}: {frames[k]['file_path']!r} cannot be read ({e})") from None

    def view(k: int) -> torch.Tensor:
        return decoded(read(k), size, f"--data {data!r}: {frames[k]['file_path']!r}")

    def K_at(k: int) -> np.ndarray:
        fr = frames[k]
        return np.diag([size / fr["w"], size / fr["h"], 1.0]) @ np.array(
            [[fr["fx"], 0, fr["cx"]], [0, fr["fy"], fr["cy"]], [0, 0, 1.0]]
        )

    square = [k for k in range(len(frames)) if frames[k]["w"] != frames[k]["h"]]
    if square:
        raise InferError(
            f"--data {data!r}: frame {frames[square[0]]['file_path']!r} is "
            f"{frames[square[0]]['w']}×{frames[square[0]]['h']}; eval takes square views"
        )
    subject = Subject(
        key=os.path.basename(os.path.normpath(data.split("://", 1)[-1])),
        inputs=torch.stack([view(k) for k in fixed]),
        input_c2w=torch.tensor(c2w[fixed], dtype=torch.float32),
        front=full_size(read(fixed[0])),
        names=[os.path.splitext(os.path.basename(frames[k]["file_path"]))[0] for k in scored],
        targets=torch.stack([view(k) for k in scored]),
        c2w=torch.tensor(c2w[scored], dtype=torch.float32),
        K=torch.tensor(np.stack([K_at(k) for k in scored]), dtype=torch.float32),
    )
    return [subject], {"kind": "opencv_cameras", "split": "external"}


def mean_training_image(lrm_meta: dict, size: int, limit: int) -> tuple[torch.Tensor | None, str]:
    """The per-pixel mean of every view of the LRM's training data: of each source's first subjects,
    `limit` in all, split by the sources' mixing weights and weighted by them (what training saw)."""
    data = lrm_meta.get("data")
    sources = (
        [data] if isinstance(data, str) else list(data) if isinstance(data, list) else []
    )  # one path (older checkpoints) or a list
    weights = lrm_meta.get("data_weights") or [1.0] * len(sources)
    if not sources:
        return None, "unavailable: the checkpoint does not name its training data"
    means, counts, subjects = [], 0, 0
    for source, weight in zip(sources, weights):
        try:
            urls = shard_urls(source)
        except DataError as e:
            return None, f"unavailable: the LRM's training data {source!r} cannot be read ({e})"
        mean, n_views, n_subjects = _mean_views(urls, size, max(1, round(limit * weight / sum(weights))))
        means.append(mean * weight)
        counts, subjects = counts + n_views, subjects + n_subjects
    named = sources[0] if len(sources) == 1 else ", ".join(f"{s} × {w:g}" for s, w in zip(sources, weights))
    return (sum(means) / sum(weights)).float(), f"the mean of {counts} views of {subjects} training subjects ({named})"


def _mean_views(urls: list[str], size: int, limit: int) -> tuple[torch.Tensor, int, int]:
    """(mean view, views, subjects) over every view of the first `limit` subjects of the shards."""
    total, count, subjects = torch.zeros(3, size, size, dtype=torch.float64), 0, 0
    for url in urls:
        with open_shard(url) as f:
            for _, files in read_samples(f):
                for name, blob in files.items():
                    if name.endswith(".png"):
                        total += decode_view(blob, size).double()
                        count += 1
                subjects += 1
                if subjects == limit:
                    break
        if subjects == limit:
            break
    return total / count, count, subjects


# ----------------------------------------------------------------------------- scoring


def quantise(x: torch.Tensor) -> torch.Tensor:
    """What an 8-bit PNG keeps: the metrics are computed on the images as saved."""
    return (x.clamp(0, 1) * 255).round() / 255


def save_png(x: torch.Tensor, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray((x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)


@torch.no_grad()
def render_views(
    model: GSLRM, images: torch.Tensor, c2w: torch.Tensor, s: Subject, device: torch.device, autocast
) -> torch.Tensor:
    """The LRM's Gaussians from 6 views (B = 1) rendered at the subject's scored cameras, on white."""
    size = model.cfg.image_size
    K_in = torch.tensor(cameras.intrinsics(size), dtype=torch.float32).expand(len(images), -1, -1)
    with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
        g = model(images[None].to(device), c2w[None].to(device), K_in[None].to(device))[0]
    rgb = render_gaussians(g, torch.linalg.inv(s.c2w.double()).float().to(device), s.K.to(device), size, size).rgb
    return quantise(rgb.permute(0, 3, 1, 2).float().cpu())


class Scorer:
    def __init__(self, lpips, recognizer):
        self.lpips, self.recognizer = lpips, recognizer

    def score(self, pred: torch.Tensor, gt: torch.Tensor) -> dict:
        out = {"psnr": psnr(pred, gt), "ssim": ssim(pred, gt), "lpips": None, "identity": None}
        if self.lpips is not None:
            out["lpips"] = float(self.lpips(pred[None], gt[None])[0])
        if self.recognizer is not None:
            to8 = lambda x: (x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # noqa: E731
            out["identity"] = self.recognizer.distance(to8(pred), to8(gt))
        return out


def summarise(per_view: list[dict]) -> dict:
    def mean(k: str):
        vals = [v[k] for v in per_view if v[k] is not None and math.isfinite(v[k])]
        return float(np.mean(vals)) if vals else None

    return {
        "psnr": mean("psnr"),
        "ssim": mean("ssim"),
        "lpips": mean("lpips"),
        "identity": mean("identity"),
        "identity_scored": sum(v["identity"] is not None for v in per_view),
        "views": len(per_view),
    }


def table(rows: dict[str, dict], notes: dict[str, str]) -> str:
    def f(v, digits):
        return "n/a" if v is None else f"{v:.{digits}f}"

    lines = ["| | PSNR ↑ | SSIM ↑ | LPIPS-VGG ↓ | identity (dlib) ↓ | views |", "|---|---|---|---|---|---|"]
    for name, m in rows.items():
        ident = "n/a" if m["identity"] is None else f"{m['identity']:.3f} ({m['identity_scored']} faces)"
        lines.append(
            f"| {name} | {f(m['psnr'], 2)} | {f(m['ssim'], 4)} | {f(m['lpips'], 4)} | {ident} | {m['views']} |"
        )
    lines.append("")
    lines += [f"- {name}: {note}" for name, note in notes.items()]
    return "\n".join(lines)


def run_eval(
    data: str,
    out: str,
    lrm: str,
    diffusion: str | None = None,
    cfg: EvalConfig | None = None,
    allow_train: bool = False,
    lpips_vgg: str | None = None,
    device: str = "auto",
    log=print,
) -> dict:
    """Scores, writes OUT (metrics.json, metrics.md, renders/) and returns the metrics. One-line
    InferErrors for bad input, raised before anything is written."""

    cfg = cfg or EVAL_PRESETS["facelift"].config
    check_out(out)
    try:
        storage = location(data)  # a dead endpoint, a missing bucket, refused credentials: one line, in seconds
        if storage.local and not os.path.isdir(storage.root):
            raise InferError(
                f"--data {data!r} is not a folder; give a `facelift datagen --split test` "
                f"output or a folder with {CAMERA_FILE}"
            )
        camera_format = storage.exists(CAMERA_FILE)
    except (DataError, DatagenError) as e:  # DatagenError: Storage's StorageError when the lookup fails
        raise InferError(str(e)) from None
    dev = pick_device(device)
    diffusion_dtype, autocast = dtypes(cfg.precision, dev)
    model, meta = load_lrm(lrm, dev)
    size = model.cfg.image_size
    if camera_format:
        subjects, source = camera_format_subjects(data, size)
    else:
        subjects, source = datagen_subjects(data, size, cfg.subjects, allow_train)
    pipe = load_multiview(diffusion, dev, diffusion_dtype)[0] if diffusion else None
    try:
        lpips, lpips_note = load_lpips(lpips_vgg)
    except ValueError as e:
        raise InferError(str(e)) from None
    recognizer, identity_note = load_recognizer()
    scorer = Scorer(lpips, recognizer)  # on the CPU: one small view at a time
    mean_image, mean_note = mean_training_image(meta, size, cfg.mean_image_subjects)
    torch.manual_seed(0)
    untrained = GSLRM(model.cfg).to(dev).eval()
    fixed_c2w = fixed_cameras(size)[0]

    results: dict[str, dict] = {p: {} for p in (*PROTOCOLS, *BASELINES)}
    renders: list[tuple[str, torch.Tensor]] = []
    t0 = time.perf_counter()
    for s in subjects:
        preds = {
            "reconstruction": render_views(model, s.inputs, s.input_c2w, s, dev, autocast),
            "untrained": render_views(untrained, s.inputs, s.input_c2w, s, dev, autocast),
        }
        if mean_image is not None:
            preds["mean_image"] = quantise(mean_image).expand(len(s.names), -1, -1, -1)
        if pipe is not None:
            views = pipe(
                s.front,
                num_inference_steps=cfg.steps,
                guidance_scale=cfg.guidance,
                eta=cfg.eta,
                seed=cfg.seed,
                output_type="pt",
            ).images
            generated = quantise(torch.nn.functional.interpolate(views.float(), size=(size, size), mode="area"))
            preds["full_pipeline"] = render_views(model, generated, fixed_c2w, s, dev, autocast)
            renders += [(f"full_pipeline/{s.key}/generated_{k:02d}.png", generated[k]) for k in range(len(generated))]
        for protocol, pred in preds.items():
            per_view = {}
            for k, name in enumerate(s.names):
                per_view[name] = scorer.score(pred[k], s.targets[k])
                renders += [
                    (f"{protocol}/{s.key}/{name}_pred.png", pred[k]),
                    (f"{protocol}/{s.key}/{name}_gt.png", s.targets[k]),
                ]
            results[protocol][s.key] = {"views": per_view, "mean": summarise(list(per_view.values()))}
        log(
            f"  {s.key}: reconstruction {results['reconstruction'][s.key]['mean']['psnr']:.2f} dB"
            + (f", full pipeline {results['full_pipeline'][s.key]['mean']['psnr']:.2f} dB" if pipe is not None else "")
        )
    means = {
        p: summarise([v for subj in results[p].values() for v in subj["views"].values()])
        for p in results
        if results[p]
    }
    metrics = {
        "data": {
            "path": storage.root if storage.local else data,
            **{k: v for k, v in source.items() if k != "card_config"},
            "subjects": len(subjects),
        },
        "models": {
            "lrm": os.path.abspath(lrm),
            "lrm_step": meta.get("step"),
            "lrm_preset": meta["model"]["preset"],
            "lrm_training_data": meta.get("data"),
            "diffusion": os.path.abspath(diffusion) if diffusion else None,
        },
        "settings": dataclasses.asdict(cfg),
        "metric_notes": {
            "psnr": "full image in [0, 1], no mask, on the saved 8-bit images",
            "ssim": "Gaussian window 11, sigma 1.5, K 0.01/0.03, population covariance, 5-px border excluded",
            "lpips": lpips_note,
            "identity": identity_note,
            "mean_image": mean_note,
            "untrained": "GSLRM of the same config, torch seed 0, protocol reconstruction",
        },
        "mean": means,
        "subjects": results,
        "seconds": round(time.perf_counter() - t0, 3),
        "versions": versions(),
    }
    rows = {name: means[name] for name in (*PROTOCOLS, *BASELINES) if name in means}
    notes = {k: metrics["metric_notes"][k] for k in ("lpips", "identity", "mean_image", "untrained")}
    markdown = table(rows, notes)
    per_subject = "\n".join(
        f"| {key} | "
        + " | ".join(
            "n/a"
            if results[p].get(key) is None
            else f"{results[p][key]['mean']['psnr']:.2f} / {results[p][key]['mean']['ssim']:.4f}"
            for p in rows
        )
        + " |"
        for key in results["reconstruction"]
    )
    per_subject = f"| subject (PSNR / SSIM) | {' | '.join(rows)} |\n|---|{'---|' * len(rows)}\n" + per_subject

    def write(folder: str) -> None:
        for rel, img in renders:
            save_png(img, os.path.join(folder, "renders", rel))
        if mean_image is not None:
            save_png(quantise(mean_image), os.path.join(folder, "renders", "mean_image.png"))
        with open(os.path.join(folder, "metrics.json"), "w") as f:
            json.dump(metrics, f, indent=2)
        with open(os.path.join(folder, "metrics.md"), "w") as f:
            f.write(f"# facelift eval: {len(subjects)} subjects of {data}\n\n{markdown}\n\n{per_subject}\n")

    try:
        save_folder_atomically(write, out)
    except CheckpointError as e:
        raise InferError(str(e)) from None
    log(markdown)
    return metrics
