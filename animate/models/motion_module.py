"""AnimateDiff v2 temporal modules with the original key names, built from diffusers' Attention and FeedForward."""

import math

import torch
from diffusers.models.attention import FeedForward
from diffusers.models.attention_processor import Attention
from einops import rearrange
from torch import nn


def sinusoid_table(length: int, dim: int) -> torch.Tensor:
    """The fixed [1, length, dim] sine/cosine position table AnimateDiff adds before temporal attention."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(1, length, dim)
    table[0, :, 0::2] = torch.sin(position * div_term)
    table[0, :, 1::2] = torch.cos(position * div_term)
    return table


class PositionalEncoding(nn.Module):
    """Adds the position table (key `pe`, saved with the weights) to a [N, frames, C] sequence."""

    def __init__(self, dim: int, length: int):
        super().__init__()
        self.register_buffer("pe", sinusoid_table(length, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x + pe[:frames]."""
        return x + self.pe[:, : x.shape[1]].to(x.dtype)


class TemporalAttention(Attention):
    """Self-attention over frames at one pixel, positions added to its input (AnimateDiff's VersatileAttention)."""

    def __init__(self, dim: int, heads: int, pe_length: int):
        super().__init__(query_dim=dim, heads=heads, dim_head=dim // heads, bias=False, out_bias=True)
        self.pos_encoder = PositionalEncoding(dim, pe_length)

    def forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
        """[N, frames, C] → [N, frames, C]."""
        return super().forward(self.pos_encoder(hidden_states), **kwargs)


class TemporalTransformerBlock(nn.Module):
    """Two pre-norm temporal self-attentions, then a pre-norm GEGLU feed-forward."""

    def __init__(self, dim: int, heads: int, pe_length: int):
        super().__init__()
        self.attention_blocks = nn.ModuleList(TemporalAttention(dim, heads, pe_length) for _ in range(2))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(2))
        self.ff = FeedForward(dim, activation_fn="geglu")
        self.ff_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, frames, C] → [N, frames, C]."""
        for attention, norm in zip(self.attention_blocks, self.norms):
            x = attention(norm(x)) + x
        return self.ff(self.ff_norm(x)) + x


class TemporalTransformer(nn.Module):
    """GroupNorm → proj_in → temporal block → zero-initialised proj_out, added to the input."""

    def __init__(self, dim: int, heads: int, pe_length: int):
        super().__init__()
        self.norm = nn.GroupNorm(32, dim, eps=1e-6)
        self.proj_in = nn.Linear(dim, dim)
        self.transformer_blocks = nn.ModuleList([TemporalTransformerBlock(dim, heads, pe_length)])
        self.proj_out = nn.Linear(dim, dim)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)
        self.gradient_checkpointing = False

    def _mix(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        _, _, height, width = x.shape
        h = rearrange(self.norm(x), "(b f) c h w -> (b h w) f c", f=num_frames)
        h = self.proj_in(h)
        for block in self.transformer_blocks:
            h = block(h)
        h = self.proj_out(h)
        return rearrange(h, "(b h w) f c -> (b f) c h w", h=height, w=width)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        """[(B·frames), C, H, W] → same shape; each pixel's frames attend to each other."""
        if self.gradient_checkpointing and torch.is_grad_enabled():
            mixed = torch.utils.checkpoint.checkpoint(self._mix, x, num_frames, use_reentrant=False)
        else:
            mixed = self._mix(x, num_frames)
        return x + mixed


class MotionModule(nn.Module):
    """One of the 21 AnimateDiff modules (key prefix `temporal_transformer`)."""

    def __init__(self, dim: int, pe_length: int, heads: int = 8):
        super().__init__()
        self.temporal_transformer = TemporalTransformer(dim, heads, pe_length)

    @property
    def pe_length(self) -> int:
        """How many frames the position table covers."""
        return self.temporal_transformer.transformer_blocks[0].attention_blocks[0].pos_encoder.pe.shape[1]

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        """[(B·frames), C, H, W] → same shape."""
        return self.temporal_transformer(x, num_frames)
