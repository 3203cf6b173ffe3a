"""The denoising network and its one call: diffusers' UNet2DConditionModel over (batch·frames) rows, with the pose
features, the motion modules and the reference tokens of that call.

diffusers' forward cannot hand per-call values to arbitrary submodules, so they travel two ways (hooks installed
once, reading a per-call record, rather than a forward of our own that walks diffusers' blocks):
- the reference tokens ride through `cross_attention_kwargs` to the attention processors (reference.py);
- the pose features, the frame count and the motion switch are a FrameCall that `forward` sets and, in a `finally`,
  restores to what it was, so calls nest; forward hooks installed once on conv_in and on the motion modules'
  anchors read it. Outside a call the hooks do nothing: the bare UNet is the plain image UNet.
Gradient checkpointing recomputes a block with the FrameCall of the call that made the graph (`_checkpoint`): the
record then lives in that graph, not on a module.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from diffusers import UNet2DConditionModel
from einops import rearrange
from torch import nn

from .guider import Guide, install_guided_cross_attention
from .motion_module import MotionModule
from .pose_guider import PoseGuider
from .reference import ReferenceRead, ReferenceReader, install_processors, unet_blocks


@dataclass(frozen=True)
class FrameCall:
    """What the hooks read during one call: frames per video, pose features to add after conv_in, motion on/off, and
    where to keep the deep blocks' output when the call is asked for it (a list made for that call)."""

    num_frames: int
    pose_features: torch.Tensor | None
    motion: bool
    deep: list[torch.Tensor] | None = None


def build_unet(config: dict) -> UNet2DConditionModel:
    """A UNet2DConditionModel from a diffusers config dict (keys starting with `_` ignored)."""
    return UNet2DConditionModel.from_config({k: v for k, v in config.items() if not k.startswith("_")})


def motion_anchors(blocks: Sequence[nn.Module]) -> list[tuple[nn.Module, list[nn.Module]]]:
    """Per block, the submodules each motion module follows: attentions where the block has them, else resnets."""
    return [(block, list(getattr(block, "attentions", None) or block.resnets)) for block in blocks]


class FrameModel(nn.Module):
    """A diffusers model run over (batch·frames) rows (`self.model`), with AnimateDiff motion modules kept inside its
    blocks as `<block>.motion_modules.<j>` and hooks that read the FrameCall of the call in progress."""

    model_attribute = "unet"  # the diffusers model's attribute name (its weight files' name)

    def __init__(self) -> None:
        super().__init__()
        self._frames: FrameCall | None = None

    @property
    def model(self) -> nn.Module:
        """The wrapped diffusers model."""
        return getattr(self, self.model_attribute)

    def motion_blocks(self) -> list[nn.Module]:
        """The blocks that hold motion modules."""
        return unet_blocks(self.model)

    @property
    def motion_pe_length(self) -> int | None:
        """Frames the motion modules' position tables cover (None without motion modules: image-only)."""
        first = getattr(self.motion_blocks()[0], "motion_modules", None)
        return first[0].pe_length if first is not None else None

    def add_motion_modules(self, pe_length: int) -> None:
        """Attach the motion modules, zero-initialised (frames independent until trained)."""
        if self.motion_pe_length is not None:
            raise ValueError("the model already has motion modules")
        for block, anchors in motion_anchors(self.motion_blocks()):
            block.motion_modules = nn.ModuleList(MotionModule(anchor.out_channels, pe_length) for anchor in anchors)
            for anchor, module in zip(anchors, block.motion_modules):
                anchor.register_forward_hook(self._motion_hook(module))

    def enable_gradient_checkpointing(self) -> None:
        """Recompute the model's blocks and the motion modules in backward instead of keeping their activations
        (diffusers switches on every submodule with a `gradient_checkpointing` flag, the motion modules' too)."""
        self.model.enable_gradient_checkpointing(self._checkpoint)

    def _with_frames(self, frames: FrameCall, function, *args, **kwargs):
        """function(*args, **kwargs) with the hooks reading `frames`; afterwards they read what they read before
        (None outside any call), so calls nest. The only place the record is set."""
        outer, self._frames = self._frames, frames
        try:
            return function(*args, **kwargs)
        finally:
            self._frames = outer

    def _checkpoint(self, function, *args):
        """diffusers' checkpointing of a block, recomputed in backward with the FrameCall of the forward."""
        return torch.utils.checkpoint.checkpoint(self._with_frames, self._frames, function, *args, use_reentrant=False)

    def _motion_hook(self, module: MotionModule):
        """An anchor's forward hook: its output through `module` when the call runs the motion modules."""

        def hook(_anchor: nn.Module, _args, output):
            frames = self._frames
            if frames is None or not frames.motion:
                return output
            if isinstance(output, tuple):
                return (module(output[0], frames.num_frames), *output[1:])
            return module(output, frames.num_frames)

        return hook


