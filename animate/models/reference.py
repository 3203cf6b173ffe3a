"""Reference attention as two attention processors: the ReferenceNet writes its attn1 inputs, the denoising UNet reads them."""

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import Attention


class ReferenceComplete(Exception):
    """Raised by the last write: nothing after it in the ReferenceNet is read."""


def self_attention_layers(unet: UNet2DConditionModel) -> list[Attention]:
    """Every spatial transformer's attn1, in execution order (down, mid, up): the 16 reference pairs at SD-1.5."""
    blocks = [*unet.down_blocks, unet.mid_block, *unet.up_blocks]
    return [
        transformer.attn1
        for block in blocks
        for attention in getattr(block, "attentions", None) or []
        for transformer in attention.transformer_blocks
    ]


def attend(heads: int, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Multi-head scaled dot-product attention on projected [N, tokens, C] tensors (before the output projection)."""
    q, k, v = (t.unflatten(-1, (heads, -1)).transpose(1, 2) for t in (query, key, value))
    return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)


def project_out(attn: Attention, hidden_states: torch.Tensor) -> torch.Tensor:
    """attn's output projection (and dropout)."""
    return attn.to_out[1](attn.to_out[0](hidden_states))


class ReferenceWriter:
    """ReferenceNet side: keeps attn1's input (the block's norm1 output), then attends as usual."""

    def __init__(self, tokens: list, index: int, last: bool):
        self.tokens = tokens
        self.index = index
        self.last = last

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        self.tokens[self.index] = hidden_states
        if self.last:
            raise ReferenceComplete
        mixed = attend(attn.heads, attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states))
        return project_out(attn, mixed)


class ReferenceRows:
    """Which reference each row of the denoising batch attends to: an index per row, -1 for none."""

    def __init__(self):
        self.index: torch.Tensor | None = None


class ReferenceReader:
    """Denoising side: rows with a reference attend to [own tokens, reference tokens]; the others to their own."""

    def __init__(self, rows: ReferenceRows):
        self.rows = rows
        self.key: torch.Tensor | None = None
        self.value: torch.Tensor | None = None

    def set_reference(self, attn: Attention, tokens: torch.Tensor) -> None:
        """Project the reference tokens [R, M, C] to keys and values once (per video, not per frame or step)."""
        self.key = attn.to_k(tokens)
        self.value = attn.to_v(tokens)

    def clear(self) -> None:
        """Forget the reference."""
        self.key = self.value = None

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        query, key, value = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        index = self.rows.index
        if self.key is None or index is None:
            return project_out(attn, attend(attn.heads, query, key, value))
        with_ref = index >= 0
        mixed = torch.empty_like(query)
        plain = ~with_ref
        if plain.any():
            mixed[plain] = attend(attn.heads, query[plain], key[plain], value[plain])
        if with_ref.any():
            ref = index[with_ref]
            k = torch.cat([key[with_ref], self.key[ref].to(key.dtype)], dim=1)
            v = torch.cat([value[with_ref], self.value[ref].to(value.dtype)], dim=1)
            mixed[with_ref] = attend(attn.heads, query[with_ref], k, v)
        return project_out(attn, mixed)


class ReferenceAttention:
    """Pairs a ReferenceNet with a denoising UNet: installs the processors and moves tokens between them."""

    def __init__(self, reference_unet: UNet2DConditionModel, denoising_unet: UNet2DConditionModel):
        self.reference_unet = reference_unet
        writers = self_attention_layers(reference_unet)
        self.readers_attn = self_attention_layers(denoising_unet)
        if len(writers) != len(self.readers_attn):
            raise ValueError(f"ReferenceNet has {len(writers)} self-attentions, denoising UNet {len(self.readers_attn)}")
        self.tokens: list[torch.Tensor | None] = [None] * len(writers)
        for i, attn in enumerate(writers):
            attn.set_processor(ReferenceWriter(self.tokens, i, last=i == len(writers) - 1))
        self.rows = ReferenceRows()
        self.readers = [ReferenceReader(self.rows) for _ in self.readers_attn]
        for attn, reader in zip(self.readers_attn, self.readers):
            attn.set_processor(reader)

    def encode(self, reference_latents: torch.Tensor, context: torch.Tensor) -> None:
        """Run the ReferenceNet once (timestep 0) on [R, 4, h, w] latents and keep every block's keys/values."""
        timestep = torch.zeros(reference_latents.shape[0], device=reference_latents.device)
        try:
            self.reference_unet(reference_latents, timestep, encoder_hidden_states=context)
        except ReferenceComplete:
            pass
        else:
            raise RuntimeError("the ReferenceNet's last write was never reached")
        for attn, reader, tokens in zip(self.readers_attn, self.readers, self.tokens):
            reader.set_reference(attn, tokens)
        self.tokens[:] = [None] * len(self.tokens)

    def select(self, index: torch.Tensor | None) -> None:
        """Set, per row of the next denoising calls, which reference it reads (-1: none; None: no row does)."""
        self.rows.index = index

    def clear(self) -> None:
        """Forget the reference and the row selection."""
        for reader in self.readers:
            reader.clear()
        self.rows.index = None
