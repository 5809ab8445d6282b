"""Shared fixtures: one real test-preset dataset rendered through the CLI, Ray and Cycles."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FACELIFT = str(Path(sys.executable).parent / "facelift")


def facelift(*args: str, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the installed `facelift` console script."""
    return subprocess.run([FACELIFT, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def dataset_a(tmp_path_factory) -> Path:
    """The issue's acceptance run: 3 identities × 2 appearances, test preset, 2 workers."""
    out = tmp_path_factory.mktemp("datagen") / "a"
    r = facelift("datagen", "--identities", "3", "--appearances", "2", "--preset", "test", "--out", str(out), "--workers", "2", "--no-progress")
    assert r.returncode == 0, r.stderr + r.stdout
    return out
