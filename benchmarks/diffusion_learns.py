"""Does the multi-view diffusion model learn here? Overfit the `tiny` preset on a few test-preset
subjects on the CPU.

    python benchmarks/diffusion_learns.py [--data OUT] [--subjects 4] [--minutes 6.5] [--eval-every 60]

Without --data it renders `--subjects` test-preset subjects (64², the 6 fixed views) first. The
tiny preset fits its VAE, then trains the UNet until the time budget is spent. Printed:
- the training objective on the training subjects at 10 fixed timesteps with fixed noise (on
  white), at the start and every `--eval-every` seconds; and the running training loss, mean of
  the first and of the last 50 steps. Target: falls by at least half.
- the pipeline's generated views (DDIM 50 steps, guidance 3, seed 0) for each training subject's
  front input, against its ground truth: front view and all 6, untrained vs trained (EMA).
  Target: the trained front view is closer (higher PSNR) than the untrained pipeline's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench_data import data_or_render  # noqa: E402

from presets import override  # noqa: E402
from training.diffusion_data import diffusion_sample, input_view  # noqa: E402
from training.diffusion_loss import eval_loss  # noqa: E402
from training.loop import psnr  # noqa: E402
from training.presets import DIFFUSION_PRESETS  # noqa: E402
from training.shards import shard_urls  # noqa: E402
from training.train_diffusion import train_diffusion  # noqa: E402


class TimeUp(Exception):
    """The training budget is spent."""


def training_subjects(data: str, size: int) -> dict:
    """All subjects of the folder, on white, as one batch."""
    from datagen.shard_format import read_samples

    samples = []
    for url in shard_urls(data):
        with open(url, "rb") as f:
            for key, files in read_samples(f):
                samples.append(
                    diffusion_sample({**files, "__key__": key}, np.random.default_rng(0), size, background=1.0)
                )
    return {"views": torch.stack([s["views"] for s in samples])}


def generation_psnr(pipeline, batch: dict, steps: int) -> tuple[float, float]:
    """(front view PSNR, all-views PSNR) of the generated views against the ground truth."""
    front, every = [], []
    for truth in batch["views"]:
        gen = pipeline(
            input_view(truth), num_inference_steps=steps, guidance_scale=3.0, seed=0, output_type="pt"
        ).images
        front.append(((gen[0] - truth[0]) ** 2).mean())
        every.append(((gen - truth) ** 2).mean())
    return psnr(torch.stack(front).mean()), psnr(torch.stack(every).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="a datagen output (test preset); default: render --subjects")
    ap.add_argument("--subjects", type=int, default=4)
    ap.add_argument(
        "--minutes", type=float, default=6.5, help="UNet training time budget (the whole run stays under 10 min)"
    )
    ap.add_argument("--eval-every", type=float, default=60.0, help="seconds between fixed-noise loss evaluations")
    ap.add_argument("--ddim-steps", type=int, default=50)
    ap.add_argument("--steps", type=int, default=5000, help="schedule length (training stops at the time budget)")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        data = data_or_render(args.data, args.subjects, tmp, views_random=0)
        cfg = override(
            DIFFUSION_PRESETS["tiny"].config, dict(steps=args.steps, checkpoint_every=10**9, validate_every=10**9)
        )
        state = {"t0": None, "next": 0.0, "losses": [], "curve": [], "before": None}
        batch = None

        def callback(step: int, loss: float | None, run) -> None:
            nonlocal batch
            now = time.perf_counter()
            if batch is None:
                batch = training_subjects(data, DIFFUSION_PRESETS["tiny"].model.image_size)
            if loss is not None:
                state["losses"].append(loss)
            if state["t0"] is None:
                print(
                    f"VAE fitted ({cfg.vae_steps} steps): {run.vae_psnr:.2f} dB reconstruction; "
                    f"setup took {now - start:.0f} s",
                    flush=True,
                )
                with run.pipeline() as pipe:
                    pipe.set_progress_bar_config(disable=True)
                    state["before"] = generation_psnr(pipe, batch, args.ddim_steps)
                print(
                    f"untrained pipeline on {len(batch['views'])} training inputs: "
                    f"front view {state['before'][0]:.2f} dB, "
                    f"all 6 views {state['before'][1]:.2f} dB ({time.perf_counter() - now:.0f} s)",
                    flush=True,
                )
                state["t0"] = time.perf_counter()
            elapsed = time.perf_counter() - state["t0"]
            done = elapsed > args.minutes * 60
            if elapsed >= state["next"] or done:
                fixed = eval_loss(run.model, run.vae, run.noise_scheduler, batch, cfg, True)
                state["curve"].append((elapsed, step, fixed))
                print(f"  {elapsed:6.0f} s  step {step:5d}  fixed-noise loss {fixed:.4f}", flush=True)
                state["next"] = elapsed + args.eval_every
            if done:
                with run.pipeline() as pipe:
                    pipe.set_progress_bar_config(disable=True)
                    state["after"] = generation_psnr(pipe, batch, args.ddim_steps)
                raise TimeUp

        try:
            train_diffusion(cfg, data, os.path.join(tmp, "run"), progress=False, callback=callback)
        except TimeUp:
            pass
        losses = state["losses"]
        first, last = float(np.mean(losses[:50])), float(np.mean(losses[-50:]))
        c0, c1 = state["curve"][0][2], state["curve"][-1][2]
        (b_front, b_all), (a_front, a_all) = state["before"], state["after"]
        print(
            f"after {len(losses)} steps ({state['curve'][-1][0]:.0f} s of UNet training, "
            f"{time.perf_counter() - start:.0f} s in all):"
        )
        print(
            f"  fixed-noise training loss {c0:.4f} -> {c1:.4f} ({c1 / c0:.2f}×; target at most 0.5×: "
            f"{'met' if c1 / c0 <= 0.5 else 'NOT met'}); "
            f"running loss (random t), first 50 steps {first:.4f} -> last 50 {last:.4f} ({last / first:.2f}×)"
        )
        print(
            f"  generated front view vs its ground truth: untrained {b_front:.2f} dB -> "
            f"trained {a_front:.2f} dB ({a_front - b_front:+.2f} dB; "
            f"target: higher: {'met' if a_front > b_front else 'NOT met'}); all 6 views {b_all:.2f} -> {a_all:.2f} dB"
        )


if __name__ == "__main__":
    main()
