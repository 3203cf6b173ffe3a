"""Step distillation: a student copy of the stage-2 denoising UNet (motion modules included) learns to sample in S
steps what its teacher samples in 2S steps with CFG, so it runs without CFG (progressive distillation, one round per
run; see progressive.py). A second round distils the first round's student again (16 → 8 → 4).

    animate train distill --config configs/train/distill.yaml [distill.steps=4] [key=value ...] [--resume latest]
"""

import copy
from dataclasses import replace
from pathlib import Path

import torch

from animate.errors import AnimateError
from animate.models.student import StudentSampling
from animate.models.unet import AnimateUNet, build_unet
from animate.models.weights import load_models
from animate.pipeline.guidance import check_guidance

from .datasets import Stage2Dataset
from .loop import run_training
from .network import AnimateNet
from .progressive import ProgressiveDistillation
from .stage2 import optimizer_for
from .training import start_run


def student_copy(teacher: AnimateUNet) -> AnimateUNet:
    """A separate AnimateUNet holding the teacher's weights (a deepcopy would keep hooks that read the teacher's
    per-call record: they close over the module they were installed on)."""
    student = AnimateUNet(build_unet(dict(teacher.unet.config)), copy.deepcopy(teacher.pose_guider),
                          teacher.motion_pe_length)
    torch.nn.Module.to(student, dtype=next(teacher.parameters()).dtype)
    student.load_state_dict(teacher.state_dict())
    return student


def check_round(steps: int, guidance: float, teacher: StudentSampling | None, source: str) -> None:
    """Refuse a round that cannot be one: steps < 1, a bad CFG, or a teacher that is itself a student of another
    step count than 2 × steps (its guidance is then in its weights: the round needs distill.guidance=1)."""
    if steps < 1:
        raise AnimateError(f"distill.steps must be at least 1, got {steps}")
    check_guidance(guidance)
    if teacher is None:
        return
    if teacher.steps != 2 * steps:
        raise AnimateError(f"{source} is a student of {teacher.steps} steps: it can teach distill.steps="
                           f"{teacher.steps // 2} only (each student step is two of its teacher's)")
    if guidance != 1.0:
        raise AnimateError(f"{source} is a student (its CFG is in its weights): distil it with distill.guidance=1")


def train(config_path: str | Path, overrides: list[str] = (), resume_from: str | None = None) -> Path:
    """Run one round of step distillation; returns the output folder (checkpoints whose weights are the student)."""
    cfg, accelerator, weight_dtype = start_run(config_path, overrides)
    run, steps, guidance = cfg.train, int(cfg.distill.steps), float(cfg.distill.guidance)

    # Models: the teacher's set, frozen; the student a copy of its denoising UNet and motion modules, all trained.
    models = load_models(cfg.init.weights)
    check_round(steps, guidance, models.student, str(cfg.init.weights))
    if run.condition_dropout:
        raise AnimateError(f"train.condition_dropout must be 0 for distillation (the student replaces the guided "
                           f"sampler: it always reads the photo), got {run.condition_dropout}")
    if models.animate_unet.motion_pe_length is None:
        raise AnimateError(f"{cfg.init.weights} has no motion modules: distil a stage-2 weight set")
    for model in models.modules().values():
        model.requires_grad_(False)
    teacher = torch.nn.Module.to(models.animate_unet, accelerator.device, torch.float32)
    student = student_copy(teacher)
    trained = list(student.unet.parameters())
    for param in trained:
        param.requires_grad_(True)
    first = models.student
    sampling = StudentSampling(steps, "ddim", 1.0, first.teacher_steps if first else 2 * steps,
                               first.teacher_guidance if first else guidance)
    student_models = replace(models, animate_unet=student, student=sampling)
    models.vae.eval().to(accelerator.device, weight_dtype)
    models.image_encoder.eval().to(accelerator.device, weight_dtype)
    reference_net = torch.nn.Module.to(models.reference_net, accelerator.device, torch.float32)
    if run.gradient_checkpointing:
        student.enable_gradient_checkpointing()
    optimizer = optimizer_for(trained, run)
    distill = ProgressiveDistillation(AnimateNet(reference_net, teacher), steps, guidance)

    dataset = Stage2Dataset(list(cfg.data.meta), cfg.data.width, cfg.data.height, cfg.data.n_sample_frames,
                            cfg.data.sample_rate, seed=run.seed)
    return run_training("distill", accelerator, student_models, trained, optimizer, dataset, cfg, weight_dtype,
                        resume_from, cfg.data.n_sample_frames, distill=distill)

