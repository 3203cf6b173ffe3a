"""Stage 1: train the ReferenceNet, pose guider and denoising UNet on (reference, target, pose) image pairs.

    animate train stage1 --config configs/train/stage1.yaml [key=value ...] [--resume latest]
"""

from pathlib import Path

import torch

from animate.models.weights import load_models

from .datasets import Stage1Dataset
from .init import models_from_image_variations
from .loop import run_training
from .network import unread_reference_parameters
from .training import start_run


def train(config_path: str | Path, overrides: list[str] = (), resume_from: str | None = None) -> Path:
    """Run stage 1; returns the output folder (checkpoints with accelerate state and inference weights)."""
    cfg, accelerator, weight_dtype = start_run(config_path, overrides)
    run = cfg.train

    # Models: the VAE and image encoder frozen; the ReferenceNet, denoising UNet (2-D) and pose guider trained,
    # except the ReferenceNet parameters after its last reference write (nothing reads them) and, optionally,
    # all of its up_blocks.3 (as Moore did).
    if cfg.init.image_variations:
        controlnet = cfg.init.controlnet_openpose
        models = models_from_image_variations(Path(cfg.init.image_variations), Path(controlnet) if controlnet else None)
    else:
        models = load_models(cfg.init.weights, motion=False)
    models.vae.requires_grad_(False).eval().to(accelerator.device, weight_dtype)
    models.image_encoder.requires_grad_(False).eval().to(accelerator.device, weight_dtype)
    frozen = set(unread_reference_parameters(models.reference_unet))
    for name, param in models.reference_unet.named_parameters():
        if name in frozen or (run.freeze_up_block_3 and name.startswith("up_blocks.3.")):
            param.requires_grad_(False)
    trained = [p for m in (models.reference_unet, models.denoising_unet, models.pose_guider)
               for p in m.parameters() if p.requires_grad]
    if run.gradient_checkpointing:
        models.animate_unet.enable_gradient_checkpointing()
    optimizer = torch.optim.AdamW(trained, lr=run.learning_rate, weight_decay=run.weight_decay)

    dataset = Stage1Dataset(list(cfg.data.meta), cfg.data.width, cfg.data.height, cfg.data.sample_margin, seed=run.seed)
    return run_training("stage1", accelerator, models, trained, optimizer, dataset, cfg, weight_dtype, resume_from,
                        1)
