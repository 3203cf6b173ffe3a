"""Step distillation: DDIM's step as pure functions, targets that chain to the teacher's own guided video, a student
that learns, saves its steps and resumes exactly."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from animate.models.student import StudentSampling
from animate.paths import CONFIG_DIR
from animate.pipeline.animate import AnimatePipeline, AnimateSettings, pose_pixels
from animate.pose.frames import PoseArray, PoseFrames
from call_helpers import open_float64_models
from stage_helpers import overfit, straight_and_resumed
from stages import distill
from stages.network import AnimateNet
from stages.progressive import Batch, ProgressiveDistillation, ddim_grid, ddim_step, step_alphas, velocity_for
from stages.training import checkpoints

CONFIG = CONFIG_DIR / "train" / "distill_tiny.yaml"


@pytest.mark.parametrize("steps", [4, 8, 16])
def test_the_ddim_step_is_diffusers_own(steps):
    """ddim_step with step_alphas lands where DDIMScheduler.step does from every point of the grid, and
    velocity_for inverts it (float64 latents; the alphas are diffusers' float32 table in both: measured ≤ 4e-16)."""
    scheduler = ddim_grid(steps)
    generator = torch.Generator().manual_seed(steps)
    for t in scheduler.timesteps:
        z, v = (torch.randn(2, 4, 3, 5, 6, generator=generator, dtype=torch.float64) for _ in range(2))
        expected = scheduler.step(v, t, z).prev_sample
        alpha, alpha_next = step_alphas(scheduler, t.repeat(2))
        landed = ddim_step(z, v, alpha, alpha_next)
        assert (landed - expected).abs().max() < 1e-12
        assert (velocity_for(z, landed, alpha, alpha_next) - v).abs().max() < 1e-9


def test_the_targets_chain_to_the_teachers_guided_video(pose_video):
    """Starting from the pipeline's noise, S student steps that each land on their distillation target give the
    teacher pipeline's own 2S-step CFG video (float64; measured ≤ 1e-14): the student learns exactly that sampler."""
    models = open_float64_models(seed=3)
    pipeline = AnimatePipeline.for_inference(models, dtype=torch.float64)
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 64, 3), dtype=np.uint8))
    video = PoseFrames.from_video(pose_video(4), 64, 96, 4)
    poses = PoseArray(video.read(0, 4))
    video.close()
    settings = AnimateSettings(64, 96, steps=4, guidance=3.5, context_frames=4, context_overlap=0, seed=5)
    teacher_video = pipeline.denoise(photo, poses, settings, progress=False)

    reference, context = pipeline.encode_reference(photo, 64, 96)
    batch = Batch(None, reference, context, pose_pixels(poses.read(0, 4))[None].double())
    rounds = ProgressiveDistillation(AnimateNet(models.reference_net, models.animate_unet), 2, 3.5)
    latents = pipeline.initial_latents(4, settings).double()
    for index in range(2):
        latents = rounds.target(latents, torch.tensor([index]), batch)
    assert (latents - teacher_video).abs().max() < 1e-10
    unguided = dataclasses.replace(settings, guidance=1.0)
    assert (latents - pipeline.denoise(photo, poses, unguided, progress=False)).abs().max() > 1e-3  # the teacher's CFG is in the target


def test_the_student_overfits_one_batch():
    """On one fixed batch, noise and grid point, the student alone brings the distillation loss well down."""
    models = open_float64_models(seed=1, dtype=torch.float32)
    teacher = AnimateNet(models.reference_net, models.animate_unet)
    student_unet = distill.student_copy(models.animate_unet)
    student = AnimateNet(models.reference_net, student_unet).train()
    models.reference_net.requires_grad_(False)
    student_unet.requires_grad_(False)
    student_unet.unet.requires_grad_(True)
    generator = torch.Generator().manual_seed(1)
    batch = Batch(torch.randn(1, 4, 1, 12, 8, generator=generator), torch.randn(1, 4, 12, 8, generator=generator),
                  torch.randn(1, 1, models.denoising_unet.config.cross_attention_dim, generator=generator),
                  torch.rand(1, 1, 3, 96, 64, generator=generator))
    rounds = ProgressiveDistillation(teacher, 2, 3.5)

    def loss() -> torch.Tensor:
        torch.manual_seed(0)  # the same grid point and noise each time
        return rounds.loss(student, batch)

    first, last = overfit(loss, student_unet.unet.parameters(), 25)
    assert last < 0.3 * first, (first, last)
    assert all(not p.requires_grad for p in models.animate_unet.parameters())


