"""Does the trained LRM generalise to people it never saw? `facelift eval` on a held-out split.

    python benchmarks/eval_heldout.py [--train-subjects 8] [--test-subjects 4] [--steps 1500]

Renders a training split and a test split (`--split test`: other identities) of test-preset
subjects (64², 6 fixed + 32 random views), trains the `tiny` LRM on the training split for
`--steps` steps (about 3.5 steps/s on 2 cores), then runs `facelift eval` (protocol
reconstruction) on the test split and prints its table: the trained model against the untrained
model and the mean training image on the held-out identities' 32 random views each. Target: the
trained model above both baselines on every metric available here.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from inference.evaluate import run_eval  # noqa: E402
from inference.presets import EVAL_PRESETS  # noqa: E402
from presets import override  # noqa: E402
from training.presets import LRM_PRESETS  # noqa: E402
from training.train_lrm import train_lrm  # noqa: E402


def render(split: str, subjects: int, out: str) -> str:
    from datagen.config import RunOptions, make_config
    from datagen.run import run_datagen

    t = time.perf_counter()
    cfg = make_config("test", identities=subjects, appearances=1, split=split)
    run_datagen(cfg, RunOptions(workers=0, threads_per_worker=1), out, show_progress=False)
    print(f"rendered {subjects} {split}-split subjects in {time.perf_counter() - t:.0f} s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-data", help="a datagen output (train split); default: render --train-subjects")
    ap.add_argument("--test-data", help="a datagen output made with --split test; default: render --test-subjects")
    ap.add_argument("--train-subjects", type=int, default=8)
    ap.add_argument("--test-subjects", type=int, default=4)
    ap.add_argument("--steps", type=int, default=1500)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        train = args.train_data or render("train", args.train_subjects, os.path.join(tmp, "train"))
        test = args.test_data or render("test", args.test_subjects, os.path.join(tmp, "test"))
        t = time.perf_counter()
        cfg = override(LRM_PRESETS["tiny"].config, dict(steps=args.steps, checkpoint_every=args.steps))
        result = train_lrm(cfg, train, os.path.join(tmp, "run"), LRM_PRESETS["tiny"].model, progress=False)
        print(
            f"trained {result['step']} steps in {time.perf_counter() - t:.0f} s "
            f"(training PSNR {result['psnr']:.2f} dB)",
            flush=True,
        )
        metrics = run_eval(
            test,
            os.path.join(tmp, "eval"),
            result["checkpoint"],
            cfg=override(EVAL_PRESETS["facelift"].config, dict(subjects=args.test_subjects)),
        )
        mean = metrics["mean"]
        rec = mean["reconstruction"]
        for base in ("untrained", "mean_image"):
            if base in mean:
                b = mean[base]
                print(
                    f"held-out identities, trained vs {base}: PSNR {rec['psnr'] - b['psnr']:+.2f} dB, "
                    f"SSIM {rec['ssim'] - b['ssim']:+.4f}"
                )
        beaten = all(
            rec["psnr"] > mean[b]["psnr"] and rec["ssim"] > mean[b]["ssim"]
            for b in ("untrained", "mean_image")
            if b in mean
        )
        print(f"target (above both baselines on PSNR and SSIM): {'met' if beaten and len(mean) >= 3 else 'NOT met'}")


if __name__ == "__main__":
    main()
