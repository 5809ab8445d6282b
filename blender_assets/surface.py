"""Polygon-mesh math in numpy (no bpy): triangles of a face list and area-weighted vertex normals."""

from __future__ import annotations

import numpy as np


def triangles(faces) -> np.ndarray:
    """(T, 3) vertex ids: the triangles as they are, then every quad (a, b, c, d) as (a, b, c) and (a, c, d)."""
    quads = np.array([f for f in faces if len(f) == 4], dtype=np.int64).reshape(-1, 4)
    tris = [np.array([f for f in faces if len(f) == 3], dtype=np.int64).reshape(-1, 3)]
    if len(quads):
        tris += [quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]]
    return np.concatenate(tris)


def vertex_normals(vertices: np.ndarray, faces) -> np.ndarray:
    """Unit vertex normals: each vertex sums the cross products (twice the area times the normal) of its
    triangles, so large faces weigh more; a vertex on no face gets (0, 0, 0)."""
    tris = triangles(faces)
    n = np.cross(vertices[tris[:, 1]] - vertices[tris[:, 0]], vertices[tris[:, 2]] - vertices[tris[:, 0]])
    out = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(out, tris[:, k], n)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
