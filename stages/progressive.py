"""Progressive distillation (Salimans & Ho, 2022) with classifier-free guidance folded in (Meng et al., 2023), as
small pure functions over DDIM's v-prediction step and one loss.

A student of S steps learns, from each point of its own DDIM grid, the one step that lands where two DDIM steps of
its teacher (2S steps, with the teacher's CFG) land from the same point. Every student step is then two teacher steps:
the student at S steps samples the teacher's 2S-step video, and runs without CFG. Rounds halve the steps (16 → 8 → 4).
"""

from dataclasses import dataclass

import torch
from diffusers import DDIMScheduler

from animate.pipeline.guidance import classifier_free_guidance
from animate.pipeline.schedulers import make_scheduler

from .network import AnimateNet
from .objective import weighted_mse


def ddim_grid(steps: int) -> DDIMScheduler:
    """The pipeline's DDIM sampler at `steps` steps (its timesteps and alphas are the grid)."""
    scheduler = make_scheduler("ddim")
    scheduler.set_timesteps(steps)
    return scheduler


def step_alphas(scheduler: DDIMScheduler, timesteps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ᾱ at each timestep and at the point its DDIM step lands (t − T/steps; the final ᾱ past 0), as diffusers'
    DDIMScheduler.step takes them."""
    ratio = scheduler.config.num_train_timesteps // scheduler.num_inference_steps
    alphas = scheduler.alphas_cumprod
    previous = timesteps - ratio
    final = torch.as_tensor(scheduler.final_alpha_cumprod, dtype=alphas.dtype)
    return alphas[timesteps], torch.where(previous >= 0, alphas[previous.clamp(min=0)], final)


def _video(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-video values [B] shaped to broadcast over latents [B, C, F, h, w], in their dtype."""
    return values.to(like.device, like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


def _roots(alpha: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """√ᾱ and √(1−ᾱ) in ᾱ's own precision (as diffusers computes them), shaped to broadcast over `like`'s videos."""
    return _video(alpha.sqrt(), like), _video((1 - alpha).sqrt(), like)


def ddim_step(latents: torch.Tensor, velocity: torch.Tensor, alpha: torch.Tensor, alpha_next: torch.Tensor) -> torch.Tensor:
    """One deterministic DDIM step (eta 0) from a v-prediction: z' = √ᾱ' x̂0 + √(1−ᾱ') ε̂."""
    (a, b), (a_next, b_next) = _roots(alpha, latents), _roots(alpha_next, latents)
    x0 = a * latents - b * velocity
    eps = a * velocity + b * latents
    return a_next * x0 + b_next * eps


def velocity_for(latents: torch.Tensor, landing: torch.Tensor, alpha: torch.Tensor, alpha_next: torch.Tensor) -> torch.Tensor:
    """The v-prediction whose DDIM step from `latents` lands exactly on `landing` (the step is linear in v)."""
    (a, b), (a_next, b_next) = _roots(alpha, latents), _roots(alpha_next, latents)
    return (landing - (a_next * a + b_next * b) * latents) / (b_next * a - a_next * b)


@dataclass
class Batch:
    """One training batch as the networks read it: latents [B, 4, F, h, w], reference latents, CLIP context
    [B, 1, D] and pose images [B, F, 3, H, W]."""

    latents: torch.Tensor
    reference: torch.Tensor
    context: torch.Tensor
    pose: torch.Tensor


class ProgressiveDistillation:
    """One round: a frozen teacher sampled at 2·`student_steps` DDIM steps with CFG `guidance` (1: none, e.g. a
    student of the previous round), and the loss that teaches a student its `student_steps`-step sampler."""

    def __init__(self, teacher: AnimateNet, student_steps: int, guidance: float):
        self.teacher = teacher.eval().requires_grad_(False)
        self.student_steps, self.guidance = student_steps, guidance
        self.student_grid, self.teacher_grid = ddim_grid(student_steps), ddim_grid(2 * student_steps)

    def teacher_velocity(self, latents: torch.Tensor, timesteps: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The teacher's v-prediction as the pipeline makes it: CFG over [no reference and a zero context, the
        batch's own], or the conditional call alone at guidance 1."""
        dropped = torch.zeros(len(latents), dtype=torch.bool)  # every row reads its photo
        if self.guidance == 1.0:
            return self.teacher(latents, timesteps, batch.reference, batch.context, batch.pose, dropped)
        both = lambda x: torch.cat([x, x])  # noqa: E731
        out = self.teacher(both(latents), both(timesteps), both(batch.reference),
                           torch.cat([torch.zeros_like(batch.context), batch.context]), both(batch.pose),
                           torch.cat([~dropped, dropped]))
        return classifier_free_guidance(out, self.guidance)

    @torch.no_grad()
    def target(self, latents: torch.Tensor, index: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Where two teacher steps land from `latents` at the student's grid points `index` [B]."""
        for j in (2 * index, 2 * index + 1):
            t = self.teacher_grid.timesteps[j]
            velocity = self.teacher_velocity(latents, t.to(latents.device), batch).to(latents.dtype)
            latents = ddim_step(latents, velocity, *step_alphas(self.teacher_grid, t))
        return latents

    def loss(self, student: AnimateNet, batch: Batch) -> torch.Tensor:
        """MSE between the student's v-prediction at a random point of its grid (the batch's latents noised there)
        and the velocity whose one step lands on the teacher's two-step result."""
        x0 = batch.latents
        index = torch.randint(0, self.student_steps, (len(x0),))
        t = self.student_grid.timesteps[index]
        alpha, alpha_next = step_alphas(self.student_grid, t)
        noise = torch.randn_like(x0)
        a, b = _roots(alpha, x0)
        noisy = a * x0 + b * noise
        landing = self.target(noisy, index, batch)
        dropped = torch.zeros(len(x0), dtype=torch.bool)  # the student always reads the photo
        prediction = student(noisy, t.to(x0.device), batch.reference, batch.context, batch.pose, dropped)
        return weighted_mse(prediction, velocity_for(noisy, landing, alpha, alpha_next), None)
