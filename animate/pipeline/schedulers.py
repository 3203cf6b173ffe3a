"""The noise schedule the released weights were trained with, and the samplers built on it (diffusers' schedulers).

Light at import (the CLI lists the samplers before torch loads): diffusers is imported when a sampler is made."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from diffusers import SchedulerMixin

# Training and correct inference (MusePose's fix of Moore's `linear` inference betas).
NOISE_SCHEDULE = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    rescale_betas_zero_snr=True,
    timestep_spacing="trailing",
    prediction_type="v_prediction",
    steps_offset=1,
)

SAMPLERS = ("ddim", "dpm++", "unipc")


def make_scheduler(sampler: str = "ddim") -> "SchedulerMixin":
    """DDIM (eta 0, as released), DPM-Solver++ (2nd order) or UniPC (UniPC-bh2, 2nd order) on the training noise
    schedule; the last two end at sigma 0, as zero-SNR weights need."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler

    if sampler == "ddim":
        return DDIMScheduler(**NOISE_SCHEDULE, clip_sample=False)
    if sampler == "dpm++":
        return DPMSolverMultistepScheduler(**NOISE_SCHEDULE, algorithm_type="dpmsolver++", final_sigmas_type="zero")
    if sampler == "unipc":
        return UniPCMultistepScheduler(**NOISE_SCHEDULE, final_sigmas_type="zero")
    raise ValueError(f"unknown sampler {sampler!r} (choose from {', '.join(SAMPLERS)})")
