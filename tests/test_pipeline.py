"""The denoising loop: reference once per video, windows, guidance, seeds, the stage-1 image case."""

import numpy as np
import pytest
import torch
from PIL import Image

from animate.errors import AnimateError
from animate.models.bundle import build_random_models
from animate.models.reference import ReferenceReader
from animate.pipeline.animate import AnimatePipeline, AnimateSettings


class ArrayPoses:
    """Pose frames held in an array (tests only)."""

    def __init__(self, frames: np.ndarray):
        self.frames = frames

    def __len__(self) -> int:
        return len(self.frames)

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.frames[start:stop]


def poses(n: int, seed: int = 0) -> ArrayPoses:
    return ArrayPoses(np.random.default_rng(seed).integers(0, 255, (n, 32, 32, 3), dtype=np.uint8))


PHOTO = Image.fromarray(np.random.default_rng(1).integers(0, 255, (48, 48, 3), dtype=np.uint8))


def settings(**kw) -> AnimateSettings:
    return AnimateSettings(**{"width": 32, "height": 32, "steps": 2, **kw})


@pytest.fixture(scope="module")
def pipeline():
    return AnimatePipeline(build_random_models("tiny", seed=5))


def test_same_initial_latents_give_the_same_video(pipeline):
    latents = torch.randn(1, 4, 6, 4, 4)
    a = pipeline.denoise(PHOTO, poses(6), settings(), latents=latents.clone(), progress=False)
    b = pipeline.denoise(PHOTO, poses(6), settings(), latents=latents.clone(), progress=False)
    c = pipeline.denoise(PHOTO, poses(6), settings(), latents=torch.randn(1, 4, 6, 4, 4), progress=False)
    assert a.shape == (1, 4, 6, 4, 4)
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_seed_decides_the_noise(pipeline):
    assert torch.equal(pipeline.initial_latents(5, settings(seed=1)), pipeline.initial_latents(5, settings(seed=1)))
    assert not torch.equal(pipeline.initial_latents(5, settings(seed=1)), pipeline.initial_latents(5, settings(seed=2)))


def test_reference_runs_once_per_video_and_projects_once_per_block(pipeline, monkeypatch):
    runs, projections = [], []
    hook = pipeline.models.reference_unet.register_forward_pre_hook(lambda *_: runs.append(1))
    original = ReferenceReader.set_reference
    monkeypatch.setattr(ReferenceReader, "set_reference", lambda self, *a: (projections.append(1), original(self, *a)))
    try:
        pipeline.denoise(PHOTO, poses(30), settings(steps=3, context_frames=12, context_overlap=4), progress=False)
    finally:
        hook.remove()
    assert len(runs) == 1  # not per step (3) nor per window (3)
    assert len(projections) == 16  # one key/value projection per reference block
    assert all(reader.key is None for reader in pipeline.reference.readers)  # cleared after the video


def test_window_layout_does_not_change_independent_frames(pipeline):
    """Zero-initialised motion modules leave frames independent: blending must then be exact averaging.

    One step: random tiny weights on a 4×4 latent are chaotic (1×1 GroupNorm groups), so float noise grows over steps.
    """
    latents = torch.randn(1, 4, 20, 4, 4)
    one_window = pipeline.denoise(PHOTO, poses(20), settings(context_frames=20, steps=1), latents=latents.clone(),
                                  progress=False)
    windows = pipeline.denoise(PHOTO, poses(20), settings(context_frames=8, context_overlap=4, steps=1),
                               latents=latents.clone(), progress=False)
    assert torch.allclose(one_window, windows, atol=1e-4)


def test_trained_motion_modules_make_windows_matter():
    models = build_random_models("tiny", seed=6)
    for name, param in models.denoising_unet.named_parameters():
        if name.endswith("temporal_transformer.proj_out.weight"):
            param.data.normal_(std=0.2)
    pipe = AnimatePipeline(models)
    latents = torch.randn(1, 4, 20, 4, 4)
    one_window = pipe.denoise(PHOTO, poses(20), settings(context_frames=20, steps=1), latents=latents.clone(),
                              progress=False)
    windows = pipe.denoise(PHOTO, poses(20), settings(context_frames=8, context_overlap=4, steps=1),
                           latents=latents.clone(), progress=False)
    assert (one_window - windows).abs().max() > 1e-3


def test_stage1_image_pipeline_is_one_frame_without_motion_modules():
    pipe = AnimatePipeline(build_random_models("tiny", seed=7, motion=False))
    assert pipe.max_context_frames is None
    latents = pipe.denoise(PHOTO, poses(1), settings(), progress=False)
    frames = list(pipe.decode(latents))
    assert latents.shape == (1, 4, 1, 4, 4)
    assert len(frames) == 1 and frames[0].shape == (1, 32, 32, 3) and frames[0].dtype == np.uint8


def test_dpm_solver_and_no_guidance_run(pipeline):
    out = pipeline.denoise(PHOTO, poses(3), settings(sampler="dpm++", guidance=1.0), progress=False)
    assert out.shape == (1, 4, 3, 4, 4) and torch.isfinite(out).all()


