"""The denoising call is explicit: every per-call input is an argument, scoped to that call, and nothing stays behind."""

import logging

import pytest
import torch

from animate.models.unet import FrameCall
from call_helpers import open_float64_models, stray_tensors
from stages.network import AnimateNet


def call_inputs(models, frames: int, seed: int) -> dict:
    """Seeded inputs of one call: latents, context, pose features, ReferenceNet tokens, motion on when frames > 2."""
    generator = torch.Generator().manual_seed(seed)
    draw = lambda *shape: torch.randn(*shape, generator=generator, dtype=torch.float64)  # noqa: E731
    context = draw(1, 1, 64)
    with torch.no_grad():
        reference = models.reference_net(draw(1, 4, 16, 16), context)
        pose = models.pose_guider(draw(frames, 3, 128, 128).sigmoid())
    return dict(latents=draw(1, 4, frames, 16, 16), timestep=torch.tensor(700 - 100 * seed), context=context,
                pose_features=pose, reference=reference, motion=frames > 2)


def test_a_call_made_inside_another_leaves_both_as_if_alone():
    """A second call with other inputs (frames, pose, reference, timestep, motion off) runs from a hook at mid_block,
    in the middle of the first. Each must equal its uninterrupted run bit for bit, and no module may hold a tensor
    of either afterwards."""
    models = open_float64_models(3)
    unet = models.animate_unet
    outer, inner = call_inputs(models, frames=3, seed=1), call_inputs(models, frames=2, seed=2)
    with torch.no_grad():
        alone_outer, alone_inner = unet(**outer), unet(**inner)
        nested, started = [], []

        def interrupt(*_):
            if not started:  # the inner call passes mid_block too
                started.append(True)
                nested.append(unet(**inner))

        hook = unet.unet.mid_block.register_forward_hook(interrupt)
        try:
            interrupted = unet(**outer)
        finally:
            hook.remove()
    assert len(nested) == 1 and len(started) == 1
    assert torch.equal(interrupted, alone_outer)
    assert torch.equal(nested[0], alone_inner)
    assert (alone_outer[:, :, :2] - alone_inner).abs().max() > 1e-3  # the two calls really differ
    assert stray_tensors(models.animate_unet, models.reference_net) == []


def test_the_hooks_read_the_call_they_run_in():
    """Positive control for the test above: the pose features, frame count and motion switch reach the UNet only
    through the call, and the bare diffusers UNet outside a call is the plain image UNet."""
    models = open_float64_models(3)
    unet = models.animate_unet
    inputs = call_inputs(models, frames=3, seed=1)
    with torch.no_grad():
        full = unet(**inputs)
        no_pose = unet(**{**inputs, "pose_features": None})
        no_motion = unet(**{**inputs, "motion": False})
        plain = unet(**{**inputs, "pose_features": None, "motion": False, "reference": None})
        bare = unet.unet(inputs["latents"][0].transpose(0, 1), inputs["timestep"],
                         encoder_hidden_states=inputs["context"].expand(3, -1, -1), return_dict=False)[0]
    assert (full - no_pose).abs().max() > 1e-3 and (full - no_motion).abs().max() > 1e-3
    assert torch.equal(plain[0].transpose(0, 1), bare)


def test_a_training_step_leaves_no_tensor_on_any_module():
    models = open_float64_models(3, motion=True)
    net = AnimateNet(models.reference_net, models.animate_unet).train()
    net.animate_unet.enable_gradient_checkpointing()
    generator = torch.Generator().manual_seed(0)
    draw = lambda *shape: torch.randn(*shape, generator=generator, dtype=torch.float64)  # noqa: E731
    out = net(draw(2, 4, 3, 8, 8), torch.tensor([10, 900]), draw(2, 4, 8, 8), draw(2, 1, 64),
              draw(2, 3, 3, 64, 64).sigmoid(), torch.tensor([False, True]))
    out.square().mean().backward()
    assert stray_tensors(net) == []


def skip_shapes(unet, sample: torch.Tensor, timestep, context) -> tuple[list[tuple], tuple]:
    """The shapes of the UNet's skip features (conv_in's output, then every down block's) and of the mid block's."""
    seen = []
    hooks = [unet.conv_in.register_forward_hook(lambda _m, _a, out: seen.append(out.shape))]
    hooks += [block.register_forward_hook(lambda _m, _a, out: seen.extend(t.shape for t in out[1]))
              for block in unet.down_blocks]
    hooks.append(unet.mid_block.register_forward_hook(lambda _m, _a, out: seen.append(out.shape)))
    try:
        unet(sample, timestep, encoder_hidden_states=context)
    finally:
        for hook in hooks:
            hook.remove()
    return seen[:-1], seen[-1]


