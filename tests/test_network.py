"""The trainable network: gradients reach exactly what is read, dropout masks exactly the chosen samples."""

import pytest
import torch

from animate.models.bundle import build_random_models
from stages.network import AnimateNet, unread_reference_parameters


def make_net(motion: bool = False, dtype: torch.dtype = torch.float32) -> AnimateNet:
    models = build_random_models("tiny", seed=11, motion=motion).to(dtype=dtype)
    torch.nn.init.normal_(models.pose_guider.conv_out.weight, std=0.1)  # zero-initialised: open it
    return AnimateNet(models.reference_net, models.animate_unet)


def inputs(batch: int = 2, frames: int = 1, dtype: torch.dtype = torch.float32, size: int = 8):
    generator = torch.Generator().manual_seed(4)
    draw = lambda *shape: torch.randn(*shape, generator=generator, dtype=torch.float64).to(dtype)  # noqa: E731
    return (draw(batch, 4, frames, size, size), torch.tensor([100, 900][:batch]), draw(batch, 4, size, size),
            draw(batch, 1, 64), draw(batch, frames, 3, 8 * size, 8 * size).sigmoid())


def test_every_read_parameter_gets_a_gradient_and_only_those():
    net = make_net()
    out = net(*inputs(), dropped=torch.tensor([False, False]))
    out.square().mean().backward()
    no_grad = {name for name, p in net.reference_net.unet.named_parameters() if p.grad is None}
    assert no_grad == set(unread_reference_parameters(net.reference_net.unet))
    assert all(p.grad is not None for p in net.animate_unet.parameters())


def test_dropped_samples_equal_a_run_without_reference():
    # float64 on 16x16 latents: a dropped row and a reference-free run differ only by batch-size-dependent
    # rounding, measured 0 at every capability (default, avx2, avx512) and thread count (1, 2); a leak is O(0.1).
    net = make_net(dtype=torch.float64).eval()
    noisy, t, ref, context, pose = inputs(dtype=torch.float64, size=16)
    with torch.no_grad():
        mixed = net(noisy, t, ref, context, pose, dropped=torch.tensor([True, False]))
        features = net.animate_unet.pose_guider(pose.flatten(0, 1))
        plain = net.animate_unet(noisy, t, context, features)  # no reference at all
        referenced = net(noisy, t, ref, context, pose, dropped=torch.tensor([False, False]))
    assert torch.allclose(mixed[0], plain[0], rtol=0, atol=1e-12)  # dropped: as if there were no reference
    assert torch.allclose(mixed[1], referenced[1], rtol=0, atol=1e-12)  # kept: unaffected by the other's dropout
    assert (mixed[1] - plain[1]).abs().max() > 1e-3


def test_per_sample_timesteps_reach_each_video():
    # float64 on 16x16 latents: batch of 2 against 1, measured <= 4.1e-15 at every capability and thread count;
    # a swapped timestep moves the output O(1).
    net = make_net(motion=True, dtype=torch.float64).eval()
    noisy, _, ref, context, pose = inputs(frames=3, dtype=torch.float64, size=16)
    with torch.no_grad():
        both = net(noisy, torch.tensor([100, 900]), ref, context, pose, dropped=torch.tensor([False, False]))
        first = net(noisy[:1], torch.tensor([100]), ref[:1], context[:1], pose[:1], dropped=torch.tensor([False]))
        second = net(noisy[1:], torch.tensor([900]), ref[1:], context[1:], pose[1:], dropped=torch.tensor([False]))
    assert both.shape == (2, 4, 3, 16, 16)
    assert torch.allclose(both, torch.cat([first, second]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("motion", [False, True], ids=["stage1", "stage2"])
def test_gradient_checkpointing_gives_the_same_gradients(motion):
    # float64: a recompute repeats the same kernels on the same inputs: measured equal bit for bit at every
    # capability and thread count; 1e-12 for CPUs we have not seen.
    grads, calls = [], []
    for checkpointed in (False, True):
        net = make_net(motion=motion, dtype=torch.float64).train()
        if checkpointed:
            net.animate_unet.enable_gradient_checkpointing()
        counted = [0]
        net.animate_unet.unet.down_blocks[0].resnets[0].register_forward_pre_hook(
            lambda *_: counted.__setitem__(0, counted[0] + 1))  # pre: a recompute stops early, before post-hooks
        out = net(*inputs(frames=3 if motion else 1, dtype=torch.float64), dropped=torch.tensor([False, True]))
        out.square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None})
        calls.append(counted[0])
    assert calls == [1, 2]  # checkpointing really recomputed the block in backward
    plain, checkpointed = grads
    assert plain.keys() == checkpointed.keys() and len(plain) > 100
    assert all(torch.allclose(plain[n], checkpointed[n], rtol=0, atol=1e-12) for n in plain)
