"""Memory of one render worker over many subjects: resident size must stay flat.

    python benchmarks/worker_memory.py [--subjects 100] [--preset test] [--views-random 2]

Each subject resets the scene (factory settings, empty) and purges orphan data; this prints the
worker's resident memory every few subjects and the growth from the first report to the last.
Long runs also restart each actor every `--recycle-every` subjects, which this does not rely on.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from datagen.config import make_config  # noqa: E402
from datagen.spec import make_spec  # noqa: E402
from datagen.worker import RenderWorker  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=100)
    ap.add_argument("--preset", default="test")
    ap.add_argument("--views-random", type=int, default=2)
    ap.add_argument("--every", type=int, default=10)
    args = ap.parse_args()
    cfg = make_config(args.preset, identities=args.subjects, appearances=1, views_random=args.views_random)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        worker = RenderWorker(out, threads=os.cpu_count() or 1, device="cpu")
        reports = []
        for i in range(args.subjects):
            result = worker.render(make_spec(cfg, i, 0))
            os.remove(os.path.join(out, "staging", f"{result['key']}.tar"))
            if i % args.every == 0 or i == args.subjects - 1:
                reports.append(result["rss_mb"])
                print(
                    f"subject {i + 1:4d}: RSS {result['rss_mb']:7.1f} MB ({time.perf_counter() - t0:6.1f} s)",
                    flush=True,
                )
    # the first report includes one-off caches (asset data, kernels); the band after it is what matters
    later = reports[1:] or reports
    print(
        f"{args.subjects} subjects: RSS {reports[0]:.0f} MB after the first subject, "
        f"then between {min(later):.0f} and {max(later):.0f} MB, "
        f"{reports[-1]:.0f} MB at the end"
    )


if __name__ == "__main__":
    main()
