"""The training objective of the released models as small pure functions: noise, targets, weights, dropout."""

import torch
from diffusers import DDPMScheduler
from diffusers.training_utils import compute_snr

from animate.dtypes import accumulation_dtype
from animate.pipeline.schedulers import NOISE_SCHEDULE


def training_scheduler() -> DDPMScheduler:
    """The noise schedule the weights were trained on: scaled-linear betas, zero terminal SNR, v-prediction."""
    return DDPMScheduler(**NOISE_SCHEDULE)


def offset_noise(latents: torch.Tensor, strength: float = 0.05, generator: torch.Generator | None = None) -> torch.Tensor:
    """Gaussian noise plus a per-sample, per-channel constant (B×C×1×1[×1]): one offset for a whole video."""
    noise = torch.randn(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
    if strength == 0:
        return noise
    offset_shape = latents.shape[:2] + (1,) * (latents.dim() - 2)
    offset = torch.randn(offset_shape, generator=generator, device=latents.device, dtype=latents.dtype)
    return noise + strength * offset


def min_snr_weights(scheduler: DDPMScheduler, timesteps: torch.Tensor, gamma: float = 5.0) -> torch.Tensor:
    """Per-sample loss weights min(SNR, γ)/SNR, with SNR+1 for v-prediction (as released; finite at zero SNR)."""
    snr = compute_snr(scheduler, timesteps)
    if scheduler.config.prediction_type == "v_prediction":
        snr = snr + 1
    return torch.minimum(snr, torch.full_like(snr, gamma)) / snr


def target(scheduler: DDPMScheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """What the UNet learns to predict: the velocity (v-prediction) or the noise."""
    if scheduler.config.prediction_type == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    return noise


def weighted_mse(prediction: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Mean squared error per sample, weighted per sample, averaged over the batch."""
    dtype = accumulation_dtype(prediction.dtype, target.dtype)
    per_sample = (prediction.to(dtype) - target.to(dtype)).pow(2).flatten(1).mean(1)
    return (per_sample * weights).mean() if weights is not None else per_sample.mean()


def drop_mask(batch: int, probability: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Which samples train unconditionally (no reference, unconditional CLIP input), drawn per sample."""
    return torch.rand(batch, generator=generator) < probability


def reference_index(dropped: torch.Tensor) -> list[int]:
    """Per sample, the reference it reads: its own, or -1 where the sample is dropped."""
    return [-1 if drop else sample for sample, drop in enumerate(dropped.tolist())]
