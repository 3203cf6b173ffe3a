"""Keypoints of a video and the versioned `*.pose.npz` file that stores them (formats/README.md §4)."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import NPZ_ERRORS, AnimateError, first_line

FORMAT_VERSION = 1
BODY_POINTS, HAND_POINTS, FACE_POINTS = 18, 21, 68


@dataclass
class PoseSequence:
    """Per-frame keypoints: x, y in pixels of (width, height) and a score in [0, 1]; score 0 = missing.

    body (F, 18, 3) in OpenPose order; hands (F, 2, 21, 3), index 0 = the subject's right hand; face (F, 68, 3) iBUG-68.
    """

    body: np.ndarray
    hands: np.ndarray
    face: np.ndarray
    width: int
    height: int
    fps: float

    def __post_init__(self):
        frames = len(self.body)
        expected = {"body": (frames, BODY_POINTS, 3), "hands": (frames, 2, HAND_POINTS, 3), "face": (frames, FACE_POINTS, 3)}
        for name, shape in expected.items():
            value = np.asarray(getattr(self, name), dtype=np.float32)
            if value.shape != shape:
                raise ValueError(f"{name} must have shape {shape}, got {value.shape}")
            setattr(self, name, value)
        if self.width < 1 or self.height < 1 or not self.fps > 0:
            raise ValueError(f"bad size or fps: {self.width}x{self.height} at {self.fps}")

    def __len__(self) -> int:
        return len(self.body)

    @classmethod
    def empty(cls, frames: int, width: int, height: int, fps: float) -> "PoseSequence":
        """All keypoints missing."""
        return cls(np.zeros((frames, BODY_POINTS, 3)), np.zeros((frames, 2, HAND_POINTS, 3)),
                   np.zeros((frames, FACE_POINTS, 3)), width, height, fps)

    def normalised(self, frame: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(body, hands, face) of one frame with x, y divided by (width, height): the renderer's input."""
        scale = np.array([self.width, self.height, 1.0], dtype=np.float32)
        return self.body[frame] / scale, self.hands[frame] / scale, self.face[frame] / scale

    def slice(self, start: int, stop: int) -> "PoseSequence":
        """Frames [start, stop)."""
        return PoseSequence(self.body[start:stop], self.hands[start:stop], self.face[start:stop],
                            self.width, self.height, self.fps)

    def save(self, path: str | Path) -> Path:
        """Write a `*.pose.npz`, atomically."""
        path = Path(path)
        with atomic_path(path) as staged, open(staged, "wb") as f:
            np.savez_compressed(f, version=FORMAT_VERSION, width=self.width, height=self.height, fps=self.fps,
                                body=self.body, hands=self.hands, face=self.face)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "PoseSequence":
        """Read a `*.pose.npz`; a missing, corrupt or newer-version file is one clear error."""
        path = Path(path)
        if not path.is_file():
            raise AnimateError(f"{path}: keypoint file not found")
        try:
            with np.load(path, allow_pickle=False) as data:
                version = int(data["version"])
                if version > FORMAT_VERSION:
                    raise AnimateError(f"{path}: keypoint file version {version} is newer than this animate ({FORMAT_VERSION})")
                return cls(data["body"], data["hands"], data["face"], int(data["width"]), int(data["height"]),
                           float(data["fps"]))
        except AnimateError:
            raise
        except NPZ_ERRORS as err:
            raise AnimateError(f"{path}: not a readable keypoint file ({first_line(err)})") from None
