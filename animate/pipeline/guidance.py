"""Classifier-free guidance on a batch laid out as [unconditional, conditional]."""

import math

import torch

from ..errors import AnimateError


def classifier_free_guidance(prediction: torch.Tensor, scale: float) -> torch.Tensor:
    """uncond + scale · (cond − uncond) from a prediction whose batch is [uncond, cond]."""
    uncond, cond = prediction.chunk(2)
    return uncond + scale * (cond - uncond)


def check_guidance(scale: float) -> None:
    """Refuse a scale that is not a finite number >= 0 (NaN would blacken the whole video, a negative one invert it)."""
    if not (math.isfinite(scale) and scale >= 0):
        raise AnimateError(f"--cfg must be a finite number >= 0, got {scale}")
