"""`animate upscale`: a video in, the same video super-resolved 2x or 4x (with its audio) out."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..errors import AnimateError
from ..dtypes import resolve_device
from .messages import say
from .infer import DEFAULT_UPSCALERS
from .outputs import check_output_folder
from ..media.upscale import UPSCALER_DIR, Upscaler, check_tile
from ..media.video import VideoWriter, probe_video, read_frames

CHUNK = 8  # frames read, upscaled and written at a time


@dataclass
class UpscaleOptions:
    """Everything `animate upscale` needs."""

    video: Path
    out: Path
    scale: int
    upscaler: str | None = None
    weights_dir: Path = UPSCALER_DIR
    tile: int = 512
    crf: int = 18
    force: bool = False
    device: str = "auto"
    dtype: str = "auto"
    progress: bool = True


def run_upscale(options: UpscaleOptions) -> Path:
    """Stream the video through the upscaler into an mp4 at the same frame rate; returns the written path."""
    if options.scale not in (2, 4):
        raise AnimateError(f"--scale must be 2 or 4, got {options.scale}")
    if options.out.suffix.lower() != ".mp4":
        raise AnimateError(f"-o/--out must end in .mp4, got {options.out}")
    if options.out.exists() and not options.force:
        raise AnimateError(f"{options.out} already exists (use --force to overwrite)")
    if options.out.resolve() == options.video.resolve():
        raise AnimateError("-o/--out must differ from the input video")
    check_tile(options.tile)
    check_output_folder(options.out)
    info = probe_video(options.video)
    device, dtype = resolve_device(options.device, options.dtype)
    upscaler = Upscaler(options.upscaler or DEFAULT_UPSCALERS[options.scale], options.scale, options.weights_dir,
                        device=device, dtype=dtype, tile=options.tile)
    say(upscaler.describe())
    frames = read_frames(options.video)
    with VideoWriter(options.out, info.fps, crf=options.crf, audio_from=options.video, overwrite=options.force) as writer, \
            tqdm(total=info.num_frames, desc="upscale", unit="frame", disable=not options.progress) as bar:
        chunk = []
        for frame in frames:
            chunk.append(frame)
            if len(chunk) == CHUNK:
                writer.write(upscaler(np.stack(chunk)))
                bar.update(len(chunk))
                chunk = []
        if chunk:
            writer.write(upscaler(np.stack(chunk)))
            bar.update(len(chunk))
    return options.out

