"""The Video ControlNet: wired into the denoising call (a copy of the UNet reproduces the UNet's own skip features),
neutral when fresh or at scale 0, and able to learn."""

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from animate.depth.maps import DepthClip
from animate.errors import AnimateError
from animate.models.bundle import build_random_models
from animate.models.controlnet import VideoControlNet, conditioning_channels, plain_unet
from animate.models.controlnet_files import load_controlnet
from animate.models.weights import load_models, save_weight_set
from animate.pipeline.animate import AnimatePipeline, AnimateSettings, Control
from animate.pose.frames import PoseArray

FRAMES, SIZE = 3, 64  # pixels; latents 8x8 at the tiny size's 8x VAE


@pytest.fixture(scope="module")
def models():
    """Tiny models in float64 with random (not zero) motion modules, so that the motion path is exercised."""
    models = build_random_models("tiny").to(dtype=torch.float64)
    generator = torch.Generator().manual_seed(1)
    for name, parameter in models.animate_unet.named_parameters():
        if ".motion_modules." in name:
            parameter.data = 0.05 * torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
    return models.animate_unet.eval()


def _inputs(unet, batch: int = 2):
    generator = torch.Generator().manual_seed(2)
    latents = torch.randn(batch, 4, FRAMES, SIZE // 8, SIZE // 8, generator=generator, dtype=torch.float64)
    context = torch.randn(batch, 1, unet.unet.config.cross_attention_dim, generator=generator, dtype=torch.float64)
    context[0] = 0  # CFG's unconditional half
    poses = torch.rand(1, 3, FRAMES, SIZE, SIZE, generator=generator, dtype=torch.float64)
    return latents, torch.tensor(500), context, poses


def _skip_features(unet, latents, timestep, context, pose_features):
    """The UNet's own skip features on a plain call (no reference): conv_in's output with the pose added, every down
    block's outputs, the mid block's output."""
    captured, hooks = [], []
    hooks.append(unet.unet.conv_in.register_forward_hook(lambda m, a, out: captured.append(out)))
    for block in unet.unet.down_blocks:
        hooks.append(block.register_forward_hook(lambda m, a, out: captured.extend(out[1])))
    mid = []
    hooks.append(unet.unet.mid_block.register_forward_hook(lambda m, a, out: mid.append(out)))
    try:
        unet(latents, timestep, context, pose_features)
    finally:
        for hook in hooks:
            hook.remove()
    return captured, mid[0]


@pytest.mark.parametrize("timestep", [torch.tensor(500), torch.tensor([300, 700])], ids=["one", "per-video"])
def test_a_copy_with_identity_outputs_reproduces_the_unets_skip_features(models, timestep):
    """The positive wiring test: a ControlNet copied from the UNet, with identity 1x1 output convolutions and the
    pose guider as its conditioning embedding, gives as residuals exactly the UNet's own skip features — for every
    frame and both CFG halves, through the motion modules."""
    net = VideoControlNet.from_animate_unet(models, latent_scale=8).eval()
    for conv in [*net.controlnet.controlnet_down_blocks, net.controlnet.controlnet_mid_block]:
        conv.weight.data = torch.eye(conv.weight.shape[0], dtype=torch.float64)[:, :, None, None]
        conv.bias.data.zero_()
    net.controlnet.controlnet_cond_embedding = models.pose_guider
    latents, _, context, poses = _inputs(models)
    pose_features = models.pose_guider(poses[0].transpose(0, 1))
    with torch.no_grad():
        skips, mid = _skip_features(models, latents, timestep, context, pose_features)
        down, mid_residual = net(latents, timestep, context, poses)
    assert len(down) == len(skips) == 12
    for ours, theirs in zip(down, skips):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
    torch.testing.assert_close(mid_residual, mid, rtol=0, atol=1e-12)
    # and the motion modules are part of it: without them the residuals differ
    with torch.no_grad():
        still, _ = net(latents, timestep, context, poses, motion=False)
    assert (still[-1] - down[-1]).abs().max() > 1e-3


def test_a_fresh_controlnet_changes_nothing_and_a_trained_one_does(models):
    net = VideoControlNet.from_animate_unet(models, latent_scale=8).eval()
    latents, timestep, context, poses = _inputs(models)
    pose_features = models.pose_guider(poses[0].transpose(0, 1))
    with torch.no_grad():
        plain = models(latents, timestep, context, pose_features)
        down, mid = net(latents, timestep, context, poses)
        assert all(r.abs().max() == 0 for r in down) and mid.abs().max() == 0
        assert torch.equal(models(latents, timestep, context, pose_features, down_residuals=down, mid_residual=mid),
                           plain)
        for conv in [*net.controlnet.controlnet_down_blocks, net.controlnet.controlnet_mid_block]:
            torch.nn.init.normal_(conv.weight, std=0.1)
        down, mid = net(latents, timestep, context, poses)
        controlled = models(latents, timestep, context, pose_features, down_residuals=down, mid_residual=mid)
        assert (controlled - plain).abs().max() > 1e-3
        down, mid = net(latents, timestep, context, poses, scale=0.0)
        assert torch.equal(models(latents, timestep, context, pose_features, down_residuals=down, mid_residual=mid),
                           plain)


def test_the_controlnet_copies_the_unet_without_its_motion_modules(models):
    unet = plain_unet(models)
    assert not any(".motion_modules." in key for key in unet.state_dict())
    net = VideoControlNet.from_animate_unet(models, latent_scale=8)
    assert net.motion_pe_length == models.motion_pe_length
    count = sum(len(block.motion_modules) for block in net.motion_blocks())
    assert count == 9  # 4 down blocks x 2 layers + the mid block's one
    torch.testing.assert_close(net.controlnet.down_blocks[2].motion_modules.state_dict(),
                               models.unet.down_blocks[2].motion_modules.state_dict())
    assert net.controlnet.conv_in.weight.data_ptr() != models.unet.conv_in.weight.data_ptr()  # a copy, not a share


@pytest.mark.parametrize("scale, widths", [(8, (16, 32, 96, 256)), (4, (16, 32, 96)), (2, (16, 32))])
def test_the_conditioning_embedding_downsamples_by_the_vaes_factor(scale, widths):
    assert conditioning_channels(scale) == widths
    models = build_random_models("tiny")
    net = VideoControlNet.from_animate_unet(models.animate_unet, latent_scale=scale)
    features = net.controlnet.controlnet_cond_embedding(torch.zeros(1, 3, 64, 64))
    assert features.shape[-1] == 64 // scale
    with pytest.raises(ValueError):
        conditioning_channels(3)


def test_image_only_unet_gives_an_image_controlnet():
    models = build_random_models("tiny", motion=False)
    net = VideoControlNet.from_animate_unet(models.animate_unet, latent_scale=8)
    assert net.motion_pe_length is None


# ---- in the pipeline ------------------------------------------------------------------------------------------------


def _frames(n: int, seed: int) -> PoseArray:
    return PoseArray(np.random.default_rng(seed).integers(0, 255, (n, 32, 32, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def pipeline():
    """float64: the random tiny model is chaotic, and in float32 it turns rounding into visible differences."""
    return AnimatePipeline.for_inference(build_random_models("tiny", seed=5), dtype=torch.float64)


@pytest.fixture(scope="module")
def trained(pipeline):
    """A ControlNet whose zero-initialised convolutions are not zero any more (as after training)."""
    net = VideoControlNet.from_animate_unet(pipeline.models.animate_unet, latent_scale=8)
    torch.manual_seed(3)
    embedding = net.controlnet.controlnet_cond_embedding.conv_out
    for conv in [*net.controlnet.controlnet_down_blocks, net.controlnet.controlnet_mid_block, embedding]:
        torch.nn.init.normal_(conv.weight, std=0.2)
    return pipeline.ready(net)


PHOTO = Image.fromarray(np.random.default_rng(1).integers(0, 255, (48, 48, 3), dtype=np.uint8))
SETTINGS = AnimateSettings(width=32, height=32, steps=2, context_frames=4, context_overlap=1)


def _run(pipeline, controls=()):
    latents = torch.randn(1, 4, 6, 4, 4, generator=torch.Generator().manual_seed(0))
    return pipeline.denoise(PHOTO, _frames(6, 0), SETTINGS, latents=latents, progress=False, controls=controls)


def test_control_scale_zero_is_no_control_bit_for_bit(pipeline, trained):
    plain = _run(pipeline)
    assert torch.equal(_run(pipeline, [Control(trained, _frames(6, 1), scale=0.0)]), plain)
    controlled = _run(pipeline, [Control(trained, _frames(6, 1), scale=0.7)])
    assert (controlled - plain).abs().max() > 1e-3  # and at 0.7 the control acts
    other_depth = _run(pipeline, [Control(trained, _frames(6, 2), scale=0.7)])
    assert (other_depth - controlled).abs().max() > 1e-4  # through the frames it reads


def test_two_controls_add_and_steps_outside_the_range_skip_the_net(pipeline, trained):
    calls = []
    hook = trained.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        _run(pipeline, [Control(trained, _frames(6, 1), start=0.0, end=0.5)])
    finally:
        hook.remove()
    assert len(calls) == 2 * 1  # two windows, on the first of the two steps only
    both = _run(pipeline, [Control(trained, _frames(6, 1), scale=0.4), Control(trained, _frames(6, 1), scale=0.3)])
    one = _run(pipeline, [Control(trained, _frames(6, 1), scale=0.7)])
    # The residuals are linear in the scale; the two sums round differently, which the random tiny model amplifies:
    # measured 1.2e-12 (default), 1.7e-11 (avx2), 1.5e-10 (avx512) in float64 on latents of ~1.
    torch.testing.assert_close(both, one, rtol=0, atol=1e-8)


@pytest.mark.parametrize("control, message", [
    (dict(frames=5), "control frames number 5"),
    (dict(scale=float("nan")), "--control-scale"),
    (dict(start=0.5, end=0.5), "--control-start"),
])
def test_bad_controls_are_refused(pipeline, trained, control, message):
    frames = _frames(control.pop("frames", 6), 1)
    with pytest.raises(AnimateError, match=message):
        _run(pipeline, [Control(trained, frames, **control)])


# ---- on disk --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def set_with_depth(tmp_path_factory):
    """A tiny weight set (our layout) holding a trained-looking depth ControlNet at scale 0.6."""
    models = build_random_models("tiny")
    net = VideoControlNet.from_animate_unet(models.animate_unet, latent_scale=8)
    torch.manual_seed(4)
    for name, parameter in net.named_parameters():
        if "controlnet_mid_block" in name or ".motion_modules." in name:
            torch.nn.init.normal_(parameter, std=0.1)
    models.controlnets["depth"], models.control_scales["depth"] = net, 0.6
    folder = save_weight_set(models, tmp_path_factory.mktemp("cn") / "set", "ours", torch.float32)
    return folder, net


def test_our_weight_set_keeps_the_controlnet_with_its_motion_modules_and_scale(set_with_depth, tmp_path):
    folder, net = set_with_depth
    loaded = load_models(folder)
    assert list(loaded.controlnets) == ["depth"] and loaded.control_scales == {"depth": 0.6}
    torch.testing.assert_close(loaded.controlnets["depth"].state_dict(), net.state_dict(), rtol=0, atol=0)
    assert loaded.controlnets["depth"].motion_pe_length == net.motion_pe_length
    again = save_weight_set(loaded, tmp_path / "again", "ours", torch.float32)  # what `animate convert` does
    assert load_models(again).control_scales == {"depth": 0.6}
    with pytest.raises(AnimateError, match="--layout ours"):
        save_weight_set(loaded, tmp_path / "moore", "moore", torch.float32)
    assert not (tmp_path / "moore").exists()


def test_controlnet_paths(set_with_depth, tmp_path):
    folder, net = set_with_depth
    from_file, scale = load_controlnet(folder / "animate.safetensors", "depth")
    assert scale == 0.6 and torch.equal(from_file.controlnet.conv_in.weight, net.controlnet.conv_in.weight)
    with pytest.raises(AnimateError, match="holds no pose ControlNet"):
        load_controlnet(folder, "pose")
    net.controlnet.save_pretrained(tmp_path / "video")  # a diffusers folder of ours keeps its motion modules
    video, scale = load_controlnet(tmp_path / "video", "depth")
    assert video.motion_pe_length == net.motion_pe_length and scale == 0.7
    torch.testing.assert_close(video.state_dict(), net.state_dict(), rtol=0, atol=0)
    image = VideoControlNet.from_animate_unet(build_random_models("tiny", motion=False).animate_unet, latent_scale=8)
    image.controlnet.save_pretrained(tmp_path / "image")  # an image ControlNet
    assert load_controlnet(tmp_path / "image", "depth")[0].motion_pe_length is None
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(AnimateError, match="not a ControlNet file"):
        load_controlnet(tmp_path / "junk.safetensors", "depth")
    with pytest.raises(AnimateError, match="unknown control"):
        load_controlnet(folder, "normal")


# ---- `animate infer --control` --------------------------------------------------------------------------------------


def _infer(ref, pose, *extra):
    return ["infer", "--ref", ref, "--pose", pose, "-W", "32", "-H", "48", "--steps", "2", "-L", "4",
            "--context-frames", "4", "--context-overlap", "1", "--no-progress", *extra]


@pytest.fixture
def depth_file(tmp_path):
    rng = np.random.default_rng(0)
    return DepthClip.from_nearness(rng.random((6, 48, 32)), 12).save(tmp_path / "dance.depth.npz")


def test_infer_with_pose_and_depth_controls(run_cli, ref_photo, pose_video, depth_file, set_with_depth):
    result = run_cli(_infer(ref_photo, pose_video(6), "--weights", "random:tiny", "--control", "pose,depth",
                            "--depth", depth_file, "--control-scale", "0.5,0.7", "-o", "a.mp4"))
    assert result.code == 0, result.err
    assert "pose ControlNet: a fresh copy of the UNet" in result.err and "depth ControlNet" in result.err
    folder, _ = set_with_depth
    result = run_cli(_infer(ref_photo, pose_video(6), "--weights", folder, "--control", "depth", "--depth", depth_file,
                            "-o", "b.mp4"))
    assert result.code == 0, result.err
    assert f"depth ControlNet: from {folder}" in result.err


@pytest.mark.parametrize("extra, message", [
    (["--control", "normal"], "unknown control 'normal'"),
    (["--depth", "x.mp4"], "--depth goes with --control"),
    (["--control", "depth"], "--depth auto estimates depth from a real dance video"),
    (["--control", "depth", "--depth", "missing.depth.npz"], "not found"),
    (["--control", "depth,depth"], "names a kind twice"),
    (["--control", "pose", "--control-scale", "-1"], "--control-scale must be a finite number >= 0"),
    (["--control", "pose", "--control-start", "0.9", "--control-end", "0.1"], "--control-start"),
    (["--control", "pose", "--controlnet", "a", "--controlnet", "b"], "one per --control kind"),
    (["--control", "pose", "--weights", "SET"], "has no pose ControlNet: train one"),
])
def test_bad_control_options_are_one_line(run_cli, ref_photo, pose_video, tiny_ours_weights, extra, message, tmp_path):
    extra = [str(tiny_ours_weights) if part == "SET" else part for part in extra]
    weights = [] if "--weights" in extra else ["--weights", "random:tiny"]
    result = run_cli(_infer(ref_photo, pose_video(6), *weights, *extra, "-o", "x.mp4"))
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.err
    assert not (tmp_path / "x.mp4").exists()


def test_a_short_depth_file_is_refused(run_cli, ref_photo, pose_video, tmp_path):
    short = DepthClip.from_nearness(np.random.default_rng(0).random((2, 48, 32)), 12).save(tmp_path / "s.depth.npz")
    result = run_cli(_infer(ref_photo, pose_video(6), "--weights", "random:tiny", "--control", "depth", "--depth", short,
                            "-o", "x.mp4"))
    assert result.code == 2 and result.err.strip().splitlines() == [f"error: --depth {short}: 2 frames, the dance has 4"]


def test_a_broken_controlnet_entry_is_one_line(set_with_depth, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    folder, _ = set_with_depth
    with safe_open(str(folder / "animate.safetensors"), "pt") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    for broken in ({**metadata, "controlnets": "{not json"}, {k: v for k, v in metadata.items() if k != "controlnets"},
                   {**metadata, "controlnets": '{"depth": {"config": {}, "motion_pe": null}}'}):
        save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=broken)
        with pytest.raises(AnimateError, match="bad.safetensors: (unreadable ControlNet entry|ControlNet 'depth')"):
            load_controlnet(tmp_path / "bad.safetensors", "depth")


def test_a_controlnet_of_another_size_is_refused(tmp_path, run_cli, ref_photo, pose_video):
    """A ControlNet whose conditioning embedding downsamples 4x cannot join a UNet whose VAE is 8x: one line."""
    models = build_random_models("tiny")
    VideoControlNet.from_animate_unet(models.animate_unet, latent_scale=4).controlnet.save_pretrained(tmp_path / "cn")
    result = run_cli(_infer(ref_photo, pose_video(6), "--weights", "random:tiny", "--control", "pose",
                            "--controlnet", tmp_path / "cn", "-o", "x.mp4"))
    assert result.code == 2 and "downsamples by 4, the VAE by 8" in result.err
    assert len(result.err.strip().splitlines()) == 1


class _ShortTable:
    """A ControlNet stand-in whose motion table covers 4 frames."""

    motion_pe_length = 4

    def __init__(self, net):
        self.net = net


def test_a_window_longer_than_the_controlnets_motion_table_is_refused(pipeline, trained):
    settings = dataclasses.replace(SETTINGS, context_frames=6, context_overlap=1)
    with pytest.raises(AnimateError, match="exceeds the ControlNet's motion table"):
        pipeline.denoise(PHOTO, _frames(40, 0), settings, progress=False,
                         controls=[Control(_ShortTable(trained), _frames(40, 1))])
