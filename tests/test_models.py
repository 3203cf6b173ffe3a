"""Model structure and the reference-attention mechanism (tiny, random weights; sd15 on the meta device)."""

import json
from pathlib import Path

import pytest
import torch

from animate.models.bundle import build_animate_unets, build_random_models, size_config
from animate.models.motion_module import sinusoid_table
from animate.models.reference import ReferenceAttention, ReferenceReader, ReferenceRows, attend, self_attention_layers
from animate.models.unet import denoise_video, has_motion_modules, motion_pe_length

KEY_LISTS = Path(__file__).parent / "data" / "animate_anyone_weights"


def key_list(name: str) -> dict[str, list[int]]:
    rows = (line.split("\t") for line in (KEY_LISTS / name).read_text().splitlines())
    return {key: json.loads(shape) for key, shape in rows}


def shapes(module: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


@pytest.fixture(scope="module")
def sd15_unets():
    config = size_config("sd15")
    with torch.device("meta"):
        return build_animate_unets(config["unet"], config["pose_guider_channels"], config["motion_pe_length"])


def test_sd15_keys_and_shapes_equal_the_released_lists(sd15_unets):
    reference, denoising, pose_guider = sd15_unets
    assert shapes(reference) == key_list("reference_unet.txt")
    assert shapes(denoising) == key_list("denoising_unet_full.txt")
    assert shapes(pose_guider) == key_list("pose_guider.txt")
    motion = {k: v for k, v in shapes(denoising).items() if ".motion_modules." in k}
    assert motion == key_list("motion_module.txt")
    two_d = {k: v for k, v in shapes(denoising).items() if ".motion_modules." not in k}
    assert two_d == key_list("denoising_unet_no_mm.txt")


def test_tiny_keeps_the_sd15_topology(sd15_unets):
    tiny = build_random_models("tiny")
    for sd15_model, tiny_model in zip(sd15_unets[:2], (tiny.reference_unet, tiny.denoising_unet)):
        assert len(self_attention_layers(tiny_model)) == len(self_attention_layers(sd15_model)) == 16
    count = lambda unet: sum(1 for k in unet.state_dict() if k.endswith("temporal_transformer.proj_out.weight"))  # noqa: E731
    assert count(tiny.denoising_unet) == count(sd15_unets[1]) == 21
    widths = tiny.denoising_unet.config.block_out_channels
    assert all(w % 32 == 0 for w in widths) and len(widths) == 4
    assert tiny.pose_guider.conv_out.out_channels == widths[0]


def test_motion_position_table_is_the_animatediff_sinusoid():
    table = sinusoid_table(32, 8)
    assert table.shape == (1, 32, 8)
    assert torch.allclose(table[0, :, 0], torch.sin(torch.arange(32.0)))
    assert torch.allclose(table[0, :, 1], torch.cos(torch.arange(32.0)))
    assert torch.equal(sinusoid_table(128, 8)[:, :32], table)  # a longer table is a superset


def test_motion_modules_start_as_identity_and_mix_frames_once_trained():
    # float64: in float32 the random tiny UNet (1x1 bottom level) turns batch-size-dependent kernel rounding into
    # |joint - alone| up to 5e-5 (seen on an AVX-512 Xeon); in float64 it measured <= 6.3e-15 at every
    # ATEN_CPU_CAPABILITY (default, avx2, avx512) on outputs of size ~1.3, so 1e-10 leaves 4 orders of headroom.
    models = build_random_models("tiny").to(dtype=torch.float64)
    unet = models.denoising_unet
    assert has_motion_modules(unet) and motion_pe_length(unet) == 32
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, 5, 8, 8, generator=generator, dtype=torch.float64)
    context = torch.randn(1, 1, 64, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        joint = denoise_video(unet, latents, 10, context, None)
        alone = denoise_video(unet, latents[:, :, :1], 10, context, None)
        assert torch.allclose(joint[:, :, :1], alone, rtol=0, atol=1e-10)  # zero-initialised proj_out: independent
        for name, param in unet.named_parameters():
            if name.endswith("temporal_transformer.proj_out.weight"):
                param.normal_(std=0.2, generator=generator)
        joint = denoise_video(unet, latents, 10, context, None)
        alone = denoise_video(unet, latents[:, :, :1], 10, context, None)
    assert (joint[:, :, :1] - alone).abs().max() > 1e-3  # now frame 0 sees the other frames (measured 0.89)


def test_pose_features_are_added_after_conv_in():
    models = build_random_models("tiny", motion=False)
    unet = models.denoising_unet
    seen = []
    unet.down_blocks[0].resnets[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    sample = torch.randn(2, 4, 1, 8, 8)
    pose = torch.randn(1, 32, 8, 8)  # one copy for both CFG halves
    with torch.no_grad():
        denoise_video(unet, sample, 5, torch.randn(2, 1, 64), None)
        denoise_video(unet, sample, 5, torch.randn(2, 1, 64), pose)
    assert torch.allclose(seen[1] - seen[0], pose.expand(2, -1, -1, -1), atol=1e-5)


def test_reading_own_tokens_equals_plain_self_attention():
    attn = self_attention_layers(build_random_models("tiny").denoising_unet)[0]
    tokens = torch.randn(3, 20, attn.to_q.in_features)
    rows = ReferenceRows()
    reader = ReferenceReader(rows)
    with torch.no_grad():
        plain = reader(attn, tokens)
        reader.set_reference(attn, tokens)
        rows.index = torch.arange(3)
        with_self = reader(attn, tokens)
        rows.index = torch.tensor([1, 1, 1])  # another row's tokens: must differ
        with_other = reader(attn, tokens)
    assert torch.allclose(with_self, plain, atol=1e-5)
    assert (with_other - plain).abs().max() > 1e-3


def test_reference_of_the_frame_itself_leaves_the_whole_unet_unchanged():
    """ReferenceNet = denoising UNet's weights, reference = the frame, t = 0: every attn1 reads a copy of its own keys."""
    models = build_random_models("tiny", motion=False)
    models.reference_unet.load_state_dict(models.denoising_unet.state_dict(), strict=False)
    control = ReferenceAttention(models.reference_unet, models.denoising_unet)
    latents, context = torch.randn(1, 4, 1, 8, 16), torch.randn(1, 1, 64)
    with torch.no_grad():
        plain = denoise_video(models.denoising_unet, latents, 0, context, None)
        control.encode(latents[:, :, 0], context)
        control.select(torch.tensor([0]))
        with_reference = denoise_video(models.denoising_unet, latents, 0, context, None)
        control.encode(torch.randn(1, 4, 8, 16), context)
        with_other = denoise_video(models.denoising_unet, latents, 0, context, None)
    assert torch.allclose(with_reference, plain, atol=1e-4)
    assert (with_other - plain).abs().max() > 1e-3


def test_unconditional_half_equals_a_run_without_reference_exactly():
    models = build_random_models("tiny")
    control = ReferenceAttention(models.reference_unet, models.denoising_unet)
    frames = 3
    latents = torch.randn(1, 4, frames, 8, 8).repeat(2, 1, 1, 1, 1)
    context = torch.cat([torch.zeros(1, 1, 64), torch.randn(1, 1, 64)])
    pose = torch.randn(frames, 32, 8, 8)
    with torch.no_grad():
        control.encode(torch.randn(1, 4, 8, 8), context[1:])
        control.select(torch.tensor([-1] * frames + [0] * frames))
        guided = denoise_video(models.denoising_unet, latents, 500, context, pose)
        control.select(None)
        unreferenced = denoise_video(models.denoising_unet, latents, 500, context, pose)
    assert torch.equal(guided[0], unreferenced[0])
    assert (guided[1] - unreferenced[1]).abs().max() > 1e-3


def test_reference_net_stops_after_its_last_write():
    models = build_random_models("tiny")
    control = ReferenceAttention(models.reference_unet, models.denoising_unet)
    last = models.reference_unet.up_blocks[3].attentions[2]
    ran = []
    for module in (last.transformer_blocks[0].attn2, last.transformer_blocks[0].ff, last.proj_out):
        module.register_forward_hook(lambda *_: ran.append(1))
    with torch.no_grad():
        control.encode(torch.randn(1, 4, 8, 8), torch.randn(1, 1, 64))
    assert ran == []
    assert models.reference_unet.conv_out is None
    assert all(reader.key is not None for reader in control.readers)
    assert control.tokens == [None] * 16  # raw tokens dropped once projected


def test_attend_matches_diffusers_default_processor():
    from diffusers.models.attention_processor import AttnProcessor2_0

    attn = self_attention_layers(build_random_models("tiny").denoising_unet)[3]
    x = torch.randn(2, 12, attn.to_q.in_features)
    with torch.no_grad():
        ours = attn.to_out[0](attend(attn.heads, attn.to_q(x), attn.to_k(x), attn.to_v(x)))
        theirs = AttnProcessor2_0()(attn, x)
    assert torch.allclose(ours, theirs, atol=1e-6)
