"""`animate eval --face`: scores of the face alone, where the truth's face keypoints put it.

- face_psnr: PSNR (as evaluation.py's) inside the face crop of the truth's keypoints (animate.pose.face: the square
  around the eyes and mouth), over the frames where the truth shows a face.
- skin, hair, eyes: the distance (RGB in [0, 1]) between the mean colour of the prediction and of the truth over the
  truth's skin, hair and iris pixels in the crop (a synthetic truth's regions/<name>.npz), per frame, averaged over
  the frames where the region has at least MIN_PIXELS pixels. Lower is better; 0 = the right colours.
- arcface: the cosine similarity of ArcFace embeddings (insightface's w600k_r50.onnx, given with --arcface) of the
  prediction's and the truth's faces, both aligned with the truth's five points. 1 = the same person to ArcFace.
A score with no frame to average over is nan (n/a).

The truth's keypoints and regions are found beside its video, in the synthetic dataset's layout:
<data>/videos/<name>.mp4 → <data>/keypoints/<name>.pose.npz and <data>/regions/<name>.npz.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import AnimateError
from ..pose.arcface import ArcFace, align, five_points
from ..pose.face import face_box
from ..pose.keypoints import PoseSequence

FACE_METRICS = ("face_psnr", "skin", "hair", "eyes", "arcface")
REGION_LABELS = {"skin": 1, "hair": 2, "eyes": 3}  # data_tools.figures.FACE_REGIONS
MIN_PIXELS = 3


@dataclass(frozen=True)
class FaceTruth:
    """Where a truth video's face is: its keypoints, and its skin, hair and iris pixels when known."""

    keypoints: PoseSequence
    regions: np.ndarray | None  # [F, H, W] uint8, REGION_LABELS


def face_truth(gt: Path) -> FaceTruth:
    """The keypoints (and regions) beside a truth video, or one line saying where they were looked for."""
    root = Path(gt).parent.parent
    name = Path(gt).stem if Path(gt).is_file() else Path(gt).name
    keypoints = root / "keypoints" / f"{name}.pose.npz"
    if not keypoints.is_file():
        raise AnimateError(f"--face needs the truth's keypoints at {keypoints} (a synthetic dataset's layout)")
    regions_file = root / "regions" / f"{name}.npz"
    regions = np.load(regions_file)["regions"] if regions_file.is_file() else None
    return FaceTruth(PoseSequence.load(keypoints), regions)


class FaceScores:
    """The face scores of a video pair, accumulated one frame pair at a time (uint8 RGB frames)."""

    def __init__(self, truth: FaceTruth, arcface: ArcFace | None = None):
        self.truth, self.arcface = truth, arcface
        self.values: dict[str, list[float]] = {metric: [] for metric in FACE_METRICS}

    def add(self, index: int, pred: np.ndarray, gt: np.ndarray) -> None:
        """Score frame `index` of the pair."""
        keypoints = self.truth.keypoints
        if index >= len(keypoints):
            raise AnimateError(f"the truth's keypoints have {len(keypoints)} frames, its video more")
        box = face_box(keypoints.body[index], keypoints.face[index])
        if box is None:
            return
        height, width = gt.shape[:2]
        left, top, right, bottom = (int(round(v)) for v in box.box)
        window = np.s_[max(top, 0):min(bottom, height), max(left, 0):min(right, width)]
        p, g = pred[window].astype(np.float64) / 255, gt[window].astype(np.float64) / 255
        if p.size:
            error = np.mean((p - g) ** 2)
            self.values["face_psnr"].append(math.inf if error == 0 else 10 * math.log10(1 / error))
        if self.truth.regions is not None:
            regions = self.truth.regions[index][window]
            for name, label in REGION_LABELS.items():
                mask = regions == label
                if mask.sum() >= MIN_PIXELS:
                    self.values[name].append(float(np.linalg.norm(p[mask].mean(0) - g[mask].mean(0))))
        points = five_points(keypoints.face[index])
        if self.arcface is not None and points is not None:
            embeddings = self.arcface.embed(np.stack([align(pred, points), align(gt, points)]))
            self.values["arcface"].append(float(embeddings[0] @ embeddings[1]))

    def result(self) -> dict:
        """Each face score's mean over the frames that had one (nan where none did; no ArcFace: nan)."""
        return {metric: float(np.mean(values)) if values else math.nan for metric, values in self.values.items()}
