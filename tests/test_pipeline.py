"""The denoising loop: reference once per video, windows, guidance, seeds, the stage-1 image case."""

import numpy as np
import pytest
import torch
from PIL import Image

from animate.errors import AnimateError
from animate.models.bundle import build_random_models
from animate.pipeline.animate import AnimatePipeline, AnimateSettings
from animate.pose.frames import PoseArray
from call_helpers import open_float64_models, stray_tensors


def poses(n: int, seed: int = 0) -> PoseArray:
    return PoseArray(np.random.default_rng(seed).integers(0, 255, (n, 32, 32, 3), dtype=np.uint8))


PHOTO = Image.fromarray(np.random.default_rng(1).integers(0, 255, (48, 48, 3), dtype=np.uint8))


def settings(**kw) -> AnimateSettings:
    return AnimateSettings(**{"width": 32, "height": 32, "steps": 2, **kw})


@pytest.fixture(scope="module")
def pipeline():
    return AnimatePipeline.for_inference(build_random_models("tiny", seed=5))


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


def test_reference_runs_once_per_video_and_nothing_stays_behind(pipeline):
    runs = []
    hook = pipeline.models.reference_unet.register_forward_pre_hook(lambda *_: runs.append(1))
    try:
        pipeline.denoise(PHOTO, poses(30), settings(steps=3, context_frames=12, context_overlap=4), progress=False)
    finally:
        hook.remove()
    assert len(runs) == 1  # not per step (3) nor per window (3)
    assert stray_tensors(pipeline) == []  # the tokens lived in the call, not on a module or processor