class AnimateUNet(FrameModel):
    """The denoising UNet, the pose guider and the 21 AnimateDiff motion modules (kept inside the UNet as
    `<block>.motion_modules.<j>`, their released key names), called once per denoising step and window."""

    def __init__(self, unet: UNet2DConditionModel, pose_guider: PoseGuider, motion_pe: int | None = None):
        super().__init__()
        self.unet = unet
        self.pose_guider = pose_guider
        install_processors(unet, lambda index, _count: ReferenceReader(index))
        install_guided_cross_attention(unet)
        unet.conv_in.register_forward_hook(self._add_pose)
        unet.up_blocks[-2].register_forward_hook(self._keep_deep)
        if motion_pe is not None:
            self.add_motion_modules(motion_pe)

    def forward(self, latents: torch.Tensor, timestep: torch.Tensor | float, context: torch.Tensor,
                pose_features: torch.Tensor | None = None, reference: Sequence[torch.Tensor] | None = None,
                reference_index: Sequence[int] | None = None, motion: bool = True,
                down_residuals: Sequence[torch.Tensor] | None = None,
                mid_residual: torch.Tensor | None = None, guide: Guide | None = None,
                deep: torch.Tensor | None = None, keep_deep: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The UNet's prediction for video latents [B, C, F, h, w].

        timestep: one for all, or one per video [B]. context: [B, T, D]. pose_features: the pose guider's
        [(B'·F), C0, h, w], broadcast over the batch when B' < B (one copy for both CFG halves). reference: the
        ReferenceNet's tokens; reference_index: per video the reference it reads, -1 for none (default: video b reads
        reference b). motion: False skips the motion modules (frames denoised independently).
        down_residuals / mid_residual: ControlNet residuals on the (B·F) rows, added as in diffusers (both or neither).
        guide: the content guider's face and text tokens, and per video which set each reads at what scale.
        DeepCache: `keep_deep` also returns the deep blocks' output (what enters the last up block, [(B·F), C, h, w]);
        given as `deep`, the call runs only the outer level (conv_in, the first down block, the last up block, with
        their motion modules and reference, guider and ControlNet inputs) on it, skipping every deeper block.
        """
        batch, _, num_frames = latents.shape[:3]
        if deep is not None and keep_deep:
            raise ValueError("a call given the deep blocks' output does not run them: keep_deep needs deep=None")
        if (down_residuals is None) != (mid_residual is None):
            raise ValueError("ControlNet residuals need both down_residuals and mid_residual")
        sample = rearrange(latents, "b c f h w -> (b f) c h w")
        if torch.is_tensor(timestep) and timestep.dim() == 1 and len(timestep) == batch:
            timestep = timestep.repeat_interleave(num_frames)
        attention_kwargs = {}
        if guide is not None:
            guide.check(batch)
            attention_kwargs["guide"] = guide.rows(num_frames)
        if reference is not None:
            index = range(batch) if reference_index is None else reference_index
            if len(index) != batch or any(not -1 <= ref < len(reference[0]) for ref in index):
                raise ValueError(f"reference_index needs one entry per video in [-1, {len(reference[0]) - 1}], "
                                 f"got {list(index)} for {batch} videos")
            rows = tuple(ref for ref in index for _ in range(num_frames))
            attention_kwargs["reference"] = ReferenceRead(tuple(reference), rows)
        context = context.repeat_interleave(num_frames, dim=0)
        kept = [] if keep_deep else None
        frames = FrameCall(num_frames, pose_features, motion, kept)
        if deep is not None:
            out = self._with_frames(frames, outer_level, self.unet, sample, timestep, context, attention_kwargs or None,
                                    deep, down_residuals)
        else:
            out = self._with_frames(frames, self.unet, sample, timestep, encoder_hidden_states=context,
                                    cross_attention_kwargs=attention_kwargs or None,
                                    down_block_additional_residuals=down_residuals,
                                    mid_block_additional_residual=mid_residual, return_dict=False)[0]
        out = rearrange(out, "(b f) c h w -> b c f h w", b=batch)
        return (out, kept[0]) if keep_deep else out

    def _keep_deep(self, _block: nn.Module, _args, output: torch.Tensor) -> None:
        """The second-to-last up block's forward hook: its output is kept when the call asked for it."""
        if self._frames is not None and self._frames.deep is not None:
            self._frames.deep.append(output)

    def _add_pose(self, _conv: nn.Module, _args, output: torch.Tensor) -> torch.Tensor:
        """conv_in's forward hook: + the call's pose features, broadcast over the batch's copies of the frames."""
        pose = self._frames.pose_features if self._frames is not None else None
        if pose is None:
            return output
        repeats = output.shape[0] // pose.shape[0]
        return (output.unflatten(0, (repeats, pose.shape[0])) + pose.to(output.dtype)).flatten(0, 1)


def outer_level(unet: UNet2DConditionModel, sample: torch.Tensor, timestep: torch.Tensor | float, context: torch.Tensor,
                attention_kwargs: dict | None, deep: torch.Tensor,
                down_residuals: Sequence[torch.Tensor] | None) -> torch.Tensor:
    """diffusers' UNet2DConditionModel forward on its outer level only (DeepCache): time embedding, conv_in, the
    first down block, then the last up block on `deep` (a cached output of the deeper blocks) with the outer skip
    features (+ their ControlNet residuals), and the output head. For the SD-1.5 topology (no class or added
    embeddings, sizes divisible by 2^levels)."""
    if unet.class_embedding is not None or unet.config.addition_embed_type or unet.time_embed_act is not None:
        raise ValueError("the outer-level call (DeepCache) supports the SD-1.5 topology only: no class, added or "
                         "activated time embeddings")
    emb = unet.time_embedding(unet.get_time_embed(sample=sample, timestep=timestep), None)
    hidden = unet.conv_in(sample)
    first, last = unet.down_blocks[0], unet.up_blocks[-1]
    attend = lambda block: ({"encoder_hidden_states": context, "cross_attention_kwargs": attention_kwargs}  # noqa: E731
                            if getattr(block, "has_cross_attention", False) else {})
    _, skips = first(hidden_states=hidden, temb=emb, **attend(first))
    skips = (hidden, *skips)[: len(last.resnets)]  # the downsampler's output feeds only the deeper blocks
    if down_residuals is not None:
        skips = tuple(skip + residual for skip, residual in zip(skips, down_residuals))
    out = last(hidden_states=deep.to(hidden.dtype), temb=emb, res_hidden_states_tuple=skips, **attend(last))
    if unet.conv_norm_out is not None:
        out = unet.conv_act(unet.conv_norm_out(out))
    return unet.conv_out(out)
