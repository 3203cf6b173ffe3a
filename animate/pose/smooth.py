"""Keypoint clean-up over time: One-Euro smoothing of jitter and filling of short detection gaps.

Presence is `score > 0` everywhere. Both work per keypoint on body, hands and face alike.
"""

import math

import numpy as np

from .keypoints import BODY_POINTS, HAND_POINTS, PoseSequence

# One-Euro defaults for pixel coordinates at video frame rates, measured on synthetic tracks in a 512x768 frame
# (tests/test_smooth.py): 2 px jitter on a still point drops 3.2x in std at 30 fps (3.0x at 24, 3.9x at 60); a point
# starting at 600 px/s from rest lags up to 14 px in the first frames (while the speed estimate catches up), 5.5 px
# once moving, and overshoots 1.2 px when it stops. beta is in 1/px: the cutoff rises by beta Hz per px/s of speed.
# Less jitter costs more lag: min_cutoff 0.5 / beta 0.05 halves the lag and leaves 2x the jitter.
MIN_CUTOFF = 0.2
BETA = 0.025
D_CUTOFF = 1.0


def _alpha(cutoff: np.ndarray | float, fps: float) -> np.ndarray | float:
    """Exponential smoothing factor of a first-order low-pass at `cutoff` Hz sampled at `fps`."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau * fps)


def one_euro(values: np.ndarray, present: np.ndarray, fps: float, min_cutoff: float = MIN_CUTOFF, beta: float = BETA,
             d_cutoff: float = D_CUTOFF) -> np.ndarray:
    """One-Euro filter (Casiez et al. 2012) of (F, N, 2) tracks; a point's state restarts whenever it reappears.

    The cutoff follows the point's speed (norm of its 2-D velocity); missing entries are returned unchanged.
    """
    values, present = np.asarray(values, dtype=np.float64), np.asarray(present, dtype=bool)
    out = values.copy()
    if not len(values):
        return out
    smooth = values[0].copy()
    speed = np.zeros(values.shape[1:])
    alpha_d = _alpha(d_cutoff, fps)
    for t in range(1, len(values)):
        restart = present[t] & ~present[t - 1]
        speed = alpha_d * (values[t] - smooth) * fps + (1.0 - alpha_d) * speed
        alpha = _alpha(min_cutoff + beta * np.linalg.norm(speed, axis=-1), fps)[:, None]
        filtered = alpha * values[t] + (1.0 - alpha) * smooth
        smooth = np.where(restart[:, None], values[t], filtered)
        speed[restart] = 0.0
        out[t] = np.where(present[t][:, None], smooth, values[t])
    return out


def _points(seq: PoseSequence) -> np.ndarray:
    """All keypoints of a sequence as (F, 18 + 42 + 68, 3)."""
    frames = len(seq)
    return np.concatenate([seq.body, seq.hands.reshape(frames, 2 * HAND_POINTS, 3), seq.face], axis=1)


def _with_points(seq: PoseSequence, points: np.ndarray) -> PoseSequence:
    """A copy of `seq` holding (F, 128, 3) `points` split back into body, hands and face."""
    body, hands, face = np.split(points, [BODY_POINTS, BODY_POINTS + 2 * HAND_POINTS], axis=1)
    return PoseSequence(body, hands.reshape(len(seq), 2, HAND_POINTS, 3), face, seq.width, seq.height, seq.fps)


def smooth_sequence(seq: PoseSequence, min_cutoff: float = MIN_CUTOFF, beta: float = BETA,
                    d_cutoff: float = D_CUTOFF) -> PoseSequence:
    """The sequence with every keypoint's x, y One-Euro filtered at its fps; scores and missing points unchanged."""
    points = _points(seq)
    xy = one_euro(points[..., :2], points[..., 2] > 0, seq.fps, min_cutoff, beta, d_cutoff)
    return _with_points(seq, np.concatenate([xy, points[..., 2:]], axis=-1))


def fill_track(points: np.ndarray, max_gap: int) -> np.ndarray:
    """Fill missing entries of (F, N, 3) tracks (x, y, score; score 0 = missing), each keypoint on its own.

    A missing run with present frames on both sides and at most `max_gap` frames long is linearly interpolated, its
    score the lower of the two ends' scores. Any other missing frame (runs at the start or end, longer runs) copies the
    nearest present frame (the earlier one on a tie) if that is at most `max_gap` frames away, else stays missing.
    Present entries are never changed.
    """
    points = np.asarray(points, dtype=np.float64)
    frames = len(points)
    present = points[..., 2] > 0
    index = np.arange(frames)[:, None]
    before = np.maximum.accumulate(np.where(present, index, -1), axis=0)
    after = np.minimum.accumulate(np.where(present, index, frames)[::-1], axis=0)[::-1]
    interior = (before >= 0) & (after < frames)
    lo = np.take_along_axis(points, np.clip(before, 0, frames - 1)[..., None], axis=0)
    hi = np.take_along_axis(points, np.clip(after, 0, frames - 1)[..., None], axis=0)
    to_before = np.where(before >= 0, index - before, frames + 1)
    to_after = np.where(after < frames, after - index, frames + 1)
    weight = (to_before / np.maximum(after - before, 1))[..., None]
    between = lo + weight * (hi - lo)
    between[..., 2] = np.minimum(lo[..., 2], hi[..., 2])
    held = np.where((to_before <= to_after)[..., None], lo, hi)
    interpolate = ~present & interior & (after - before - 1 <= max_gap)
    hold = ~present & ~interpolate & (np.minimum(to_before, to_after) <= max_gap)
    return np.where(interpolate[..., None], between, np.where(hold[..., None], held, points))


def fill_gaps(seq: PoseSequence, max_gap: int = 12) -> PoseSequence:
    """The sequence with detection gaps filled per keypoint as `fill_track` describes (12 frames = 0.4 s at 30 fps)."""
    return _with_points(seq, fill_track(_points(seq), max_gap))
