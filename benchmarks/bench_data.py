"""The benchmarks' training data: a given datagen folder, or a few test-preset subjects rendered now."""

from __future__ import annotations

import os
import time


def data_or_render(data: str | None, subjects: int, tmp: str, views_random: int = 32) -> str:
    """`data` if given, else `subjects` test-preset subjects (64², 1 appearance each) rendered into tmp."""
    if data:
        return data
    from datagen.config import RunOptions, make_config
    from datagen.run import run_datagen

    t = time.perf_counter()
    out = os.path.join(tmp, "data")
    cfg = make_config("test", identities=subjects, appearances=1, views_random=views_random)
    run_datagen(cfg, RunOptions(workers=0, threads_per_worker=1), out, show_progress=False)
    print(f"rendered {subjects} test-preset subjects in {time.perf_counter() - t:.0f} s", flush=True)
    return out
