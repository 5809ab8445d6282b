"""What a subject can be, as names and tables: the head's sliders and expression units, hairstyles,
garments, accessories, object shapes, and the checks that a spec names only what they hold.

Pure python and numpy over the asset data packages (no bpy, no geometry): the samplers draw from
these tables in the driver, and the builders in `blender_assets` check specs against the same ones.
"""
