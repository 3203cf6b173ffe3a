"""Reading a torch pickle (.pth/.ckpt/.bin) safely: weights only, memory-mapped, one-line errors."""

from pathlib import Path

import torch

from ..errors import AnimateError


def load_torch_file(path: Path) -> object:
    """The file's object (weights_only, memory-mapped; legacy pre-zip pickles read whole), or a one-line error."""
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:
            if "mmap" not in str(err):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)  # legacy (pre-zip) pickles
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise AnimateError(f"{path}: not a readable weight file ({reason[:200]})") from None
