"""`make bench`: every benchmark that fits a CPU in under 20 minutes, in CPU-sized settings, one
after another; writes `benchmarks/RESULTS.md` with each one's figures, the machine, the date and
the command that made them.

    python benchmarks/run_all.py [--only NAME,...] [--out benchmarks/RESULTS.md]

The longer measurements (the 512² identity and realism runs, `lrm_learns.py`, `diffusion_learns.py`,
the GPU paper-scale runs) are left to their own commands; their figures are in the README.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

BENCHMARKS = (  # name, arguments, what it measures
    (
        "render_throughput",
        [
            "render_throughput.py",
            "--preset",
            "test",
            "--size",
            "128",
            "--samples",
            "16",
            "--views-random",
            "6",
            "--subjects",
            "4",
        ],
        "datagen overhead over pure Cycles time (one worker) and 1 vs 2 workers",
    ),
    (
        "training_speed",
        ["training_speed.py", "--subjects", "4", "--steps", "40"],
        "shard loader views/s against what a step of each preset consumes; tiny LRM and diffusion step times",
    ),
    (
        "infer_time",
        ["infer_time.py", "--photos", "2"],
        "`facelift infer` seconds per stage, tiny models, FaceLift's settings",
    ),
    (
        "eval_heldout",
        ["eval_heldout.py", "--train-subjects", "6", "--test-subjects", "3", "--steps", "600"],
        "`facelift eval` on held-out identities: the trained tiny LRM against the "
        "untrained model and the mean training image",
    ),
)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        mem = "? GiB"
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except ImportError:
        gpu = "no torch"
    return f"{cpu}, {os.cpu_count()} cores, {mem}, {gpu}, Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated benchmark names")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    args = ap.parse_args()
    chosen = [b for b in BENCHMARKS if not args.only or b[0] in args.only.split(",")]
    where = machine()
    sections = []
    for name, argv, what in chosen:
        command = "python benchmarks/" + " ".join(argv)
        print(f"== {name}: {command}", flush=True)
        t = time.perf_counter()
        r = subprocess.run(
            [sys.executable, os.path.join(HERE, argv[0]), *argv[1:]],
            capture_output=True,
            text=True,
            cwd=os.path.dirname(HERE),
        )
        wall = time.perf_counter() - t
        output = r.stdout.strip() or "(no output)"
        if r.returncode != 0:
            output += f"\n\nFAILED with exit code {r.returncode}:\n" + "\n".join(r.stderr.strip().splitlines()[-5:])
        print(output, flush=True)
        sections.append(
            f"## {name}\n\n{what}.\n\n- machine: {where}\n- date: {time.strftime('%Y-%m-%d %H:%M %Z')}\n"
            f"- command: `{command}`\n- wall time: {wall / 60:.1f} min\n\n```\n{output}\n```\n"
        )
    with open(args.out + ".tmp", "w") as f:
        f.write(
            "# Benchmark results\n\nWritten by `make bench` (`python benchmarks/run_all.py`); "
            "every section says the machine, the date "
            "and the command that made it.\n\n" + "\n".join(sections)
        )
    os.replace(args.out + ".tmp", args.out)
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
