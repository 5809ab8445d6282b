"""The subject a sampler draws for: its place in the run and the spec fields drawn for it so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from datagen.seeding import component_rng

if TYPE_CHECKING:
    from datagen.config import DatagenConfig


@dataclass
class Subject:
    """Subject (i, j) of a run whose draws hash `seed` (the config's `draw_seed`).

    `cfg` carries the run's options that lighting and views read (None where no sampler needs them);
    `drawn` holds the spec fields drawn so far, so the hair sampler reads the identity and the
    accessories read the hairstyle."""

    seed: int
    i: int
    j: int = 0
    cfg: DatagenConfig | None = None
    drawn: dict = field(default_factory=dict)

    def rng(self, component: str) -> np.random.Generator:
        """The component's own generator (DESIGN §5), for samplers that draw from a second stream."""
        return component_rng(self.seed, self.i, self.j, component)
