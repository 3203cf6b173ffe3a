"""One person's keypoints with DWPose's ONNX models (YOLOX-L detector, 133-point whole-body pose) on onnxruntime."""

# The optional `--pose-backend dwpose`: Moore-AnimateAnyone's `pretrained_weights/DWPose/` holds `yolox_l.onnx` and
# `dw-ll_ucoco_384.onnx`. Pre- and post-processing follow DWPose's ONNX pipeline (IDEA-Research/DWPose
# annotator/dwpose/{onnxdet,onnxpose,wholebody}.py, which Moore's src/dwpose/ reuses), which drew the pose videos the
# released weights were trained on:
# - Moore converts its RGB frames to BGR before both models and detects at `detect_resolution=512` (short side, via
#   controlnet_aux's resize_image); we shrink frames whose short side exceeds 512 (INTER_AREA) and do not enlarge
#   smaller ones, then map keypoints back to the frame's pixels.
# - Detector: letterbox into the 640x640 input at the top-left on grey 114, raw 0-255 values; each output row is
#   (dx, dy, log w, log h, objectness, 80 class scores) on the stride 8/16/32 grids; score = objectness x class;
#   candidates above 0.1, NMS at IoU 0.45 (continuous box areas; DWPose adds 1 px to widths and heights), people
#   (class 0) above 0.3 kept.
# - One person: the largest box x score. DWPose runs the pose model on every box and Moore keeps the person with the
#   best mean body score; with no box DWPose runs the pose model on the whole frame, we report no one (all zeros).
# - Pose: the box padded 1.25x, widened or heightened to the input's 288:384 aspect, cut out by an affine warp
#   (bilinear, black outside), normalised with ImageNet's mean/std in 0-255 (applied to the BGR channels, as DWPose
#   does); SimCC decoding = argmax bin / 2 (split ratio 2) per axis, score = the smaller of the two maxima, a point
#   with a maximum <= 0 is missing.
# - 133 COCO-WholeBody points → ours: body 0-16 (COCO-17) reordered to OpenPose-18 with the neck as the shoulders'
#   midpoint (DWPose's mmpose→openpose mapping); 17-22 feet dropped; face 23-90 is iBUG-68 in order; hands 91-111
#   `left_hand_*` and 112-132 `right_hand_*`, the subject's own sides like COCO's body names, so hands[0] (the
#   subject's right) = 112-132. (Moore's `hands` list puts 91-111 first; both hands are drawn alike.)
# - Scores are the model's, clipped to [0, 1] (the renderer applies its thresholds). DWPose marks the neck 1 when both
#   shoulders score > 0.3; like extract.py we give it the smaller shoulder score, which draws the same.

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from ..errors import AnimateError
from ..media.image import load_image
from ..media.video import probe_video, read_frames
from ..onnx_models import onnx_session
from .keypoints import PoseSequence

DETECTOR_FILE, POSE_FILE = "yolox_l.onnx", "dw-ll_ucoco_384.onnx"
DETECT_SHORT_SIDE = 512
DETECTOR_SIZE, POSE_SIZE = (640, 640), (384, 288)  # (height, width), used when a model's input shape is dynamic
LETTERBOX_FILL = 114
STRIDES = (8, 16, 32)
CANDIDATE_SCORE, NMS_IOU, PERSON_SCORE = 0.1, 0.45, 0.3
BOX_PADDING = 1.25
POSE_MEAN = np.array([123.675, 116.28, 103.53], np.float32)
POSE_STD = np.array([58.395, 57.12, 57.375], np.float32)
SIMCC_SPLIT = 2.0
WHOLEBODY_POINTS = 133

# COCO-WholeBody point feeding each OpenPose-18 point; -1 = the neck, built from the shoulders (5, 6).
COCO_TO_OPENPOSE = np.array([0, -1, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3])
_SHOULDERS = [5, 6]
FACE = slice(23, 91)
RIGHT_HAND, LEFT_HAND = slice(112, 133), slice(91, 112)


def find_models(folder: str | os.PathLike) -> tuple[Path, Path]:
    """Paths of yolox_l.onnx and dw-ll_ucoco_384.onnx in folder or folder/DWPose (Moore's pretrained_weights/)."""
    folder = Path(folder)
    paths = []
    for name in (DETECTOR_FILE, POSE_FILE):
        path = next((p for p in (folder / name, folder / "DWPose" / name) if p.is_file()), None)
        if path is None:
            raise AnimateError(f"DWPose model {name} not found in {folder} or {folder / 'DWPose'}")
        paths.append(path)
    return paths[0], paths[1]


