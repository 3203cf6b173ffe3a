"""Keypoints of one person in photos and videos with MediaPipe Holistic: OpenPose-18 body, 2x21 hands, iBUG-68 face."""

# Conventions (formats/README.md §4): x, y in pixels of the input, score in [0, 1], 0 = missing.
# - Body score = MediaPipe's per-landmark visibility clamped to [0, 1], kept as is also for landmarks placed outside
#   the image (the renderer drops scores < 0.3); the neck is the shoulders' midpoint with the smaller of their scores.
# - Hands and face: MediaPipe gives no per-point confidence, so every point of a detected hand or face scores 1 and
#   an undetected one is all zeros.
# - Sides: MediaPipe's pose left/right are the subject's own (on a frontal photo the right shoulder, landmark 12, is
#   on the image left), and Holistic crops `left_hand_landmarks` around pose landmarks 15/17/19, the subject's left
#   wrist, pinky and index (mediapipe/modules/holistic_landmark/hand_landmarks_left_and_right_cpu.pbtxt). So
#   `right_hand_landmarks` is the subject's right hand → hands[0] and `left_hand_landmarks` → hands[1]. Only the
#   standalone Hands solution labels handedness as if the image were mirrored; Holistic does not use that label.
# - One person: Holistic follows the most prominent person in the frame and, in video mode, keeps tracking that one.
# - Frames without a detection stay all zeros; gap filling and smoothing are animate/pose/smooth.py's job.

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tqdm.auto import tqdm

from ..errors import AnimateError
from ..native_logs import native_stderr_silenced
from ..media.image import load_image
from ..media.video import probe_video, read_frames
from .keypoints import BODY_POINTS, FACE_POINTS, HAND_POINTS, PoseSequence

# MediaPipe pose landmark feeding each OpenPose-18 point; -1 = the neck, built from the shoulders (11, 12).
POSE_TO_OPENPOSE = np.array([0, -1, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7])
_SHOULDERS = [11, 12]

# Face-mesh vertex for each iBUG-68 point. iBUG's "right" is the subject's right (image left for a frontal face),
# and so is the mesh's: vertex 33 is the right eye's outer corner, 263 the left eye's. Symmetric vertex pairs are
# used on the two sides (e.g. 234/454, 70/300, 33/263, 61/291). The jaw vertices are the face-oval ones closest to
# even arc-length steps from ear level to the chin, as iBUG's are; the bridge steps evenly from 168 to the tip (1).
FACE_MESH_TO_IBUG68 = np.array([
    127, 234, 132, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 361, 454, 356,  # 0-16 jaw: right ear → left
    70, 63, 105, 66, 107,  # 17-21 right brow, outer → inner
    336, 296, 334, 293, 300,  # 22-26 left brow, inner → outer
    168, 197, 5, 1,  # 27-30 nose bridge, between the eyes → tip
    98, 97, 2, 326, 327,  # 31-35 nostrils' lower edge, right → left
    33, 160, 158, 133, 153, 144,  # 36-41 right eye: outer corner, upper lid, inner corner, lower lid
    362, 385, 387, 263, 373, 380,  # 42-47 left eye: inner corner, upper lid, outer corner, lower lid
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,  # 48-59 outer lips from the right corner, clockwise on screen
    78, 81, 13, 311, 308, 402, 14, 178,  # 60-67 inner lips from the right corner
])


