"""Control stage: train DreamMoving's Video ControlNet (depth or pose) on clips with their control sequences, over a
frozen Animate Anyone model; the objective, loop, checkpoints, exact resume and previews are stages 1 and 2's.

    animate train control --config configs/train/control.yaml [control.kind=depth] [key=value ...] [--resume latest]
"""

from pathlib import Path

from animate.models.controlnet import VideoControlNet, check_control_scale, check_fits
from animate.models.controlnet_files import check_kind
from animate.models.weights import load_models

from .datasets import Stage2Dataset
from .loop import run_training
from .stage2 import optimizer_for
from .training import start_run


def train(config_path: str | Path, overrides: list[str] = (), resume_from: str | None = None) -> Path:
    """Run the control stage; returns the output folder (checkpoints whose weights hold the ControlNet)."""
    cfg, accelerator, weight_dtype = start_run(config_path, overrides)
    run, kind = cfg.train, check_kind(cfg.control.kind)
    check_control_scale(float(cfg.control.scale))

    # Models: the whole weight set frozen; its ControlNet of this kind (or a fresh copy of its UNet) trained.
    models = load_models(cfg.init.weights)
    if kind not in models.controlnets:
        models.controlnets[kind] = VideoControlNet.from_animate_unet(models.animate_unet, models.latent_scale)
    check_fits(models.controlnets[kind], models.animate_unet, models.latent_scale, str(cfg.init.weights))
    models.control_scales[kind] = float(cfg.control.scale)
    for model in models.modules().values():
        model.requires_grad_(False)
    controlnet = models.controlnets[kind].requires_grad_(True)
    trained = list(controlnet.parameters())
    models.vae.eval().to(accelerator.device, weight_dtype)
    models.image_encoder.eval().to(accelerator.device, weight_dtype)
    if run.gradient_checkpointing:
        models.animate_unet.enable_gradient_checkpointing()
        controlnet.enable_gradient_checkpointing()
    optimizer = optimizer_for(trained, run)

    dataset = Stage2Dataset(list(cfg.data.meta), cfg.data.width, cfg.data.height, cfg.data.n_sample_frames,
                            cfg.data.sample_rate, seed=run.seed, depth=kind == "depth")
    return run_training("control", accelerator, models, trained, optimizer, dataset, cfg, weight_dtype, resume_from,
                        cfg.data.n_sample_frames, control=kind)
