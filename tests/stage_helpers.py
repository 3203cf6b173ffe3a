"""What the training-stage tests share: overfitting one batch, and a run resumed mid-way beside one never stopped."""

from collections.abc import Callable
from pathlib import Path

import torch


def overfit(loss: Callable[[], torch.Tensor], params, steps: int, lr: float = 3e-3) -> tuple[float, float]:
    """The loss before and after `steps` Adam steps on `params` (one fixed batch inside `loss`)."""
    optimizer = torch.optim.Adam(params, lr=lr)
    first = loss().item()
    for _ in range(steps):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    with torch.no_grad():
        return first, loss().item()


def straight_and_resumed(run: Callable[..., Path], tmp_path: Path) -> tuple[Path, Path]:
    """The output folders of a 5-step run and of a 3-step run resumed to 5 (`run(output, *overrides, resume=...)`)."""
    straight = run(tmp_path / "a", "train.max_steps=5", "train.checkpoint_every=5")
    run(tmp_path / "b", "train.max_steps=3", "train.checkpoint_every=3")
    return straight, run(tmp_path / "b", "train.max_steps=5", "train.checkpoint_every=5", resume="latest")
