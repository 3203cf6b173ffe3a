"""The speed switches: equal output (--window-batch, --compile, the decoder's batch) within measured float32 noise;
the fast modes (--cfg-steps, --cache-interval) exact where they promise to be, and with the ControlNet and guider."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from animate.models.bundle import build_random_guider
from animate.models.controlnet import VideoControlNet
from animate.pipeline.animate import AnimatePipeline, AnimateSettings, Content, Control
from animate.pipeline.compile import compiled_models
from animate.pose.frames import PoseArray
from call_helpers import open_float64_models

PHOTO = Image.fromarray(np.random.default_rng(1).integers(0, 255, (96, 64, 3), dtype=np.uint8))
FACE = Image.fromarray(np.random.default_rng(2).integers(0, 255, (40, 40, 3), dtype=np.uint8))


def poses(n: int, seed: int = 0) -> PoseArray:
    return PoseArray(np.random.default_rng(seed).integers(0, 255, (n, 96, 64, 3), dtype=np.uint8))


def settings(**kw) -> AnimateSettings:
    """10 frames in 3 windows of 4 (overlap 1), 3 steps, CFG 3.5."""
    return AnimateSettings(**{"width": 64, "height": 96, "steps": 3, "context_frames": 4, "context_overlap": 1,
                              "seed": 3, **kw})


def guided_models():
    """Tiny float64 models (opened: poses and frames reach the output) with a guider and an opened depth ControlNet
    (a float32 pipeline casts the same weights)."""
    models = build_random_guider(open_float64_models(seed=4), "tiny", seed=4).to(dtype=torch.float64)
    net = VideoControlNet.from_animate_unet(models.animate_unet, latent_scale=8)
    with torch.no_grad():
        for name, param in net.named_parameters():
            if "controlnet_down_blocks" in name or "controlnet_mid_block" in name:
                param.normal_(std=0.2)
    models.controlnets["depth"] = net.to(torch.float64)
    return models


def run(pipeline, frames: int = 10, controls: bool = True, content: bool = True, **kw) -> torch.Tensor:
    net = pipeline.models.controlnets["depth"]
    control = [Control(net, poses(frames, seed=9), 0.7)] if controls else []
    guide = Content(face=FACE, prompt="a red shirt", negative_prompt="blue") if content else None
    return pipeline.denoise(PHOTO, poses(frames), settings(**kw), progress=False, controls=control, content=guide)


@pytest.fixture(scope="module")
def pipeline32():
    return AnimatePipeline.for_inference(guided_models())


@pytest.fixture(scope="module")
def pipeline64():
    return AnimatePipeline.for_inference(guided_models(), dtype=torch.float64)


def assert_within_float32_noise(switched: torch.Tensor, plain: torch.Tensor, exact: torch.Tensor) -> None:
    """A float32 result of a switch is about as close to the float64 result as float32 rounding puts the plain
    float32 run: within 4x (measured: window batches up to 1.9x, channels-last decoding 2.4x). The tiny opened
    network amplifies rounding: plain float32 latents land 1e-5 .. 3e-5 from float64 (measured at
    ATEN_CPU_CAPABILITY default and avx2, 1 thread), so a fixed 1e-5 would test the CPU, not the switch; the
    switch's own exactness is the float64 check beside each of these."""
    noise = (plain - exact).abs().max()
    assert 0 < noise < 1e-3 and (switched - exact).abs().max() <= 4 * noise


def test_window_batches_give_the_same_video(pipeline32, pipeline64):
    """Windows stacked into one UNet call (ControlNet and guider on, CFG): the same video as one window a call (3
    windows in calls of 2 and 1)."""
    exact = run(pipeline64)
    assert (run(pipeline64, window_batch=2) - exact).abs().max() < 1e-12
    assert_within_float32_noise(run(pipeline32, window_batch=2), run(pipeline32), exact)


def test_cfg_steps_zero_is_cfg_one_bit_for_bit(pipeline32):
    """No guided step is exactly the unguided run, negative prompt and all (it goes unread without CFG)."""
    assert torch.equal(run(pipeline32, cfg_steps=0.0), run(pipeline32, guidance=1.0))


