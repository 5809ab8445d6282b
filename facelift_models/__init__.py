"""Pure torch/numpy models and the camera math shared by datagen, training and inference.

Never imports bpy. Submodules import torch lazily where they need it, so `facelift_models.cameras`
stays a numpy-only module the render workers can use.
"""
