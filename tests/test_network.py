"""The trainable network: gradients reach exactly what is read, dropout masks exactly the chosen samples."""

import pytest
import torch

from animate.models.bundle import build_random_models
from animate.models.unet import denoise_video
from stages.network import AnimateNet, unread_reference_parameters


def make_net(motion: bool = False) -> AnimateNet:
    models = build_random_models("tiny", seed=11, motion=motion)
    torch.nn.init.normal_(models.pose_guider.conv_out.weight, std=0.1)  # zero-initialised: open it
    return AnimateNet(models.reference_unet, models.denoising_unet, models.pose_guider)


def inputs(batch: int = 2, frames: int = 1):
    return (torch.randn(batch, 4, frames, 8, 8), torch.tensor([100, 900][:batch]), torch.randn(batch, 4, 8, 8),
            torch.randn(batch, 1, 64), torch.rand(batch, frames, 3, 64, 64))


def test_every_read_parameter_gets_a_gradient_and_only_those():
    net = make_net()
    out = net(*inputs(), dropped=torch.tensor([False, False]))
    out.square().mean().backward()
    no_grad = {name for name, p in net.reference_unet.named_parameters() if p.grad is None}
    assert no_grad == set(unread_reference_parameters(net.reference_unet))
    assert all(p.grad is not None for p in net.denoising_unet.parameters())
    assert all(p.grad is not None for p in net.pose_guider.parameters())


def test_dropped_samples_equal_a_run_without_reference():
    net = make_net().eval()
    noisy, t, ref, context, pose = inputs()
    with torch.no_grad():
        mixed = net(noisy, t, ref, context, pose, dropped=torch.tensor([True, False]))
        features = net.pose_guider(pose.flatten(0, 1))
        net.reference.clear()
        plain = denoise_video(net.denoising_unet, noisy, t, context, features)  # no reference at all
        referenced = net(noisy, t, ref, context, pose, dropped=torch.tensor([False, False]))
    assert torch.allclose(mixed[0], plain[0], atol=1e-6)  # dropped: as if there were no reference
    assert torch.allclose(mixed[1], referenced[1], atol=1e-6)  # kept: unaffected by the other's dropout
    assert (mixed[1] - plain[1]).abs().max() > 1e-3


def test_per_sample_timesteps_reach_each_video():
    net = make_net(motion=True).eval()
    noisy, _, ref, context, pose = inputs(frames=3)
    with torch.no_grad():
        both = net(noisy, torch.tensor([100, 900]), ref, context, pose, dropped=torch.tensor([False, False]))
        first = net(noisy[:1], torch.tensor([100]), ref[:1], context[:1], pose[:1], dropped=torch.tensor([False]))
    assert both.shape == (2, 4, 3, 8, 8)
    assert torch.allclose(both[:1], first, atol=1e-4)


@pytest.mark.parametrize("motion", [False, True], ids=["stage1", "stage2"])
def test_gradient_checkpointing_gives_the_same_gradients(motion):
    from stages.training import enable_checkpointing

    grads, calls = [], []
    for checkpointed in (False, True):
        net = make_net(motion=motion).train()
        if checkpointed:
            enable_checkpointing(net.denoising_unet)
        counted = [0]
        net.denoising_unet.down_blocks[0].resnets[0].register_forward_pre_hook(
            lambda *_: counted.__setitem__(0, counted[0] + 1))  # pre: a recompute stops early, before post-hooks
        torch.manual_seed(3)
        out = net(*inputs(frames=3 if motion else 1), dropped=torch.tensor([False, True]))
        out.square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None})
        calls.append(counted[0])
    assert calls == [1, 2]  # checkpointing really recomputed the block in backward
    plain, checkpointed = grads
    assert plain.keys() == checkpointed.keys() and len(plain) > 100
    assert all(torch.allclose(plain[n], checkpointed[n], rtol=1e-4, atol=1e-6) for n in plain)
