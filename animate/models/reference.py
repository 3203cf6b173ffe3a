"""Reference attention: the ReferenceNet returns its attn1 inputs, the denoising UNet's attn1 layers attend to them.

Per-call values reach the attention processors through diffusers' `cross_attention_kwargs`: under `reference`, the
token list a ReferenceNet call fills, or the ReferenceRead of a denoising call; under `guide`, a denoising call's
content tokens (guider.py). diffusers hands every key to every processor of the UNet (attn1 and attn2) and drops,
with a warning, the keys a processor does not declare, so each processor declares the keys it ignores.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from torch import nn


_DIFFUSERS_ATTENTION = AttnProcessor2_0()


class _ReferenceComplete(Exception):
    """Raised by the last write and caught by ReferenceNet.forward: nothing after it in the ReferenceNet is read."""


def unet_blocks(unet: UNet2DConditionModel) -> list[nn.Module]:
    """The UNet's blocks in execution order: down, mid, up."""
    return [*unet.down_blocks, unet.mid_block, *unet.up_blocks]


def attention_blocks(unet: UNet2DConditionModel) -> list[nn.Module]:
    """Every spatial transformer block, in execution order (down, mid, up): 16 at SD-1.5."""
    return [
        transformer
        for block in unet_blocks(unet)
        for attention in getattr(block, "attentions", None) or []
        for transformer in attention.transformer_blocks
    ]


def self_attention_layers(unet: UNet2DConditionModel) -> list[Attention]:
    """Every spatial transformer's attn1, in execution order: the 16 reference pairs at SD-1.5."""
    return [block.attn1 for block in attention_blocks(unet)]


def attend(heads: int, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Multi-head scaled dot-product attention on projected [N, tokens, C] tensors (before the output projection)."""
    q, k, v = (t.unflatten(-1, (heads, -1)).transpose(1, 2) for t in (query, key, value))
    return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)


def project_out(attn: Attention, hidden_states: torch.Tensor) -> torch.Tensor:
    """attn's output projection (and dropout)."""
    return attn.to_out[1](attn.to_out[0](hidden_states))


def self_attention(attn: Attention, hidden_states: torch.Tensor) -> torch.Tensor:
    """attn's plain self-attention: diffusers' own processor."""
    return _DIFFUSERS_ATTENTION(attn, hidden_states)


@dataclass(frozen=True)
class ReferenceRead:
    """What a denoising call's attn1 layers read: per layer the ReferenceNet's tokens [R, M, C], and per row of the
    (batch·frames) UNet batch the reference it attends to (-1: none). The rows are plain ints, known before the
    call: the row split needs no device sync, and a compiled call branches on constants."""

    tokens: Sequence[torch.Tensor]
    rows: tuple[int, ...]


class CrossAttention(AttnProcessor2_0):
    """attn2: diffusers' own attention processor, declaring the call's `reference` key so that it is not warned
    about (it has nothing to do with it)."""

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 reference: object = None) -> torch.Tensor:
        return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb)


class ReferenceWriter:
    """ReferenceNet side: puts attn1's input (the block's norm1 output) into the call's token list, then attends as
    usual; the last layer ends the ReferenceNet's run instead."""

    def __init__(self, index: int, last: bool):
        self.index = index
        self.last = last

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, reference: list[torch.Tensor | None],
                 encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        reference[self.index] = hidden_states
        if self.last:
            raise _ReferenceComplete
        return self_attention(attn, hidden_states)


class ReferenceReader:
    """Denoising side: rows with a reference attend to [own tokens, reference tokens]; the others to their own."""

    def __init__(self, index: int):
        self.index = index

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, reference: ReferenceRead | None = None,
                 guide: object = None) -> torch.Tensor:
        if reference is None:
            return self_attention(attn, hidden_states)
        query, key, value = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        tokens = reference.tokens[self.index]
        reference_key, reference_value = attn.to_k(tokens), attn.to_v(tokens)
        plain = [row for row, ref in enumerate(reference.rows) if ref < 0]
        with_ref = [row for row, ref in enumerate(reference.rows) if ref >= 0]
        mixed = torch.empty_like(query)
        if plain:
            rows = torch.tensor(plain, device=query.device)
            mixed[rows] = attend(attn.heads, query[rows], key[rows], value[rows])
        if with_ref:
            rows = torch.tensor(with_ref, device=query.device)
            ref = torch.tensor([reference.rows[row] for row in with_ref], device=query.device)
            k = torch.cat([key[rows], reference_key[ref]], dim=1)
            v = torch.cat([value[rows], reference_value[ref]], dim=1)
            mixed[rows] = attend(attn.heads, query[rows], k, v)
        return project_out(attn, mixed)


def install_processors(unet: UNet2DConditionModel, self_attention_processor) -> int:
    """Give every attn1 `self_attention_processor(index, count)` and every attn2 CrossAttention; the attn1 count."""
    blocks = attention_blocks(unet)
    for index, block in enumerate(blocks):
        block.attn1.set_processor(self_attention_processor(index, len(blocks)))
        block.attn2.set_processor(CrossAttention())
    return len(blocks)


def strip_output_head(reference_unet: UNet2DConditionModel) -> None:
    """Drop conv_norm_out/conv_out: the ReferenceNet stops after its last reference write (as released)."""
    reference_unet.conv_norm_out = None
    reference_unet.conv_out = None
    reference_unet.conv_act = None


class ReferenceNet(nn.Module):
    """The ReferenceNet: a UNet2DConditionModel (output head dropped) whose attn1 inputs at t = 0 are the reference."""

    def __init__(self, unet: UNet2DConditionModel):
        super().__init__()
        strip_output_head(unet)
        self.unet = unet
        self.layers = install_processors(unet, lambda index, count: ReferenceWriter(index, last=index == count - 1))

    def forward(self, latents: torch.Tensor, context: torch.Tensor) -> list[torch.Tensor]:
        """Reference latents [R, 4, h, w] and CLIP context [R, 1, D] → per attn1 layer its input tokens [R, M, C].

        The run stops at the last layer's write (its attention and everything after it are never computed)."""
        tokens: list[torch.Tensor | None] = [None] * self.layers
        timestep = torch.zeros(latents.shape[0], device=latents.device)
        try:
            self.unet(latents, timestep, encoder_hidden_states=context, cross_attention_kwargs={"reference": tokens})
        except _ReferenceComplete:
            return tokens
        raise RuntimeError("the ReferenceNet's last write was never reached")
