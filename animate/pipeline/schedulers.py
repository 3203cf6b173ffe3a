"""The noise schedule the released weights were trained with, and the samplers built on it (diffusers' schedulers)."""

from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, SchedulerMixin

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

SAMPLERS = ("ddim", "dpm++")


def make_scheduler(sampler: str = "ddim") -> SchedulerMixin:
    """DDIM (eta 0, as released) or DPM-Solver++ (2nd order) on the training noise schedule."""
    if sampler == "ddim":
        return DDIMScheduler(**NOISE_SCHEDULE, clip_sample=False)
    if sampler == "dpm++":
        return DPMSolverMultistepScheduler(**NOISE_SCHEDULE, algorithm_type="dpmsolver++", final_sigmas_type="zero")
    raise ValueError(f"unknown sampler {sampler!r} (choose from {', '.join(SAMPLERS)})")
