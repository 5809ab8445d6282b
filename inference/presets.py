"""`facelift infer` and `facelift eval`: their typed configs and presets (no torch: the CLI's help reads them)."""

from __future__ import annotations

from dataclasses import dataclass

from facelift_models.configs import ExportFilters
from inference.errors import InferError
from presets import Preset, registry

PRECISIONS = ("auto", "fp32", "fp16", "bf16")


@dataclass(frozen=True)
class InferConfig:
    preset: str
    steps: int = 50  # FaceLift: DDIM 50 steps, guidance 3.0, seed 4, eta 1.0
    guidance: float = 3.0
    seed: int = 4
    eta: float = 1.0
    filters: ExportFilters = ExportFilters()
    turntable_frames: int = 150
    turntable_fps: float = 30.0
    turntable_size: int | None = None  # None: the LRM's image size
    gif: bool = False
    require_face: bool = False
    batch_size: int = 4
    precision: str = "auto"  # auto: fp16 diffusion and bf16 reconstruction on CUDA, fp32 on the CPU

    def __post_init__(self):
        checks = [
            ("steps", self.steps >= 1, "at least 1"),
            ("guidance", self.guidance >= 0, "at least 0"),
            ("eta", 0 <= self.eta <= 1, "in [0, 1]"),
            ("turntable_frames", self.turntable_frames >= 1, "at least 1"),
            ("turntable_fps", self.turntable_fps > 0, "positive"),
            ("batch_size", self.batch_size >= 1, "at least 1"),
            ("turntable_size", self.turntable_size is None or self.turntable_size >= 16, "at least 16"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise InferError(f"--{name.replace('_', '-')} {getattr(self, name)} must be {allowed}")
        if self.precision not in PRECISIONS:
            raise InferError(f"--precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")


INFER_PRESETS = registry(
    Preset("FaceLift's inference settings: DDIM 50 steps, guidance 3, 150 turntable frames", InferConfig("facelift")),
    Preset(
        "20 steps, 60 turntable frames: a first look in a third of the time",
        InferConfig("quick", steps=20, turntable_frames=60),
    ),
)


@dataclass(frozen=True)
class EvalConfig:
    preset: str
    subjects: int = 10  # held-out subjects scored (the first ones of the data)
    steps: int = 50  # full_pipeline's diffusion: FaceLift's inference settings
    guidance: float = 3.0
    seed: int = 4
    eta: float = 1.0
    mean_image_subjects: int = 64  # training subjects averaged into the mean-image baseline
    precision: str = "auto"

    def __post_init__(self):
        for name, low in (("subjects", 1), ("steps", 1), ("mean_image_subjects", 1)):
            if getattr(self, name) < low:
                raise InferError(f"--{name.replace('_', '-')} {getattr(self, name)} must be at least {low}")
        if self.precision not in PRECISIONS:
            raise InferError(f"--precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")


EVAL_PRESETS = registry(
    Preset("10 held-out subjects, FaceLift's DDIM settings", EvalConfig("facelift")),
    Preset("4 subjects, 20 steps: a quick check", EvalConfig("quick", subjects=4, steps=20, mean_image_subjects=16)),
)