def test_a_student_copy_reads_its_own_call():
    """The copy's hooks read the copy's per-call record: with motion off in the copy, its output changes, and the
    teacher's does not (a deepcopy's hooks would read the teacher's)."""
    models = open_float64_models(seed=2)
    student = distill.student_copy(models.animate_unet)
    x = torch.randn(1, 4, 3, 12, 8, dtype=torch.float64)
    context = torch.randn(1, 1, models.denoising_unet.config.cross_attention_dim, dtype=torch.float64)
    with torch.no_grad():
        same = student(x, 500, context), models.animate_unet(x, 500, context)
        assert torch.equal(*same)
        assert not torch.equal(student(x, 500, context, motion=False), same[0])


def _run(meta, output, *overrides, resume=None):
    return distill.train(CONFIG, [f"data.meta=[{meta}]", f"train.output_dir={output}", "train.seed=0",
                                  "train.validate_every=1000", "data.n_sample_frames=2", *overrides],
                         resume_from=resume)


def test_a_round_trains_the_student_and_infer_takes_its_steps(dataset, tmp_path, run_cli, ref_photo, pose_video,
                                                              monkeypatch):
    """One round changes the denoising UNet only, saves the student's steps; infer then samples at those steps and
    CFG 1 unless told otherwise; a second round needs a teacher of twice its steps and no CFG."""
    output = _run(dataset, tmp_path / "r1", "train.max_steps=2", "train.checkpoint_every=2", "train.validate_every=2")
    weights = checkpoints(output)[-1] / "weights"
    with safe_open(str(weights / "animate.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["student"]) == {"steps": 2, "sampler": "ddim", "guidance": 1.0,
                                                        "teacher_steps": 4, "teacher_guidance": 3.5}
    saved = load_file(str(weights / "animate.safetensors"))
    from animate.models.bundle import build_random_models
    start = build_random_models("tiny", seed=0)
    before = {f"{name}.{k}": v for name in ("reference_unet", "denoising_unet", "pose_guider")
              for k, v in getattr(start, name).state_dict().items()}
    changed = {k for k in before if not torch.equal(saved[k].float(), before[k].half().float())}
    assert changed and all(k.startswith("denoising_unet.") for k in changed)
    assert (output / "previews" / "step-0000002.mp4").is_file()

    seen = []
    original = AnimatePipeline.denoise
    monkeypatch.setattr(AnimatePipeline, "denoise", lambda self, *a, **k: seen.append(a[2]) or original(self, *a, **k))
    for extra in ([], ["--steps", "3", "--cfg", "2"]):
        result = run_cli(["infer", "--ref", ref_photo, "--pose", pose_video(3), "--weights", weights, "-W", "64",
                          "--no-progress", "--force", "-o", "o.mp4", *extra])
        assert result.code == 0, result.err
    assert [(s.steps, s.guidance) for s in seen] == [(2, 1.0), (3, 2.0)]

    for overrides, message in ((["distill.steps=2", "distill.guidance=1"], "can teach distill.steps=1 only"),
                               (["distill.steps=1", "distill.guidance=3.5"], "distil it with distill.guidance=1")):
        result = run_cli(["train", "distill", "--config", CONFIG, f"init.weights={weights}", f"data.meta=[{dataset}]",
                          f"train.output_dir={tmp_path / 'r2'}", *overrides])
        assert result.code == 2 and result.err.count("\n") == 1 and message in result.err, result.err


def test_a_resumed_round_equals_an_uninterrupted_one(dataset_of, tmp_path):
    """Mid-epoch resume (from step 3 of 5, batch 2 of 4 clips): the student is the same bit for bit (the grid
    points and noise are drawn from the restored generators)."""
    meta = dataset_of(4)
    straight, resumed = straight_and_resumed(lambda out, *o, resume=None: _run(meta, out, "train.batch_size=2", *o,
                                                                               resume=resume), tmp_path)
    a = load_file(str(checkpoints(straight)[-1] / "weights" / "animate.safetensors"))
    b = load_file(str(checkpoints(resumed)[-1] / "weights" / "animate.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_student_metadata_round_trips_and_refuses_damage(tmp_path):
    """The metadata entry reads back as written; a damaged one is one line."""
    from animate.errors import AnimateError
    from animate.models.student import student_from_metadata

    entry = StudentSampling(4, "ddim", 1.0, 16, 3.5)
    assert student_from_metadata(entry.metadata(), tmp_path) == entry
    assert student_from_metadata({}, tmp_path) is None
    for bad in ('{"steps": 0}', "not json", '{"steps": 4, "colour": 1}', '{"steps": 4, "sampler": "euler"}',
                '{"steps": 4, "guidance": -1}'):
        with pytest.raises(AnimateError):
            student_from_metadata({"student": bad}, tmp_path)
