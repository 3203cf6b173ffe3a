"""The one exception type whose message is shown to users as a single line."""


class AnimateError(Exception):
    """A user-facing error: bad input, missing weights, wrong options."""