def test_cfg_steps_half_follows_the_guided_run_up_to_the_switch(pipeline32):
    """At 0.5 of 4 steps, the latents after steps 0 and 1 are the guided run's bit for bit; after that they part."""
    seen = {}
    for share in (1.0, 0.5):
        seen[share] = []
        pipeline32.denoise(PHOTO, poses(10), settings(steps=4, cfg_steps=share), progress=False,
                           on_step=lambda step, latents, out=seen[share]: out.append(latents.clone()))
    assert all(torch.equal(a, b) for a, b in zip(seen[1.0][:2], seen[0.5][:2]))
    assert not torch.allclose(seen[1.0][2], seen[0.5][2])
    assert settings(steps=10, cfg_steps=0.3).guided_steps(10) == 3
    assert settings(steps=10, cfg_steps=0.3, guidance=1.0).guided_steps(10) == 0


@pytest.mark.parametrize("steps", [4, 5])
def test_deep_blocks_run_every_k_steps_per_window(pipeline32, steps):
    """--cache-interval 2: the mid block (inside the cached part) runs ceil(steps/2) x windows times; the outer
    level every step (its first down block, steps x windows); each window group keeps its own cache."""
    unet = pipeline32.models.denoising_unet
    calls = {"mid": 0, "outer": 0}
    hooks = [unet.mid_block.register_forward_hook(lambda *_: calls.__setitem__("mid", calls["mid"] + 1)),
             unet.down_blocks[0].register_forward_hook(lambda *_: calls.__setitem__("outer", calls["outer"] + 1))]
    try:
        run(pipeline32, controls=False, content=False, steps=steps, cache_interval=2)
        assert calls == {"mid": math.ceil(steps / 2) * 3, "outer": steps * 3}
        calls.update(mid=0, outer=0)
        run(pipeline32, controls=False, content=False, steps=steps, cache_interval=2, window_batch=2)
        assert calls == {"mid": math.ceil(steps / 2) * 2, "outer": steps * 2}  # 3 windows in 2 calls
    finally:
        for hook in hooks:
            hook.remove()


