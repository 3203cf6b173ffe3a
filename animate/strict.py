"""Strict state-dict checking: every key and shape as the model has them, else one line naming the file and key."""

from pathlib import Path

import torch
from torch import nn

from .errors import AnimateError


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str | Path, what: str,
                     keys: set[str] | None = None) -> None:
    """Exact key and shape match against `model` (restricted to `keys`), else one line naming file and key."""
    expected = {k: v.shape for k, v in model.state_dict().items() if keys is None or k in keys}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    more = lambda items: f" (and {len(items) - 1} more)" if len(items) > 1 else ""  # noqa: E731
    if missing:
        raise AnimateError(f"{source}: missing key {missing[0]!r} for the {what}{more(missing)}")
    if unexpected:
        raise AnimateError(f"{source}: unexpected key {unexpected[0]!r} for the {what}{more(unexpected)}")
    for key, shape in expected.items():
        if state[key].shape != shape:
            raise AnimateError(
                f"{source}: {key!r} has shape {list(state[key].shape)}, the {what} expects {list(shape)}"
            )
