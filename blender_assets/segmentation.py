"""Tag a built head scene so Cycles' index passes give the face-part classes (`--passes seg`).

Cycles writes the Object Index and Material Index passes from each pixel's first camera sample,
unfiltered, so they name exactly one surface per pixel, hair curves included. Every object gets
its position in the build's object list + 1 as its pass index (`object_classes` maps that back to
a class); the head mesh's skin is split into one copy of its material per class of
`face_parts.head_face_classes`, each copy's pass index being that class (identical shading: same
node tree). Left and right come from the side of the head the pixel's surface lies on
(`datagen.labels.seg_map`), so one eyebrow object serves both brows.
"""

from __future__ import annotations

import numpy as np

from blender_assets.face_parts import head_face_classes
from blender_assets.seg_classes import seg_class
from blender_assets.shape import PARTS, shown_faces

# Objects by exact name, then by name prefix. A pair's left class stands for both sides.
OBJECT_CLASS = {
    "head": "face_skin",
    "eye_left": "left_eye",
    "eye_right": "right_eye",
    "eyebrows": "left_eyebrow",
    "eyelashes": "left_eye",
    "hair_scalp": "scalp_hair",
    "hair_scalp_surface": "scalp_hair",  # hidden from the camera; listed so every object has a class
    "facial_hair": "facial_hair",
    "glasses_frame": "glasses",
    "lens_left": "glasses",
    "lens_right": "glasses",
    "earring_left": "earrings",
    "earring_right": "earrings",
}
OBJECT_PREFIX_CLASS = {"garment": "clothing", "hat_": "headwear"}
# Lenses are transparent: a landmark behind one is still seen.
SEE_THROUGH_PREFIX = "lens_"


def object_class(name: str) -> str:
    """The class of a built object, by its name; a ValueError for an object no rule covers."""
    if name in OBJECT_CLASS:
        return OBJECT_CLASS[name]
    for prefix, cls in OBJECT_PREFIX_CLASS.items():
        if name.startswith(prefix):
            return cls
    raise ValueError(f"object {name!r} has no segmentation class (add it to blender_assets/segmentation.py)")


def tag_objects(objects: list) -> tuple[np.ndarray, np.ndarray]:
    """Set every object's pass index to its list position + 1: (class per pass index, 0 = background;
    see-through flag per pass index)."""
    classes = np.zeros(len(objects) + 1, dtype=np.uint8)
    see_through = np.zeros(len(objects) + 1, dtype=bool)
    for k, obj in enumerate(objects, start=1):
        obj.pass_index = k
        classes[k] = seg_class(object_class(obj.name))
        see_through[k] = obj.name.startswith(SEE_THROUGH_PREFIX)
    return classes, see_through


def tag_head_materials(head_obj, lash_strips: bool) -> None:
    """Give the head mesh one material per class (material pass index = class): skin faces get a
    copy of the skin material per class they carry; teeth, tongue and lash strips keep theirs."""
    mesh = head_obj.data
    face_class = head_face_classes()[shown_faces(lash_strips)]
    part = np.zeros(len(mesh.polygons), dtype=np.int32)
    mesh.polygons.foreach_get("material_index", part)
    skin_slot = PARTS.index("skin")
    skin = mesh.materials[skin_slot]
    skin.pass_index = seg_class("face_skin")
    for slot, name in enumerate(PARTS):
        classes = np.unique(face_class[part == slot])
        if name != "skin" and len(classes):
            # One class per part; the lash strips' two sides share the left one (sides come from position).
            mesh.materials[slot].pass_index = int(classes[0])
    slot_of = {}
    for cls in np.unique(face_class[part == skin_slot]):
        if cls == seg_class("face_skin"):
            continue
        copy = skin.copy()  # shares the node tree's images; compiles to the same shader
        copy.pass_index = int(cls)
        mesh.materials.append(copy)
        slot_of[int(cls)] = len(mesh.materials) - 1
    for cls, slot in slot_of.items():
        part[(part == skin_slot) & (face_class == cls)] = slot
    mesh.polygons.foreach_set("material_index", part)
    mesh.update()


def tag_scene(objects: list, lash_strips: bool) -> tuple[np.ndarray, np.ndarray]:
    """Tag a head build (`objects[0]` the head mesh) for the index passes; see `tag_objects`."""
    tables = tag_objects(objects)
    tag_head_materials(objects[0], lash_strips)
    return tables
