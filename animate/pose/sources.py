"""What `--pose` can be — a real dance video, a rendered skeleton video, or a keypoint file — and how each becomes keypoints."""

import json
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import AnimateError
from ..profiles import Profile
from ..media.video import probe_video, read_frames
from .interchange import load_json, load_openpose_json
from .keypoints import PoseSequence
from .render import draw_pose
from .retarget import Placement, retarget_placed
from .smooth import fill_gaps, smooth_sequence

POSE_TYPES = ("auto", "video", "skeleton", "keypoints")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
FOLDER_FPS = 30.0  # a folder of pose frames has no frame rate of its own
BACKENDS = ("mediapipe", "dwpose")
KEYPOINT_SUFFIXES = (".npz", ".json")


def looks_like_skeleton(frames: list[np.ndarray]) -> bool:
    """A rendered pose video: mostly black, and what is not black is saturated colour (limbs) or white (face).

    Saturation is judged loosely (> 0.35): h264's half-resolution chroma dulls thin limbs in small videos.
    """
    pixels = np.concatenate([f.reshape(-1, 3) for f in frames]).astype(np.int16)
    bright = pixels.max(axis=1)
    dark_share = float((bright < 24).mean())
    lit = pixels[bright >= 64]
    if len(lit) == 0:
        return dark_share > 0.98
    saturation = (lit.max(axis=1) - lit.min(axis=1)) / np.maximum(lit.max(axis=1), 1)
    vivid_share = float(((saturation > 0.35) | (lit.min(axis=1) > 200)).mean())
    return dark_share > 0.75 and vivid_share > 0.5


def pose_image_files(folder: Path) -> list[Path]:
    """The images of a folder of rendered pose frames, in name order with numbers compared as numbers (frame2
    before frame10, as ffmpeg's %d names them)."""
    def natural(path: Path) -> list:
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]

    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()), key=natural)


def detect_pose_type(path: Path) -> str:
    """keypoints (.pose.npz, .json, a folder of OpenPose JSON), skeleton (a rendered pose video, or a folder of its
    frames as images) or video (a real one)."""
    if path.is_dir():
        return "skeleton" if pose_image_files(path) and not any(path.glob("*.json")) else "keypoints"
    if path.suffix.lower() in KEYPOINT_SUFFIXES:
        return "keypoints"
    info = probe_video(path)
    picks = set(np.linspace(0, info.num_frames - 1, min(8, info.num_frames)).round().astype(int).tolist())
    frames = [frame for i, frame in enumerate(read_frames(path, 0, max(picks) + 1)) if i in picks]
    return "skeleton" if looks_like_skeleton(frames) else "video"


def load_keypoints(path: Path) -> PoseSequence:
    """Our `.pose.npz` or JSON, or OpenPose/DWPose JSON (one file or a folder of per-frame files); every number in it
    must be finite (a missing point has score 0, never NaN)."""
    seq = _read_keypoints(path)
    for part in ("body", "hands", "face"):
        if not np.isfinite(getattr(seq, part)).all():
            raise AnimateError(f"{path}: {part} keypoints hold NaN or infinite values (a missing point is x, y, 0)")
    return seq


def _read_keypoints(path: Path) -> PoseSequence:
    if path.is_dir():
        return load_openpose_json(path)
    if not path.is_file():
        raise AnimateError(f"{path}: pose input not found")
    if path.suffix.lower() == ".npz":
        return PoseSequence.load(path)
    try:
        ours = json.loads(path.read_text()).get("format") == "animate-pose"
    except (OSError, ValueError, AttributeError):
        ours = False  # not a JSON object: let the OpenPose reader say what is wrong
    return load_json(path) if ours else load_openpose_json(path)


@dataclass(frozen=True)
class Backend:
    """Which extractor finds keypoints: mediapipe (default, bundled) or dwpose (Moore's DWPose/ ONNX files)."""

    name: str = "mediapipe"
    dwpose_dir: Path = Path("pretrained_weights")

    def __post_init__(self):
        if self.name not in BACKENDS:
            raise AnimateError(f"unknown pose backend {self.name!r} (choose from {', '.join(BACKENDS)})")

    def video(self, path: Path, max_frames: int | None, progress: bool) -> PoseSequence:
        """Raw per-frame keypoints of a video."""
        if self.name == "dwpose":
            from . import dwpose

            return dwpose.extract_video(path, self.dwpose_dir, max_frames=max_frames, progress=progress)
        from . import extract  # mediapipe is imported only when something is extracted

        return extract.extract_video(path, max_frames=max_frames, progress=progress)

    def image(self, photo: Image.Image, need_body: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Body, hands and face of the person in a photo (one clear error when there is no body and `need_body`)."""
        rgb = np.asarray(photo.convert("RGB"))
        if self.name == "dwpose":
            from . import dwpose

            return dwpose.extract_image(rgb, self.dwpose_dir, need_body)
        from . import extract

        return extract.extract_image(rgb, need_body)


def driving_keypoints(path: Path, pose_type: str, max_frames: int | None = None, progress: bool = True,
                      backend: Backend = Backend()) -> PoseSequence:
    """Keypoints of the dance: extracted from a real video (gaps filled, smoothed) or read from a keypoint file."""
    if pose_type == "keypoints":
        seq = load_keypoints(path)
        return seq.slice(0, max_frames) if max_frames else seq
    return smooth_sequence(fill_gaps(backend.video(path, max_frames, progress)))


def fit_to_photo(driving: PoseSequence, photo: Image.Image, align: bool = True, backend: Backend = Backend(),
                 photo_keypoints: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                 ) -> tuple[PoseSequence, Placement]:
    """The dance retargeted to the photo's body (bone lengths, position), in the photo's pixel frame, and the
    placement of the dance as a whole (for what else is drawn in the driving video's pixels: its depth).
    `photo_keypoints`: the photo's (body, hands, face) when already extracted."""
    if not align:
        return fit_to_canvas(driving, photo.size)
    body, hands, face = photo_keypoints if photo_keypoints is not None else backend.image(photo)
    return retarget_placed(driving, body, photo.size, photo_hands=hands, photo_face=face, align=True)


def fit_to_canvas(driving: PoseSequence, size: tuple[int, int]) -> tuple[PoseSequence, Placement]:
    """The dance fitted into a canvas of `size` as a whole, its own proportions kept (no photo to retarget to)."""
    return retarget_placed(driving, np.zeros((18, 3), np.float32), size, align=False)


def renderer(profile: Profile):
    """draw(body, hands, face, width, height) in the style and on the canvas the profile's weights were trained with."""
    return partial(draw_pose, canvas_short_side=profile.pose_canvas, style=profile.pose_style)
