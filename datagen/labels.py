"""Per-view labels computed from Cycles' first-sample passes (numpy, no bpy): the face-part class
map (`--passes seg`) and the 2D landmarks with their visibility (`--passes landmarks2d`).

Object Index, Material Index, Position and Depth are written by Cycles from each pixel's first
camera sample, so each pixel names one surface exactly (no antialiased mixture of classes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from blender_assets.face_parts import head_face_classes
from blender_assets.head_mesh import final_vertices
from blender_assets.landmarks68 import ibug68_binding
from blender_assets.seg_classes import SIDE_PAIRS, seg_class
from blender_assets.segmentation import tag_head_materials, tag_objects
from blender_assets.surface import vertex_normals
from datagen.catalogues.head import FRAMING_SCALE, SCENE_UNIT_M
from datagen.shard_format import SUBJECT_PASS_FILES, pass_file, seg_png_bytes
from facelift_models import cameras

# A landmark is hidden when the surface its pixel's ray first meets lies this far in front of it.
# The landmark sits on the unsubdivided head; the rendered, subdivided skin is within ~1 mm of it,
# and brow hairs lie on the skin: neither must hide it, a fringe or a hand's width of hair must.
OCCLUSION_TOLERANCE_M = 0.006
# Facing: the outward normal within 20° past perpendicular to the ray still counts. Silhouette
# points (the jaw's lower border seen from the front, the lid margins) sit on the unsubdivided
# mesh's rims, whose normals graze the ray; points further round are hidden by the depth test.
FACING_MIN_COS = -0.35


def seg_map(
    object_index: np.ndarray,
    material_index: np.ndarray,
    position: np.ndarray,
    object_classes: np.ndarray,
    head_matrix: np.ndarray,
) -> np.ndarray:
    """(H, W) uint8 class indices. A material's pass index (the head's per-class skin) overrides its
    object's class; each left/right pair takes the side of the head its surface lies on, from the
    world position through `head_matrix` (world → the head's own frame, +x its left)."""
    obj = np.rint(object_index).astype(np.int64)
    if obj.min() < 0 or obj.max() >= len(object_classes):
        raise ValueError(f"object index {obj.max()} outside the tagged objects (1..{len(object_classes) - 1})")
    seg = object_classes[obj]
    mat = np.rint(material_index).astype(np.int64)
    seg = np.where((mat > 0) & (obj > 0), mat, seg).astype(np.uint8)
    to_head = np.linalg.inv(head_matrix)
    head_x = position @ to_head[0, :3] + to_head[0, 3]
    for left, right in SIDE_PAIRS:
        paired = (seg == left) | (seg == right)
        seg[paired & (head_x >= 0)] = left
        seg[paired & (head_x < 0)] = right
    return seg


def landmarks_in_view(
    points: np.ndarray,
    normals: np.ndarray,
    frame: dict,
    depth: np.ndarray,
    see_through: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel positions (N, 2) in the frame's intrinsics (pixel centres at +0.5) and visibility (N,)
    of world points with outward normals: in the image, facing the camera (or grazing it: see
    FACING_MIN_COS), and not behind the first surface their pixel's ray meets (hair included)
    unless that surface is see-through."""
    w2c = np.array(frame["w2c"])
    xy, z = cameras.project(points, w2c, cameras.frame_K(frame))
    h, w = depth.shape
    col, row = np.floor(xy[:, 0]).astype(np.int64), np.floor(xy[:, 1]).astype(np.int64)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h) & (z > 0)
    centre = np.linalg.inv(w2c)[:3, 3]
    to_camera = (centre - points) / np.linalg.norm(centre - points, axis=1, keepdims=True)
    facing = np.einsum("ij,ij->i", normals, to_camera) > FACING_MIN_COS
    c, r = np.clip(col, 0, w - 1), np.clip(row, 0, h - 1)
    tolerance = OCCLUSION_TOLERANCE_M / SCENE_UNIT_M
    first_hit = depth[r, c]
    unblocked = (first_hit <= 0) | (first_hit >= z - tolerance) | see_through[r, c]
    return xy, inside & facing & unblocked


LABEL_PASSES = ("seg", "landmarks2d")
# Faces inside the mouth and the lash strips share rim vertices with the skin (lip contact lines,
# lid margins): a landmark's outward normal comes from the outer surface alone.
INNER_CLASSES = tuple(seg_class(c) for c in ("mouth_interior", "teeth", "left_eye", "right_eye"))


def outer_normals(geo, surface: np.ndarray) -> np.ndarray:
    """(N, 3) vertex normals of the head's outer skin (lips and ears included) at `surface`."""
    faces = geo.topology.faces
    outer = np.flatnonzero(~np.isin(head_face_classes(), INNER_CLASSES))
    return vertex_normals(surface, [faces[k] for k in outer])


@dataclass
class ViewLabels:
    """The label passes of one head subject: tags its scene once, then turns each view's channels
    into `<view>.seg.png` and collects the 68 landmarks per view into `landmarks2d.json`."""

    passes: tuple[str, ...]
    object_classes: np.ndarray  # class per object pass index
    see_through: np.ndarray  # per object pass index
    head_matrix: np.ndarray  # the head's own frame → world (scene units)
    points: np.ndarray  # (68, 3) world
    normals: np.ndarray  # (68, 3) outward unit normals
    frames: list[dict] = field(default_factory=list)

    @classmethod
    def for_head(cls, head, passes, lash_strips: bool, eyebrows: dict | None) -> ViewLabels | None:
        """Tag a built head (`blender_assets.head.HeadBuild`) for the label passes asked for; None if
        none. `eyebrows`: the hair spec's, so the brow points follow the brow hairs."""
        passes = tuple(p for p in passes if p in LABEL_PASSES)
        if not passes:
            return None
        object_classes, see_through = tag_objects(head.objects)
        if "seg" in passes:
            tag_head_materials(head.objects[0], lash_strips)
        geo = head.geometry
        ids, weights = ibug68_binding(geo, eyebrows)
        surface = final_vertices(geo)
        points = np.einsum("kj,kjc->kc", weights, surface[ids])
        normals = np.einsum("kj,kjc->kc", weights, outer_normals(geo, surface)[ids])
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        framing = np.diag([FRAMING_SCALE, FRAMING_SCALE, FRAMING_SCALE, 1.0])
        return cls(passes, object_classes, see_through, framing @ geo.head_matrix, points, normals)

    def view_files(self, channels: dict[str, np.ndarray], stem: str, frame: dict) -> dict[str, bytes]:
        out = {}
        if "seg" in self.passes:
            position = np.stack([channels[f"Position.{c}"] for c in "XYZ"], axis=-1)
            seg = seg_map(
                channels["Object Index.V"],
                channels["Material Index.V"],
                position,
                self.object_classes,
                self.head_matrix,
            )
            out[pass_file(stem, "seg")] = seg_png_bytes(seg)
        if "landmarks2d" in self.passes:
            see_through = self.see_through[np.rint(channels["Object Index.V"]).astype(np.int64)]
            xy, visible = landmarks_in_view(self.points, self.normals, frame, channels["Depth.V"], see_through)
            self.frames.append(
                {
                    "file_path": frame["file_path"],
                    "xy": [[round(float(u), 3), round(float(v), 3)] for u, v in xy],
                    "visible": [bool(b) for b in visible],
                }
            )
        return out

    def subject_files(self, key: str) -> dict[str, bytes]:
        if "landmarks2d" not in self.passes:
            return {}
        from datagen.sample import dumps, landmarks2d_json

        doc = landmarks2d_json(key, self.points, self.frames)
        return {SUBJECT_PASS_FILES["landmarks2d"]: dumps(doc)}
