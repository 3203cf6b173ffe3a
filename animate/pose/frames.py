"""Pose images for the pipeline, read a window at a time without holding the video in memory."""

import tempfile
from pathlib import Path

import numpy as np

from ..video import read_frames


class PoseVideoFrames:
    """A rendered pose video fitted to (width, height), decoded once into a disk-backed array."""

    def __init__(self, path: str | Path, width: int, height: int, num_frames: int):
        self._tmp = tempfile.TemporaryDirectory(prefix="animate-pose-")
        self.frames = np.lib.format.open_memmap(
            Path(self._tmp.name) / "pose.npy", mode="w+", dtype=np.uint8, shape=(num_frames, height, width, 3)
        )
        count = 0
        for count, frame in enumerate(read_frames(path, 0, num_frames, size=(width, height)), start=1):
            self.frames[count - 1] = frame
        if count < num_frames:
            self.frames = self.frames[:count]

    def __len__(self) -> int:
        return len(self.frames)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop) as uint8 [n, H, W, 3]."""
        return np.asarray(self.frames[start:stop])

    def close(self) -> None:
        """Delete the decoded copy."""
        self.frames = None
        self._tmp.cleanup()
