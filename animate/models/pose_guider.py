"""Pose guider: a pose image in [0, 1] to features added after the denoising UNet's conv_in."""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

RELEASED_CHANNELS = (16, 32, 96, 256)


class PoseGuider(nn.Module):
    """Released Animate Anyone layout: conv_in, six 3x3 convs (three of stride 2), zero-initialised conv_out."""

    def __init__(self, out_channels: int = 320, channels: Sequence[int] = RELEASED_CHANNELS, in_channels: int = 3):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, channels[0], 3, padding=1)
        blocks = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            blocks.append(nn.Conv2d(c_in, c_in, 3, padding=1))
            blocks.append(nn.Conv2d(c_in, c_out, 3, padding=1, stride=2))
        self.blocks = nn.ModuleList(blocks)
        self.conv_out = nn.Conv2d(channels[-1], out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    @property
    def channels(self) -> list[int]:
        """The widths of conv_in and of every stride-2 block (the constructor's `channels`)."""
        return [self.conv_in.out_channels] + [b.out_channels for b in self.blocks[1::2]]

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] pose images in [0, 1] → [N, out_channels, H/s, W/s], s = 2 ** (len(channels) - 1)."""
        x = F.silu(self.conv_in(pose))
        for block in self.blocks:
            x = F.silu(block(x))
        return self.conv_out(x)