def _input_size(session, default: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of a session's NCHW image input; default where the model leaves them dynamic."""
    size = tuple(session.get_inputs()[0].shape[2:])
    return size if len(size) == 2 and all(isinstance(d, int) for d in size) else default


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """image scaled to fit size=(H, W) at the top-left of a grey canvas, as a 1x3xHxW float32 tensor; and the scale."""
    height, width = size
    ratio = min(height / image.shape[0], width / image.shape[1])
    new_w, new_h = max(1, int(image.shape[1] * ratio)), max(1, int(image.shape[0] * ratio))
    canvas = np.full((height, width, 3), LETTERBOX_FILL, np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return canvas.transpose(2, 0, 1)[None].astype(np.float32), ratio


def _grid(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Cell (x, y) and stride of each YOLOX output row: stride 8 cells first, row-major within a stride."""
    cells, strides = [], []
    for stride in STRIDES:
        ys, xs = np.mgrid[:size[0] // stride, :size[1] // stride]
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full(xs.size, stride))
    return np.concatenate(cells).astype(np.float32), np.concatenate(strides).astype(np.float32)[:, None]


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the boxes (x0, y0, x1, y1) kept by greedy non-maximum suppression, best score first."""
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        overlap = np.clip(np.minimum(boxes[best, 2:], boxes[rest, 2:]) - np.maximum(boxes[best, :2], boxes[rest, :2]),
                          0, None).prod(axis=1)
        order = rest[overlap / (areas[best] + areas[rest] - overlap) <= iou]
    return np.array(keep, dtype=np.int64)


def decode_people(output: np.ndarray, ratio: float, size: tuple[int, int]) -> np.ndarray:
    """YOLOX rows (N, 5 + classes) of a size=(H, W) input → people (K, 5): x0, y0, x1, y1 in the image, score."""
    cells, strides = _grid(size)
    if output.ndim != 2 or output.shape[0] != len(cells) or output.shape[1] < 6:
        raise AnimateError(f"{DETECTOR_FILE}: unexpected output shape {output.shape}, expected ({len(cells)}, 85)")
    scores = output[:, 4] * output[:, 5]
    candidate = scores > CANDIDATE_SCORE
    rows, cells, strides, scores = output[candidate], cells[candidate], strides[candidate], scores[candidate]
    centre = (rows[:, :2] + cells) * strides
    half = np.exp(np.minimum(rows[:, 2:4], 20.0)) * strides / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1) / ratio
    kept = nms(boxes, scores, NMS_IOU)
    people = np.concatenate([boxes[kept], scores[kept, None]], axis=1)
    return people[people[:, 4] > PERSON_SCORE]


def crop_person(image: np.ndarray, box: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The box's padded region at size=(H, W)'s aspect as a normalised 1x3xHxW float32 tensor; and image→crop 2x3."""
    height, width = size
    centre = (box[:2] + box[2:4]) / 2
    box_w, box_h = (box[2:4] - box[:2]) * BOX_PADDING
    box_w = max(box_w, box_h * width / height)
    scale = width / box_w
    matrix = np.array([[scale, 0, width / 2 - scale * centre[0]], [0, scale, height / 2 - scale * centre[1]]])
    crop = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR)
    return ((crop - POSE_MEAN) / POSE_STD).transpose(2, 0, 1)[None].astype(np.float32), matrix


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray) -> np.ndarray:
    """SimCC vectors (K, Wx), (K, Wy) → (K, 3): x, y in model input pixels and the smaller of the two maxima."""
    x = simcc_x.argmax(axis=1) / SIMCC_SPLIT
    y = simcc_y.argmax(axis=1) / SIMCC_SPLIT
    return np.stack([x, y, np.minimum(simcc_x.max(axis=1), simcc_y.max(axis=1))], axis=1).astype(np.float32)


def wholebody_to_arrays(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COCO-WholeBody (133, 3) x, y, score → (body (18,3), hands (2,21,3), face (68,3)); score <= 0 = missing."""
    points = np.asarray(points, dtype=np.float32).copy()
    points[:, 2] = np.clip(points[:, 2], 0.0, 1.0)
    points[points[:, 2] == 0] = 0.0
    body = points[COCO_TO_OPENPOSE]
    shoulders = points[_SHOULDERS]
    neck_score = shoulders[:, 2].min()
    body[1] = (*shoulders[:, :2].mean(axis=0), neck_score) if neck_score > 0 else 0.0
    hands = np.stack([points[RIGHT_HAND], points[LEFT_HAND]])
    face = points[FACE]
    return body, hands, face


class DWPoseExtractor:
    """DWPose's detector and whole-body model on onnxruntime; each frame on its own (no tracking)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        detector_path, pose_path = find_models(folder)
        self._detector = onnx_session(detector_path, "the dwpose pose backend")
        self._pose = onnx_session(pose_path, "the dwpose pose backend")
        self._detector_size = _input_size(self._detector, DETECTOR_SIZE)
        self._pose_size = _input_size(self._pose, POSE_SIZE)

    def detect(self, bgr: np.ndarray) -> np.ndarray:
        """People (K, 5) in a BGR image: x0, y0, x1, y1 in its pixels and the detector's score."""
        tensor, ratio = letterbox(bgr, self._detector_size)
        output = self._detector.run(None, {self._detector.get_inputs()[0].name: tensor})[0]
        return decode_people(output[0], ratio, self._detector_size)

    def estimate(self, bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
        """COCO-WholeBody (133, 3) of the person in box: x, y in the image's pixels and the model's raw score."""
        tensor, matrix = crop_person(bgr, box, self._pose_size)
        simcc_x, simcc_y = self._pose.run(None, {self._pose.get_inputs()[0].name: tensor})[:2]
        height, width = self._pose_size
        expected = ((1, WHOLEBODY_POINTS, int(width * SIMCC_SPLIT)), (1, WHOLEBODY_POINTS, int(height * SIMCC_SPLIT)))
        if (simcc_x.shape, simcc_y.shape) != expected:
            raise AnimateError(f"{POSE_FILE}: unexpected output shapes {simcc_x.shape}, {simcc_y.shape}, "
                               f"expected {expected[0]}, {expected[1]}")
        points = decode_simcc(simcc_x[0], simcc_y[0])
        points[:, :2] = (points[:, :2] - matrix[:, 2]) / matrix[0, 0]
        return points

    def extract_frame(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(body (18,3), hands (2,21,3), face (68,3)) of one HxWx3 uint8 RGB frame in its pixels; zeros where no one."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB frame, got {rgb.dtype} {rgb.shape}")
        height, width = rgb.shape[:2]
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        shrink = DETECT_SHORT_SIDE / min(height, width)
        if shrink < 1:
            bgr = cv2.resize(bgr, (max(1, round(width * shrink)), max(1, round(height * shrink))),
                             interpolation=cv2.INTER_AREA)
        people = self.detect(bgr)
        if not len(people):
            return wholebody_to_arrays(np.zeros((WHOLEBODY_POINTS, 3), np.float32))
        prominence = np.prod(people[:, 2:4] - people[:, :2], axis=1) * people[:, 4]
        points = self.estimate(bgr, people[prominence.argmax()])
        points[:, :2] *= (width / bgr.shape[1], height / bgr.shape[0])
        return wholebody_to_arrays(points)


def extract_video(path: str | os.PathLike, folder: str | os.PathLike, max_frames: int | None = None,
                  progress: bool = True) -> PoseSequence:
    """Keypoints of every frame of a video (the most prominent person per frame); frames without one are all zeros."""
    info = probe_video(path)
    extractor = DWPoseExtractor(folder)
    total = info.num_frames if max_frames is None else min(max_frames, info.num_frames)
    frames = tqdm(read_frames(path, stop=max_frames), total=total, desc="extracting pose (dwpose)", unit="frame",
                  disable=not progress)
    keypoints = [extractor.extract_frame(frame) for frame in frames]
    if not any(body[:, 2].any() for body, _, _ in keypoints):
        raise AnimateError(f"no person found in {os.fspath(path)}")
    body, hands, face = (np.stack(parts) for parts in zip(*keypoints))
    return PoseSequence(body, hands, face, info.width, info.height, info.fps)


def extract_image(image: np.ndarray | str | os.PathLike, folder: str | os.PathLike, need_body: bool = True
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(body (18,3), hands (2,21,3), face (68,3)) of the person in a photo (an RGB array or a file), in its pixels;
    no body found is an error when `need_body` (else all its scores are 0)."""
    if isinstance(image, (str, os.PathLike)):
        name, rgb = os.fspath(image), np.asarray(load_image(image))
    else:
        name, rgb = "the photo", np.asarray(image)
    body, hands, face = DWPoseExtractor(folder).extract_frame(rgb)
    if need_body and not body[:, 2].any():
        raise AnimateError(f"no person found in {name}")
    return body, hands, face