def test_the_outer_level_on_its_own_deep_output_is_the_full_call(pipeline64):
    """The UNet's outer-level call, given the deep blocks' output of the same call, is that call exactly (float64,
    measured 0): reference, pose, motion, a guide and ControlNet residuals on every skip included; the conditional
    half of a CFG call's deep output serves the conditional call alone. A wrong skip order or residual fails it."""
    models = pipeline64.models
    unet, net = models.animate_unet, models.controlnets["depth"]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 3, 12, 8, generator=generator, dtype=torch.float64)
    context = torch.randn(2, 1, models.denoising_unet.config.cross_attention_dim, generator=generator,
                          dtype=torch.float64)
    pose = unet.pose_guider(torch.rand(3, 3, 96, 64, generator=generator, dtype=torch.float64))
    reference = models.reference_net(torch.randn(1, 4, 12, 8, generator=generator, dtype=torch.float64), context[1:])
    guide = pipeline64.content_guide(Content(face=FACE, prompt="a red shirt"), True,
                                     pipeline64.encode_face(FACE)[1])
    with torch.no_grad():
        down, mid = net(x, 500, context, torch.rand(1, 3, 3, 96, 64, generator=generator, dtype=torch.float64))
        call = dict(reference=reference, reference_index=[-1, 0], down_residuals=down, mid_residual=mid, guide=guide)
        full, deep = unet(x, 500, context, pose, keep_deep=True, **call)
        assert torch.equal(unet(x, 500, context, pose, deep=deep, **call), full)
        shifted = [*down[:1], down[1] + 1, *down[2:]]  # a residual on an outer skip is read by the outer level
        assert not torch.allclose(unet(x, 500, context, pose, deep=deep, **{**call, "down_residuals": shifted}), full)
        plain = dict(reference=reference, keep_deep=True)  # the same CFG batch without ControlNet and guide
        _, deep = unet(x, 500, context, pose, reference_index=[-1, 0], **plain)
        cond, cond_deep = unet(x[1:], 500, context[1:], pose, reference_index=[0], **plain)
        half = deep[len(deep) // 2 :]
        assert (half - cond_deep).abs().max() < 1e-12  # the CFG call's second half is the conditional call's
        assert torch.equal(unet(x[1:], 500, context[1:], pose, reference=reference, reference_index=[0],
                                deep=cond_deep), cond)


def test_cached_steps_equal_full_steps_when_the_deep_blocks_would_not_change(pipeline64):
    """The outer level on the deep blocks' output of the same call is the full call exactly: a cached run at one
    step is the uncached run (K=2, 1 step), and at 2 steps it differs (the cache is reused, not recomputed)."""
    assert torch.equal(run(pipeline64, steps=1, cache_interval=2), run(pipeline64, steps=1))
    assert not torch.allclose(run(pipeline64, steps=2, cache_interval=2), run(pipeline64, steps=2))


def test_the_fast_modes_combine_with_the_controlnet_and_guider(pipeline32, pipeline64):
    """CFG for half the steps, DeepCache at 2 and two windows a call, with a ControlNet and face + prompt: the same
    video whether the windows are batched or not (float64: exact to 1e-12), and a different one from the full run;
    the cache switches from both CFG halves to the conditional one mid-way."""
    fast = dict(frames=7, steps=4, cfg_steps=0.25, cache_interval=2)  # 2 windows
    exact = run(pipeline64, **fast)
    assert (run(pipeline64, window_batch=2, **fast) - exact).abs().max() < 1e-12
    assert_within_float32_noise(run(pipeline32, window_batch=2, **fast), run(pipeline32, **fast), exact)
    assert not torch.allclose(run(pipeline32, **fast), run(pipeline32, frames=7, steps=4), atol=1e-3)


def test_decoding_several_frames_a_call_gives_the_same_frames(pipeline32, pipeline64):
    """The decoder's batch (8 on a GPU) changes nothing beyond float32 noise."""
    latents = torch.randn(1, 4, 5, 12, 8, generator=torch.Generator().manual_seed(0))

    def frames(pipeline, batch):
        return torch.from_numpy(np.concatenate(list(pipeline.decode(latents, float_output=True,
                                                                    frames_per_call=batch))))

    assert (frames(pipeline64, 4) - frames(pipeline64, 1)).abs().max() < 1e-12
    assert_within_float32_noise(frames(pipeline32, 4), frames(pipeline32, 1), frames(pipeline64, 1))


def test_compiled_models_give_the_same_video(pipeline64):
    """--compile's models (here torch.compile's eager backend: inductor's compile takes minutes on 2 cores) in
    channels-last memory: the same video and frames within float32 noise; the objects and weights are the same. The
    ControlNet and the decoder are compiled here; the denoising UNet's compiled call (one graph, the same output) is
    test_call's, which this suite already pays for."""
    models = guided_models()
    pipeline = AnimatePipeline.for_inference(models)
    one = dict(frames=4, steps=1)  # one window, one step: one compile of each model
    plain, exact = run(pipeline, **one), run(pipeline64, **one)

    def frames(pipe, latents):
        return torch.from_numpy(np.concatenate(list(pipe.decode(latents, float_output=True))))

    plain_frames, exact_frames = frames(pipeline, exact), frames(pipeline64, exact)
    net = models.controlnets["depth"]
    targets = pipeline.per_step_models()
    assert list(targets) == ["denoising UNet", "depth ControlNet", "decoder"]
    del targets["denoising UNet"]
    assert compiled_models(targets, backend="eager") == ["depth ControlNet", "decoder"]
    assert models.controlnets["depth"] is net and net._compiled_call_impl is not None
    assert net.controlnet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert_within_float32_noise(run(pipeline, **one), plain, exact)
    assert_within_float32_noise(frames(pipeline, exact), plain_frames, exact_frames)
