"""Pose images for the pipeline, prepared once into a disk-backed array and read a window at a time."""

import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import AnimateError
from ..media.video import fit_frame, read_frames
from .keypoints import PoseSequence


Draw = Callable[[np.ndarray, np.ndarray, np.ndarray, int, int], np.ndarray]


def draw_sequence(seq: PoseSequence, width: int, height: int, draw: Draw) -> Iterator[np.ndarray]:
    """Every frame drawn with `draw(body, hands, face, width, height)` (normalised coordinates), one at a time."""
    return (draw(*seq.normalised(i), width, height) for i in range(len(seq)))


def _read_image(path: Path) -> np.ndarray:
    """One pose frame as uint8 RGB [H, W, 3] (an alpha channel is dropped)."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as err:
        raise AnimateError(f"{path}: cannot read image ({type(err).__name__})") from None


class PoseFrames:
    """Pose images at (width, height), kept in a temporary file so memory stays flat in video length."""

    def __init__(self, frames: Iterable[np.ndarray], num_frames: int, width: int, height: int):
        self._tmp = tempfile.TemporaryDirectory(prefix="animate-pose-")
        self.frames = np.lib.format.open_memmap(
            Path(self._tmp.name) / "pose.npy", mode="w+", dtype=np.uint8, shape=(num_frames, height, width, 3)
        )
        count = 0
        for count, frame in enumerate(frames, start=1):
            self.frames[count - 1] = frame
        if count < num_frames:
            self.frames = self.frames[:count]

    @classmethod
    def from_video(cls, path: str | Path, width: int, height: int, num_frames: int) -> "PoseFrames":
        """A rendered pose video, each frame fitted (centred) into (width, height)."""
        return cls(read_frames(path, 0, num_frames, size=(width, height)), num_frames, width, height)

    @classmethod
    def from_images(cls, files: list[Path], width: int, height: int) -> "PoseFrames":
        """Rendered pose frames saved as images, in the given order, each fitted (centred) into (width, height)."""
        return cls((fit_frame(_read_image(path), width, height) for path in files), len(files), width, height)

    @classmethod
    def from_keypoints(cls, seq: PoseSequence, width: int, height: int, draw: Draw) -> "PoseFrames":
        """Keypoints drawn frame by frame with `draw(body, hands, face, width, height)` (normalised coordinates)."""
        return cls(draw_sequence(seq, width, height, draw), len(seq), width, height)

    def __len__(self) -> int:
        return len(self.frames)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop) as uint8 [n, H, W, 3]."""
        return np.asarray(self.frames[start:stop])

    def close(self) -> None:
        """Delete the temporary file."""
        self.frames = None
        self._tmp.cleanup()


class PoseArray:
    """Pose images already in memory, uint8 [n, H, W, 3]: what Python callers hand the pipeline."""

    def __init__(self, frames: np.ndarray):
        self.frames = frames

    def __len__(self) -> int:
        return len(self.frames)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop)."""
        return self.frames[start:stop]

    def close(self) -> None:
        """Nothing to release (the same call as PoseFrames')."""
