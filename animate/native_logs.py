"""Keep native libraries' own log lines (decord, libav, MediaPipe/absl) off the terminal."""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


@contextmanager
def native_stderr_silenced() -> Iterator[TextIO]:
    """File descriptor 2 goes to /dev/null for the block; yields a stream to the real stderr (for progress bars)."""
    sys.stderr.flush()
    saved = os.dup(2)
    real = os.fdopen(os.dup(saved), "w", buffering=1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield real
    finally:
        real.close()
        os.dup2(saved, 2)
        os.close(saved)
