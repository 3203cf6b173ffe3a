"""What both training stages share: the config, checkpoints (atomic, last N kept), resume and a clean SIGTERM."""

import os
import shutil
import signal
from pathlib import Path

from accelerate import Accelerator
from omegaconf import DictConfig, OmegaConf

from animate.errors import AnimateError
from animate.models.bundle import AnimateModels
from animate.models.weights import save_weight_set

CHECKPOINT_PREFIX = "checkpoint-"


def load_config(path: str | Path, overrides: list[str] = ()) -> DictConfig:
    """A YAML config with `key=value` overrides (OmegaConf dot-list)."""
    if not Path(path).is_file():
        raise AnimateError(f"{path}: config not found")
    try:
        return OmegaConf.merge(OmegaConf.load(path), OmegaConf.from_dotlist(list(overrides)))
    except Exception as err:  # OmegaConf raises several types for bad YAML / overrides
        raise AnimateError(f"{path}: bad config or override ({str(err).splitlines()[0]})") from None


def checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints in step order (partial ones are never renamed into place)."""
    found = [p for p in Path(output_dir).glob(f"{CHECKPOINT_PREFIX}*") if p.is_dir()]
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]))


def save_checkpoint(accelerator: Accelerator, models: AnimateModels, output_dir: Path, step: int, keep: int) -> Path:
    """Accelerate state (exact resume) + inference weights (safetensors), written aside and renamed; keep the last N."""
    output_dir = Path(output_dir)
    final = output_dir / f"{CHECKPOINT_PREFIX}{step:07d}"
    staging = output_dir / f".{final.name}.partial"
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging / "state"))
    if accelerator.is_main_process:
        save_weight_set(models, staging / "weights", "ours")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(staging, final)
        for old in checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def resume(accelerator: Accelerator, output_dir: Path, which: str | None) -> int:
    """Load `latest` or a named checkpoint's accelerate state; the step to continue from (0 without one)."""
    if not which:
        return 0
    if which == "latest":
        found = checkpoints(output_dir)
        if not found:
            return 0
        path = found[-1]
    else:
        path = Path(which)
        if not (path / "state").is_dir():
            raise AnimateError(f"{path}: not a checkpoint (no state/ folder)")
    accelerator.load_state(str(path / "state"))
    return int(path.name[len(CHECKPOINT_PREFIX):])


class StopRequest:
    """Turns SIGTERM (a scheduler's pre-emption) into a flag the loop checks: save, then exit."""

    def __init__(self):
        self.requested = False
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, _signum, _frame) -> None:
        self.requested = True
