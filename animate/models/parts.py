"""Parts of our weight file: the tensors under one prefix (`controlnet.`, `guider.`) and the file's metadata."""

from pathlib import Path

import torch
from safetensors import safe_open

from ..errors import AnimateError, first_line


def read_part(path: Path, prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors whose keys start with `prefix.` and the metadata of a safetensors file; one line if unreadable."""
    try:
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys() if key.startswith(f"{prefix}.")}
    except Exception as err:
        raise AnimateError(f"{path}: not a readable weight file ({first_line(err)})") from None
    return tensors, metadata
