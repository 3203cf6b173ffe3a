"""Sliding context windows over a video's frames and the weights that blend their predictions."""

import torch


def context_windows(num_frames: int, size: int, overlap: int) -> list[range]:
    """Windows of `size` frames stepping by size - overlap; the last one ends at the last frame (no wrap-around).

    A video shorter than a window is one window of all its frames.
    """
    if num_frames < 1 or size < 1:
        raise ValueError(f"need at least one frame and a window of at least one frame, got {num_frames} and {size}")
    if not 0 <= overlap < size:
        raise ValueError(f"overlap must be in [0, {size - 1}], got {overlap}")
    if num_frames <= size:
        return [range(num_frames)]
    stride = size - overlap
    starts = list(range(0, num_frames - size, stride)) + [num_frames - size]
    return [range(start, start + size) for start in starts]


def window_ramp(size: int, overlap: int) -> torch.Tensor:
    """A window's unnormalised frame weights: flat in the middle, cosine ramps over `overlap` frames at each end."""
    weights = torch.ones(size, dtype=torch.float64)
    if overlap > 0:
        steps = torch.arange(1, overlap + 1, dtype=torch.float64) / (overlap + 1)
        ramp = 0.5 - 0.5 * torch.cos(torch.pi * steps)
        weights[:overlap] = ramp
        weights[size - overlap :] = ramp.flip(0)
    return weights


def blend_weights(windows: list[range], num_frames: int, overlap: int) -> list[torch.Tensor]:
    """Per window, each frame's weight; for every frame the weights of the windows covering it sum to 1.

    Edges that touch the video's start or end are not ramped: there, no other window shares the frames.
    """
    raw = []
    for window in windows:
        ramp = window_ramp(len(window), min(overlap, len(window) // 2))
        if window.start == 0:
            ramp[: len(window) // 2] = 1.0
        if window.stop == num_frames:
            ramp[len(window) // 2 :] = 1.0
        raw.append(ramp)
    total = torch.zeros(num_frames, dtype=torch.float64)
    for window, ramp in zip(windows, raw):
        total[window.start : window.stop] += ramp
    if (total == 0).any():
        raise ValueError("some frames are covered by no window")
    return [(ramp / total[window.start : window.stop]).float() for window, ramp in zip(windows, raw)]
