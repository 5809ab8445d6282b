"""The background: the photo's own alpha when it has a real one, else a portrait segmentation.

The default segmenter is MediaPipe's selfie segmentation (Apache-2.0), the `.tflite` file inside
the `mediapipe` 0.10.14 wheel, run with Google's LiteRT interpreter (`ai-edge-litert`); nothing is
downloaded. `--matting-model PATH` takes another TFLite portrait model with the same contract: one
float32 RGB input (1, H, W, 3) in [0, 1], one output (1, H, W, 1) or (1, H, W) of foreground
probability. Everything is composited on white, as the models were trained."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
from PIL import Image

from inference.errors import InferError

DEFAULT_MODEL = ("mediapipe", "modules", "selfie_segmentation", "selfie_segmentation.tflite")
DEFAULT_MODEL_NAME = "MediaPipe selfie segmentation (Apache-2.0, from the mediapipe 0.10.14 wheel)"
OPAQUE = 250  # an alpha channel whose every pixel is at least this carries no matte


def has_real_alpha(photo: Image.Image) -> bool:
    return photo.mode == "RGBA" and int(np.asarray(photo.getchannel("A")).min()) < OPAQUE


def default_model_path() -> str:
    spec = importlib.util.find_spec(DEFAULT_MODEL[0])  # finds the wheel's files without importing mediapipe
    path = (
        os.path.join(spec.submodule_search_locations[0], *DEFAULT_MODEL[1:])
        if spec and spec.submodule_search_locations
        else ""
    )
    if not os.path.isfile(path):
        raise InferError(
            "the portrait segmentation model is missing: pip install --no-deps "
            "mediapipe==0.10.14 (or give --matting-model PATH)"
        )
    return path


class PortraitMatting:
    """A TFLite portrait segmenter: `alpha(photo)` -> (H, W) float32 in [0, 1]."""

    def __init__(self, model_path: str | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.path = model_path or default_model_path()
        self.name = DEFAULT_MODEL_NAME if model_path is None else os.path.basename(model_path)
        if not os.path.isfile(self.path):
            raise InferError(f"--matting-model {self.path!r} is not a file; give a TFLite portrait segmentation model")
        try:
            self.interpreter = Interpreter(model_path=self.path)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise InferError(
                f"--matting-model {self.path!r} is not a TFLite model ({str(e).splitlines()[0][:120]})"
            ) from None
        inp, out = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        shape = tuple(inp[0]["shape"]) if len(inp) == 1 else ()
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 3 or inp[0]["dtype"] != np.float32:
            raise InferError(
                f"--matting-model {self.path!r} takes {[tuple(i['shape']) for i in inp]}; "
                "a portrait model takes one float32 (1, H, W, 3) image"
            )
        self.input_index, self.output_index, self.size = (
            inp[0]["index"],
            out[0]["index"],
            (int(shape[2]), int(shape[1])),
        )

    def alpha(self, photo: Image.Image) -> np.ndarray:
        x = (
            np.asarray(photo.convert("RGB").resize(self.size, Image.Resampling.BILINEAR), dtype=np.float32)[None]
            / 255.0
        )
        self.interpreter.set_tensor(self.input_index, x)
        self.interpreter.invoke()
        mask = np.squeeze(self.interpreter.get_tensor(self.output_index)).astype(np.float32)
        if mask.shape != self.size[::-1]:
            raise InferError(
                f"--matting-model {self.path!r} gives a {mask.shape} output; "
                f"expected a {self.size[1]}×{self.size[0]} mask"
            )
        full = Image.fromarray(np.clip(mask * 255.0, 0, 255).round().astype(np.uint8)).resize(
            photo.size, Image.Resampling.BILINEAR
        )
        return np.asarray(full, dtype=np.float32) / 255.0


def photo_alpha(photo: Image.Image, matting: PortraitMatting) -> tuple[np.ndarray, str]:
    """(alpha (H, W) in [0, 1], where it came from)."""
    if has_real_alpha(photo):
        return np.asarray(photo.getchannel("A"), dtype=np.float32) / 255.0, "alpha"
    return matting.alpha(photo), "segmentation"


def on_white(photo: Image.Image, alpha: np.ndarray) -> Image.Image:
    rgb = np.asarray(photo.convert("RGB"), dtype=np.float32)
    a = alpha[..., None]
    return Image.fromarray((rgb * a + 255.0 * (1.0 - a)).round().clip(0, 255).astype(np.uint8))
