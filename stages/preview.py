"""Validation previews during training: the first training video's reference animated through the real pipeline."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from animate.atomic import atomic_path
from animate.models.bundle import AnimateModels
from animate.pipeline.animate import AnimatePipeline, AnimateSettings, Content, Control
from animate.pose.frames import PoseFrames
from animate.media.video import VideoWriter, read_frames

from .datasets import GuiderDataset, load_meta


def write_preview(models: AnimateModels, cfg, frames: int, step: int, output_dir: Path,
                  control: str | None = None, guided: bool = False) -> Path:
    """ref | pose | result of `frames` pose frames: a PNG for one frame (stage 1), an mp4 for a clip (stage 2); with
    `control` (the control stage) the models' ControlNet of that kind reads the video's depth or its pose images;
    `guided` (the guider stage): the guider reads the video's last frame's face and its caption."""
    width, height = cfg.data.width, cfg.data.height
    entry = load_meta(list(cfg.data.meta), depth=control == "depth", content=guided)[0]
    content = None
    if guided:
        content = Content(face=GuiderDataset.face_crop(entry, entry.num_frames - 1), prompt=entry.caption)
    photo = Image.fromarray(next(read_frames(entry.video, 0, 1))).convert("RGB")
    poses = PoseFrames.from_video(entry.pose, width, height, frames)
    shown = PoseFrames.from_video(entry.depth, width, height, frames) if control == "depth" else poses
    controls = [Control(models.controlnets[control], shown, models.control_scales[control])] if control else []
    device = next(models.denoising_unet.parameters()).device
    pipeline = AnimatePipeline(models, device, torch.float32)
    student = models.student  # a distilled student previews at its own steps, without CFG
    settings = AnimateSettings(width, height, steps=student.steps if student else cfg.validation.steps,
                               guidance=student.guidance if student else AnimateSettings.guidance,
                               context_frames=frames, context_overlap=min(4, frames - 1), seed=0)
    try:
        with torch.no_grad():
            latents = pipeline.denoise(photo, poses, settings, progress=False, controls=controls, content=content)
            result = np.concatenate(list(pipeline.decode(latents)))
        grid = np.concatenate([np.broadcast_to(np.asarray(photo.resize((width, height))), result.shape),
                               shown.read(0, len(result)), result], axis=2)
    finally:
        poses.close()
        if shown is not poses:
            shown.close()
    folder = output_dir / "previews"
    if len(grid) == 1:
        path = folder / f"step-{step:07d}.png"
        with atomic_path(path, ".png") as staged:
            Image.fromarray(grid[0]).save(staged)
        return path
    path = folder / f"step-{step:07d}.mp4"
    with VideoWriter(path, 8) as writer:
        writer.write(grid)
    return path
