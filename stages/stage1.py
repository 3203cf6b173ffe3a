"""Stage 1: train the ReferenceNet, pose guider and denoising UNet on (reference, target, pose) image pairs.

    animate train stage1 --config configs/train/stage1.yaml [key=value ...] [--resume latest]
"""

import math
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from diffusers.optimization import get_scheduler
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from animate.errors import AnimateError
from animate.models.weights import load_models
from animate.pipeline.animate import clip_pixels

from .datasets import Stage1Dataset
from .network import AnimateNet, unread_reference_parameters
from .objective import training_scheduler
from .step import diffusion_loss, encode_batch
from .training import StopRequest, load_config, resume, save_checkpoint


def unconditional_context(image_encoder, kind: str, device, dtype) -> torch.Tensor:
    """The CLIP input of dropped samples: the embedding of an all-black image (as released) or zeros."""
    if kind == "zeros":
        return torch.zeros(1, 1, image_encoder.config.projection_dim, device=device, dtype=dtype)
    if kind != "zero_image":
        raise AnimateError(f"train.uncond_clip must be zero_image or zeros, got {kind!r}")
    from PIL import Image

    black = clip_pixels(Image.new("RGB", (224, 224))).to(device, dtype)
    with torch.no_grad():
        return image_encoder(black).image_embeds[:, None]


def train(config_path: str | Path, overrides: list[str] = (), resume_from: str | None = None) -> Path:
    """Run stage 1; returns the output folder (checkpoints with accelerate state and inference weights)."""
    cfg = load_config(config_path, overrides)
    run = cfg.train
    output_dir = Path(run.output_dir)
    accelerator = Accelerator(mixed_precision=run.mixed_precision, gradient_accumulation_steps=run.gradient_accumulation,
                              log_with="tensorboard", project_dir=str(output_dir))
    set_seed(run.seed)
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(run.mixed_precision, torch.float32)

    # Models: the frozen VAE and image encoder, and the three trained ones joined by reference attention.
    models = load_models(cfg.init.weights, motion=False)
    models.vae.requires_grad_(False).eval().to(accelerator.device, weight_dtype)
    models.image_encoder.requires_grad_(False).eval().to(accelerator.device, weight_dtype)
    net = AnimateNet(models.reference_unet, models.denoising_unet, models.pose_guider).to(torch.float32)
    frozen = set(unread_reference_parameters(models.reference_unet))
    for name, param in models.reference_unet.named_parameters():
        if name in frozen or (run.freeze_up_block_3 and name.startswith("up_blocks.3.")):
            param.requires_grad_(False)
    trained = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=run.learning_rate, weight_decay=run.weight_decay)
    lr_schedule = get_scheduler("constant", optimizer)

    # Data.
    dataset = Stage1Dataset(list(cfg.data.meta), cfg.data.width, cfg.data.height, cfg.data.sample_margin)
    loader = DataLoader(dataset, batch_size=run.batch_size, shuffle=True, drop_last=True,
                        num_workers=cfg.data.num_workers)
    if len(loader) == 0:
        raise AnimateError(f"not enough videos for one batch of {run.batch_size} (found {len(dataset)})")
    net, optimizer, loader, lr_schedule = accelerator.prepare(net, optimizer, loader, lr_schedule)
    noise_schedule = training_scheduler()
    uncond = unconditional_context(models.image_encoder, run.uncond_clip, accelerator.device, weight_dtype)

    step = resume(accelerator, output_dir, resume_from)
    accelerator.init_trackers("stage1")
    stop = StopRequest()
    progress = tqdm(total=run.max_steps, initial=step, desc="stage 1", disable=not accelerator.is_main_process)
    epochs = math.ceil((run.max_steps - step) / max(1, len(loader) // run.gradient_accumulation)) + 1
    for _ in range(epochs):
        for batch in loader:
            with accelerator.accumulate(net):
                latents, reference, context, pose, dropped = encode_batch(
                    models.vae, models.image_encoder, batch, uncond, run.condition_dropout, weight_dtype)
                loss = diffusion_loss(net, noise_schedule, latents, reference, context, pose, dropped,
                                      run.noise_offset, run.snr_gamma, step + 1)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(trained, run.max_grad_norm)
                optimizer.step()
                lr_schedule.step()
                optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            step += 1
            progress.update()
            if step % run.log_every == 0:
                accelerator.log({"loss": loss.item(), "lr": lr_schedule.get_last_lr()[0]}, step=step)
            done = step >= run.max_steps or stop.requested
            if step % run.checkpoint_every == 0 or done:
                save_checkpoint(accelerator, models, output_dir, step, run.keep_checkpoints)
            if done:
                accelerator.end_training()
                return output_dir
    accelerator.end_training()
    return output_dir
