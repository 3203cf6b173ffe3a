"""The one exception type whose message is shown to users as a single line."""


class AnimateError(Exception):
    """A user-facing error: bad input, missing weights, wrong options."""


class Terminated(BaseException):
    """SIGTERM stopped the command, after what it had to save was saved (the message says where); exit 143.

    A BaseException, like KeyboardInterrupt, so that no `except Exception` on the way swallows it."""
