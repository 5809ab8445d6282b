"""Multi-view self-attention for a diffusers UNet: the views of one subject attend to each other.

The UNet sees a batch of B·V images (V views per subject, consecutive). Each transformer block's
self-attention (`attn1`) gets a processor that regroups the tokens per subject before attending:

    dense     queries of every view attend to the keys of all V views:  (B·V, N, C) -> (B, V·N, C)
    sparse    each view attends to [front view ; own view] (FaceLift's default, ~V/2× cheaper)
    per_view  plain per-image attention (the ablation; what a stock UNet does)

No new weights: the pretrained q/k/v/out projections are reused, so a pretrained UNet starts from
its single-image behaviour (attending to a view's own tokens, or to duplicates of them, gives the
same result). Plain PyTorch SDPA: flash / memory-efficient kernels on CUDA where available.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .configs import ATTENTION_MODES  # relative: a saved pipeline folder carries this module


class MultiViewAttnProcessor:
    """A diffusers attention processor for self-attention over the V views of each subject."""

    def __init__(self, num_views: int, mode: str = "dense"):
        if mode not in ATTENTION_MODES:
            raise ValueError(f"multi-view attention {mode!r} is not one of {', '.join(ATTENTION_MODES)}")
        if num_views < 1:
            raise ValueError(f"num_views {num_views} must be at least 1")
        self.num_views, self.mode = num_views, mode

    def __call__(
        self, attn, hidden_states: torch.Tensor, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs
    ) -> torch.Tensor:
        if encoder_hidden_states is not None or attention_mask is not None:
            raise ValueError("MultiViewAttnProcessor is for unmasked self-attention (attn1) only")
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        image_shape = None
        if hidden_states.ndim == 4:  # (B·V, C, H, W) from a conv-style attention block
            image_shape = hidden_states.shape
            hidden_states = hidden_states.flatten(2).transpose(1, 2)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        bv, n, _ = hidden_states.shape
        views = self.num_views
        if bv % views:
            raise ValueError(
                f"multi-view attention got a batch of {bv} images, not a multiple of {views} views per subject"
            )
        b = bv // views
        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        heads = attn.heads
        if self.mode == "dense":  # one sequence of all views' tokens per subject
            q, k, v = (x.reshape(b, views * n, -1) for x in (q, k, v))
        elif self.mode == "sparse":  # keys/values [front view ; own view] for each view's queries
            k, v = (
                torch.cat(
                    [x.view(b, views, n, -1)[:, :1].expand(-1, views, -1, -1), x.view(b, views, n, -1)], dim=2
                ).view(bv, 2 * n, -1)
                for x in (k, v)
            )

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)

        q, k, v = split(q), split(k), split(v)
        if attn.norm_q is not None:
            q = attn.norm_q(q)
        if attn.norm_k is not None:
            k = attn.norm_k(k)
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(bv, n, -1).to(q.dtype)
        out = attn.to_out[1](attn.to_out[0](out))  # linear, dropout

        if image_shape is not None:
            out = out.transpose(1, 2).reshape(image_shape)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def set_multiview_attention(unet, num_views: int, mode: str = "dense") -> int:
    """Give every self-attention (`attn1`) of `unet` the multi-view processor; cross-attention
    keeps SDPA. Returns how many layers were changed."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    processor = MultiViewAttnProcessor(num_views, mode)
    procs = {
        name: processor if name.endswith("attn1.processor") else AttnProcessor2_0() for name in unet.attn_processors
    }
    changed = sum(name.endswith("attn1.processor") for name in procs)
    unet.set_attn_processor(procs)  # (consumes the dict)
    return changed
