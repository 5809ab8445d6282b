"""Typed datagen configuration with named presets (`test`, `preview`, `paper`).

`DatagenConfig` holds everything that changes the dataset's bytes; it is fingerprinted into the
dataset card so a rerun into the same folder must use the same config. `RunOptions` holds how the
run is executed (workers, threads, Ray address) and may change between a run and its resume.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field

from datagen.environments import check_environments
from datagen.errors import DatagenError
from presets import Preset, configure, registry

LIGHTING_KINDS = ("ambient", "hdr", "mixed")
KINDS = ("heads", "objects")  # objects: procedural general objects for the reconstructor's first stage
PASSES = ("depth", "normal", "albedo", "seg", "landmarks2d", "mesh")
HEAD_ONLY_PASSES = ("seg", "landmarks2d", "mesh")  # labels of the head: refused with --kind objects
DEVICES = ("auto", "cpu", "gpu")
SPLITS = ("train", "test")  # test: held-out identities, drawn from their own seed stream
MAX_RANDOM_VIEWS = 999  # the view file names' counter; a subject's views are held in memory at once


@dataclass(frozen=True)
class DatagenConfig:
    preset: str
    size: int  # square image side in pixels
    samples: int  # Cycles max samples per pixel of the fixed views (adaptive sampling stops earlier)
    adaptive_threshold: float  # Cycles adaptive-sampling noise threshold
    denoise: bool  # OpenImageDenoise on the final image
    denoise_quality: str  # OIDN quality (HIGH, BALANCED, FAST); FAST also skips the albedo/normal prefilter
    max_bounces: int
    subjects_per_shard: int
    # Cycles' world importance map side: 0 = Cycles' automatic choice (a full-size map: about 3 s of
    # one core per subject to build, nothing at 512² × 38 views, most of a 64² subject's time).
    world_map_resolution: int = 0
    # Cycles max samples per pixel of the random views (the LRM's supervision); 0 = `samples`. They
    # may be fewer than the fixed views' (the diffusion model's targets): a regression's L2 loss averages
    # zero-mean noise in its targets out, a generative model learns to draw it (README: render quality).
    random_view_samples: int = 0
    identities: int = 200
    appearances: int = 50
    seed: int = 0
    views_random: int = 32
    elevation_min: float = -30.0
    elevation_max: float = 60.0
    lighting: str = "mixed"
    hdri_dir: str | None = None
    passes: tuple[str, ...] = ()
    kind: str = "heads"
    split: str = "train"

    @property
    def draw_seed(self) -> int:
        """The seed every component draw hashes: the run seed for the training split; for another
        split a seed derived from (split, run seed), so a test split's identities are other people
        than any training split's of the same seed (different draws of every identity trait)."""
        if self.split == "train":
            return self.seed
        digest = hashlib.sha256(f"facelift-split:{self.split}:{self.seed}".encode()).digest()
        return int.from_bytes(digest[:8], "little") >> 1

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["passes"] = list(self.passes)
        return d

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def differences(self, other: dict) -> list[str]:
        """Human-readable fields where a stored config dict differs from this one. A field the
        stored config lacks (it was added later) counts as its default, which renders as before."""
        mine = self.to_dict()
        defaults = {f.name: f.default for f in dataclasses.fields(self) if f.default is not dataclasses.MISSING}
        theirs = {**{k: v for k, v in defaults.items() if k not in other}, **other}
        theirs = {k: list(v) if isinstance(v, tuple) else v for k, v in theirs.items()}
        return [
            f"{k} {theirs.get(k)!r} vs {mine.get(k)!r}"
            for k in sorted(set(mine) | set(theirs))
            if theirs.get(k) != mine.get(k)
        ]


DATAGEN_PRESETS = registry(
    Preset(
        "CI: real Cycles renders, 64², 4 samples, no denoising",
        DatagenConfig(
            "test",
            size=64,
            samples=4,
            adaptive_threshold=0.1,
            denoise=False,
            denoise_quality="FAST",
            max_bounces=4,
            subjects_per_shard=4,
            world_map_resolution=256,
        ),
    ),
    Preset(
        "256², 8 samples, fast denoising: a first look",
        DatagenConfig(
            "preview",
            size=256,
            samples=8,  # README: render quality (2× cheaper a view than 16 for 2.6 dB; make demo under 5 min)
            adaptive_threshold=0.05,
            denoise=True,
            denoise_quality="FAST",
            max_bounces=6,
            subjects_per_shard=16,
        ),
    ),
    Preset(
        "512², 64 samples (32 on random views), OIDN's best model, prefiltered guides: FaceLift's training quality",
        DatagenConfig(
            "paper",
            size=512,
            samples=64,
            random_view_samples=32,  # README: render quality (1.6× cheaper a subject; random views -2.1 dB vs truth)
            adaptive_threshold=0.02,
            denoise=True,
            denoise_quality="HIGH",
            max_bounces=8,
            subjects_per_shard=32,
        ),
    ),
)


def make_config(preset: str, **overrides) -> DatagenConfig:
    """A preset with overrides (None means "keep the preset's value"), validated."""
    if overrides.get("passes") is not None:
        overrides["passes"] = tuple(overrides["passes"])
    if overrides.get("samples") is not None and overrides.get("random_view_samples") is None:
        overrides["random_view_samples"] = 0  # --samples alone sets every view's
    if overrides.get("hdri_dir"):
        overrides["hdri_dir"] = os.path.abspath(overrides["hdri_dir"])
    cfg = configure(DATAGEN_PRESETS, preset, overrides, error=DatagenError).config
    validate(cfg)
    return cfg


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise DatagenError(f"--{name} {value} is not allowed (must be at least 1)")


