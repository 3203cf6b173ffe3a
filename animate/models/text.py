"""Prompts to text tokens: a CLIP tokenizer (77 tokens, SD-1.5's) and a CLIP text encoder's last hidden states.

At sd15 the encoder is SD-1.5's, openai/clip-vit-large-patch14 (`animate download --set text`), frozen. The tiny
and demo sizes use a small CLIPTextModel trained with the guider and a small tokenizer in the CLIP tokenizer's file
format (configs/models/<size>/tokenizer, built by data_tools/tokenizer.py).
"""

from dataclasses import dataclass

import torch
from transformers import CLIPTextModel, CLIPTokenizer

TEXT_REPO = "openai/clip-vit-large-patch14"  # SD-1.5's text encoder (MIT licence)
TEXT_DIR = "clip-vit-large-patch14"  # its folder inside a weights folder (`animate download --set text`)
TEXT_FILES = ("config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer_config.json",
              "special_tokens_map.json")  # the whole CLIP: CLIPTextModel reads its text half


@dataclass(frozen=True)
class EncodedPrompts:
    """Text tokens [S, T, D] of S prompts, and which prompts were cut at the tokenizer's length."""

    tokens: torch.Tensor
    truncated: tuple[bool, ...]


def token_ids(tokenizer: CLIPTokenizer, prompts: list[str]) -> torch.Tensor:
    """Token ids [S, T] of prompts, padded and cut to the tokenizer's length (77 for CLIP)."""
    return tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids


def truncated(tokenizer: CLIPTokenizer, prompts: list[str]) -> tuple[bool, ...]:
    """Per prompt, whether it has more tokens (start and end included) than the tokenizer keeps."""
    return tuple(len(ids) > tokenizer.model_max_length for ids in tokenizer(prompts).input_ids)


def encode_prompts(tokenizer: CLIPTokenizer, text_encoder: CLIPTextModel, prompts: list[str]) -> EncodedPrompts:
    """The text encoder's last hidden states [S, 77, D] of prompts (as SD-1.5 conditions on them)."""
    ids = token_ids(tokenizer, prompts).to(text_encoder.device)
    return EncodedPrompts(text_encoder(ids).last_hidden_state, truncated(tokenizer, prompts))
