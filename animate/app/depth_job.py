"""`animate depth`: a dance video to its depth video (near bright, steady over time, placed like the pose) and the
lossless `.depth.npz` beside it."""

from dataclasses import dataclass
from pathlib import Path

from ..depth.estimate import check_side, open_depth_model
from ..depth.maps import DEPTH_SUFFIX
from ..depth.release import DEFAULT_DEPTH_MODEL, INPUT_SIDE
from ..depth.video import UNPLACED, video_depth, write_depth
from ..errors import AnimateError
from ..media.image import canvas_size, load_image
from ..media.video import probe_video
from ..pose.keypoints import PoseSequence
from ..pose.sources import Backend, driving_keypoints, fit_to_photo, load_keypoints
from ..profiles import get_profile
from .messages import say
from .outputs import check_output_folder


@dataclass
class DepthOptions:
    """Everything `animate depth` needs."""

    video: Path
    out: Path
    keypoints: Path | None = None
    ref: Path | None = None
    no_align: bool = False
    width: int | None = None
    height: int | None = None
    max_frames: int | None = None
    profile: str = "moore"
    depth_model: str = DEFAULT_DEPTH_MODEL
    depth_size: int = INPUT_SIDE
    batch_size: int = 8
    device: str = "auto"
    dtype: str = "auto"
    crf: int = 18
    force: bool = False
    progress: bool = True
    pose_backend: str = "mediapipe"
    dwpose_dir: Path = Path("pretrained_weights")


def maps_path(out: Path) -> Path:
    """The `.depth.npz` written beside a depth video: dance_depth.mp4 -> dance_depth.depth.npz."""
    return out.with_name(out.stem + DEPTH_SUFFIX)


def _check(options: DepthOptions) -> None:
    """Every option and output refused before any model loads or frame is read."""
    if options.out.suffix.lower() != ".mp4":
        raise AnimateError(f"-o/--out must end in .mp4, got {options.out}")
    for path in (options.out, maps_path(options.out)):
        if path.is_dir():
            raise AnimateError(f"{path} is a folder")
        if path.exists() and not options.force:
            raise AnimateError(f"{path} already exists (use --force to overwrite)")
    if options.out.resolve() == options.video.resolve():
        raise AnimateError("-o/--out must differ from the input video")
    for flag, value in (("-L", options.max_frames), ("--batch-size", options.batch_size)):
        if value is not None and value < 1:
            raise AnimateError(f"{flag} must be at least 1, got {value}")
    check_side(options.depth_size)
    if not 0 <= options.crf <= 51:
        raise AnimateError(f"--crf must be between 0 and 51, got {options.crf}")
    check_output_folder(options.out)


def _dancer(options: DepthOptions) -> PoseSequence | None:
    """The dancer's keypoints in the video's pixels (read or extracted), which outline the scene the depth is steadied
    on; None with --no-align and no keypoints given (every pixel then counts as scene)."""
    if options.keypoints is not None:
        seq = load_keypoints(options.keypoints)
        return seq.slice(0, options.max_frames) if options.max_frames else seq
    if options.no_align:
        return None
    backend = Backend(options.pose_backend, options.dwpose_dir)
    seq = driving_keypoints(options.video, "video", options.max_frames, options.progress, backend)
    if not (seq.body[..., 2] > 0).any():
        raise AnimateError(f"{options.video}: no person found; depth is steadied and placed around the dancer "
                           "(pass --no-align for depth in the video's own frame)")
    return seq


def run_depth(options: DepthOptions) -> Path:
    """Estimate, steady, place and write the depth of a video; returns the video's path."""
    _check(options)
    info = probe_video(options.video)
    model = open_depth_model(options.depth_model, options.device, options.dtype)
    people = _dancer(options)
    frames = min(info.num_frames, options.max_frames or info.num_frames)
    if people is not None and (people.width, people.height) != (info.width, info.height):
        raise AnimateError(f"{options.keypoints}: keypoints of a {people.width}x{people.height} video, "
                           f"but {options.video} is {info.width}x{info.height}")
    if people is not None and len(people) < frames:
        raise AnimateError(f"{options.keypoints}: keypoints of {len(people)} frames, but {frames} frames of "
                           f"{options.video} are used (-L to use fewer)")
    placement, frame = UNPLACED, (info.width, info.height)
    if options.ref is not None:
        photo = load_image(options.ref)
        if people is None:
            people = PoseSequence.empty(info.num_frames, info.width, info.height, info.fps)
        _, placement = fit_to_photo(people, photo, align=not options.no_align,
                                    backend=Backend(options.pose_backend, options.dwpose_dir))
        frame = photo.size
    out_size = canvas_size(*frame, options.width, options.height, get_profile(options.profile).short_side)
    clip = video_depth(options.video, model, people, out_size, placement, frame, options.depth_size,
                       options.batch_size, options.max_frames, options.progress)
    write_depth(clip, options.out, maps_path(options.out), options.crf, overwrite=options.force)
    say(f"depth of {len(clip.levels)} frames at {out_size[0]}x{out_size[1]}: {options.out} "
        f"(float maps: {maps_path(options.out)})")
    return options.out
