"""What both training stages share: the config, checkpoints (atomic, last N kept), resume and a clean SIGTERM."""

import json
import shutil
import signal
import warnings
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, set_seed
from omegaconf import DictConfig, OmegaConf

from animate.atomic import discard, publish, staging_path
from animate.dtypes import DTYPES
from animate.errors import AnimateError, first_line
from animate.models.bundle import AnimateModels
from animate.models.weights import save_weight_set

CHECKPOINT_PREFIX = "checkpoint-"
POSITION_FILE = "position.json"


def load_config(path: str | Path, overrides: list[str] = ()) -> DictConfig:
    """A YAML config with `key=value` overrides (OmegaConf dot-list); an override of a key the file lacks is refused."""
    if not Path(path).is_file():
        raise AnimateError(f"{path}: config not found")
    try:
        base = OmegaConf.load(path)
        OmegaConf.set_struct(base, True)  # a typo in an override must not be silently ignored
        return OmegaConf.merge(base, OmegaConf.from_dotlist(list(overrides)))
    except Exception as err:  # OmegaConf raises several types for bad YAML / overrides
        raise AnimateError(f"{path}: bad config or override ({first_line(err)})") from None


def start_run(config_path: str | Path, overrides: list[str] = ()) -> tuple[DictConfig, Accelerator, torch.dtype]:
    """The config, an Accelerator (mixed precision, accumulation, TensorBoard) with the run seeded, and the dtype of
    the frozen encoders."""
    cfg = load_config(config_path, overrides)
    run = cfg.train
    if run.mixed_precision is False:  # YAML reads a bare `no` (e.g. `train.mixed_precision=no`) as false
        run.mixed_precision = "no"
    if run.mixed_precision not in ("no", "fp16", "bf16"):
        raise AnimateError(f"train.mixed_precision must be no, fp16 or bf16, got {run.mixed_precision!r}")
    # The seedable sampler draws each epoch's order from (seed, epoch) alone: a resumed run can find its place.
    accelerator = Accelerator(mixed_precision=run.mixed_precision, gradient_accumulation_steps=run.gradient_accumulation,
                              dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=run.seed),
                              log_with="tensorboard", project_dir=run.output_dir)
    set_seed(run.seed)
    return cfg, accelerator, DTYPES.get(run.mixed_precision, torch.float32)


def checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints in step order (partial ones are never renamed into place)."""
    found = [p for p in Path(output_dir).glob(f"{CHECKPOINT_PREFIX}*") if p.is_dir()]
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]))


def save_checkpoint(accelerator: Accelerator, models: AnimateModels, output_dir: Path, step: int,
                    position: dict[str, int], keep: int) -> Path:
    """Accelerate state, the batches each process has consumed (an exact resume, mid-epoch too) and the inference
    weights (safetensors), written aside and renamed; keep the last N."""
    output_dir = Path(output_dir)
    final = output_dir / f"{CHECKPOINT_PREFIX}{step:07d}"
    staging = staging_path(final, shared=True)  # every process writes its part of the state here
    if accelerator.is_main_process:
        discard(staging)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging / "state"))
    if accelerator.is_main_process:
        (staging / POSITION_FILE).write_text(json.dumps({"step": step, **position}))
        save_weight_set(models, staging / "weights", "ours")
        publish(staging, final)
        for old in checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def resume(accelerator: Accelerator, output_dir: Path, which: str | None, layout: dict[str, int],
           batches_per_step: int) -> tuple[int, int]:
    """Load `latest` or a named checkpoint's accelerate state: the step to continue from and the batches each
    process had consumed by then ((0, 0) without a checkpoint). `layout` (batches an epoch, processes) must be the
    checkpoint's: elsewhere the same count of batches is another place in the data. A checkpoint from before
    position.json counts `batches_per_step` a step, with a warning."""
    if not which:
        return 0, 0
    if which == "latest":
        found = checkpoints(output_dir)
        if not found:
            return 0, 0
        path = found[-1]
    else:
        path = Path(which)
        if not (path / "state").is_dir():
            raise AnimateError(f"{path}: not a checkpoint (no state/ folder)")
    step = int(path.name[len(CHECKPOINT_PREFIX):])
    if not (path / POSITION_FILE).is_file():
        warnings.warn(f"{path} has no {POSITION_FILE} (saved before exact resuming): its place in the data is "
                      "estimated from the step", stacklevel=2)
        accelerator.load_state(str(path / "state"))
        return step, step * batches_per_step
    position = json.loads((path / POSITION_FILE).read_text())
    if any(position.get(key) != value for key, value in layout.items()):
        saved = ", ".join(f"{key} {position.get(key)}" for key in layout)
        now = ", ".join(f"{key} {value}" for key, value in layout.items())
        raise AnimateError(f"{path} was saved with {saved}; this run has {now} (same batch size, data and processes "
                           "to resume)")
    accelerator.load_state(str(path / "state"))
    return step, position["batches"]


class StopRequest:
    """Turns SIGTERM (a scheduler's pre-emption) into a flag the loop checks: save, then exit."""

    def __init__(self):
        self.requested = False
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, _signum, _frame) -> None:
        self.requested = True

    def agreed(self, accelerator: Accelerator) -> bool:
        """Whether any process was asked to stop: all then stop at the same step (a checkpoint waits for all)."""
        if accelerator.num_processes == 1:
            return self.requested
        flag = torch.tensor([float(self.requested)], device=accelerator.device)
        return bool(accelerator.reduce(flag, reduction="sum").item() > 0)


def unconditional_context(image_encoder, kind: str, device, dtype) -> torch.Tensor:
    """The CLIP context of dropped samples: the embedding of an all-zero CLIP input (as released) or zeros.

    The released training zeroed the *preprocessed* CLIP tensor, i.e. a CLIP-mean grey image, not a black one."""
    if kind == "zeros":
        return torch.zeros(1, 1, image_encoder.config.projection_dim, device=device, dtype=dtype)
    if kind != "zero_image":
        raise AnimateError(f"train.uncond_clip must be zero_image or zeros, got {kind!r}")
    size = image_encoder.config.image_size
    zero_input = torch.zeros(1, 3, size, size, device=device, dtype=dtype)
    with torch.no_grad():
        return image_encoder(zero_input).image_embeds[:, None]
