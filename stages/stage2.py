"""Stage 2: train only the AnimateDiff motion modules on video clips, over frozen stage-1 weights.

    animate train stage2 --config configs/train/stage2.yaml [key=value ...] [--resume latest]
"""

from pathlib import Path

import torch

from animate.errors import AnimateError
from animate.models.weights import load_models

from .datasets import Stage2Dataset
from .loop import run_training
from .training import start_run


def optimizer_for(params: list[torch.nn.Parameter], run) -> torch.optim.Optimizer:
    """AdamW, or bitsandbytes' 8-bit AdamW when asked for (a clear error when it is not installed)."""
    if not run.use_8bit_adam:
        return torch.optim.AdamW(params, lr=run.learning_rate, weight_decay=run.weight_decay)
    try:
        import bitsandbytes
    except ImportError:
        raise AnimateError("train.use_8bit_adam needs bitsandbytes: pip install bitsandbytes") from None
    return bitsandbytes.optim.AdamW8bit(params, lr=run.learning_rate, weight_decay=run.weight_decay)


def train(config_path: str | Path, overrides: list[str] = (), resume_from: str | None = None) -> Path:
    """Run stage 2; returns the output folder (checkpoints with accelerate state and inference weights)."""
    cfg, accelerator, weight_dtype = start_run(config_path, overrides)
    run = cfg.train

    # Models: stage-1 weights frozen; motion modules from AnimateDiff (or zeros), the only trained parameters.
    motion_file = Path(cfg.init.motion_module) if cfg.init.motion_module else None
    models = load_models(cfg.init.weights, motion_module=motion_file)
    if models.animate_unet.motion_pe_length is None:
        models.animate_unet.add_motion_modules(cfg.init.motion_pe_length)
    for model in models.modules().values():
        model.requires_grad_(False)
    motion = [p for name, p in models.denoising_unet.named_parameters() if ".motion_modules." in name]
    for param in motion:
        param.requires_grad_(True)
    models.vae.eval().to(accelerator.device, weight_dtype)
    models.image_encoder.eval().to(accelerator.device, weight_dtype)
    if run.gradient_checkpointing:
        models.animate_unet.enable_gradient_checkpointing()
    optimizer = optimizer_for(motion, run)

    dataset = Stage2Dataset(list(cfg.data.meta), cfg.data.width, cfg.data.height, cfg.data.n_sample_frames,
                            cfg.data.sample_rate, seed=run.seed)
    return run_training("stage2", accelerator, models, motion, optimizer, dataset, cfg, weight_dtype, resume_from,
                        cfg.data.n_sample_frames)
