"""Reading a torch pickle (.pth/.ckpt/.bin) safely: weights only, memory-mapped, one-line errors."""

import warnings
import zipfile
from pathlib import Path

import torch

from .errors import AnimateError, first_line


ZIP_MAGIC, PICKLE_MAGIC = b"PK\x03\x04", b"\x80"  # torch.save's zip archive; a legacy pickle (protocol >= 2)


def pickle_protocol(path: Path) -> int:
    """The pickle protocol of a torch file (its data.pkl for torch.save's zip archive), 0 where it cannot be read."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                name = next(n for n in archive.namelist() if n.endswith("data.pkl"))
                head = archive.open(name).read(2)
        else:
            with open(path, "rb") as f:
                head = f.read(2)
    except (OSError, StopIteration, zipfile.BadZipFile):
        return 0
    return head[1] if len(head) == 2 and head[:1] == PICKLE_MAGIC else 0


def check_torch_file(path: Path) -> None:
    """Refuse, from its first bytes, a file that is neither torch.save's zip archive nor a pickle (cheap: before any
    model loads)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as err:
        raise AnimateError(f"{path}: cannot be read ({err.strerror})") from None
    if not (head.startswith(ZIP_MAGIC) or head.startswith(PICKLE_MAGIC)):
        raise AnimateError(f"{path}: not a readable weight file (neither torch.save's zip archive nor a pickle)")


def load_torch_file(path: Path) -> object:
    """The file's object (weights_only, memory-mapped; legacy pre-zip pickles read whole), or a one-line error."""
    check_torch_file(path)
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol on stderr; the error below says it
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            try:
                return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as err:
                if "mmap" not in str(err):
                    raise
                return torch.load(path, map_location="cpu", weights_only=True)  # legacy (pre-zip) pickles
    except Exception as err:
        if pickle_protocol(path) >= 4:  # its FRAME opcode is what torch's weights-only unpickler lacks
            raise AnimateError(f"{path}: saved with pickle protocol 4 or later, which torch's safe (weights-only) "
                               "loader cannot read; re-save it with torch.save's default protocol") from None
        raise AnimateError(f"{path}: not a readable weight file ({first_line(err)})") from None
