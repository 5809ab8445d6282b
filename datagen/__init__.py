"""The render farm: subject specs and seeding, the Blender render worker, Ray orchestration,
shard writing, resume, the dataset card, verification and contact sheets.

Only `datagen.worker` and `datagen.blender_render` import bpy (inside Ray actors); everything
else here runs in the driver without Blender.
"""

__version__ = "0.1.0"
