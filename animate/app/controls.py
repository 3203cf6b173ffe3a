"""`animate infer --control depth|pose|pose,depth`: the Video ControlNets of a run, their scales and step range, and
the frames each reads (the pose images, or the dance's depth: estimated with --depth auto, or a given depth video or
.depth.npz)."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..depth.estimate import check_side, open_depth_model
from ..depth.maps import DEPTH_SUFFIX, DepthClip
from ..depth.release import DEFAULT_DEPTH_MODEL, DEPTH_FILES, INPUT_SIDE
from ..depth.video import video_depth
from ..errors import AnimateError
from ..media.video import fit_frame, probe_video
from ..models.bundle import AnimateModels
from ..models.controlnet import VideoControlNet, check_control_scale, check_fits
from ..models.controlnet_files import DEFAULT_SCALE, check_kind, load_controlnet
from ..pipeline.animate import Control, PoseFrames as FrameSource, check_control_range
from ..pose.frames import PoseArray, PoseFrames
from ..pose.keypoints import PoseSequence
from ..pose.retarget import Placement


@dataclass(frozen=True)
class ControlOptions:
    """The control options of a run, as given on the command line."""

    control: str | None = None  # "depth", "pose" or "pose,depth"
    depth: str | None = None  # "auto" or a depth video / .depth.npz
    control_scale: str | None = None  # one scale, or one per --control kind
    control_start: float = 0.0
    control_end: float = 1.0
    controlnet: tuple[Path, ...] = ()  # one per --control kind, in order; else the weight set's
    depth_model: str = DEFAULT_DEPTH_MODEL
    depth_size: int = INPUT_SIDE


def control_kinds(options: ControlOptions) -> list[str]:
    """The --control kinds in order, each known and named once."""
    if options.control is None:
        for flag, value in (("--depth", options.depth), ("--control-scale", options.control_scale),
                            ("--controlnet", options.controlnet)):
            if value:
                raise AnimateError(f"{flag} goes with --control")
        return []
    kinds = [check_kind(kind.strip()) for kind in options.control.split(",")]
    if len(set(kinds)) != len(kinds):
        raise AnimateError(f"--control names a kind twice: {options.control}")
    if options.controlnet and len(options.controlnet) != len(kinds):
        raise AnimateError(f"--controlnet: give one per --control kind ({len(kinds)}), got {len(options.controlnet)}")
    return kinds


def check_control_options(options: ControlOptions, pose_type: str) -> list[str]:
    """Every cheap check of the control options and inputs, before any model loads; the kinds."""
    kinds = control_kinds(options)
    scales(options, kinds, {})
    check_control_range(options.control_start, options.control_end)
    for path in options.controlnet:
        if not Path(path).exists():
            raise AnimateError(f"--controlnet {path}: not found")
    if "depth" not in kinds:
        if options.depth:
            raise AnimateError("--depth goes with --control depth")
        return kinds
    depth = options.depth or "auto"
    if depth == "auto":
        if pose_type != "video":
            raise AnimateError("--depth auto estimates depth from a real dance video; this --pose is "
                               f"{pose_type}: give a depth video or .depth.npz with --depth")
        check_side(options.depth_size)
        model = Path(options.depth_model)
        if not options.depth_model.startswith("random:") and not all((model / f).is_file() for f in DEPTH_FILES):
            raise AnimateError(f"{model}: no Depth Anything V2 weights for --depth auto; fetch them with "
                               f"`animate download --set depth --dir {model.parent}`")
    elif not Path(depth).is_file():
        raise AnimateError(f"--depth {depth}: not found")
    elif depth.endswith(DEPTH_SUFFIX):
        DepthClip.load(depth)
    else:
        probe_video(depth)
    return kinds


def check_depth_length(options: ControlOptions, num_frames: int) -> None:
    """Refuse a given depth video or .depth.npz with fewer frames than the dance uses (auto makes its own)."""
    depth = options.depth or "auto"
    if depth == "auto":
        return
    count = len(DepthClip.load(depth).levels) if depth.endswith(DEPTH_SUFFIX) else probe_video(depth).num_frames
    if count < num_frames:
        raise AnimateError(f"--depth {depth}: {count} frames, the dance has {num_frames}")


def scales(options: ControlOptions, kinds: list[str], defaults: dict[str, float]) -> dict[str, float]:
    """Each kind's scale: --control-scale (one for all, or one per kind), else the weight set's, else the default."""
    if options.control_scale is None:
        return {kind: defaults.get(kind, DEFAULT_SCALE[kind]) for kind in kinds}
    try:
        given = [float(value) for value in options.control_scale.split(",")]
    except ValueError:
        raise AnimateError(f"--control-scale takes numbers, got {options.control_scale!r}") from None
    if len(given) not in (1, len(kinds)):
        raise AnimateError(f"--control-scale: one scale, or one per --control kind ({len(kinds)}), got {len(given)}")
    for value in given:
        check_control_scale(value)
    return dict(zip(kinds, given * len(kinds) if len(given) == 1 else given))


def add_controlnets(models: AnimateModels, options: ControlOptions, weights: str) -> list[str]:
    """Put the run's ControlNets into the loaded models (--controlnet files, else the set's), checked to fit them, and
    drop the set's others (they would only take device memory); notes to show. Random weights get fresh ControlNets
    copied from the UNet (they change nothing: a smoke run)."""
    notes, kinds = [], control_kinds(options)
    for kind in [kind for kind in models.controlnets if kind not in kinds]:
        del models.controlnets[kind]
    for index, kind in enumerate(kinds):
        if options.controlnet:
            net, scale = load_controlnet(options.controlnet[index], kind)
            models.controlnets[kind], models.control_scales[kind] = net, scale
            notes.append(f"{kind} ControlNet: {options.controlnet[index]}")
        elif kind in models.controlnets:
            notes.append(f"{kind} ControlNet: from {weights}")
        elif weights.startswith("random:"):
            models.controlnets[kind] = VideoControlNet.from_animate_unet(models.animate_unet, models.latent_scale)
            notes.append(f"{kind} ControlNet: a fresh copy of the UNet (changes nothing until trained)")
        else:
            raise AnimateError(f"{weights} has no {kind} ControlNet: train one with `animate train control "
                               f"control.kind={kind} ...`, or pass --controlnet PATH")
        source = str(options.controlnet[index]) if options.controlnet else weights
        check_fits(models.controlnets[kind], models.animate_unet, models.latent_scale, source)
    return notes


def depth_frames(options: ControlOptions, dance: Path, driving: PoseSequence | None, placement: Placement | None,
                 photo_size: tuple[int, int], size: tuple[int, int], num_frames: int,
                 progress: bool) -> FrameSource:
    """The depth the ControlNet reads, at the output size: estimated from the dance (placed like the pose), or a given
    depth video or .depth.npz (drawn on the canvas as it is: make it with `animate depth --ref` to place it)."""
    depth = options.depth or "auto"
    if depth == "auto":
        model = open_depth_model(options.depth_model)
        clip = video_depth(dance, model, driving, size, placement, photo_size, options.depth_size,
                           max_frames=num_frames, progress=progress)
        return PoseArray(clip.frames())
    check_depth_length(options, num_frames)
    if depth.endswith(DEPTH_SUFFIX):
        clip = DepthClip.load(depth)
        return PoseArray(np.stack([fit_frame(frame, *size) for frame in clip.frames(0, num_frames)]))
    return PoseFrames.from_video(depth, size[0], size[1], num_frames)


def run_controls(models: AnimateModels, options: ControlOptions, poses: FrameSource, depth: FrameSource | None) -> list[Control]:
    """The Control of each --control kind: the pose images or the depth, its scale and step range."""
    kinds = control_kinds(options)
    given = scales(options, kinds, models.control_scales)
    frames = {"pose": poses, "depth": depth}
    return [Control(models.controlnets[kind], frames[kind], given[kind], options.control_start, options.control_end)
            for kind in kinds]
