"""DreamMoving's Video ControlNet: an image ControlNet with AnimateDiff motion modules after the layers of its down and
mid blocks, reading a depth (or pose) sequence and giving the denoising UNet residuals for every frame.

Built on diffusers' `ControlNetModel` plus our motion modules, not on `SparseControlNetModel`: SparseCtrl's model
expects a conditioning mask channel and sparse keyframes, and keeps its motion modules under diffusers' MotionAdapter
names. `ControlNetModel` is the released SD-1.5 ControlNets' own class (their single files load into it), `from_unet`
copies the denoising UNet as ControlNet training starts, and our motion modules under their AnimateDiff names are
copied from the stage-2 UNet, so a depth ControlNet starts as a copy of the whole trained video model's down path.
"""

import math
from collections.abc import Sequence

import torch
from diffusers import ControlNetModel, UNet2DConditionModel
from einops import rearrange
from torch import nn

from ..errors import AnimateError

from .unet import AnimateUNet, FrameCall, FrameModel, build_unet

CONDITIONING_CHANNELS = (16, 32, 96, 256)  # diffusers' (and the SD-1.5 ControlNets') conditioning embedding: 8x
KINDS = ("depth", "pose")


def conditioning_channels(latent_scale: int) -> tuple[int, ...]:
    """The conditioning embedding's widths for a VAE of `latent_scale`: one stride-2 stage per halving (8x: 4 widths,
    SD-1.5's; 4x, the demo autoencoder's: 3)."""
    stages = int(math.log2(latent_scale))
    if 2**stages != latent_scale or not 1 <= stages <= len(CONDITIONING_CHANNELS) - 1:
        raise ValueError(f"no conditioning embedding for a latent scale of {latent_scale}")
    return CONDITIONING_CHANNELS[:stages + 1]


FITTING = ("in_channels", "block_out_channels", "layers_per_block", "down_block_types", "cross_attention_dim")


def check_fits(net: "VideoControlNet", animate_unet: AnimateUNet, latent_scale: int, source: str) -> None:
    """Refuse, in one line, a ControlNet whose residuals cannot join this UNet's call: other block widths or layout,
    another context width, or a conditioning embedding that downsamples by another factor than the VAE."""
    mine, theirs = net.controlnet.config, animate_unet.unet.config
    for key in FITTING:
        if _plain(mine[key]) != _plain(theirs[key]):
            raise AnimateError(f"{source}: the ControlNet's {key} {_plain(mine[key])} does not fit the denoising "
                               f"UNet's {_plain(theirs[key])} (a ControlNet of another model size)")
    factor = 2 ** (len(mine["conditioning_embedding_out_channels"]) - 1)
    if factor != latent_scale:
        raise AnimateError(f"{source}: the ControlNet's conditioning embedding downsamples by {factor}, the VAE by "
                           f"{latent_scale}")


def _plain(value):
    """Config values compared as lists (JSON gives lists, a fresh config tuples)."""
    return list(value) if isinstance(value, (list, tuple)) else value


def check_control_scale(scale: float) -> None:
    """Refuse a control scale that is not a finite number >= 0."""
    if not (math.isfinite(scale) and scale >= 0):
        raise AnimateError(f"--control-scale must be a finite number >= 0, got {scale}")


def plain_unet(animate_unet: AnimateUNet) -> UNet2DConditionModel:
    """A copy of the denoising UNet without its motion modules (ControlNetModel.from_unet refuses their keys)."""
    unet = build_unet(dict(animate_unet.unet.config))
    state = {k: v for k, v in animate_unet.unet.state_dict().items() if ".motion_modules." not in k}
    torch.nn.Module.to(unet, next(animate_unet.parameters()).dtype)
    unet.load_state_dict(state)
    return unet


