"""The training loop both stages run, top to bottom: encode, loss, step, log, checkpoint, until done or SIGTERM."""

import gc
import json
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from diffusers.optimization import get_scheduler
from omegaconf import DictConfig
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from animate.atomic import write_text
from animate.errors import AnimateError, Terminated
from animate.models.bundle import AnimateModels

from .content import encode_content, photo_free_context
from .datasets import PoseVideoDataset
from .network import AnimateNet
from .objective import drop_mask, training_scheduler
from .preview import write_preview
from .progressive import Batch, ProgressiveDistillation
from .step import checked, diffusion_loss, encode_batch
from .training import StopRequest, resume, save_checkpoint, unconditional_context

LR_SCHEDULES = ("constant", "cosine", "linear")


def run_training(stage: str, accelerator: Accelerator, models: AnimateModels, trained: list[torch.nn.Parameter],
                 optimizer: torch.optim.Optimizer, dataset: PoseVideoDataset, cfg, weight_dtype: torch.dtype,
                 resume_from: str | None, preview_frames: int, control: str | None = None,
                 guided: bool = False, distill: ProgressiveDistillation | None = None) -> Path:
    """Train `trained` (the rest frozen) on `dataset`; returns the output folder holding the checkpoints.

    `control` (depth | pose): the models' ControlNet of that kind joins every call, reading the batch's depth or pose
    images (a share `train.control_dropout` of the samples get black ones). `guided`: the models' content guider joins
    every call with each sample's face crop and caption (dropped on their own: `train.face_dropout`,
    `train.text_dropout`; the reference by `train.condition_dropout`). `distill`: the loss is that round's
    progressive distillation against its frozen teacher instead of the diffusion loss. Every `train.validate_every` steps the
    main process writes a preview of `preview_frames` frames. SIGTERM ends the run after a checkpoint with Terminated.
    """
    run = cfg.train
    output_dir = Path(run.output_dir)
    controlnet = models.controlnets[control] if control else None
    net = AnimateNet(models.reference_net, models.animate_unet, controlnet, models.guider if guided else None,
                     models.text_encoder if guided else None, motion=not guided).to(torch.float32)
    # A generator of its own: starting an epoch's iterator must not draw from the global one, which a checkpoint
    # restores (a resumed run starts one more iterator than the run it continues).
    loader = DataLoader(dataset, batch_size=run.batch_size, shuffle=True, drop_last=True,
                        num_workers=cfg.data.num_workers, generator=torch.Generator().manual_seed(run.seed))
    lr_schedule = learning_rate_schedule(optimizer, run, accelerator.num_processes)
    net, optimizer, loader, lr_schedule = accelerator.prepare(net, optimizer, loader, lr_schedule)
    if len(loader) == 0:
        raise AnimateError(f"not enough videos for one batch of {run.batch_size} on each of "
                           f"{accelerator.num_processes} processes (found {len(dataset)})")
    noise_schedule = training_scheduler()
    uncond = unconditional_context(models.image_encoder, run.uncond_clip, accelerator.device, weight_dtype)

    layout = {"batches_per_epoch": len(loader), "processes": accelerator.num_processes}
    step, batches = resume(accelerator, output_dir, resume_from, layout, run.gradient_accumulation)
    accelerator.init_trackers(stage)
    stop = StopRequest()
    progress = tqdm(total=run.max_steps, initial=step, desc=stage, disable=not accelerator.is_main_process)
    last_log = time.perf_counter()
    epoch, skip = divmod(batches, len(loader))  # a resumed run starts where its checkpoint was, mid-epoch too
    stopping = False
    while step < run.max_steps and not stopping:
        dataset.set_epoch(epoch)
        epoch_batches = accelerator.skip_first_batches(loader, skip) if skip else loader
        epoch_batches.set_epoch(epoch)  # the order of the epoch: (seed, epoch), whatever came before
        skip = 0
        for batch in epoch_batches:
            batches += 1
            with accelerator.accumulate(net):
                latents, reference, context, pose, dropped = encode_batch(
                    models.vae, models.image_encoder, batch, uncond, run.condition_dropout, weight_dtype)
                images = None if control is None else control_images(batch, control, run.control_dropout)
                content = None
                if guided:
                    content, face_embeds = encode_content(models.image_encoder, models.tokenizer, batch,
                                                          run.face_dropout, run.text_dropout, weight_dtype)
                    context = photo_free_context(context, dropped, face_embeds, content.face_kept)
                if distill is not None:
                    loss = checked(distill.loss(net, Batch(latents, reference, context, pose)), step + 1)
                else:
                    loss = diffusion_loss(net, noise_schedule, latents, reference, context, pose, dropped,
                                          run.noise_offset, run.snr_gamma, step + 1, images, content)
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
                now = time.perf_counter()
                accelerator.log({"loss": loss.item(), "lr": lr_schedule.get_last_lr()[0],
                                 "it_per_s": run.log_every / (now - last_log)}, step=step)
                last_log = now
            stopping = stop.agreed(accelerator)
            done = step >= run.max_steps or stopping
            if step % run.checkpoint_every == 0 or done:
                save_checkpoint(accelerator, models, output_dir, step, {"batches": batches, **layout},
                                run.keep_checkpoints)
            if step % run.validate_every == 0:
                if accelerator.is_main_process:
                    net.eval()
                    with accelerator.autocast():
                        write_preview(models, cfg, preview_frames, step, output_dir, control, guided)
                    net.train()
                accelerator.wait_for_everyone()
            if done:
                break
        epoch += 1
    progress.close()
    check_ranks_agree(accelerator, trained, output_dir)
    del net, optimizer, loader, lr_schedule  # DDP must go before its process group: a rank hung in its teardown
    accelerator.free_memory()
    gc.collect()
    accelerator.wait_for_everyone()
    accelerator.end_training()  # stops TensorBoard and destroys the process group
    if stopping:  # a scheduler must tell this apart from a finished run
        raise Terminated(f"checkpoint-{step:07d} saved in {output_dir}; continue with --resume latest")
    return output_dir


