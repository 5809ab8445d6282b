"""The `facelift` command line: thin; parses, validates, calls into the packages.

Every user error is one line on stderr and exit code 2; Ctrl-C exits 130 and keeps what is done.
"""

from __future__ import annotations

import contextlib
import sys

import typer

from datagen.config import DATAGEN_PRESETS
from inference.presets import EVAL_PRESETS, INFER_PRESETS
from presets import configure, help_line
from training.presets import DIFFUSION_PRESETS, LRM_PRESETS, check_pretrained

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="FaceLift synthetic-head data factory and trainer.",
)
datagen_app = typer.Typer(
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    help="Render synthetic heads into webdataset shards (subcommands: verify, preview).",
)
app.add_typer(datagen_app, name="datagen")
train_app = typer.Typer(
    no_args_is_help=True, pretty_exceptions_enable=False, help="Train the models on datagen shards (lrm, diffusion)."
)
app.add_typer(train_app, name="train")


class TrainError(Exception):
    """A bad training or inference input, already phrased as one line."""


@datagen_app.callback()
def datagen(
    ctx: typer.Context,
    identities: int = typer.Option(200, help="Identities (face shape, skin tone, eye colour, sex/age)."),
    appearances: int = typer.Option(50, help="Appearances per identity (expression, pose, lighting, ...)."),
    preset: str = typer.Option("paper", help=help_line(DATAGEN_PRESETS)),
    out: str = typer.Option("data/heads", help="Output folder or fsspec URL (s3://..., gs://...)."),
    seed: int = typer.Option(0, help="Run seed; every draw derives from it per subject and component."),
    size: int | None = typer.Option(None, help="Override the preset's image size (pixels)."),
    samples: int | None = typer.Option(None, help="Override the preset's Cycles samples per pixel (fixed views)."),
    random_view_samples: int | None = typer.Option(
        None, help="Override the preset's Cycles samples per pixel of the random views (0: as --samples)."
    ),
    views_random: int | None = typer.Option(None, help="Random views per subject (default 32)."),
    lighting: str | None = typer.Option(None, help="ambient | hdr | mixed (default mixed)."),
    hdri_dir: str | None = typer.Option(None, help="Extra .exr/.hdr environments beside Blender's 8."),
    passes: str = typer.Option(
        "",
        help="Extra outputs, comma-separated: depth,normal,albedo (OpenEXR per view), seg (class PNG per view), "
        "landmarks2d (68 points per view, landmarks2d.json), mesh (head.ply per subject).",
    ),
    kind: str = typer.Option(
        "heads", help="heads | objects (procedural general objects, same shard format, for the LRM's first stage)."
    ),
    split: str = typer.Option(
        "train",
        help="train | test (held-out identities for `facelift eval`: "
        "other people than any training split; trainers refuse it).",
    ),
    subjects_per_shard: int | None = typer.Option(None, help="Override the preset's subjects per shard."),
    workers: int = typer.Option(
        0,
        help="Render actors; 0 = what the cluster holds: its CPUs / threads per worker, "
        "or its GPUs / GPUs per worker on GPUs.",
    ),
    threads_per_worker: int = typer.Option(1, help="Cycles threads per actor."),
    device: str = typer.Option("auto", help="auto | cpu | gpu (OptiX, then CUDA, ...)."),
    gpus_per_worker: float | None = typer.Option(
        None,
        help="GPUs each actor reserves through Ray and renders on alone (default 1 when "
        "rendering on GPUs Ray sees; 0.5: two actors share a GPU).",
    ),
    ray_address: str | None = typer.Option(
        None, help="Join a Ray cluster (auto, host:port, ray://...); default: a local one."
    ),
    retries: int = typer.Option(2, help="Extra attempts for a failing subject before it is recorded as failed."),
    recycle_every: int = typer.Option(50, help="Restart an actor's Blender after this many subjects."),
    retry_failed: bool = typer.Option(
        True,
        "--retry-failed/--keep-failed",
        help="Give subjects an earlier run recorded as failed another try (default), or keep them failed.",
    ),
    progress: bool = typer.Option(True, help="Show the progress bar."),
) -> None:
    if ctx.invoked_subcommand:
        return
    from datagen.config import RunOptions, make_config
    from datagen.run import run_datagen

    cfg = make_config(
        preset,
        identities=identities,
        appearances=appearances,
        seed=seed,
        size=size,
        samples=samples,
        random_view_samples=random_view_samples,
        views_random=views_random,
        lighting=lighting,
        hdri_dir=hdri_dir,
        passes=tuple(p.strip() for p in passes.split(",") if p.strip()) or None,
        subjects_per_shard=subjects_per_shard,
        kind=kind,
        split=split,
    )
    opts = RunOptions(
        workers,
        threads_per_worker,
        device,
        ray_address,
        retries,
        recycle_every,
        retry_failed,
        gpus_per_worker=gpus_per_worker,
        command=sys.argv[1:],
    )
    summary = run_datagen(cfg, opts, out, show_progress=progress)
    failed = f", {len(summary.failed)} failed (see dataset.json)" if summary.failed else ""
    aside = (
        f", {len(summary.set_aside)} bad files set aside ({', '.join(summary.set_aside[:2])})"
        if summary.set_aside
        else ""
    )
    lost = (
        f", {len(summary.nodes_lost)} Ray nodes lost ({', '.join(summary.nodes_lost[:2])}; "
        "their subjects rendered elsewhere)"
        if summary.nodes_lost
        else ""
    )
    typer.echo(
        f"done: {summary.rendered_now} subjects rendered, {summary.shards_written_now} shards written, "
        f"{summary.shards_total} in all{failed}{aside}{lost} -> {out} ({summary.seconds:.1f} s)"
    )


