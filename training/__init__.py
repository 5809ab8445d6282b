"""Shard readers, losses and the training loops (diffusion, GS-LRM)."""