def control_images(batch: dict, kind: str, dropout: float) -> torch.Tensor:
    """The batch's control images [B, F, 3, H, W] (depth, or the pose images), black for a `dropout` share of the
    samples (condition dropout: the ControlNet learns what no control means)."""
    images = batch["depth_pixel_values" if kind == "depth" else "pose_pixel_values"]
    kept = ~drop_mask(len(images), dropout)
    return images * kept.to(images.device, images.dtype)[:, None, None, None, None]


def learning_rate_schedule(optimizer: torch.optim.Optimizer, run: DictConfig,
                           processes: int) -> torch.optim.lr_scheduler.LambdaLR:
    """train.lr_schedule (constant | cosine | linear, after train.lr_warmup_steps) over train.max_steps; counted in
    optimizer steps × processes, because a prepared schedule steps once per process."""
    if run.lr_schedule not in LR_SCHEDULES:
        raise AnimateError(f"train.lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {run.lr_schedule!r}")
    if run.lr_warmup_steps < 0:
        raise AnimateError(f"train.lr_warmup_steps must be >= 0, got {run.lr_warmup_steps}")
    name = "constant_with_warmup" if run.lr_schedule == "constant" and run.lr_warmup_steps else run.lr_schedule
    return get_scheduler(name, optimizer, num_warmup_steps=run.lr_warmup_steps * processes,
                         num_training_steps=run.max_steps * processes)


def check_ranks_agree(accelerator: Accelerator, trained: list[torch.nn.Parameter], output_dir: Path) -> None:
    """Every process must end with the same weights (DDP keeps them equal); recorded in ranks.json, an error if not."""
    checksum = torch.stack([sum(p.detach().double().sum() for p in trained),
                            sum(p.detach().double().abs().sum() for p in trained)]).to(accelerator.device)
    sums = accelerator.gather(checksum[None]).cpu().tolist()
    if accelerator.is_main_process:
        write_text(output_dir / "ranks.json", json.dumps({"processes": accelerator.num_processes, "checksums": sums}))
    if any(s != sums[0] for s in sums):
        raise AnimateError(f"the {len(sums)} processes ended with different weights: {sums}")