@datagen_app.command("verify")
def datagen_verify(out: str = typer.Argument(..., help="A datagen output folder or URL.")) -> None:
    """Check every shard against the card; one-line verdict, exit 1 on any problem."""
    from datagen.verify import verify

    verdict = verify(out)
    typer.echo(verdict.line(out))
    if not verdict.ok:
        raise typer.Exit(1)


@datagen_app.command("preview")
def datagen_preview(
    out: str = typer.Argument(..., help="A datagen output folder or URL."),
    output: str | None = typer.Option(None, "--output", "-o", help="PNG path (default OUT/preview.png)."),
    subjects: int = typer.Option(24, help="Rows: the first N subjects."),
    tile: int = typer.Option(160, help="Tile size in pixels."),
    labels: bool = typer.Option(
        False, "--labels", help="Overlay the seg classes and 2D landmarks (default file OUT/preview-labels.png)."
    ),
) -> None:
    """Write a contact sheet: subjects × the 6 fixed views."""
    from datagen.errors import StorageError
    from datagen.preview import write_contact_sheet

    try:
        typer.echo(write_contact_sheet(out, output, subjects, tile, labels))
    except (
        StorageError
    ) as e:  # main's advice for a storage failure (rerun datagen to finish) is the run's, not preview's
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None


# Options both train commands take.
DATA = typer.Option(
    ...,
    help="A `facelift datagen` output folder or fsspec URL (s3://bucket/prefix); repeat to mix several sources.",
)
DATA_WEIGHT = typer.Option(
    None, help="Mixing weight of each --data, one per --data in order (default: by subject count)."
)
STEPS = typer.Option(None, help="Override the preset's total steps (the schedule's length).")
BATCH_SIZE = typer.Option(None, help="Subjects per step per process.")
LR = typer.Option(None, help="Peak learning rate (diffusion: constant after the warm-up).")
CHECKPOINT_EVERY = typer.Option(None, help="Steps between checkpoints (one is also written at exit).")
WORKERS = typer.Option(None, help="DataLoader workers per process.")
RESUME = typer.Option(False, help="Continue the latest checkpoint in --out: weights, optimiser (and EMA), step.")
SEED = typer.Option(0, help="Seed of the model init and the data's draws (views, noise, backgrounds).")
STOP_AT = typer.Option(None, help="Leave after this step (checkpointed), keeping the schedule; --resume continues.")
VERIFY_DATA = typer.Option(
    False, help="Check every shard's sha256 against dataset.json before training (sizes are always checked)."
)
PROGRESS = typer.Option(True, help="Show the progress bar.")


@contextlib.contextmanager
def training_errors():
    """The trainers' log lines on stderr; their bad input (DataError, CheckpointError, PretrainedError:
    ValueErrors) as one line."""
    from training.loop import configure_logging

    configure_logging()
    with one_line_errors(ValueError):
        yield


@contextlib.contextmanager
def one_line_errors(*kinds: type[Exception]):
    """The training and inference packages phrase bad input as one-line errors of these kinds."""
    try:
        yield
    except kinds as e:
        raise TrainError(str(e)) from None