class VideoControlNet(FrameModel):
    """diffusers' ControlNetModel over (batch·frames) rows, with motion modules after its down and mid blocks' layers
    (kept as `<block>.motion_modules.<j>`, as in the UNet). One call gives the residuals of a window."""

    model_attribute = "controlnet"

    def __init__(self, controlnet: ControlNetModel, motion_pe: int | None = None):
        super().__init__()
        self.controlnet = controlnet
        if motion_pe is not None:
            self.add_motion_modules(motion_pe)

    def motion_blocks(self) -> list[nn.Module]:
        """Down blocks, then the mid block."""
        return [*self.controlnet.down_blocks, self.controlnet.mid_block]

    @classmethod
    def from_animate_unet(cls, animate_unet: AnimateUNet, latent_scale: int) -> "VideoControlNet":
        """A ControlNet copied from the denoising UNet (its down and mid blocks, and the stage-2 motion modules of
        those blocks), zero-initialised 1x1 output convolutions (it changes nothing until trained), and a
        conditioning embedding that downsamples by the VAE's factor."""
        unet = plain_unet(animate_unet)
        controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=conditioning_channels(latent_scale),
                                               load_weights_from_unet=False)
        torch.nn.Module.to(controlnet, unet.dtype)  # then the copy, in the UNet's precision (a new model is float32)
        missing = controlnet.load_state_dict(unet.state_dict(), strict=False).missing_keys
        if any(not key.startswith("controlnet_") for key in missing):
            raise ValueError(f"the ControlNet has layers the UNet lacks: {[k for k in missing if not k.startswith('controlnet_')][:3]}")
        net = cls(controlnet, animate_unet.motion_pe_length)
        torch.nn.Module.to(net, unet.dtype)  # the motion modules too, before their weights are copied in
        if net.motion_pe_length is not None:
            for source, target in zip([*animate_unet.unet.down_blocks, animate_unet.unet.mid_block],
                                      net.motion_blocks()):
                target.motion_modules.load_state_dict(source.motion_modules.state_dict())
        return net

    def forward(self, latents: torch.Tensor, timestep: torch.Tensor | float, context: torch.Tensor,
                control: torch.Tensor, scale: float = 1.0,
                motion: bool = True) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Residuals (down, mid) on the (B·F) rows of video latents [B, C, F, h, w], for the denoising UNet's call.

        control: images [B', 3, F, H, W] in [0, 1] (depth, or pose images), broadcast over the batch when B' < B
        (one copy for both CFG halves). context: [B, T, D], the denoising UNet's. scale multiplies the residuals.
        """
        batch, _, num_frames = latents.shape[:3]
        sample = rearrange(latents, "b c f h w -> (b f) c h w")
        images = rearrange(control, "b c f h w -> (b f) c h w")
        if sample.shape[0] % images.shape[0]:
            raise ValueError(f"control images for {control.shape[0]} videos cannot be shared by {batch}")
        if images.shape[0] != sample.shape[0]:
            images = images.repeat(sample.shape[0] // images.shape[0], 1, 1, 1)
        if torch.is_tensor(timestep) and timestep.dim() == 1 and len(timestep) == batch:
            timestep = timestep.repeat_interleave(num_frames)
        down, mid = self._with_frames(FrameCall(num_frames, None, motion), self.controlnet, sample, timestep,
                                      encoder_hidden_states=context.repeat_interleave(num_frames, dim=0),
                                      controlnet_cond=images.to(sample.dtype), conditioning_scale=scale,
                                      return_dict=False)
        return list(down), mid


def sum_residuals(parts: Sequence[tuple[list[torch.Tensor], torch.Tensor]]) -> tuple[list[torch.Tensor] | None,
                                                                                      torch.Tensor | None]:
    """Several ControlNets' residuals added (as diffusers' MultiControlNet does); (None, None) for none."""
    if not parts:
        return None, None
    down, mid = parts[0]
    for more_down, more_mid in parts[1:]:
        down = [a + b for a, b in zip(down, more_down)]
        mid = mid + more_mid
    return down, mid
