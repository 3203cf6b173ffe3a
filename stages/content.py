"""The content guider's part of a training step: face features and captions encoded, dropped per sample (face, text
and reference each on its own), and the Guide of a batch."""

from dataclasses import dataclass

import torch

from animate.models.guider import ContentGuider, Guide
from animate.models.text import token_ids

from .objective import drop_mask


@dataclass(frozen=True)
class ContentBatch:
    """A batch's guider inputs: the face crops' penultimate CLIP hidden states [B, M, H], the captions' token ids
    [B, T], and per sample whether its face and its text are read (on the CPU: the call's rows are plain ints)."""

    face_features: torch.Tensor
    input_ids: torch.Tensor
    face_kept: torch.Tensor
    text_kept: torch.Tensor


@torch.no_grad()
def encode_content(image_encoder, tokenizer, batch: dict, face_dropout: float, text_dropout: float,
                   dtype: torch.dtype) -> tuple[ContentBatch, torch.Tensor]:
    """The batch's ContentBatch (a face is read where one was seen and not dropped, a caption where there is one and
    it is not dropped) and the face crops' CLIP embeddings [B, 1, D] (the context of a photo-free sample)."""
    out = image_encoder(batch["face_clip_pixel_values"].to(dtype), output_hidden_states=True)
    captions = list(batch["caption"])
    seen = batch["face_seen"].cpu().bool()
    has_text = torch.tensor([bool(caption) for caption in captions])
    content = ContentBatch(out.hidden_states[-2].float(), token_ids(tokenizer, captions).to(out.image_embeds.device),
                           seen & ~drop_mask(len(seen), face_dropout), has_text & ~drop_mask(len(seen), text_dropout))
    return content, out.image_embeds[:, None].float()


def photo_free_context(context: torch.Tensor, reference_dropped: torch.Tensor, face_embeds: torch.Tensor,
                       face_kept: torch.Tensor) -> torch.Tensor:
    """The CLIP context with the samples that read no photo but a face given the face's embedding, as a photo-free
    run conditions (the others keep the photo's, or the unconditional one)."""
    photo_free = (reference_dropped & face_kept).to(context.device)[:, None, None]
    return torch.where(photo_free, face_embeds.to(context.dtype), context)


def batch_guide(guider: ContentGuider, text_encoder, content: ContentBatch) -> Guide:
    """The Guide of a training batch: sample b reads face b and caption b where kept, at scale 1."""
    face = guider.tokens("face", guider.face_tokens(content.face_features))
    text = guider.tokens("text", text_encoder(content.input_ids).last_hidden_state)
    videos = len(content.face_kept)
    index = lambda kept: tuple(b if keep else -1 for b, keep in enumerate(kept.tolist()))  # noqa: E731
    return Guide(face=face, text=text, face_index=index(content.face_kept), face_scale=(1.0,) * videos,
                 text_index=index(content.text_kept), text_scale=(1.0,) * videos)
