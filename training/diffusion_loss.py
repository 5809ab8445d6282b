"""The multi-view diffusion model's training objective and its fixed-noise evaluation.

    z_v     = VAE(view v) · scaling        z_in = VAE(input) · scaling      (frozen VAE)
    x_t     = α_t z + σ_t ε                one t per subject, shared by its 6 views
    loss    = w(t) · ‖UNet(x_t, t | z_in, embed(input), view) − (α_t ε − σ_t z)‖²
    w(t)    = min(SNR, γ) / (SNR + 1)      min-SNR-γ for the v-target

Classifier-free guidance dropout per subject: the image embedding alone, both, or the input latent
alone, each at `guidance_drop`.
"""

from __future__ import annotations

import torch

from training.diffusion_data import input_view
from training.presets import DiffusionTrainConfig


def snr(noise_scheduler, timesteps: torch.Tensor) -> torch.Tensor:
    ac = noise_scheduler.alphas_cumprod.to(timesteps.device)[timesteps].float()
    return ac / (1 - ac)


def min_snr_v_weight(noise_scheduler, timesteps: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-γ for v-prediction: the ε-form weight min(SNR, γ)/SNR becomes min(SNR, γ)/(SNR + 1)
    on the v-target, since ‖ε − ε̂‖² = α²‖v − v̂‖² and α² = SNR/(SNR + 1)."""
    s = snr(noise_scheduler, timesteps)
    return torch.clamp(s, max=gamma) / (s + 1)


def guidance_keep_masks(
    batch: int, p: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(keep image embedding, keep input latent) per subject: u < p drops the embedding only,
    p ≤ u < 2p both, 2p ≤ u < 3p the latent only."""
    u = torch.rand(batch, generator=generator)
    keep_embed = ~(u < 2 * p)
    keep_latent = ~((u >= p) & (u < 3 * p))
    return keep_embed, keep_latent


def encode_views(vae, views: torch.Tensor, dtype: torch.dtype, sample: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled latents of (B, V, 3, S, S) views in [0, 1]: the targets (a posterior sample for
    training, its mode for evaluation) and the input's (view 0, the mode), from one VAE pass."""
    b, v = views.shape[:2]
    with torch.no_grad():
        posterior = vae.encode((views.flatten(0, 1) * 2 - 1).to(dtype)).latent_dist
        mode = posterior.mode().float() * vae.config.scaling_factor
        z = posterior.sample().float() * vae.config.scaling_factor if sample else mode
    return z.view(b, v, *z.shape[1:]), input_view(mode.view(b, v, *mode.shape[1:]))


def v_loss(
    denoiser,
    noise_scheduler,
    z: torch.Tensor,
    z_in: torch.Tensor,
    views: torch.Tensor,
    t: torch.Tensor,
    noise: torch.Tensor,
    keep_embed: torch.Tensor,
    keep_latent: torch.Tensor,
    gamma: float,
    reconstruct_input: bool,
) -> torch.Tensor:
    """The min-SNR-weighted v-prediction loss: z (B, V, 4, h, w) target latents, z_in (B, 4, h, w)
    the input's, views (B, V, 3, S, S) in [0, 1], t (B,) one timestep per subject, keep_* (B,) the
    classifier-free guidance masks."""
    b, v = z.shape[:2]
    tv = t.repeat_interleave(v)
    flat, eps = z.flatten(0, 1), noise.flatten(0, 1)
    noisy = noise_scheduler.add_noise(flat, eps, tv).view_as(z)
    target = noise_scheduler.get_velocity(flat, eps, tv).view_as(z)
    z_in = z_in * keep_latent[:, None, None, None].to(z_in.dtype)
    pred = denoiser(noisy, t, z_in, input_view(views) * 2 - 1, keep_embed)
    per_view = ((pred.float() - target) ** 2).mean(dim=(2, 3, 4))  # (B, V)
    if not reconstruct_input:  # the ablation: view 0 (the input's camera) is not learned
        per_view = per_view[:, 1:]
    return (min_snr_v_weight(noise_scheduler, t, gamma) * per_view.mean(dim=1)).mean()


def diffusion_loss(
    denoiser,
    vae,
    noise_scheduler,
    batch: dict,
    train_cfg: DiffusionTrainConfig,
    reconstruct_input: bool,
    dtype: torch.dtype,
) -> torch.Tensor:
    """One training batch: random timestep per subject, random noise, random classifier-free guidance drops."""
    device = next(denoiser.parameters()).device  # denoiser: a MultiViewDenoiser, maybe DDP-wrapped
    views = batch["views"].to(device)
    z, z_in = encode_views(vae, views, dtype, sample=True)
    b = z.shape[0]
    t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (b,), device=device)
    keep_embed, keep_latent = (m.to(device) for m in guidance_keep_masks(b, train_cfg.guidance_drop))
    noise = torch.randn_like(z)
    gamma = train_cfg.snr_gamma
    return v_loss(
        denoiser, noise_scheduler, z, z_in, views, t, noise, keep_embed, keep_latent, gamma, reconstruct_input
    )


@torch.no_grad()
def eval_loss(
    denoiser,
    vae,
    noise_scheduler,
    batch: dict,
    train_cfg: DiffusionTrainConfig,
    reconstruct_input: bool,
    levels: int = 10,
    seed: int = 0,
) -> float:
    """The training objective on `batch` at `levels` evenly spaced timesteps with fixed noise, no
    guidance drop and the posterior's mode: the same measurement at every step."""
    device = next(denoiser.parameters()).device
    views = batch["views"].to(device)
    z, z_in = encode_views(vae, views, vae.dtype, sample=False)
    b = z.shape[0]
    keep = torch.ones(b, dtype=torch.bool, device=device)
    total = 0.0
    for k, t in enumerate(torch.linspace(0, noise_scheduler.config.num_train_timesteps - 1, levels).round().long()):
        noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(seed * 1000 + k)).to(device)
        ts = t.repeat(b).to(device)
        gamma = train_cfg.snr_gamma
        total += float(
            v_loss(denoiser, noise_scheduler, z, z_in, views, ts, noise, keep, keep, gamma, reconstruct_input)
        )
    return total / levels
