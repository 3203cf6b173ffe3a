"""DWPose/OpenPose-style pose images, drawn the way the released Animate Anyone weights saw them."""

import colorsys
import math

import cv2
import numpy as np

BODY_KEYPOINT_NAMES = (
    "nose", "neck",
    "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)

# Limb i joins these two body keypoints (0-based; formats/README.md §2 lists them 1-based), in drawing order.
BODY_LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)

# RGB colour i is used by limb i and by body keypoint i.
BODY_COLOURS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)

# OpenPose hand: 0 wrist, then thumb, index, middle, ring, pinky (4 points each, base to tip).
HAND_EDGES = tuple(
    edge
    for finger in range(5)
    for edge in ((0, 4 * finger + 1), *((4 * finger + j, 4 * finger + j + 1) for j in range(1, 4)))
)

# Hand edge k is HSV(k / 20, 1, 1) scaled to 0..255 (OpenCV rounds these when drawing).
HAND_EDGE_COLOURS = tuple(
    tuple(255.0 * c for c in colorsys.hsv_to_rgb(k / len(HAND_EDGES), 1.0, 1.0)) for k in range(len(HAND_EDGES))
)

HAND_POINT_COLOUR = (0, 0, 255)
FACE_POINT_COLOUR = (255, 255, 255)

SCORE_THRESHOLD = 0.3  # keypoints scoring below this are not drawn
MISSING_XY = 0.01  # hand/face points at or below this normalised x or y are treated as missing
LIMB_HALF_WIDTH = 4
LIMB_DIM = 0.6  # limbs are dimmed by this factor before the joints are drawn
BODY_JOINT_RADIUS = 4
HAND_LINE_THICKNESS = 2
HAND_POINT_RADIUS = 4
FACE_POINT_RADIUS = 3


def canvas_size(width: int, height: int, short_side: int = 512) -> tuple[int, int]:
    """(width, height) of the drawing canvas: short side scaled to `short_side`, both rounded to 64 like DWPose."""
    k = short_side / min(width, height)
    return int(np.round(width * k / 64.0)) * 64, int(np.round(height * k / 64.0)) * 64


def draw_pose(
    body: np.ndarray,
    hands: np.ndarray | None,
    face: np.ndarray | None,
    width: int,
    height: int,
    canvas_short_side: int = 512,
) -> np.ndarray:
    """Draw normalised body (18,3), hands (2,21,3) and face (68,3) keypoints as an HxWx3 uint8 RGB image."""
    cw, ch = canvas_size(width, height, canvas_short_side)
    canvas = np.zeros((ch, cw, 3), dtype=np.uint8)
    canvas = _draw_body(canvas, np.asarray(body, dtype=np.float64))
    if hands is not None:
        for hand in np.asarray(hands, dtype=np.float64):
            _draw_hand(canvas, hand)
    if face is not None:
        _draw_face(canvas, np.asarray(face, dtype=np.float64))
    if (cw, ch) == (width, height):
        return canvas
    shrinking = width <= cw and height <= ch
    return cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _draw_body(canvas: np.ndarray, body: np.ndarray) -> np.ndarray:
    """Limbs as dimmed ellipses, then joints as full-colour dots; returns the new canvas."""
    h, w = canvas.shape[:2]
    visible = body[:, 2] >= SCORE_THRESHOLD
    xs, ys = body[:, 0] * w, body[:, 1] * h
    for (a, b), colour in zip(BODY_LIMBS, BODY_COLOURS):
        if not (visible[a] and visible[b]):
            continue
        dx, dy = xs[a] - xs[b], ys[a] - ys[b]
        centre = (int((xs[a] + xs[b]) / 2), int((ys[a] + ys[b]) / 2))
        axes = (int(math.hypot(dx, dy) / 2), LIMB_HALF_WIDTH)
        polygon = cv2.ellipse2Poly(centre, axes, int(math.degrees(math.atan2(dy, dx))), 0, 360, 1)
        cv2.fillConvexPoly(canvas, polygon, colour)
    canvas = (canvas * LIMB_DIM).astype(np.uint8)
    for i, colour in enumerate(BODY_COLOURS):
        if visible[i]:
            cv2.circle(canvas, (int(xs[i]), int(ys[i])), BODY_JOINT_RADIUS, colour, thickness=-1)
    return canvas


def _present(points: np.ndarray) -> np.ndarray:
    """Which hand/face points count as detected."""
    return (points[:, 2] >= SCORE_THRESHOLD) & (points[:, 0] > MISSING_XY) & (points[:, 1] > MISSING_XY)


def _pixels(points: np.ndarray, canvas: np.ndarray) -> list[tuple[int, int]]:
    """Normalised points as truncated integer canvas pixels."""
    h, w = canvas.shape[:2]
    return [(int(x * w), int(y * h)) for x, y in points[:, :2]]


def _draw_hand(canvas: np.ndarray, hand: np.ndarray) -> None:
    """Rainbow bones, then blue points, in place."""
    present, pixels = _present(hand), _pixels(hand, canvas)
    for (a, b), colour in zip(HAND_EDGES, HAND_EDGE_COLOURS):
        if present[a] and present[b]:
            cv2.line(canvas, pixels[a], pixels[b], colour, thickness=HAND_LINE_THICKNESS)
    for ok, xy in zip(present, pixels):
        if ok:
            cv2.circle(canvas, xy, HAND_POINT_RADIUS, HAND_POINT_COLOUR, thickness=-1)


def _draw_face(canvas: np.ndarray, face: np.ndarray) -> None:
    """White face dots, in place."""
    for ok, xy in zip(_present(face), _pixels(face, canvas)):
        if ok:
            cv2.circle(canvas, xy, FACE_POINT_RADIUS, FACE_POINT_COLOUR, thickness=-1)
