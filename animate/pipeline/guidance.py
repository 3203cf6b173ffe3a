"""Classifier-free guidance on a batch laid out as [unconditional, conditional]."""

import torch


def classifier_free_guidance(prediction: torch.Tensor, scale: float) -> torch.Tensor:
    """uncond + scale · (cond − uncond) from a prediction whose batch is [uncond, cond]."""
    uncond, cond = prediction.chunk(2)
    return uncond + scale * (cond - uncond)
