"""`animate infer`: a photo and a pose video in, an mp4 of that person dancing out."""

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .errors import AnimateError
from .image import canvas_size, load_image
from .models.weights import describe, load_models
from .pipeline.animate import AnimatePipeline, AnimateSettings
from .pose.frames import PoseFrames
from .pose.keypoints import PoseSequence
from .pose.sources import POSE_TYPES, Backend, detect_pose_type, driving_keypoints, fit_to_photo, renderer
from .profiles import Profile, get_profile
from .video import VideoWriter, probe_video


@dataclass
class InferOptions:
    """Everything `animate infer` needs (None = the profile's or the input's default)."""

    ref: Path
    pose: Path
    weights: str = "pretrained_weights"
    out: Path | None = None
    force: bool = False
    width: int | None = None
    height: int | None = None
    max_frames: int | None = None
    fps: float | None = None
    seed: int = 42
    steps: int | None = None
    cfg: float | None = None
    context_frames: int | None = None
    context_overlap: int | None = None
    sampler: str = "ddim"
    device: str = "auto"
    dtype: str = "auto"
    offload: bool = False
    profile: str | None = None
    motion_module: Path | None = None
    grid: bool = False
    progress: bool = True
    pose_type: str = "auto"
    no_align: bool = False
    pose_backend: str = "mediapipe"
    dwpose_dir: Path | None = None


def output_path(ref: Path, pose: Path, seed: int, out: Path | None, force: bool) -> Path:
    """-o as given (refused if it exists, unless forced), else outputs/<ref>_<pose>_<seed>.mp4, numbered if taken."""
    if out is not None:
        if out.suffix.lower() != ".mp4":
            raise AnimateError(f"-o/--out must end in .mp4, got {out}")
        if out.is_dir():
            raise AnimateError(f"-o/--out {out} is a folder")
        if out.exists() and not force:
            raise AnimateError(f"{out} already exists (use --force to overwrite)")
        return out
    base = Path("outputs") / f"{ref.stem}_{pose.stem}_{seed}"
    candidate, n = base.with_suffix(".mp4"), 1
    while candidate.exists() or grid_path(candidate).exists():
        candidate, n = Path(f"{base}_{n}.mp4"), n + 1
    return candidate


def grid_path(out: Path) -> Path:
    """Where --grid writes its side-by-side video."""
    return out.with_name(f"{out.stem}_grid.mp4")


def resolve_device(device: str, dtype: str) -> tuple[torch.device, torch.dtype]:
    """auto → CUDA when present; auto dtype → fp16 on GPU, fp32 on CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise AnimateError(f"unknown --device {device!r}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise AnimateError("--device cuda asked for, but no CUDA GPU is available")
    names = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if dtype == "auto":
        return resolved, torch.float16 if resolved.type == "cuda" else torch.float32
    if dtype not in names:
        raise AnimateError(f"unknown --dtype {dtype!r} (choose from auto, {', '.join(names)})")
    return resolved, names[dtype]


def run_infer(options: InferOptions) -> Path:
    """Run the whole job and return the written mp4's path."""
    if options.max_frames is not None and options.max_frames < 1:
        raise AnimateError(f"-L must be at least 1, got {options.max_frames}")
    if options.fps is not None and options.fps <= 0:
        raise AnimateError(f"--fps must be positive, got {options.fps}")
    if options.pose_type not in POSE_TYPES:
        raise AnimateError(f"unknown --pose-type {options.pose_type!r} (choose from {', '.join(POSE_TYPES)})")
    reference = load_image(options.ref)
    pose_type = detect_pose_type(Path(options.pose)) if options.pose_type == "auto" else options.pose_type
    if pose_type in ("video", "skeleton"):
        probe_video(options.pose)
    out = output_path(Path(options.ref), Path(options.pose), options.seed, options.out, options.force)
    if options.grid and grid_path(out).exists() and not options.force:
        raise AnimateError(f"{grid_path(out)} already exists (use --force to overwrite)")
    device, dtype = resolve_device(options.device, options.dtype)

    models = load_models(options.weights, profile=options.profile, motion_module=options.motion_module)
    profile = get_profile(models.profile)
    width, height = canvas_size(reference.width, reference.height, options.width, options.height, profile.short_side)
    settings = AnimateSettings(
        width=width, height=height, seed=options.seed, sampler=options.sampler,
        steps=options.steps if options.steps is not None else profile.steps,
        guidance=options.cfg if options.cfg is not None else profile.guidance,
        context_frames=options.context_frames if options.context_frames is not None else profile.context_frames,
        context_overlap=options.context_overlap if options.context_overlap is not None else profile.context_overlap,
    )
    pipeline = AnimatePipeline(models, device, dtype, offload=options.offload)
    pipeline.check(settings)
    keypoints = None if pose_type == "skeleton" else fitted_keypoints(options, pose_type, reference)
    # Only once every option and input has been accepted: a rejected run's stderr is its one error line.
    if str(options.weights).startswith("random:"):
        print("note: random weights — the video shows structure only, not a person (demo until a trained model ships)",
              file=sys.stderr)
    print(f"loaded {options.weights}: {describe(models)}", file=sys.stderr)
    poses, pose_fps = pose_frames(options, keypoints, profile, width, height)
    try:
        latents = pipeline.denoise(reference, poses, settings, progress=options.progress)
        write_video(pipeline, latents, out, options.fps or pose_fps, poses if options.grid else None, reference)
    finally:
        poses.close()
    return out


def fitted_keypoints(options: InferOptions, pose_type: str, reference: Image.Image) -> PoseSequence:
    """The dance's keypoints (extracted or read), retargeted to the photo's body unless --no-align."""
    weights = Path(options.weights)
    backend = Backend(options.pose_backend, options.dwpose_dir or (weights if weights.is_dir() else Path("pretrained_weights")))
    driving = driving_keypoints(Path(options.pose), pose_type, options.max_frames, options.progress, backend)
    return fit_to_photo(driving, reference, align=not options.no_align, backend=backend)


def pose_frames(options: InferOptions, keypoints: PoseSequence | None, profile: Profile,
                width: int, height: int) -> tuple[PoseFrames, float]:
    """Pose images at the output size and their frame rate: keypoints drawn in the profile's style, or a skeleton video as is."""
    if keypoints is not None:
        return PoseFrames.from_keypoints(keypoints, width, height, renderer(profile)), keypoints.fps
    info = probe_video(options.pose)
    print("note: --pose is a rendered skeleton video: used as is (it cannot be retargeted to the photo's body)",
          file=sys.stderr)
    num_frames = min(info.num_frames, options.max_frames or info.num_frames)
    return PoseFrames.from_video(options.pose, width, height, num_frames), info.fps


def write_video(pipeline: AnimatePipeline, latents: torch.Tensor, out: Path, fps: float,
                grid_poses: PoseFrames | None, reference: Image.Image) -> None:
    """Decode in chunks and stream to the mp4 (and the ref | pose | result grid); nothing is left on failure."""
    height, width = latents.shape[-2] * 8, latents.shape[-1] * 8
    ref_frame = np.asarray(reference.resize((width, height), Image.BICUBIC))
    with VideoWriter(out, fps) as writer:
        if grid_poses is None:
            for frames in pipeline.decode(latents):
                writer.write(frames)
            return
        with VideoWriter(grid_path(out), fps) as grid:
            start = 0
            for frames in pipeline.decode(latents):
                writer.write(frames)
                poses = grid_poses.read(start, start + len(frames))
                refs = np.broadcast_to(ref_frame, frames.shape)
                grid.write(np.concatenate([refs, poses, frames], axis=2))
                start += len(frames)