def validate(cfg: DatagenConfig) -> None:
    if cfg.kind not in KINDS:
        raise DatagenError(f"--kind {cfg.kind!r} is not allowed (allowed: {', '.join(KINDS)})")
    if cfg.split not in SPLITS:
        raise DatagenError(f"--split {cfg.split!r} is not allowed (allowed: {', '.join(SPLITS)})")
    _positive("identities", cfg.identities)
    _positive("appearances", cfg.appearances)
    _positive("size", cfg.size)
    _positive("samples", cfg.samples)
    if cfg.random_view_samples < 0:
        raise DatagenError(
            f"--random-view-samples {cfg.random_view_samples} is not allowed (at least 1, or 0 for --samples)"
        )
    _positive("subjects-per-shard", cfg.subjects_per_shard)
    if not 0 <= cfg.views_random <= MAX_RANDOM_VIEWS:
        raise DatagenError(f"--views-random {cfg.views_random} is not allowed (0 to {MAX_RANDOM_VIEWS})")
    if cfg.size < 16 or cfg.size > 4096:
        raise DatagenError(f"--size {cfg.size} is not allowed (16 to 4096 pixels)")
    if cfg.appearances > 999 or cfg.identities > 99999:
        raise DatagenError("--identities must be at most 99999 and --appearances at most 999 (the sample key format)")
    if not -90.0 <= cfg.elevation_min <= cfg.elevation_max <= 90.0:
        raise DatagenError(
            f"elevation range [{cfg.elevation_min}, {cfg.elevation_max}] is not allowed (within [-90, 90], min <= max)"
        )
    if cfg.lighting not in LIGHTING_KINDS:
        raise DatagenError(f"--lighting {cfg.lighting!r} is not allowed (allowed: {', '.join(LIGHTING_KINDS)})")
    bad = [p for p in cfg.passes if p not in PASSES]
    if bad:
        raise DatagenError(f"--passes {','.join(bad)} is not allowed (allowed: {', '.join(PASSES)})")
    head_only = [p for p in cfg.passes if p in HEAD_ONLY_PASSES]
    if cfg.kind == "objects" and head_only:
        raise DatagenError(
            f"--passes {','.join(head_only)} is not allowed with --kind objects (labels of a head: "
            f"{', '.join(HEAD_ONLY_PASSES)}; allowed: {', '.join(p for p in PASSES if p not in HEAD_ONLY_PASSES)})"
        )
    if cfg.hdri_dir is not None:
        if not os.path.isdir(cfg.hdri_dir):
            raise DatagenError(f"--hdri-dir {cfg.hdri_dir} does not exist or is not a folder")
        found = user_hdris(cfg.hdri_dir)
        if not found:
            raise DatagenError(f"--hdri-dir {cfg.hdri_dir} holds no .exr or .hdr files")
        check_environments(found)


def user_hdris(hdri_dir: str) -> dict[str, str]:
    """`dir:<file name>` → path for every .exr/.hdr under the folder (recursively), sorted."""
    found = {}
    for root, _, files in os.walk(hdri_dir):
        for name in files:
            if name.lower().endswith((".exr", ".hdr")):
                path = os.path.join(root, name)
                found["dir:" + os.path.relpath(path, hdri_dir)] = path
    return dict(sorted(found.items()))


@dataclass(frozen=True)
class RunOptions:
    """How a run executes; free to change between a run and its resume."""

    workers: int = 0  # 0: CPUs of the Ray cluster // threads_per_worker
    threads_per_worker: int = 1
    device: str = "auto"
    ray_address: str | None = None
    retries: int = 2  # extra attempts per subject after the first failure
    recycle_every: int = 50  # restart a worker's Blender after this many subjects (flat memory)
    retry_failed: bool = True  # subjects recorded as failed by an earlier run get another try
    gpus_per_worker: float | None = None  # None: 1 when rendering on GPUs Ray sees, else 0
    command: list[str] = field(default_factory=list)

    def validate(self) -> None:
        if self.workers < 0:
            raise DatagenError(f"--workers {self.workers} is not allowed (0 for automatic, or a positive count)")
        if self.threads_per_worker < 1:
            raise DatagenError(f"--threads-per-worker {self.threads_per_worker} is not allowed (must be at least 1)")
        if self.device not in DEVICES:
            raise DatagenError(f"--device {self.device!r} is not allowed (allowed: {', '.join(DEVICES)})")
        if self.retries < 0:
            raise DatagenError(f"--retries {self.retries} is not allowed (must be 0 or more)")
        if self.recycle_every < 1:
            raise DatagenError(f"--recycle-every {self.recycle_every} is not allowed (must be at least 1)")
        g = self.gpus_per_worker
        if g is not None:
            if not 0 < g < float("inf"):
                raise DatagenError(f"--gpus-per-worker {g:g} is not allowed (must be more than 0)")
            if g > 1 and g != int(g):
                raise DatagenError(
                    f"--gpus-per-worker {g:g} is not allowed (a fraction of one GPU, or a whole number of GPUs)"
                )
            if self.device == "cpu":
                raise DatagenError(
                    f"--gpus-per-worker {g:g} does not go with --device cpu (use --device "
                    "auto or gpu to render on GPUs)"
                )
