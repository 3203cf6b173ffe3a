"""Console lines: each written whole, in one call, so lines from processes sharing a pipe never splice together."""

import sys
from typing import TextIO


def say(line: object, stream: TextIO | None = None) -> None:
    """Write `line` and its newline in one write to `stream` (stderr by default), then flush."""
    stream = sys.stderr if stream is None else stream
    stream.write(f"{line}\n")
    stream.flush()