@train_app.command("lrm")
def train_lrm_command(
    data: list[str] = DATA,
    data_weight: list[float] | None = DATA_WEIGHT,
    out: str = typer.Option("runs/lrm", help="Run folder: checkpoints/, logs/ (tensorboard)."),
    preset: str = typer.Option("tiny", help=help_line(LRM_PRESETS)),
    steps: int | None = STEPS,
    batch_size: int | None = BATCH_SIZE,
    lr: float | None = LR,
    checkpoint_every: int | None = CHECKPOINT_EVERY,
    workers: int | None = WORKERS,
    ray_encoding: str | None = typer.Option(None, help="facelift (direction + nearest point) | plucker."),
    resume: bool = RESUME,
    init_from: str | None = typer.Option(
        None, help="Start from this checkpoint's weights with a fresh optimiser (stage change)."
    ),
    vgg_weights: str | None = typer.Option(
        None, help="torchvision vgg19 .pth for the perceptual loss, or 'download'; default random."
    ),
    seed: int = SEED,
    stop_at: int | None = STOP_AT,
    verify_data: bool = VERIFY_DATA,
    progress: bool = PROGRESS,
) -> None:
    from training.train_lrm import train_lrm

    if resume and init_from:
        raise TrainError(
            "--resume and --init-from exclude each other: resume continues a run, init-from starts a new one"
        )
    with training_errors():
        shared = dict(steps=steps, batch_size=batch_size, lr=lr, checkpoint_every=checkpoint_every, workers=workers)
        chosen = configure(LRM_PRESETS, preset, dict(shared, seed=seed), dict(ray_encoding=ray_encoding))
        run = dict(
            resume=resume, progress=progress, stop_at=stop_at, verify_data=verify_data, data_weights=data_weight
        )
        result = train_lrm(chosen.config, data, out, chosen.model, init_from=init_from, vgg_weights=vgg_weights, **run)
    if result["main_process"]:  # under torchrun: one summary, from the process that wrote the checkpoint
        typer.echo(
            f"done: step {result['step']}, loss {result['loss']:.4f}, PSNR {result['psnr']:.2f} dB, "
            f"{result['skipped']} skipped -> {result['checkpoint']}"
        )


@train_app.command("diffusion")
def train_diffusion_command(
    data: list[str] = DATA,
    data_weight: list[float] | None = DATA_WEIGHT,
    out: str = typer.Option(
        "runs/diffusion", help="Run folder: checkpoints/, pipeline/ (diffusers), vae/ (tiny), logs/ (tensorboard)."
    ),
    preset: str = typer.Option("tiny", help=help_line(DIFFUSION_PRESETS)),
    pretrained: str | None = typer.Option(
        None, help="Diffusers folder or hub id to fine-tune: SD 2.1-unCLIP-style, or a facelift pipeline/."
    ),
    attention: str | None = typer.Option(
        None, help="dense (all 6 views) | sparse (front + own view) | per_view (ablation)."
    ),
    reconstruct_input: bool | None = typer.Option(
        None,
        "--reconstruct-input/--no-reconstruct-input",
        help="Learn view 0 = the input view (FaceLift); off for the ablation.",
    ),
    steps: int | None = STEPS,
    batch_size: int | None = BATCH_SIZE,
    grad_accum: int | None = typer.Option(None, help="Gradient accumulation steps."),
    lr: float | None = LR,
    mixed_precision: str | None = typer.Option(None, help="fp16 | bf16 | no (CUDA only; the CPU trains in fp32)."),
    checkpoint_every: int | None = CHECKPOINT_EVERY,
    validate_every: int | None = typer.Option(None, help="Steps between validation grids in tensorboard."),
    vae_steps: int | None = typer.Option(
        None, help="tiny: steps fitting the from-scratch VAE before the UNet (kept in --out/vae)."
    ),
    workers: int | None = WORKERS,
    resume: bool = RESUME,
    seed: int = SEED,
    stop_at: int | None = STOP_AT,
    verify_data: bool = VERIFY_DATA,
    progress: bool = PROGRESS,
) -> None:
    from training.train_diffusion import train_diffusion

    with training_errors():
        shared = dict(steps=steps, batch_size=batch_size, lr=lr, checkpoint_every=checkpoint_every, workers=workers)
        settings = dict(
            shared,
            seed=seed,
            grad_accum=grad_accum,
            mixed_precision=mixed_precision,
            validate_every=validate_every,
            vae_steps=vae_steps,
        )
        model = dict(pretrained=pretrained, attention=attention, reconstruct_input=reconstruct_input)
        chosen = configure(DIFFUSION_PRESETS, preset, settings, model)
        check_pretrained(chosen.model)
        run = dict(
            resume=resume, progress=progress, stop_at=stop_at, verify_data=verify_data, data_weights=data_weight
        )
        result = train_diffusion(chosen.config, data, out, chosen.model, **run)
    if result["main_process"]:  # under torchrun: one summary, from the process that wrote the checkpoint
        typer.echo(
            f"done: step {result['step']}, loss {result['loss']:.4f} -> {result['checkpoint']}; "
            f"pipeline: {result['pipeline']}"
        )