def test_decode_streams_chunks(pipeline):
    chunks = list(pipeline.decode(torch.randn(1, 4, 19, 4, 4), chunk=8))
    assert [len(c) for c in chunks] == [8, 8, 3]
    assert all(c.shape[1:] == (32, 32, 3) for c in chunks)


@pytest.mark.parametrize("bad,match", [
    (dict(context_frames=33), "position table"),
    (dict(context_overlap=24), "context-overlap"),
    (dict(steps=0), "steps"),
    (dict(width=30), "multiples of 8"),
])
def test_bad_settings_are_refused(pipeline, bad, match):
    with pytest.raises(AnimateError, match=match):
        pipeline.denoise(PHOTO, poses(3), settings(**bad), progress=False)


def test_reference_photo_matters(pipeline):
    latents = torch.randn(1, 4, 4, 4, 4)
    other = Image.fromarray(np.zeros((48, 48, 3), dtype=np.uint8))
    a = pipeline.denoise(PHOTO, poses(4), settings(), latents=latents.clone(), progress=False)
    b = pipeline.denoise(other, poses(4), settings(), latents=latents.clone(), progress=False)
    assert (a - b).abs().max() > 1e-3


def test_offload_keeps_models_on_the_cpu_between_uses():
    models = build_random_models("tiny", seed=8)
    pipe = AnimatePipeline(models, "cpu", torch.float32, offload=True)
    latents = torch.randn(1, 4, 3, 4, 4)
    offloaded = pipe.denoise(PHOTO, poses(3), settings(), latents=latents.clone(), progress=False)
    plain = AnimatePipeline(build_random_models("tiny", seed=8)).denoise(PHOTO, poses(3), settings(),
                                                                          latents=latents.clone(), progress=False)
    assert torch.allclose(offloaded, plain, atol=1e-5)
    assert all(p.device.type == "cpu" for p in models.denoising_unet.parameters())


def test_no_reference_ablation_ignores_the_reference_net():
    """--no-reference: the ReferenceNet never runs and its weights cannot matter; with the reference they do."""
    models = build_random_models("tiny", seed=9)
    pipe = AnimatePipeline(models)
    latents = torch.randn(1, 4, 3, 4, 4)
    runs = []
    hook = models.reference_unet.register_forward_pre_hook(lambda *_: runs.append(1))
    ablated = pipe.denoise(PHOTO, poses(3), settings(steps=1, reference=False), latents=latents.clone(), progress=False)
    assert runs == []
    hook.remove()
    referenced = pipe.denoise(PHOTO, poses(3), settings(steps=1), latents=latents.clone(), progress=False)
    with torch.no_grad():
        for param in models.reference_unet.parameters():
            param.add_(torch.randn_like(param) * 0.1)
    ablated_again = pipe.denoise(PHOTO, poses(3), settings(steps=1, reference=False), latents=latents.clone(),
                                 progress=False)
    referenced_again = pipe.denoise(PHOTO, poses(3), settings(steps=1), latents=latents.clone(), progress=False)
    assert torch.equal(ablated, ablated_again)
    assert (referenced - referenced_again).abs().max() > 1e-4 and (ablated - referenced).abs().max() > 1e-4


def test_no_motion_ablation_makes_frames_independent():
    """--no-motion: changing one frame's pose changes only that frame; with (trained) motion modules it spreads."""
    models = build_random_models("tiny", seed=6)
    for name, param in models.denoising_unet.named_parameters():
        if name.endswith("temporal_transformer.proj_out.weight"):
            param.data.normal_(std=0.2)
    torch.nn.init.normal_(models.pose_guider.conv_out.weight, std=0.1)  # zero-initialised: let poses reach the UNet
    pipe = AnimatePipeline(models)
    latents = torch.randn(1, 4, 6, 4, 4)
    frames = poses(6).frames
    changed = frames.copy()
    changed[2] = 255 - changed[2]
    for motion in (False, True):
        a = pipe.denoise(PHOTO, ArrayPoses(frames), settings(steps=1, motion=motion), latents=latents.clone(),
                         progress=False)
        b = pipe.denoise(PHOTO, ArrayPoses(changed), settings(steps=1, motion=motion), latents=latents.clone(),
                         progress=False)
        others = [i for i in range(6) if i != 2]
        spread = (a[:, :, others] - b[:, :, others]).abs().max()
        assert (a[:, :, 2] - b[:, :, 2]).abs().max() > 1e-3
        assert (spread < 1e-5) if not motion else (spread > 1e-3)
    assert models.denoising_unet.frame_inputs.motion  # switched back on after the call


def test_demo_size_runs_at_the_vae_scale_of_four():
    demo = AnimatePipeline(build_random_models("demo", seed=0))
    assert demo.models.latent_scale == 4
    tall_poses = ArrayPoses(np.random.default_rng(0).integers(0, 255, (3, 48, 32, 3), dtype=np.uint8))
    latents = demo.denoise(PHOTO, tall_poses, settings(width=32, height=48), progress=False)
    assert latents.shape == (1, 4, 3, 12, 8)
    frames = np.concatenate(list(demo.decode(latents)))
    assert frames.shape == (3, 48, 32, 3)
    with pytest.raises(AnimateError, match="multiples of 4"):
        demo.denoise(PHOTO, tall_poses, settings(width=30, height=48), progress=False)
