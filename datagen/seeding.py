"""Per-component seeding (DESIGN §5).

Every draw for subject (i, j) and component c comes from its own numpy Generator seeded by a
stable hash of (run seed, i, j, c). Identity-level components (face shape, skin, eye colour,
natural hair colour and brows) hash without j, so all appearances of identity i share them.
Python's `hash()` is salted per process, so sha256 it is.
"""

from __future__ import annotations

import hashlib

import numpy as np

IDENTITY_COMPONENTS = ("identity", "skin", "eyes", "hair_traits")
APPEARANCE_COMPONENTS = (
    "expression",
    "gaze",
    "pose",
    "lighting",
    "cameras",
    "hair",
    "clothing",
    "accessories",
    "makeup",
    "render",
)
HEAD_COMPONENTS = IDENTITY_COMPONENTS + APPEARANCE_COMPONENTS
OBJECT_COMPONENTS = ("objects", "lighting", "cameras", "render")  # --kind objects
COMPONENTS = HEAD_COMPONENTS + ("objects",)


def component_seed(run_seed: int, identity: int, appearance: int, component: str) -> int:
    """A 63-bit seed; appearance is ignored for identity-level components."""
    if component not in COMPONENTS:
        raise ValueError(f"unknown seeding component {component!r} (allowed: {', '.join(COMPONENTS)})")
    j = "*" if component in IDENTITY_COMPONENTS else str(appearance)
    digest = hashlib.sha256(f"facelift:{run_seed}:{identity}:{j}:{component}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def component_rng(run_seed: int, identity: int, appearance: int, component: str) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(component_seed(run_seed, identity, appearance, component)))