@app.command("infer")
def infer_command(
    photos: list[str] | None = typer.Argument(None, help="Image files (jpg, png, webp) or folders of them."),
    lrm: str = typer.Option(
        ..., help="LRM checkpoint folder (runs/lrm/checkpoints/step-...) or its run folder (the latest)."
    ),
    diffusion: str | None = typer.Option(
        None, help="Multi-view pipeline folder (runs/diffusion/pipeline); not needed with --views."
    ),
    out: str = typer.Option("out/infer", help="Results: OUT/<photo name>/ per photo, and OUT/run.json."),
    preset: str = typer.Option("facelift", help=help_line(INFER_PRESETS)),
    views: list[str] | None = typer.Option(
        None,
        help="Skip diffusion: 6 images (a folder or 6 files) in the fixed-view order front, "
        "front_right, right, back, left, front_left.",
    ),
    steps: int | None = typer.Option(None, help="DDIM steps (FaceLift: 50)."),
    guidance: float | None = typer.Option(None, help="Classifier-free guidance (FaceLift: 3.0)."),
    seed: int | None = typer.Option(None, help="Noise seed (FaceLift: 4)."),
    eta: float | None = typer.Option(None, help="DDIM eta (FaceLift: 1.0)."),
    min_opacity: float | None = typer.Option(
        None, help="Export filter: drop splats at or under this opacity (0.04; negative: off)."
    ),
    max_scale: float | None = typer.Option(
        None, help="Export filter: drop splats with a larger scale (0.1; negative: off)."
    ),
    floater: float | None = typer.Option(None, help="Export filter: floater threshold (0.6; negative: off)."),
    crop_box: str | None = typer.Option(
        None, help="Export filter: x0,x1,y0,y1,z0,z1 world box (-0.91,0.91,-0.91,0.91,-1,1; 'none': off)."
    ),
    turntable_frames: int | None = typer.Option(None, help="Turntable frames (150)."),
    turntable_size: int | None = typer.Option(None, help="Turntable size in pixels (default: the LRM's)."),
    gif: bool = typer.Option(False, "--gif", help="Turntable as GIF instead of MP4 (H.264)."),
    require_face: bool = typer.Option(
        False, "--require-face", help="A photo without a face is an error (default: warn, centre the foreground)."
    ),
    matting_model: str | None = typer.Option(
        None, help="Your own TFLite portrait segmentation model (default: MediaPipe selfie segmentation)."
    ),
    batch_size: int | None = typer.Option(None, help="Photos per batch through every stage (4)."),
    precision: str | None = typer.Option(
        None, help="auto (fp16 diffusion, bf16 LRM on CUDA; fp32 on CPU) | fp32 | fp16 | bf16."
    ),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N."),
) -> None:
    """Photo(s) -> aligned input -> 6 views -> 3D Gaussians (.ply) + turntable."""
    from facelift_models.configs import ExportFilters
    from inference.errors import InferError
    from inference.infer import run_infer

    def off_if_negative(value, default):
        return default if value is None else (None if value < 0 else value)

    with one_line_errors(InferError):
        base = ExportFilters()
        box = base.crop_box
        if crop_box is not None:
            box = None if crop_box.strip().lower() == "none" else parse_box(crop_box)
        filters = ExportFilters(
            off_if_negative(min_opacity, base.min_opacity),
            off_if_negative(max_scale, base.max_scale),
            off_if_negative(floater, base.floater),
            box,
        )
        settings = dict(
            steps=steps,
            guidance=guidance,
            seed=seed,
            eta=eta,
            filters=filters,
            turntable_frames=turntable_frames,
            turntable_size=turntable_size,
            gif=gif or None,
            require_face=require_face or None,
            batch_size=batch_size,
            precision=precision,
        )
        cfg = configure(INFER_PRESETS, preset, settings, error=InferError).config
        summary = run_infer(
            list(photos or []),
            out,
            lrm,
            diffusion,
            cfg,
            views=list(views or []),
            matting_model=matting_model,
            device=device,
            warn=lambda line: print(line, file=sys.stderr),
            log=typer.echo,
        )
    failed = f", {len(summary['failed'])} failed (see run.json)" if summary["failed"] else ""
    total = "  ".join(f"{k} {v:.2f} s" for k, v in summary["seconds"].items())
    typer.echo(f"done: {len(summary['results'])} heads{failed} -> {out}  ({total})")


