"""Does GS-LRM learn here? Train the `tiny` preset on a few test-preset subjects on the CPU.

    python benchmarks/lrm_learns.py [--data OUT] [--subjects 4] [--minutes 8] [--eval-every 60]

Without --data it renders `--subjects` test-preset subjects (64², 6 fixed + 32 random views) first.
Views fixed_01, fixed_05 (the ±45° views) and random_28…31 of every subject are held out: training
never draws them. Every `--eval-every` seconds the model reconstructs each subject from its front,
right, back and left views and renders the held-out views within 60° of them; the printed PSNR is
over those renders, against two baselines measured on the same views before training starts:
the untrained model, and the per-pixel mean of all training views. Target: ≥ 3 dB above both.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench_data import data_or_render  # noqa: E402

from presets import override  # noqa: E402
from training.loop import psnr  # noqa: E402
from training.lrm_data import ViewPick, frame_K_at, near_inputs, normalize_cameras  # noqa: E402
from training.presets import LRM_PRESETS  # noqa: E402
from training.shards import decode_view, decode_views, shard_urls  # noqa: E402
from training.train_lrm import render_targets, train_lrm  # noqa: E402

HOLDOUT = ("fixed_01.png", "fixed_05.png", "random_28.png", "random_29.png", "random_30.png", "random_31.png")
EVAL_INPUTS = ("fixed_00.png", "fixed_02.png", "fixed_03.png", "fixed_04.png")  # front, right, back, left


class TimeUp(Exception):
    """The training budget is spent."""


def eval_set(data: str, size: int) -> tuple[list[dict], torch.Tensor]:
    """Per subject: inputs (4 fixed views) and the held-out views within 60° of them; and the
    per-pixel mean image of all training views of all subjects."""
    from datagen.shard_format import read_samples

    subjects, train_sum, train_n = [], torch.zeros(3, size, size), 0
    for url in shard_urls(data):
        with open(url, "rb") as f:
            for _, files in read_samples(f):
                frames = {fr["file_path"]: fr for fr in json.loads(files["cameras.json"])["frames"]}
                names = list(frames)
                c2w_all = normalize_cameras(np.array([frames[n]["c2w"] for n in names]))
                c2w = dict(zip(names, c2w_all))
                for n in names:
                    if n not in HOLDOUT:
                        train_sum += decode_view(files[n], size)
                        train_n += 1
                near = near_inputs(c2w_all[:, :3, 3], [names.index(i) for i in EVAL_INPUTS], ViewPick().max_angle_deg)
                targets = [n for n in HOLDOUT if n in frames and near[names.index(n)]]

                def pack(ns, frames=frames, files=files, c2w=c2w):  # this subject's, bound now
                    K = np.stack([frame_K_at(frames[n], size) for n in ns])
                    return (
                        decode_views([files[n] for n in ns], size),
                        torch.tensor(np.stack([c2w[n] for n in ns]), dtype=torch.float32),
                        torch.tensor(K, dtype=torch.float32),
                    )

                subjects.append({"inputs": pack(EVAL_INPUTS), "targets": pack(targets)})
    return subjects, train_sum / max(train_n, 1)


@torch.no_grad()
def held_out_psnr(model, subjects: list[dict], size: int) -> float:
    model.eval()
    errs = []
    for s in subjects:
        images, c2w, K = s["inputs"]
        g = model(images[None], c2w[None], K[None])
        pred = render_targets(g, s["targets"][1][None], s["targets"][2][None], size)[0]
        errs.append(((pred - s["targets"][0]) ** 2).mean())
    model.train()
    return psnr(torch.stack(errs).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="a datagen output (test preset, ≥ 32 random views); default: render --subjects")
    ap.add_argument("--subjects", type=int, default=4)
    ap.add_argument("--minutes", type=float, default=8.0, help="training time budget (≤ 10)")
    ap.add_argument("--eval-every", type=float, default=60.0, help="seconds between held-out evaluations")
    ap.add_argument("--steps", type=int, default=5000, help="schedule length (training stops at the time budget)")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as tmp:
        data = data_or_render(args.data, args.subjects, tmp)
        model_cfg = LRM_PRESETS["tiny"].model
        subjects, mean_image = eval_set(data, model_cfg.image_size)
        targets = torch.cat([s["targets"][0] for s in subjects])
        mean_db = psnr(((mean_image[None] - targets) ** 2).mean())
        cfg = override(LRM_PRESETS["tiny"].config, dict(steps=args.steps, checkpoint_every=10**9))
        state = {"t0": None, "next": 0.0, "untrained": None, "curve": []}

        def callback(step: int, model) -> None:
            now = time.perf_counter()
            if state["t0"] is None:
                state["t0"] = now
            elapsed = now - state["t0"]
            done = elapsed > args.minutes * 60
            if elapsed >= state["next"] or step == 0 or done:
                db = held_out_psnr(model, subjects, model_cfg.image_size)
                if state["untrained"] is None:
                    state["untrained"] = db
                    print(
                        f"baselines on {len(targets)} held-out views: untrained model {db:.2f} dB, "
                        f"mean of training views {mean_db:.2f} dB",
                        flush=True,
                    )
                state["curve"].append((elapsed, step, db))
                print(f"  {elapsed:6.0f} s  step {step:5d}  held-out PSNR {db:.2f} dB", flush=True)
                state["next"] = elapsed + args.eval_every
            if done:
                raise TimeUp

        try:
            train_lrm(
                cfg, data, os.path.join(tmp, "run"), model_cfg, progress=False, holdout=HOLDOUT, callback=callback
            )
        except TimeUp:
            pass
        final = state["curve"][-1][2]
        base = max(state["untrained"], mean_db)
        print(
            f"final held-out PSNR {final:.2f} dB after {state['curve'][-1][1]} steps: "
            f"{final - state['untrained']:+.2f} dB over the untrained model, "
            f"{final - mean_db:+.2f} dB over the mean image (target >= +3 dB over both: "
            f"{'met' if final >= base + 3 else 'NOT met'})"
        )


if __name__ == "__main__":
    main()
