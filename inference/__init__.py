"""From a photo to a Gaussian head (`facelift infer`): photos in, background, FaceLift's face
alignment, the multi-view diffusion pipeline, the LRM, and the exported `.ply` and turntable."""
