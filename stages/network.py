"""The trainable Animate Anyone network: ReferenceNet + pose guider + denoising UNet, joined by reference attention,
and, in the control stage, a Video ControlNet whose residuals join the UNet's call; in the guider stage, the content
guider's face and text tokens."""

import torch
from diffusers import UNet2DConditionModel
from torch import nn

from animate.models.controlnet import VideoControlNet
from animate.models.guider import ContentGuider
from animate.models.reference import ReferenceNet
from animate.models.unet import AnimateUNet

from .content import ContentBatch, batch_guide
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
    """One training forward: reference latents + CLIP context + pose images (+ control images, + the content guider's
    face features and captions) + noisy latents → the UNet's prediction. `motion` False skips the motion modules (the
    guider trains on single frames of a video model)."""

    def __init__(self, reference_net: ReferenceNet, animate_unet: AnimateUNet,
                 controlnet: VideoControlNet | None = None, guider: ContentGuider | None = None,
                 text_encoder: nn.Module | None = None, motion: bool = True):
        super().__init__()
        self.reference_net = reference_net
        self.animate_unet = animate_unet
        self.controlnet = controlnet
        self.guider = guider
        self.text_encoder = text_encoder
        self.motion = motion

    def forward(self, noisy: torch.Tensor, timesteps: torch.Tensor, reference_latents: torch.Tensor,
                context: torch.Tensor, pose: torch.Tensor, dropped: torch.Tensor,
                control: torch.Tensor | None = None, content: ContentBatch | None = None) -> torch.Tensor:
        """noisy [B, 4, F, h, w], timesteps [B], reference latents [B, 4, h, w], context [B, 1, D],
        pose images [B, F, 3, H, W] in [0, 1], dropped [B] (samples trained without reference), control images
        [B, F, 3, H, W] in [0, 1] for the ControlNet, content (the guider's inputs) → [B, 4, F, h, w]."""
        reference = self.reference_net(reference_latents, context)
        pose_features = self.animate_unet.pose_guider(pose.flatten(0, 1))
        down, mid = None, None
        if self.controlnet is not None:
            down, mid = self.controlnet(noisy, timesteps, context, control.transpose(1, 2))
        guide = None if content is None else batch_guide(self.guider, self.text_encoder, content)
        prediction = self.animate_unet(noisy, timesteps, context, pose_features, reference=reference,
                                       reference_index=reference_index(dropped), motion=self.motion,
                                       down_residuals=down, mid_residual=mid, guide=guide)
        if self.training and dropped.all():  # no row read the reference: keep the ReferenceNet in the graph (DDP)
            prediction = prediction + 0 * sum(tokens.sum() for tokens in reference)
        if self.training and guide is not None:  # a batch whose faces or captions were all dropped: the same (DDP)
            prediction = prediction + 0 * sum(t.sum() for kind in (guide.face, guide.text) for t in (*kind.keys, *kind.values))
        return prediction
