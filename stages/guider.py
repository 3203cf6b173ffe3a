"""Guider stage: train DreamMoving's content guider (the face resampler and the face and text keys and values of every
attn2; at the small sizes the text encoder too) on stage-1 pairs with a face crop of the same person from elsewhere
and the video's caption, over a frozen Animate Anyone model; the loop, checkpoints, exact resume and previews are the
other stages'.

    animate train guider --config configs/train/guider.yaml [key=value ...] [--resume latest]
"""

from pathlib import Path

from animate.errors import AnimateError
from animate.models.bundle import new_guider, random_text_encoder
from animate.models.weights import load_models, load_text_encoder

from .datasets import GuiderDataset
from .loop import run_training
from .stage2 import optimizer_for
from .training import start_run


def train(config_path: str | Path, overrides: list[str] = (), resume_from: str | None = None) -> Path:
    """Run the guider stage; returns the output folder (checkpoints whose weights hold the guider)."""
    cfg, accelerator, weight_dtype = start_run(config_path, overrides)
    run = cfg.train

    # Models: the whole weight set frozen; its guider (or a fresh one, keys and values copied from attn2) trained, and
    # the text encoder where it is a small one trained with it (SD-1.5's stays frozen).
    models = load_models(cfg.init.weights)
    if models.guider is None:
        models.guider = new_guider(models, dict(cfg.guider))
    if models.text_encoder is None and cfg.text.encoder:
        models.text_encoder, models.tokenizer = load_text_encoder(Path(cfg.text.encoder))
        if models.text_encoder is None:
            raise AnimateError(f"text.encoder {cfg.text.encoder}: no text encoder there (`animate download --set text`)")
    elif models.text_encoder is None:
        models.text_encoder, models.tokenizer = random_text_encoder(cfg.text.size)
    models.check_guider(str(cfg.init.weights))
    for model in models.modules().values():
        model.requires_grad_(False)
    trained = list(models.guider.requires_grad_(True).parameters())
    if cfg.text.train:
        trained += list(models.text_encoder.requires_grad_(True).parameters())
    models.vae.eval().to(accelerator.device, weight_dtype)
    models.image_encoder.eval().to(accelerator.device, weight_dtype)
    if run.gradient_checkpointing:
        models.animate_unet.enable_gradient_checkpointing()
    optimizer = optimizer_for(trained, run)

    dataset = GuiderDataset(list(cfg.data.meta), cfg.data.width, cfg.data.height, cfg.data.sample_margin, seed=run.seed)
    return run_training("guider", accelerator, models, trained, optimizer, dataset, cfg, weight_dtype, resume_from, 1,
                        guided=True)
