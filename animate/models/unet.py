"""The two UNets: diffusers' UNet2DConditionModel over (batch·frames), plus motion modules and pose features via hooks."""

from dataclasses import dataclass

import torch
from diffusers import UNet2DConditionModel
from einops import rearrange
from torch import nn

from .motion_module import MotionModule


@dataclass
class FrameInputs:
    """What the hooks read during one denoising-UNet call: frames per video and the pose features to add."""

    num_frames: int = 1
    pose_features: torch.Tensor | None = None
    motion: bool = True  # False: the motion modules are skipped (frames denoised independently, as in stage 1)


def build_unet(config: dict) -> UNet2DConditionModel:
    """A UNet2DConditionModel from a diffusers config dict (keys starting with `_` ignored)."""
    return UNet2DConditionModel.from_config({k: v for k, v in config.items() if not k.startswith("_")})


def strip_output_head(reference_unet: UNet2DConditionModel) -> None:
    """Drop conv_norm_out/conv_out: the ReferenceNet stops after its last reference write (as released)."""
    reference_unet.conv_norm_out = None
    reference_unet.conv_out = None
    reference_unet.conv_act = None


def motion_anchors(unet: UNet2DConditionModel) -> list[tuple[nn.Module, list[nn.Module]]]:
    """Per block, the submodules each motion module follows: attentions where the block has them, else resnets."""
    blocks = [*unet.down_blocks, unet.mid_block, *unet.up_blocks]
    return [(block, list(getattr(block, "attentions", None) or block.resnets)) for block in blocks]


def has_motion_modules(unet: UNet2DConditionModel) -> bool:
    """Whether motion modules are attached (a stage-2 UNet)."""
    return hasattr(unet.down_blocks[0], "motion_modules")


def motion_pe_length(unet: UNet2DConditionModel) -> int | None:
    """Frames the motion modules' position tables cover (None without motion modules)."""
    return unet.down_blocks[0].motion_modules[0].pe_length if has_motion_modules(unet) else None


def _apply_motion(module: MotionModule, frames: FrameInputs):
    def hook(_module, _args, output):
        if not frames.motion:
            return output
        if isinstance(output, tuple):
            return (module(output[0], frames.num_frames), *output[1:])
        return module(output, frames.num_frames)

    return hook


def _add_pose(frames: FrameInputs):
    def hook(_module, _args, output):
        pose = frames.pose_features
        if pose is None:
            return output
        repeats = output.shape[0] // pose.shape[0]
        mixed = output.unflatten(0, (repeats, pose.shape[0])) + pose.to(output.dtype)
        return mixed.flatten(0, 1)

    return hook


def make_denoising_unet(unet: UNet2DConditionModel, motion_pe: int | None) -> UNet2DConditionModel:
    """Turn a UNet2DConditionModel into the denoising UNet: pose features after conv_in, optional motion modules."""
    unet.frame_inputs = FrameInputs()
    unet.conv_in.register_forward_hook(_add_pose(unet.frame_inputs))
    if motion_pe is not None:
        add_motion_modules(unet, motion_pe)
    return unet


def add_motion_modules(unet: UNet2DConditionModel, pe_length: int) -> None:
    """Attach the 21 motion modules as `<block>.motion_modules.<j>` (AnimateDiff's key names), zero-initialised."""
    for block, anchors in motion_anchors(unet):
        width = anchors[0].out_channels
        block.motion_modules = nn.ModuleList(MotionModule(width, pe_length) for _ in anchors)
        for anchor, module in zip(anchors, block.motion_modules):
            anchor.register_forward_hook(_apply_motion(module, unet.frame_inputs))


def denoise_video(
    unet: UNet2DConditionModel,
    latents: torch.Tensor,
    timestep: torch.Tensor | float,
    context: torch.Tensor,
    pose_features: torch.Tensor | None,
) -> torch.Tensor:
    """One denoising-UNet call on videos: latents [B, C, F, h, w], context [B, 1, D], pose [(B'·F), C0, h, w].

    The timestep is one for all or one per video ([B]). Pose features with fewer rows than B·F (e.g. one copy for
    both CFG halves) are broadcast over the batch.
    """
    batch, _, num_frames = latents.shape[:3]
    sample = rearrange(latents, "b c f h w -> (b f) c h w")
    rows_context = context.repeat_interleave(num_frames, dim=0)
    if torch.is_tensor(timestep) and timestep.dim() == 1 and len(timestep) == batch:
        timestep = timestep.repeat_interleave(num_frames)
    unet.frame_inputs.num_frames = num_frames
    unet.frame_inputs.pose_features = pose_features
    try:
        out = unet(sample, timestep, encoder_hidden_states=rows_context, return_dict=False)[0]
    finally:
        unet.frame_inputs.pose_features = None
    return rearrange(out, "(b f) c h w -> b c f h w", b=batch)
