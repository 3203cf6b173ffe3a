"""DreamMoving's content guider: face tokens (a resampler over CLIP image features of the face crop) and text tokens
(CLIP text features of a prompt), each read by the denoising UNet's attn2 layers through its own keys and values.

IP-Adapter's decoupled cross-attention: in every attn2 the query attends to the usual context, and separately to the
face tokens and to the text tokens through their own `to_k`/`to_v` (copies of attn2's own at the start of training);
the three results are added, the extra ones times a per-video scale. The tokens' keys and values are computed once per
video (`ContentGuider.tokens`) and handed to each UNet call as a `Guide`; nothing is stored on the UNet.

The resampler has IP-Adapter-Plus's shape (learned queries, perceiver layers over the image features, its key
names), written from the published design.
"""

from dataclasses import dataclass, replace

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import Attention
from torch import nn

from ..errors import AnimateError
from .reference import CrossAttention, attend, attention_blocks, project_out

KINDS = ("face", "text")


@dataclass(frozen=True)
class GuiderConfig:
    """The guider's shape: image feature width in, tokens out, resampler depth and heads, context width, layers."""

    image_dim: int  # the CLIP image encoder's hidden size (its penultimate hidden states are the input)
    context_dim: int  # the UNet's cross_attention_dim: the tokens' width
    layers: int  # attn2 layers of the UNet (16 at SD-1.5)
    attention_dims: tuple[int, ...]  # per attn2 layer, its key/value width
    num_tokens: int = 16  # face tokens (4 or 16)
    depth: int = 4  # perceiver layers
    heads: int = 12
    head_dim: int = 64
    ff_mult: int = 4

    def to_dict(self) -> dict:
        """The config as JSON-able values (weight-file metadata)."""
        return {**self.__dict__, "attention_dims": list(self.attention_dims)}


def feed_forward(dim: int, mult: int) -> nn.Sequential:
    """Pre-norm MLP of the perceiver layers (IP-Adapter-Plus's layout: LayerNorm, Linear, GELU, Linear, no biases)."""
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim * mult, bias=False), nn.GELU(),
                         nn.Linear(dim * mult, dim, bias=False))