@app.command("eval")
def eval_command(
    lrm: str = typer.Option(..., help="LRM checkpoint folder or its run folder (the latest)."),
    data: str = typer.Option(
        ...,
        help="Held-out data: a `facelift datagen --split test` folder or fsspec URL (s3://...), "
        "or a folder with opencv_cameras.json + images.",
    ),
    out: str = typer.Option(
        "out/eval", help="metrics.json, metrics.md and renders/<protocol>/<key>/<view>_{pred,gt}.png."
    ),
    diffusion: str | None = typer.Option(
        None, help="Multi-view pipeline folder: adds the full-pipeline protocol (front view -> 6 views -> LRM)."
    ),
    preset: str = typer.Option("facelift", help=help_line(EVAL_PRESETS)),
    subjects: int | None = typer.Option(None, help="Held-out subjects scored (the first ones)."),
    steps: int | None = typer.Option(None, help="DDIM steps of the full pipeline (50)."),
    guidance: float | None = typer.Option(None, help="Classifier-free guidance (3.0)."),
    seed: int | None = typer.Option(None, help="Noise seed (4)."),
    lpips_vgg: str | None = typer.Option(
        None,
        help="torchvision's vgg16 weights (vgg16-397923af.pth) for LPIPS-VGG; "
        "without it LPIPS is reported unavailable.",
    ),
    allow_train: bool = typer.Option(
        False, "--allow-train", help="Score a training split (its identities were seen in training)."
    ),
    precision: str | None = typer.Option(None, help="auto | fp32 | fp16 | bf16."),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N."),
) -> None:
    """PSNR, SSIM, LPIPS and identity distance of the LRM (and the full pipeline) on held-out heads."""
    from inference.errors import InferError
    from inference.evaluate import run_eval

    with one_line_errors(InferError):
        settings = dict(subjects=subjects, steps=steps, guidance=guidance, seed=seed, precision=precision)
        cfg = configure(EVAL_PRESETS, preset, settings, error=InferError).config
        run_eval(
            data, out, lrm, diffusion, cfg, allow_train=allow_train, lpips_vgg=lpips_vgg, device=device, log=typer.echo
        )
    typer.echo(f"done -> {out}/metrics.json, {out}/metrics.md")


def parse_box(text: str) -> tuple[float, ...]:
    from inference.errors import InferError

    try:
        box = tuple(float(v) for v in text.split(","))
    except ValueError:
        box = ()
    if len(box) != 6 or any(box[2 * k] >= box[2 * k + 1] for k in range(3)):
        raise InferError(
            f"--crop-box {text!r} must be six numbers x0,x1,y0,y1,z0,z1 with each low under its high, or 'none'"
        )
    return box


def main(argv: list[str] | None = None) -> int:
    from datagen import interrupts
    from datagen.errors import DatagenError, DatagenInterrupted, StorageError

    interrupts.interrupt_on_sigterm()  # a scheduler's SIGTERM stops like Ctrl-C: what is done is kept
    try:
        code = app(args=argv, standalone_mode=False, prog_name="facelift")
    except typer.Abort:
        print("interrupted", file=sys.stderr)
        return interrupts.exit_code()
    except typer.TyperException as e:  # click's usage errors (typer vendors click)
        if e.__class__.__name__ == "NoArgsIsHelpError":  # help was already printed
            return 0
        print(f"error: {e.format_message()}", file=sys.stderr)
        return 2
    except StorageError as e:  # not the input's fault: the rerun finishes the job
        print(f"error: {e}; what is finished is kept, rerun the same command to finish", file=sys.stderr)
        return 1
    except (DatagenError, TrainError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except DatagenInterrupted as e:
        print(e, file=sys.stderr)
        return interrupts.exit_code()
    return code if isinstance(code, int) else 0  # typer.Exit(n) comes back as n in this mode


if __name__ == "__main__":
    sys.exit(main())
