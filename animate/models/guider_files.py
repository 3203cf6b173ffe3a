"""The content guider on disk: `guider.*` tensors in our weight file (its GuiderConfig in the `guider` metadata entry),
in a weight set or a file of its own (`--guider PATH`). Its text encoder and tokenizer are transformers folders beside
the weight file (`text_encoder/`, `tokenizer/`)."""

import json
from dataclasses import fields
from pathlib import Path

import torch

from ..errors import AnimateError, first_line
from ..strict import check_state_dict
from .guider import ContentGuider, GuiderConfig
from .parts import read_part

PREFIX = "guider"
METADATA_KEY = "guider"  # JSON: the GuiderConfig


def guider_tensors_and_metadata(guider: ContentGuider | None, cast) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The weight file's `guider.*` tensors and metadata entry (none without a guider; `cast`: the file's dtype)."""
    if guider is None:
        return {}, {}
    tensors = {f"{PREFIX}.{k}": v for k, v in cast(guider.state_dict()).items()}
    return tensors, {METADATA_KEY: json.dumps(guider.config.to_dict())}


def build_guider(tensors: dict[str, torch.Tensor], metadata: dict[str, str], source: Path) -> ContentGuider | None:
    """The guider of a weight file's `guider.*` tensors and metadata (None when it has neither), built on the meta
    device and loaded strictly; anything malformed is one line naming the file."""
    if not tensors and METADATA_KEY not in metadata:
        return None
    if not tensors or METADATA_KEY not in metadata:
        raise AnimateError(f"{source}: the guider has tensors or metadata but not both")
    try:
        info = json.loads(metadata[METADATA_KEY])
        known = {f.name for f in fields(GuiderConfig)}
        config = GuiderConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in info.items() if k in known})
        with torch.device("meta"):
            guider = ContentGuider(config)
    except (ValueError, KeyError, TypeError) as err:
        raise AnimateError(f"{source}: unreadable guider entry ({first_line(err)})") from None
    state = {key[len(PREFIX) + 1:]: tensor for key, tensor in tensors.items()}
    check_state_dict(guider, state, source, "content guider")
    guider.load_state_dict(state, strict=True, assign=True)
    return guider


def load_guider(path: str | Path) -> ContentGuider:
    """The guider of `--guider PATH`: one of our weight files (a whole set or a guider alone), or its folder."""
    path = Path(path)
    file = path / "animate.safetensors" if path.is_dir() else path
    if not file.is_file():
        raise AnimateError(f"--guider {path}: not found")
    tensors, metadata = read_part(file, PREFIX)
    guider = build_guider(tensors, metadata, file)
    if guider is None:
        raise AnimateError(f"{file}: holds no content guider")
    return guider
