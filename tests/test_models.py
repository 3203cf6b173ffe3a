"""Model structure and the reference-attention mechanism (tiny, random weights; sd15 on the meta device)."""

import json
from pathlib import Path

import pytest
import torch

from animate.models.bundle import build_animate_unets, build_random_models, size_config
from animate.models.motion_module import sinusoid_table
from animate.models.reference import CrossAttention, ReferenceRead, ReferenceReader, attend, self_attention_layers
from call_helpers import open_float64_models

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
    reference_net, animate_unet = sd15_unets
    reference, denoising, pose_guider = reference_net.unet, animate_unet.unet, animate_unet.pose_guider
    assert shapes(reference) == key_list("reference_unet.txt")
    assert shapes(denoising) == key_list("denoising_unet_full.txt")
    assert shapes(pose_guider) == key_list("pose_guider.txt")
    motion = {k: v for k, v in shapes(denoising).items() if ".motion_modules." in k}
    assert motion == key_list("motion_module.txt")
    two_d = {k: v for k, v in shapes(denoising).items() if ".motion_modules." not in k}
    assert two_d == key_list("denoising_unet_no_mm.txt")


def test_tiny_keeps_the_sd15_topology(sd15_unets):
    tiny = build_random_models("tiny")
    for sd15_model, tiny_model in zip((net.unet for net in sd15_unets), (tiny.reference_unet, tiny.denoising_unet)):
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
    # ATEN_CPU_CAPABILITY (default, avx2, avx512) and thread count (1, 2) on outputs ~1.3: 1e-10 leaves 4 orders.
    models = build_random_models("tiny").to(dtype=torch.float64)
    unet = models.animate_unet
    assert unet.motion_pe_length == 32
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, 5, 8, 8, generator=generator, dtype=torch.float64)
    context = torch.randn(1, 1, 64, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        joint = unet(latents, 10, context)
        alone = unet(latents[:, :, :1], 10, context)
        assert torch.allclose(joint[:, :, :1], alone, rtol=0, atol=1e-10)  # zero-initialised proj_out: independent
        for name, param in unet.named_parameters():
            if name.endswith("temporal_transformer.proj_out.weight"):
                param.normal_(std=0.2, generator=generator)
        joint = unet(latents, 10, context)
        alone = unet(latents[:, :, :1], 10, context)
    assert (joint[:, :, :1] - alone).abs().max() > 1e-3  # now frame 0 sees the other frames (measured 0.89)


def test_pose_features_are_added_after_conv_in():
    models = build_random_models("tiny", motion=False)
    seen = []
    models.denoising_unet.down_blocks[0].resnets[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    sample, context = torch.randn(2, 4, 1, 8, 8), torch.randn(2, 1, 64)
    pose = torch.randn(1, 32, 8, 8)  # one copy for both CFG halves
    with torch.no_grad():
        models.animate_unet(sample, 5, context)
        models.animate_unet(sample, 5, context, pose)
    assert torch.equal(seen[1], seen[0] + pose)  # conv_in's output + the features, bit for bit


def test_reading_own_tokens_equals_plain_self_attention():
    # float64; the two paths differ by rounding only: measured <= 1.2e-16 on outputs ~1 at every capability and
    # thread count, so 1e-12.
    attn = self_attention_layers(open_float64_models(0).denoising_unet)[0]
    tokens = torch.randn(3, 20, attn.to_q.in_features, dtype=torch.float64)
    reader = ReferenceReader(0)
    with torch.no_grad():
        plain = reader(attn, tokens)
        with_self = reader(attn, tokens, reference=ReferenceRead([tokens], (0, 1, 2)))
        with_other = reader(attn, tokens, reference=ReferenceRead([tokens], (1, 1, 1)))
    assert torch.allclose(with_self, plain, rtol=0, atol=1e-12)
    assert (with_other - plain).abs().max() > 1e-3


def test_reference_of_the_frame_itself_leaves_the_whole_unet_unchanged():
    """ReferenceNet = denoising UNet's weights, reference = the frame, t = 0: every attn1 reads a copy of its own keys."""
    # float64, 16x16 latents (a 2x2 bottom level): |with_reference - plain| measured <= 1.5e-14 at every capability
    # (default, avx2, avx512) and thread count (1, 2); 1e-10 leaves 4 orders, another reference moves it O(1).
    models = open_float64_models(0, motion=False)
    models.reference_unet.load_state_dict(models.denoising_unet.state_dict(), strict=False)
    latents = torch.randn(1, 4, 1, 16, 16, dtype=torch.float64)
    context = torch.randn(1, 1, 64, dtype=torch.float64)
    with torch.no_grad():
        plain = models.animate_unet(latents, 0, context)
        own = models.reference_net(latents[:, :, 0], context)
        with_reference = models.animate_unet(latents, 0, context, reference=own)
        other = models.reference_net(torch.randn(1, 4, 16, 16, dtype=torch.float64), context)
        with_other = models.animate_unet(latents, 0, context, reference=other)
    assert torch.allclose(with_reference, plain, rtol=0, atol=1e-10)
    assert (with_other - plain).abs().max() > 1e-3


def test_unconditional_half_equals_a_run_without_reference_exactly():
    models = build_random_models("tiny")
    frames = 3
    latents = torch.randn(1, 4, frames, 8, 8).repeat(2, 1, 1, 1, 1)
    context = torch.cat([torch.zeros(1, 1, 64), torch.randn(1, 1, 64)])
    pose = torch.randn(frames, 32, 8, 8)
    with torch.no_grad():
        reference = models.reference_net(torch.randn(1, 4, 8, 8), context[1:])
        guided = models.animate_unet(latents, 500, context, pose, reference=reference,
                                     reference_index=[-1, 0])
        unreferenced = models.animate_unet(latents, 500, context, pose)
    assert torch.equal(guided[0], unreferenced[0])
    assert (guided[1] - unreferenced[1]).abs().max() > 1e-3


def test_reference_net_stops_after_its_last_write():
    models = build_random_models("tiny")
    last = models.reference_unet.up_blocks[3].attentions[2]
    ran = []
    for module in (last.transformer_blocks[0].attn2, last.transformer_blocks[0].ff, last.proj_out):
        module.register_forward_hook(lambda *_: ran.append(1))
    with torch.no_grad():
        tokens = models.reference_net(torch.randn(1, 4, 8, 8), torch.randn(1, 1, 64))
    assert ran == []
    assert models.reference_unet.conv_out is None
    assert len(tokens) == 16 and all(t.shape[0] == 1 and t.dim() == 3 for t in tokens)
    widths = [attn.to_q.in_features for attn in self_attention_layers(models.reference_unet)]
    assert [t.shape[-1] for t in tokens] == widths  # each layer's own attn1 input


def test_attention_matches_diffusers_default_processor():
    from diffusers.models.attention_processor import AttnProcessor2_0

    # Same projections and SDPA call in the same layout: the results are the same bits (measured: max |diff| 0).
    block = open_float64_models(0).denoising_unet.down_blocks[1].attentions[0].transformer_blocks[0]
    x = torch.randn(2, 12, block.attn1.to_q.in_features, dtype=torch.float64)
    context = torch.randn(2, 1, 64, dtype=torch.float64)
    with torch.no_grad():
        ours = block.attn1.to_out[0](attend(block.attn1.heads, block.attn1.to_q(x), block.attn1.to_k(x),
                                            block.attn1.to_v(x)))
        theirs = AttnProcessor2_0()(block.attn1, x)
        cross = CrossAttention()(block.attn2, x, context, reference=object())
        theirs_cross = AttnProcessor2_0()(block.attn2, x, context)
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-12)
    assert torch.allclose(cross, theirs_cross, rtol=0, atol=1e-12)
