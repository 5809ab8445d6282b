"""Fitting the tiny preset's from-scratch VAE on the shards' views before its UNet trains."""

from __future__ import annotations

import torch

from training.loop import Progress, psnr
from training.shards import guarded


def fit_vae(vae, loader, steps: int, lr: float, device, progress: bool, kl_weight: float = 1e-6) -> float:
    """Train a from-scratch VAE on the shards' views (reconstruction MSE + a small KL), then set its
    latent scaling so scaled latents have unit variance, as SD's 0.18215 does. Returns the PSNR."""
    vae.train().to(device)
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    bar = Progress("fit vae", progress, steps, 0)
    it = guarded(loader)
    for step in range(steps):
        x = next(it)["views"].flatten(0, 1).to(device) * 2 - 1
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample()).sample
        mse = ((rec - x) ** 2).mean()
        loss = mse + kl_weight * post.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        bar.update(step + 1, f"psnr {psnr(mse.detach() / 4):.2f} dB")  # images in [-1, 1]: MSE/4 in [0, 1] units
    bar.close()
    vae.eval()
    with torch.no_grad():
        latents, errs = [], []
        for _ in range(4):
            x = next(it)["views"].flatten(0, 1).to(device) * 2 - 1
            mode = vae.encode(x).latent_dist.mode()
            latents.append(mode)
            errs.append(((vae.decode(mode).sample - x) ** 2).mean() / 4)
        vae.register_to_config(scaling_factor=float(1.0 / torch.cat(latents).std()))
    vae.requires_grad_(False)
    return psnr(torch.stack(errs).mean())