class PerceiverAttention(nn.Module):
    """The queries attend to [image features, queries], both layer-normed."""

    def __init__(self, dim: int, heads: int, head_dim: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, heads * head_dim, bias=False)
        self.to_kv = nn.Linear(dim, 2 * heads * head_dim, bias=False)
        self.to_out = nn.Linear(heads * head_dim, dim, bias=False)

    def forward(self, features: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """features [B, M, dim], queries [B, N, dim] → the attention's output [B, N, dim]."""
        features, queries = self.norm1(features), self.norm2(queries)
        key, value = self.to_kv(torch.cat([features, queries], dim=1)).chunk(2, dim=-1)
        return self.to_out(attend(self.heads, self.to_q(queries), key, value))


class Resampler(nn.Module):
    """Image features [B, M, image_dim] → face tokens [B, num_tokens, context_dim] (learned queries, perceiver)."""

    def __init__(self, config: GuiderConfig):
        super().__init__()
        dim = config.context_dim
        self.latents = nn.Parameter(torch.randn(1, config.num_tokens, dim) / dim**0.5)
        self.proj_in = nn.Linear(config.image_dim, dim)
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(dim, config.heads, config.head_dim), feed_forward(dim, config.ff_mult)])
            for _ in range(config.depth))
        self.proj_out = nn.Linear(dim, config.context_dim)
        self.norm_out = nn.LayerNorm(config.context_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Image features [B, M, image_dim] → tokens [B, num_tokens, context_dim]."""
        features = self.proj_in(features)
        queries = self.latents.expand(features.shape[0], -1, -1)
        for attention, mlp in self.layers:
            queries = queries + attention(features, queries)
            queries = queries + mlp(queries)
        return self.norm_out(self.proj_out(queries))


@dataclass(frozen=True)
class GuideTokens:
    """One kind of token as every attn2 layer reads it: per layer keys and values [S, N, C] for S token sets."""

    keys: tuple[torch.Tensor, ...]
    values: tuple[torch.Tensor, ...]

    @property
    def sets(self) -> int:
        """How many token sets (faces or prompts) there are."""
        return self.keys[0].shape[0]


@dataclass(frozen=True)
class Guide:
    """A UNet call's content guidance: the face and text tokens, and per video the set it reads (-1: none) and the
    scale (0: none). Per-video values are plain numbers, known before the call."""

    face: GuideTokens | None = None
    text: GuideTokens | None = None
    face_index: tuple[int, ...] = ()
    face_scale: tuple[float, ...] = ()
    text_index: tuple[int, ...] = ()
    text_scale: tuple[float, ...] = ()

    def check(self, videos: int) -> None:
        """Refuse indices or scales that do not name one valid set and one scale per video."""
        for kind in KINDS:
            tokens, index, scale = getattr(self, kind), getattr(self, f"{kind}_index"), getattr(self, f"{kind}_scale")
            sets = tokens.sets if tokens is not None else 0
            if tokens is None and not index:
                continue
            if len(index) != videos or len(scale) != videos or any(not -1 <= i < sets for i in index):
                raise ValueError(f"the guide's {kind} needs per video a set in [-1, {sets - 1}] and a scale, got "
                                 f"{list(index)} and {list(scale)} for {videos} videos")

    def repeat(self, copies: int) -> "Guide":
        """The same guide over a batch with each video repeated `copies` times in place (several windows a call)."""
        per_video = {f"{kind}_{what}": tuple(v for v in getattr(self, f"{kind}_{what}") for _ in range(copies))
                     for kind in KINDS for what in ("index", "scale")}
        return replace(self, **per_video)

    def rows(self, num_frames: int) -> "GuideRead":
        """What the attn2 layers read on (videos·frames) rows: per kind, groups of rows sharing a set and a scale."""
        groups = {}
        for kind in KINDS:
            tokens, index, scale = getattr(self, kind), getattr(self, f"{kind}_index"), getattr(self, f"{kind}_scale")
            by_set: dict[tuple[int, float], list[int]] = {}
            for video, (token_set, weight) in enumerate(zip(index, scale)):
                if tokens is not None and token_set >= 0 and weight != 0:
                    by_set.setdefault((token_set, weight), []).extend(range(video * num_frames, (video + 1) * num_frames))
            groups[kind] = tuple((s, w, tuple(rows)) for (s, w), rows in by_set.items())
        return GuideRead(self.face, self.text, groups["face"], groups["text"])


@dataclass(frozen=True)
class GuideRead:
    """A call's guide on the UNet's rows: per kind its tokens and its (set, scale, rows) groups."""

    face: GuideTokens | None
    text: GuideTokens | None
    face_groups: tuple[tuple[int, float, tuple[int, ...]], ...]
    text_groups: tuple[tuple[int, float, tuple[int, ...]], ...]

    @property
    def empty(self) -> bool:
        """No row reads any token."""
        return not self.face_groups and not self.text_groups


class GuidedCrossAttention(CrossAttention):
    """The denoising UNet's attn2: diffusers' cross-attention, plus each guided row's scaled attention to its face
    and text keys and values (layer `index`), added before the output projection."""

    def __init__(self, index: int):
        self.index = index

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 reference: object = None, guide: GuideRead | None = None) -> torch.Tensor:
        """attn2's output for the call's rows, with the guided rows' face and text attention added."""
        if guide is None or guide.empty:
            return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        query = attn.to_q(hidden_states)
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        mixed = attend(attn.heads, query, attn.to_k(context), attn.to_v(context))
        for tokens, groups in ((guide.face, guide.face_groups), (guide.text, guide.text_groups)):
            for token_set, scale, rows in groups:
                index = torch.tensor(rows, device=query.device)
                key = tokens.keys[self.index][token_set].expand(len(rows), -1, -1)
                value = tokens.values[self.index][token_set].expand(len(rows), -1, -1)
                mixed = mixed.index_add(0, index, attend(attn.heads, query[index], key, value), alpha=scale)
        return project_out(attn, mixed)


def cross_attention_layers(unet: UNet2DConditionModel) -> list[Attention]:
    """Every spatial transformer's attn2, in execution order (16 at SD-1.5)."""
    return [block.attn2 for block in attention_blocks(unet)]


def guider_config(unet: UNet2DConditionModel, image_dim: int, **shape) -> GuiderConfig:
    """The guider config that fits `unet` (its attn2 widths) for image features of `image_dim`."""
    layers = cross_attention_layers(unet)
    return GuiderConfig(image_dim=image_dim, context_dim=unet.config.cross_attention_dim, layers=len(layers),
                        attention_dims=tuple(layer.to_k.out_features for layer in layers), **shape)


class ContentGuider(nn.Module):
    """The resampler and, per attn2 layer, the face and text keys and values (`face_k.<i>`, `face_v.<i>`, ...)."""

    def __init__(self, config: GuiderConfig):
        super().__init__()
        self.config = config
        self.resampler = Resampler(config)
        for kind in KINDS:
            for part in ("k", "v"):
                setattr(self, f"{kind}_{part}", nn.ModuleList(
                    nn.Linear(config.context_dim, width, bias=False) for width in config.attention_dims))

    def init_from(self, unet: UNet2DConditionModel) -> None:
        """Copy each attn2's to_k/to_v into the face and text ones (IP-Adapter's start)."""
        for index, layer in enumerate(cross_attention_layers(unet)):
            for kind in KINDS:
                getattr(self, f"{kind}_k")[index].weight.data.copy_(layer.to_k.weight.data)
                getattr(self, f"{kind}_v")[index].weight.data.copy_(layer.to_v.weight.data)

    def face_tokens(self, image_features: torch.Tensor) -> torch.Tensor:
        """The CLIP image encoder's penultimate hidden states of face crops [B, M, image_dim] → [B, N, context_dim]."""
        return self.resampler(image_features)

    def tokens(self, kind: str, tokens: torch.Tensor) -> GuideTokens:
        """Token sets [S, N, context_dim] of `kind` as every attn2 layer reads them."""
        keys, values = getattr(self, f"{kind}_k"), getattr(self, f"{kind}_v")
        return GuideTokens(tuple(k(tokens) for k in keys), tuple(v(tokens) for v in values))


def check_guide_shapes(guider: ContentGuider, unet: UNet2DConditionModel, source: str) -> None:
    """Refuse, in one line, a guider whose layers or widths do not fit this UNet's attn2 layers."""
    fitting = guider_config(unet, guider.config.image_dim)
    for key in ("context_dim", "layers", "attention_dims"):
        mine, theirs = getattr(guider.config, key), getattr(fitting, key)
        if mine != theirs:
            raise AnimateError(f"{source}: the guider's {key} {mine} does not fit the denoising UNet's {theirs} "
                               "(a guider of another model size)")


def install_guided_cross_attention(unet: UNet2DConditionModel) -> None:
    """Give every attn2 of the denoising UNet the guided processor (it acts only in calls that pass a guide)."""
    for index, layer in enumerate(cross_attention_layers(unet)):
        layer.set_processor(GuidedCrossAttention(index))

