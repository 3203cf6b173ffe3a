"""transformers/diffusers `from_pretrained` folders, loaded quietly with one-line errors."""

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from transformers.utils import logging as transformers_logging

from .errors import AnimateError, first_line


@contextmanager
def no_progress_bars() -> Iterator[None]:
    """transformers' per-file progress bars off for the block (a library call stays as quiet as the CLI)."""
    enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            transformers_logging.enable_progress_bar()


def load_pretrained(cls, folder: Path | None, what: str, root: Path, marker: str = "config.json"):
    """cls.from_pretrained(folder), quietly; a missing folder (or one without `marker`) or a file that does not load is
    a one-line AnimateError."""
    if folder is None or not (folder / marker).is_file():
        raise AnimateError(f"{root}: no {what} folder with a {marker} (see `animate download`)")
    try:
        with no_progress_bars():
            return cls.from_pretrained(str(folder))
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise AnimateError(f"{folder}: cannot load the {what} ({first_line(err)})") from None