def landmarks_to_arrays(
    pose: np.ndarray | None,
    right_hand: np.ndarray | None,
    left_hand: np.ndarray | None,
    face: np.ndarray | None,
    width: int,
    height: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised MediaPipe landmarks (None = not detected) → (body (18,3), hands (2,21,3), face (68,3)) in pixels."""
    # pose (33, 3+): x, y, visibility; hands (21, 2+) and face (468 or 478, 2+): x, y. right_hand/left_hand are
    # Holistic's right_hand_landmarks/left_hand_landmarks, the subject's own sides.
    scale = np.array([width, height], dtype=np.float32)
    body = np.zeros((BODY_POINTS, 3), np.float32)
    if pose is not None:
        pose = np.asarray(pose, dtype=np.float32)
        points = np.concatenate([pose[:, :2] * scale, np.clip(pose[:, 2:3], 0.0, 1.0)], axis=1)
        body[:] = points[POSE_TO_OPENPOSE]
        shoulders = points[_SHOULDERS]
        body[1] = (*shoulders[:, :2].mean(axis=0), shoulders[:, 2].min())
    hands = np.zeros((2, HAND_POINTS, 3), np.float32)
    for side, hand in enumerate((right_hand, left_hand)):
        if hand is not None:
            hands[side, :, :2] = np.asarray(hand, dtype=np.float32)[:, :2] * scale
            hands[side, :, 2] = 1.0
    face68 = np.zeros((FACE_POINTS, 3), np.float32)
    if face is not None:
        face68[:, :2] = np.asarray(face, dtype=np.float32)[FACE_MESH_TO_IBUG68, :2] * scale
        face68[:, 2] = 1.0
    return body, hands, face68


def _as_array(landmarks, with_visibility: bool = False) -> np.ndarray | None:
    """A MediaPipe NormalizedLandmarkList as an (N, 2) array of x, y, or (N, 3) with visibility; None stays None."""
    if landmarks is None:
        return None
    if with_visibility:
        return np.array([(p.x, p.y, p.visibility) for p in landmarks.landmark], dtype=np.float32)
    return np.array([(p.x, p.y) for p in landmarks.landmark], dtype=np.float32)


class HolisticExtractor:
    """MediaPipe Holistic as a context manager: video=True tracks one person across frames fed in order."""

    # video=False treats every image on its own (a reference photo). Model complexity 1 is the only pose model bundled
    # with the wheel (0 and 2 are downloaded). Frames go in at full size: Holistic runs its models on fixed-size crops,
    # so scaling frames down first saved no time (measured at 512x768 and 1080x1920) and moved body points by pixels.
    # refine_face_landmarks (eye and lip contours, 32 of the 68 points) is off: it costs ~6% per frame (measured on
    # 2 cores), the pose-speed target needs it, and the points it moves are drawn as 3-px dots.
    def __init__(self, video: bool = True) -> None:
        import mediapipe as mp  # ~1 s to import: only when extracting

        self._holistic = mp.solutions.holistic.Holistic(
            static_image_mode=not video, model_complexity=1, smooth_landmarks=True, refine_face_landmarks=False,
            min_detection_confidence=0.5, min_tracking_confidence=0.5)

    def __enter__(self) -> "HolisticExtractor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the MediaPipe graph."""
        self._holistic.close()

    def extract_frame(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(body (18,3), hands (2,21,3), face (68,3)) of one HxWx3 uint8 RGB frame in its pixels; zeros where no one."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB frame, got {rgb.dtype} {rgb.shape}")
        height, width = rgb.shape[:2]
        result = self._holistic.process(np.ascontiguousarray(rgb))
        return landmarks_to_arrays(
            _as_array(result.pose_landmarks, with_visibility=True), _as_array(result.right_hand_landmarks),
            _as_array(result.left_hand_landmarks), _as_array(result.face_landmarks), width, height)


MIN_FRAMES_PER_WORKER = 24


def default_workers(frames: int) -> int:
    """One Holistic graph per core (MediaPipe releases the GIL while a graph runs), at least 24 frames each."""
    return max(1, min(os.cpu_count() or 1, 8, frames // MIN_FRAMES_PER_WORKER))


def split_span(frames: int, parts: int) -> list[range]:
    """[0, frames) cut into `parts` contiguous spans of nearly equal length."""
    bounds = np.linspace(0, frames, parts + 1).round().astype(int)
    return [range(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _extract_span(path: str | os.PathLike, span: range, bar: tqdm) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Keypoints of frames [span), tracked by a graph of its own."""
    keypoints = []
    with HolisticExtractor(video=True) as extractor:
        for frame in read_frames(path, span.start, span.stop):
            keypoints.append(extractor.extract_frame(frame))
            bar.update()
    return keypoints


def extract_video(path: str | os.PathLike, max_frames: int | None = None, progress: bool = True,
                  workers: int | None = None) -> PoseSequence:
    """Keypoints of every frame of a video (the most prominent person, tracked); frames without one are all zeros.

    With several workers each thread tracks a contiguous span with its own graph (tracking restarts at span starts).
    """
    info = probe_video(path)
    total = info.num_frames if max_frames is None else min(max_frames, info.num_frames)
    spans = split_span(total, workers or default_workers(total))
    with native_stderr_silenced() as stderr, tqdm(total=total, desc="extracting pose", unit="frame",
                                                  disable=not progress, file=stderr) as bar:
        if len(spans) == 1:
            keypoints = _extract_span(path, spans[0], bar)
        else:
            with ThreadPoolExecutor(len(spans)) as pool:
                parts = list(pool.map(lambda span: _extract_span(path, span, bar), spans))
            keypoints = [k for part in parts for k in part]
    if not any(body[:, 2].any() for body, _, _ in keypoints):
        raise AnimateError(f"no person found in {os.fspath(path)}")
    body, hands, face = (np.stack(parts) for parts in zip(*keypoints))
    return PoseSequence(body, hands, face, info.width, info.height, info.fps)


def extract_image(image: np.ndarray | str | os.PathLike, need_body: bool = True
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(body (18,3), hands (2,21,3), face (68,3)) of the person in a photo (an RGB array or a file), in its pixels;
    no body found is an error when `need_body` (else all its scores are 0)."""
    if isinstance(image, (str, os.PathLike)):
        name, rgb = os.fspath(image), np.asarray(load_image(image))
    else:
        name, rgb = "the photo", np.asarray(image)
    with native_stderr_silenced(), HolisticExtractor(video=False) as extractor:
        body, hands, face = extractor.extract_frame(rgb)
    if need_body and not body[:, 2].any():
        raise AnimateError(f"no person found in {name}")
    return body, hands, face