def test_window_layout_does_not_change_independent_frames():
    """Zero-initialised motion modules leave frames independent: blending must then be exact averaging.

    float64, one step: the model's rounding is then ~1e-16 and what remains is the float32 blend weights, whose sums
    miss 1 by <= 3e-8 (measured), times latents of size <= 1.4: measured 3.7e-8 at every capability, so atol 1e-7.
    More steps on this chaotic 4x4 latent (1x1 GroupNorm groups) grow that to 1e-4..0.25 depending on the CPU.
    """
    float64 = AnimatePipeline.for_inference(build_random_models("tiny", seed=5), dtype=torch.float64)
    latents = torch.randn(1, 4, 20, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    one_window = float64.denoise(PHOTO, poses(20), settings(context_frames=20, steps=1), latents=latents.clone(),
                                 progress=False)
    windows = float64.denoise(PHOTO, poses(20), settings(context_frames=8, context_overlap=4, steps=1),
                              latents=latents.clone(), progress=False)
    assert torch.allclose(one_window, windows, rtol=0, atol=1e-7)


def test_trained_motion_modules_make_windows_matter():
    pipe = AnimatePipeline.for_inference(open_float64_models(6, dtype=torch.float32))
    latents = torch.randn(1, 4, 20, 4, 4)
    one_window = pipe.denoise(PHOTO, poses(20), settings(context_frames=20, steps=1), latents=latents.clone(),
                              progress=False)
    windows = pipe.denoise(PHOTO, poses(20), settings(context_frames=8, context_overlap=4, steps=1),
                           latents=latents.clone(), progress=False)
    assert (one_window - windows).abs().max() > 1e-3


def test_stage1_image_pipeline_is_one_frame_without_motion_modules():
    pipe = AnimatePipeline.for_inference(build_random_models("tiny", seed=7, motion=False))
    assert pipe.max_context_frames is None
    latents = pipe.denoise(PHOTO, poses(1), settings(), progress=False)
    frames = list(pipe.decode(latents))
    assert latents.shape == (1, 4, 1, 4, 4)
    assert len(frames) == 1 and frames[0].shape == (1, 32, 32, 3) and frames[0].dtype == np.uint8


def test_dpm_solver_and_no_guidance_run(pipeline):
    out = pipeline.denoise(PHOTO, poses(3), settings(sampler="dpm++", guidance=1.0), progress=False)
    assert out.shape == (1, 4, 3, 4, 4) and torch.isfinite(out).all()


def test_decode_streams_chunks_one_frame_at_a_time_and_leaves_the_vae_as_it_was(pipeline):
    sizes = []
    hook = pipeline.models.vae.decoder.register_forward_pre_hook(lambda _m, args: sizes.append(len(args[0])))
    try:
        chunks = list(pipeline.decode(torch.randn(1, 4, 19, 4, 4), chunk=8))
    finally:
        hook.remove()
    assert [len(c) for c in chunks] == [8, 8, 3]
    assert all(c.shape[1:] == (32, 32, 3) for c in chunks)
    assert sizes == [1] * 19  # flat activation memory
    assert not pipeline.models.vae.use_slicing  # a training run's VAE keeps encoding whole batches


def test_decode_gives_float_frames_for_comparisons(pipeline):
    latents = torch.randn(1, 4, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    as_uint8 = np.concatenate(list(pipeline.decode(latents)))
    as_float = np.concatenate(list(pipeline.decode(latents, float_output=True)))
    assert as_float.dtype == np.float32 and as_float.shape == as_uint8.shape
    assert 0 <= as_float.min() and as_float.max() <= 1
    assert np.abs(as_float * 255 - as_uint8).max() <= 0.5 + 1e-4  # the same frames, before rounding to 8 bits
    assert (np.abs(as_float * 255 - np.round(as_float * 255)) > 0.01).any()  # and not rounded


def test_the_pipeline_runs_models_as_they_are():
    """A training run previews its own models: building a pipeline must not freeze, cast or move them."""
    models = build_random_models("tiny", seed=5, motion=False)
    models.animate_unet.train()
    AnimatePipeline(models, "cpu", torch.float64)
    assert models.animate_unet.training and all(p.requires_grad for p in models.animate_unet.parameters())
    assert models.denoising_unet.conv_in.weight.dtype == torch.float32


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
    pipe = AnimatePipeline.for_inference(models, "cpu", torch.float32, offload=True)
    latents = torch.randn(1, 4, 3, 4, 4)
    offloaded = pipe.denoise(PHOTO, poses(3), settings(), latents=latents.clone(), progress=False)
    plain = AnimatePipeline.for_inference(build_random_models("tiny", seed=8)).denoise(PHOTO, poses(3), settings(),
                                                                          latents=latents.clone(), progress=False)
    assert torch.equal(offloaded, plain)  # the CPU is the device here: the same computation
    assert all(p.device.type == "cpu" for p in models.denoising_unet.parameters())


def test_no_reference_ablation_ignores_the_reference_net():
    """--no-reference: the ReferenceNet never runs and its weights cannot matter; with the reference they do."""
    models = build_random_models("tiny", seed=9)
    pipe = AnimatePipeline.for_inference(models)
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
    """--no-motion: changing one frame's pose changes only that frame; with (trained) motion modules it spreads.

    float64: without motion the other frames' rows are computed alike in both runs: measured equal at every
    capability (default, avx2, avx512) and thread count (1, 2); 1e-12 for CPUs we have not seen."""
    pipe = AnimatePipeline.for_inference(open_float64_models(6), dtype=torch.float64)
    latents = torch.randn(1, 4, 6, 4, 4, dtype=torch.float64)
    frames = poses(6).frames
    changed = frames.copy()
    changed[2] = 255 - changed[2]
    for motion in (False, True):
        a = pipe.denoise(PHOTO, PoseArray(frames), settings(steps=1, motion=motion), latents=latents.clone(),
                         progress=False)
        b = pipe.denoise(PHOTO, PoseArray(changed), settings(steps=1, motion=motion), latents=latents.clone(),
                         progress=False)
        others = [i for i in range(6) if i != 2]
        spread = (a[:, :, others] - b[:, :, others]).abs().max()
        assert (a[:, :, 2] - b[:, :, 2]).abs().max() > 1e-3
        assert (spread < 1e-12) if not motion else (spread > 1e-3)


def test_demo_size_runs_at_the_vae_scale_of_four():
    demo = AnimatePipeline.for_inference(build_random_models("demo", seed=0))
    assert demo.models.latent_scale == 4
    tall_poses = PoseArray(np.random.default_rng(0).integers(0, 255, (3, 48, 32, 3), dtype=np.uint8))
    latents = demo.denoise(PHOTO, tall_poses, settings(width=32, height=48), progress=False)
    assert latents.shape == (1, 4, 3, 12, 8)
    frames = np.concatenate(list(demo.decode(latents)))
    assert frames.shape == (3, 48, 32, 3)
    with pytest.raises(AnimateError, match="multiples of 4"):
        demo.denoise(PHOTO, tall_poses, settings(width=30, height=48), progress=False)