def test_controlnet_residuals_are_added_as_diffusers_adds_them():
    models = open_float64_models(3, motion=False)
    unet = models.animate_unet
    latents, timestep, context = (call_inputs(models, frames=1, seed=1)[k] for k in ("latents", "timestep", "context"))
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        down_shapes, mid_shape = skip_shapes(unet.unet, latents[:, :, 0], timestep, context)
        down = [0.1 * torch.randn(shape, generator=generator, dtype=torch.float64) for shape in down_shapes]
        mid = 0.1 * torch.randn(mid_shape, generator=generator, dtype=torch.float64)
        ours = unet(latents, timestep, context, down_residuals=down, mid_residual=mid)
        theirs = unet.unet(latents[:, :, 0], timestep, encoder_hidden_states=context,
                           down_block_additional_residuals=down, mid_block_additional_residual=mid,
                           return_dict=False)[0]
        without = unet(latents, timestep, context)
    assert len(down) == 12  # conv_in + 4 blocks x (2 layers + a downsampler, none in the last)
    assert torch.equal(ours[:, :, 0], theirs)
    assert (ours - without).abs().max() > 1e-3
    with pytest.raises(ValueError, match="both"):
        unet(latents, timestep, context, down_residuals=down)


def test_the_call_compiles_as_one_graph():
    """torch.compile(fullgraph=True) refuses any graph break: the whole call, reference attention, pose and motion
    hooks included, is one graph. The eager backend runs the same kernels: measured equal bit for bit at every
    capability and thread count; 1e-12 for CPUs we have not seen."""
    models = open_float64_models(3)
    inputs = {**call_inputs(models, frames=3, seed=1), "reference_index": [0]}
    compiled = torch.compile(models.animate_unet, backend="eager", fullgraph=True)
    try:
        with torch.no_grad():
            assert torch.allclose(compiled(**inputs), models.animate_unet(**inputs), rtol=0, atol=1e-12)
    finally:
        torch._dynamo.reset()


def test_every_attention_processor_takes_the_reference_key():
    """diffusers hands `reference` to attn1 and attn2 alike and warns, per layer and call, about a processor that
    does not declare it; ours all do. A processor that does not shows the warning is seen."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    models = open_float64_models(3)
    inputs = call_inputs(models, frames=3, seed=1)
    warnings: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: warnings.append(record.getMessage())
    logger = logging.getLogger("diffusers.models.attention_processor")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)  # the CLI quiets diffusers; an earlier test may have run it
    try:
        with torch.no_grad():
            models.animate_unet(**inputs)
            models.reference_net(torch.randn(1, 4, 16, 16, dtype=torch.float64), inputs["context"])
        assert warnings == []
        models.denoising_unet.mid_block.attentions[0].transformer_blocks[0].attn2.set_processor(AttnProcessor2_0())
        with torch.no_grad():
            models.animate_unet(**inputs)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert any("['reference'] are not expected by AttnProcessor2_0" in w for w in warnings)


def test_a_reference_index_that_does_not_fit_is_refused():
    models = open_float64_models(3)
    inputs = {**call_inputs(models, frames=1, seed=1), "motion": False}
    inputs["latents"] = inputs["latents"].repeat(2, 1, 1, 1, 1)
    inputs["context"] = inputs["context"].repeat(2, 1, 1)
    for index in ([0], [0, 0, 0], [0, 1], [-2, 0]):  # too short, too long, a reference that is not there, below -1
        with pytest.raises(ValueError, match="one entry per video"):
            models.animate_unet(**inputs, reference_index=index)
    assert models.animate_unet(**inputs, reference_index=[-1, 0]).shape == (2, 4, 1, 16, 16)


def test_stray_tensors_finds_a_tensor_left_on_a_module_or_a_processor():
    """Positive control of the 'nothing stays behind' checks above."""
    models = open_float64_models(3)
    assert stray_tensors(models.animate_unet) == []
    processor = models.denoising_unet.mid_block.attentions[0].transformer_blocks[0].attn1.processor
    processor.kept = [torch.zeros(1)]
    models.animate_unet._frames = FrameCall(2, torch.ones(1), True)  # a record not restored
    models.animate_unet.pose_guider.cache = {"features": torch.ones(1)}
    found = stray_tensors(models.animate_unet)
    assert any(path.endswith("attn1.processor.kept[0]") for path in found)
    assert any(path.endswith("_frames.pose_features") for path in found)
    assert any(path.endswith("pose_guider.cache['features']") for path in found)
    assert len(found) == 3
