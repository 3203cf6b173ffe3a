"""Errors shown to users: AnimateError (its message is the one line), Terminated, and the one-line summaries."""

import zipfile
import zlib

# What numpy's np.load raises on a damaged .npz: unreadable, empty, truncated, bad checksums, not an archive, missing
# arrays.
NPZ_ERRORS = (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile, zlib.error)


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first non-empty line of an exception's message (at most `limit` characters), else its type's name; never
    raises, so that reporting an error cannot hide it."""
    try:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    except Exception:  # a __str__ that fails
        lines = []
    return lines[0][:limit] if lines else type(err).__name__


def error_summary(err: BaseException) -> str:
    """An unexpected error in one line: its type, then the first line of its message when it has one."""
    line = first_line(err)
    return line if line == type(err).__name__ else f"{type(err).__name__}: {line}"


class AnimateError(Exception):
    """A user-facing error: bad input, missing weights, wrong options."""


class Terminated(BaseException):
    """SIGTERM stopped the command, after what it had to save was saved (the message says where); exit 143.

    A BaseException, like KeyboardInterrupt, so that no `except Exception` on the way swallows it."""
