"""The software versions every artefact records (spec.json, the dataset card, infer's and eval's results)."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from importlib import metadata

from datagen import __version__

RENDER_PACKAGES = {"blender": "bpy", "anny": "anny"}  # what a render depends on: spec.json's versions


def software_versions(packages: Mapping[str, str], python: bool = False) -> dict[str, str]:
    """{"facelift": this version, name: the installed version of each distribution, "python": … if asked}."""
    found = {"facelift": __version__}
    for name, distribution in packages.items():
        try:
            found[name] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    if python:
        found["python"] = platform.python_version()
    return found
