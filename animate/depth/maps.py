"""Depth clips on disk: nearness mapped to 0–1 over the whole clip at once, kept losslessly as 16-bit levels in a
`.depth.npz`, and rendered the way SD-1.5 depth ControlNets expect (near bright, 3 channels, 8-bit).

Nearness is disparity up to a scale and shift (what Depth Anything predicts; 1/z for exact depth z): larger is nearer.
"""

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import NPZ_ERRORS, AnimateError, first_line

DEPTH_SUFFIX = ".depth.npz"
FORMAT_VERSION = 1
LEVELS = 65535  # 16-bit levels; 65535 = 255 * 257, so a level / 257 is the 8-bit value before rounding
FLAT = 1e-6  # a clip whose nearness spans less than this share of its magnitude carries no depth


@dataclass(frozen=True)
class DepthClip:
    """A clip's depth: levels [F, H, W] uint16 (0 farthest, 65535 nearest), the nearness they map from
    (near = lo + levels / 65535 · (hi - lo)) and the frame rate."""

    levels: np.ndarray
    lo: float
    hi: float
    fps: float

    @classmethod
    def from_nearness(cls, nearness: np.ndarray, fps: float) -> "DepthClip":
        """Map a clip's nearness [F, H, W] to levels once over the whole clip; a flat clip (a model that sees no
        depth) becomes black, with one warning. Frames are converted one at a time (float64 for that frame only)."""
        nearness = np.asarray(nearness)
        if nearness.ndim != 3 or nearness.size == 0:
            raise AnimateError(f"a depth clip is [frames, height, width], got shape {nearness.shape}")
        lo, hi = float(nearness.min()), float(nearness.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise AnimateError("the depth clip has non-finite values")
        levels = np.zeros(nearness.shape, np.uint16)
        if hi - lo <= FLAT * max(abs(lo), abs(hi), 1e-30):
            warnings.warn("the depth maps are flat (no depth seen): writing black frames", stacklevel=2)
            return cls(levels, lo, hi, float(fps))
        for frame, out in zip(nearness, levels):
            out[...] = np.rint((frame.astype(np.float64) - lo) * (LEVELS / (hi - lo)))
        return cls(levels, lo, hi, float(fps))

    def nearness(self) -> np.ndarray:
        """The nearness [F, H, W] float32 the levels stand for."""
        return (self.lo + self.levels.astype(np.float64) * ((self.hi - self.lo) / LEVELS)).astype(np.float32)

    def frames(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Frames [start, stop) as [N, H, W, 3] uint8, near bright."""
        gray = np.rint(self.levels[start:stop].astype(np.float32) / (LEVELS // 255)).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)

    def save(self, path: str | Path) -> Path:
        """Write a `.depth.npz` (compressed, atomically)."""
        path = Path(path)
        with atomic_path(path) as staged, open(staged, "wb") as f:
            np.savez_compressed(f, version=FORMAT_VERSION, levels=self.levels, lo=self.lo, hi=self.hi, fps=self.fps)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "DepthClip":
        """Read a `.depth.npz`; a missing, corrupt or foreign file is a one-line AnimateError."""
        try:
            with np.load(path, allow_pickle=False) as data:
                version = int(data["version"])
                if version != FORMAT_VERSION:
                    raise AnimateError(f"{path}: depth format version {version}, this animate reads {FORMAT_VERSION}")
                levels = data["levels"]
                clip = cls(levels, float(data["lo"]), float(data["hi"]), float(data["fps"]))
        except AnimateError:
            raise
        except NPZ_ERRORS as err:
            raise AnimateError(f"{path}: not a depth file ({first_line(err)})") from None
        if levels.dtype != np.uint16 or levels.ndim != 3:
            raise AnimateError(f"{path}: not a depth file (levels {levels.dtype} {levels.shape})")
        return clip
