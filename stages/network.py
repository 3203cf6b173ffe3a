"""The trainable Animate Anyone network: ReferenceNet + pose guider + denoising UNet, joined by reference attention,
and, in the control stage, a Video ControlNet whose residuals join the UNet's call."""

import torch
from diffusers import UNet2DConditionModel
from torch import nn

from animate.models.controlnet import VideoControlNet
from animate.models.reference import ReferenceNet
from animate.models.unet import AnimateUNet

from .objective import reference_index


def unread_reference_parameters(reference_unet: UNet2DConditionModel) -> list[str]:
    """Names of ReferenceNet parameters after its last reference write (nothing reads them; DDP needs them frozen)."""
    last = reference_unet.up_blocks[-1].attentions[-1]
    after_write = [f"transformer_blocks.{len(last.transformer_blocks) - 1}.{name}"
                   for name, _ in last.transformer_blocks[-1].named_parameters() if not name.startswith("norm1.")]
    after_write += [f"proj_out.{name}" for name, _ in last.proj_out.named_parameters()]
    prefix = f"up_blocks.{len(reference_unet.up_blocks) - 1}.attentions.{len(reference_unet.up_blocks[-1].attentions) - 1}."
    return [prefix + name for name in after_write]


class AnimateNet(nn.Module):
    """One training forward: reference latents + CLIP context + pose images (+ control images) + noisy latents → the
    UNet's prediction."""

    def __init__(self, reference_net: ReferenceNet, animate_unet: AnimateUNet,
                 controlnet: VideoControlNet | None = None):
        super().__init__()
        self.reference_net = reference_net
        self.animate_unet = animate_unet
        self.controlnet = controlnet

    def forward(self, noisy: torch.Tensor, timesteps: torch.Tensor, reference_latents: torch.Tensor,
                context: torch.Tensor, pose: torch.Tensor, dropped: torch.Tensor,
                control: torch.Tensor | None = None) -> torch.Tensor:
        """noisy [B, 4, F, h, w], timesteps [B], reference latents [B, 4, h, w], context [B, 1, D],
        pose images [B, F, 3, H, W] in [0, 1], dropped [B] (samples trained without reference), control images
        [B, F, 3, H, W] in [0, 1] for the ControlNet → [B, 4, F, h, w]."""
        reference = self.reference_net(reference_latents, context)
        pose_features = self.animate_unet.pose_guider(pose.flatten(0, 1))
        down, mid = None, None
        if self.controlnet is not None:
            down, mid = self.controlnet(noisy, timesteps, context, control.transpose(1, 2))
        prediction = self.animate_unet(noisy, timesteps, context, pose_features, reference=reference,
                                       reference_index=reference_index(dropped), down_residuals=down, mid_residual=mid)
        if self.training and dropped.all():  # no row read the reference: keep the ReferenceNet in the graph (DDP)
            prediction = prediction + 0 * sum(tokens.sum() for tokens in reference)
        return prediction
