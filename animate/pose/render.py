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

# Body keypoints are drawn when their score is above this, hand and face points when it is not below it.
SCORE_THRESHOLD = 0.3
MISSING_PIXEL = 0.01  # hand/face points whose truncated canvas pixel x or y is not above this are missing
LIMB_HALF_WIDTH = 4
LIMB_DIM = 0.6  # limbs are dimmed by this factor before the joints are drawn
BODY_JOINT_RADIUS = 4
HAND_LINE_THICKNESS = 2
HAND_POINT_RADIUS = 4
MUSEPOSE_HAND_POINT_RADIUS = 3
FACE_POINT_RADIUS = 3

# Drawing styles: "moore" is Moore-AnimateAnyone's DWPose drawing (controlnet_aux 0.0.10's dwpose/util.py);
# "musepose" is MusePose's (its pose/script/util.py and draw_dwpose.py, commit 51d7686). MusePose differs in:
# stroke widths grow with segment length (_stroke_width: limb half-axis and hand line thickness), hand points
# have radius 3, the face is never drawn (its scripts default to draw_face=False), the canvas is 1024 on the short
# side with the long side truncated to even (not rounded to 64), the resize to the target is INTER_AREA, and the
# RGB colours are drawn into what it then treats as BGR (cv2.cvtColor BGR2RGB before saving), so every saved
# colour has red and blue swapped. Uncertain: MusePose's inference-time pose_align.py draws at width 1024 (not the
# short side) in the driving video's aspect and resizes with INTER_LINEAR to 768 high; we follow draw_dwpose.py,
# the renderer of its training-style pose videos, and compute the canvas from the target, not the source video.
STYLES = ("moore", "musepose")
CANVAS_SHORT_SIDE = {"moore": 512, "musepose": 1024}
STROKE_STEPS = (5, 10, 20, 40, 80, 160, 320)  # MusePose: a segment this many px long or more gets one px more


def canvas_size(width: int, height: int, short_side: int = 512, style: str = "moore") -> tuple[int, int]:
    """(width, height) of the canvas: short side scaled to `short_side`, rounded to 64 (moore) or down to even."""
    k = short_side / min(width, height)
    if style == "musepose":
        return int(k * width // 2 * 2), int(k * height // 2 * 2)
    return int(np.round(width * k / 64.0)) * 64, int(np.round(height * k / 64.0)) * 64


def draw_pose(
    body: np.ndarray,
    hands: np.ndarray | None,
    face: np.ndarray | None,
    width: int,
    height: int,
    canvas_short_side: int | None = None,
    style: str = "moore",
) -> np.ndarray:
    """Draw normalised body (18,3), hands (2,21,3) and face (68,3) keypoints as an HxWx3 uint8 RGB image.

    Arithmetic stays in the keypoints' float dtype (float32 from the detector, as in DWPose), so truncation to
    pixels matches the reference code bit for bit. `canvas_short_side` defaults to the style's (512 or 1024).
    """
    if style not in STYLES:
        raise ValueError(f"unknown pose style {style!r} (choose from {', '.join(STYLES)})")
    musepose = style == "musepose"
    cw, ch = canvas_size(width, height, canvas_short_side or CANVAS_SHORT_SIDE[style], style)
    canvas = np.zeros((ch, cw, 3), dtype=np.uint8)
    canvas = _draw_body(canvas, _floats(body), musepose)
    if hands is not None:
        for hand in _floats(hands):
            _draw_hand(canvas, hand, musepose)
    if face is not None and not musepose:
        _draw_face(canvas, _floats(face))
    if musepose:
        canvas = np.ascontiguousarray(canvas[..., ::-1])
    if (cw, ch) == (width, height):
        return canvas
    return cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA if musepose else cv2.INTER_LINEAR)


def _floats(points: np.ndarray) -> np.ndarray:
    """Keypoints as a float array, keeping float32 as float32."""
    points = np.asarray(points)
    return points.astype(np.result_type(points.dtype, np.float32), copy=False)


def _stroke_width(length: float) -> int:
    """MusePose's stroke width for a segment `length` canvas px long: 1 below 5 px, up to 8 from 320 px."""
    return 1 + sum(length >= step for step in STROKE_STEPS)


def _draw_body(canvas: np.ndarray, body: np.ndarray, musepose: bool) -> np.ndarray:
    """Limbs as dimmed ellipses, then joints as full-colour dots; returns the new canvas."""
    h, w = canvas.shape[:2]
    visible = body[:, 2].astype(np.float64) > SCORE_THRESHOLD  # DWPose compares float64 scalars (numpy 1.x)
    xs, ys = body[:, 0] * float(w), body[:, 1] * float(h)
    for (a, b), colour in zip(BODY_LIMBS, BODY_COLOURS):
        if not (visible[a] and visible[b]):
            continue
        dx, dy = xs[a] - xs[b], ys[a] - ys[b]
        length = (dx**2 + dy**2) ** 0.5
        centre = (int(np.mean(xs[[a, b]])), int(np.mean(ys[[a, b]])))
        axes = (int(length / 2), _stroke_width(length) if musepose else LIMB_HALF_WIDTH)
        polygon = cv2.ellipse2Poly(centre, axes, int(math.degrees(math.atan2(dy, dx))), 0, 360, 1)
        cv2.fillConvexPoly(canvas, polygon, colour)
    canvas = (canvas * LIMB_DIM).astype(np.uint8)
    for i, colour in enumerate(BODY_COLOURS):
        if visible[i]:
            cv2.circle(canvas, (int(body[i, 0] * w), int(body[i, 1] * h)), BODY_JOINT_RADIUS, colour, thickness=-1)
    return canvas


def _pixels(points: np.ndarray, canvas: np.ndarray) -> list[tuple[int, int] | None]:
    """Hand/face points as truncated integer canvas pixels, None where missing."""
    h, w = canvas.shape[:2]
    present = points[:, 2] >= SCORE_THRESHOLD
    pixels = [(int(x * w), int(y * h)) for x, y in points[:, :2]]
    return [xy if ok and min(xy) > MISSING_PIXEL else None for ok, xy in zip(present, pixels)]


def _draw_hand(canvas: np.ndarray, hand: np.ndarray, musepose: bool) -> None:
    """Rainbow bones, then blue points, in place."""
    pixels = _pixels(hand, canvas)
    for (a, b), colour in zip(HAND_EDGES, HAND_EDGE_COLOURS):
        p, q = pixels[a], pixels[b]
        if p is not None and q is not None:
            length = math.sqrt((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2)
            cv2.line(canvas, p, q, colour, thickness=_stroke_width(length) if musepose else HAND_LINE_THICKNESS)
    radius = MUSEPOSE_HAND_POINT_RADIUS if musepose else HAND_POINT_RADIUS
    for xy in pixels:
        if xy is not None:
            cv2.circle(canvas, xy, radius, HAND_POINT_COLOUR, thickness=-1)


def _draw_face(canvas: np.ndarray, face: np.ndarray) -> None:
    """White face dots, in place."""
    for xy in _pixels(face, canvas):
        if xy is not None:
            cv2.circle(canvas, xy, FACE_POINT_RADIUS, FACE_POINT_COLOUR, thickness=-1)
