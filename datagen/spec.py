"""Subject specs: every parameter of one rendered subject, drawn per component (DESIGN §5).

`make_spec(cfg, i, j)` is pure and deterministic: the same config, identity and appearance give the
same dict on any machine. The dict is stored verbatim as `spec.json`; the render worker needs
nothing else to render the subject again. The draws themselves are `datagen.samplers`'. Bump
SPEC_VERSION when a draw changes meaning.
"""

from __future__ import annotations

from datagen.config import DatagenConfig
from datagen.samplers import SPEC_FIELDS, draw
from datagen.samplers.subject import Subject
from datagen.seeding import HEAD_COMPONENTS, OBJECT_COMPONENTS, component_seed
from datagen.shard_format import subject_key
from datagen.versions import RENDER_PACKAGES, software_versions
from facelift_models import cameras

SPEC_VERSION = 16  # 16: age lines laid out per identity; thinner, paler, less glossy lips (15: the nasion set back)


def render_settings(cfg: DatagenConfig, i: int, j: int) -> dict:
    return {
        "size": cfg.size,
        "fov_deg": cameras.FOV_DEG,
        "samples": cfg.samples,
        "random_view_samples": cfg.random_view_samples or cfg.samples,
        "adaptive_threshold": cfg.adaptive_threshold,
        "denoise": cfg.denoise,
        "denoise_quality": cfg.denoise_quality,
        "max_bounces": cfg.max_bounces,
        "world_map_resolution": cfg.world_map_resolution,
        "passes": list(cfg.passes),
        "hdri_dir": cfg.hdri_dir,
        "cycles_seed": component_seed(cfg.draw_seed, i, j, "render") % (2**31 - 1),
    }


def view_samples(render: dict, kind: str) -> int:
    """Cycles samples of a view of `kind` (fixed or random); specs written before random views had
    their own count render every view at `samples`."""
    return render["samples"] if kind == "fixed" else render.get("random_view_samples", render["samples"])


def make_spec(cfg: DatagenConfig, i: int, j: int) -> dict:
    """Subject (i, j) of a `--kind heads` or `--kind objects` run: the bookkeeping, every drawn field
    (`samplers.SPEC_FIELDS`), the render settings and the software versions."""
    objects = cfg.kind == "objects"
    subject = Subject(cfg.draw_seed, i, j, cfg)
    return {
        "spec_version": SPEC_VERSION,
        **({"kind": "objects"} if objects else {}),
        "key": subject_key(i, j),
        "identity_index": i,
        "appearance_index": j,
        "seed": cfg.seed,
        "split": cfg.split,
        "seeds": {
            c: component_seed(cfg.draw_seed, i, j, c) for c in (OBJECT_COMPONENTS if objects else HEAD_COMPONENTS)
        },
        **{field: draw(field, subject) for field in SPEC_FIELDS[cfg.kind]},
        "render": render_settings(cfg, i, j),
        "versions": software_versions(RENDER_PACKAGES),
    }
