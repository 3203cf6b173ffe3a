"""Face identity embeddings with insightface's ArcFace ONNX (`w600k_r50.onnx`; insightface's models are for
non-commercial research only): faces aligned to its 112×112 five-point template from our 68 face keypoints."""

from pathlib import Path

import cv2
import numpy as np

from ..onnx_models import onnx_session
from .face import MIN_SCORE

SIZE = 112
# insightface's template: the image-left eye, the image-right eye, the nose tip, the mouth's left and right corners.
TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
                     [70.7299, 92.2041]], np.float32)


def five_points(face: np.ndarray) -> np.ndarray | None:
    """The five template points (5, 2) from iBUG-68 face keypoints (68, 3), or None when one is not seen."""
    groups = (range(36, 42), range(42, 48), (30,), (48,), (54,))
    if any((face[list(group), 2] < MIN_SCORE).any() for group in groups):
        return None
    return np.stack([face[list(group), :2].mean(axis=0) for group in groups]).astype(np.float32)


def align(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The face of an RGB uint8 image warped onto the template (a similarity transform), 112×112 RGB uint8."""
    matrix, _ = cv2.estimateAffinePartial2D(points, TEMPLATE, method=cv2.LMEDS)
    return cv2.warpAffine(image, matrix, (SIZE, SIZE), borderValue=0)


class ArcFace:
    """An ArcFace ONNX model: aligned faces [N, 112, 112, 3] uint8 RGB → unit embeddings [N, D]."""

    def __init__(self, path: Path):
        self.session = onnx_session(path, "ArcFace scores")
        self.input = self.session.get_inputs()[0].name

    def embed(self, faces: np.ndarray) -> np.ndarray:
        """Unit-length embeddings of aligned faces (insightface's input: RGB, (x - 127.5) / 127.5, NCHW)."""
        batch = ((faces.astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2)
        out = self.session.run(None, {self.input: np.ascontiguousarray(batch)})[0]
        return out / np.linalg.norm(out, axis=1, keepdims=True).clip(1e-12)
