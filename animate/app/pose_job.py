"""`animate pose`: a dance video (or keypoints) to a rendered pose video, optionally retargeted to a photo."""

from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import AnimateError
from ..media.image import canvas_size, load_image
from ..pose.frames import draw_sequence
from ..pose.interchange import save_json
from ..pose.sources import Backend, detect_pose_type, driving_keypoints, fit_to_photo, renderer
from ..profiles import get_profile
from ..media.video import VideoWriter


@dataclass
class PoseOptions:
    """Everything `animate pose` needs."""

    source: Path
    out: Path
    keypoints: Path | None = None
    ref: Path | None = None
    width: int | None = None
    height: int | None = None
    max_frames: int | None = None
    profile: str = "moore"
    no_align: bool = False
    force: bool = False
    progress: bool = True
    pose_backend: str = "mediapipe"
    dwpose_dir: Path = Path("pretrained_weights")


def run_pose(options: PoseOptions) -> Path:
    """Extract (or read) keypoints, retarget them to --ref if given, draw them into an mp4; return its path."""
    if options.out.suffix.lower() != ".mp4":
        raise AnimateError(f"-o/--out must end in .mp4, got {options.out}")
    for path in (options.out, options.keypoints):
        if path is not None and path.exists() and not options.force:
            raise AnimateError(f"{path} already exists (use --force to overwrite)")
    if options.keypoints is not None and not options.keypoints.name.endswith((".pose.npz", ".json")):
        raise AnimateError(f"--keypoints must end in .pose.npz or .json, got {options.keypoints}")
    if options.max_frames is not None and options.max_frames < 1:
        raise AnimateError(f"-L must be at least 1, got {options.max_frames}")
    profile = get_profile(options.profile)
    backend = Backend(options.pose_backend, options.dwpose_dir)
    photo = load_image(options.ref) if options.ref is not None else None
    pose_type = detect_pose_type(options.source)
    if pose_type == "skeleton":
        raise AnimateError(f"{options.source} is already a rendered pose video (no keypoints to extract from it)")
    seq = driving_keypoints(options.source, pose_type, options.max_frames, options.progress, backend)
    if photo is not None:
        seq, _ = fit_to_photo(seq, photo, align=not options.no_align, backend=backend)
    width, height = canvas_size(seq.width, seq.height, options.width, options.height, profile.short_side)
    draw = renderer(profile)
    with VideoWriter(options.out, seq.fps) as writer:
        for frame in tqdm(draw_sequence(seq, width, height, draw), total=len(seq), desc="drawing",
                          disable=not options.progress):
            writer.write(frame)
        if options.keypoints is not None:
            seq.save(options.keypoints) if options.keypoints.suffix == ".npz" else save_json(seq, options.keypoints)
    return options.out
