"""A synthetic dancer: smooth, seeded keypoint motion and a cartoon 'photo' of a person."""

import math

import cv2
import numpy as np

# The figure is proportioned for a 2:3 portrait frame; lengths below are in units of the frame height.
FRAME_ASPECT = 2 / 3
HIP_Y = 0.55
TORSO = 0.28
NECK_TO_NOSE = 0.075
SHOULDER_HALF_WIDTH = 0.075
HIP_HALF_WIDTH = 0.05
UPPER_ARM, FOREARM = 0.115, 0.105
THIGH, SHIN = 0.17, 0.165
EYE_OFFSET = (0.02, -0.018)  # subject's left eye from the nose, upright head (x right, y down)
EAR_OFFSET = (0.042, -0.008)
PALM, FINGER_SEGMENT = 0.032, 0.012
MARGIN = 0.05  # every body keypoint stays in [MARGIN, 1 - MARGIN]
FIT_SECONDS = 10.0  # the figure is scaled to fit this much of the dance, so shorter clips are prefixes of longer ones

# Degrees of freedom: name -> (centre, amplitude); angles in radians, offsets in frame heights.
MOTIONS = {
    "sway_x": (0.0, 0.03),
    "bob_y": (0.0, 0.012),
    "lean": (0.0, 0.12),
    "head_tilt": (0.0, 0.15),
    "r_shoulder": (1.0, 0.9),
    "l_shoulder": (1.0, 0.9),
    "r_elbow": (0.3, 0.8),
    "l_elbow": (0.3, 0.8),
    "r_hip": (0.12, 0.12),
    "l_hip": (0.12, 0.12),
    "r_knee": (0.08, 0.15),
    "l_knee": (0.08, 0.15),
}

# Per finger (thumb, index, middle, ring, pinky): spread from the forearm direction towards the
# thumb side (radians) and where its first point sits along the palm (fraction of PALM).
FINGER_SPREAD = (0.9, 0.35, 0.1, -0.12, -0.35)
FINGER_BASE = (0.35, 1.0, 1.0, 1.0, 0.9)

# Sides as (sign, shoulder, elbow, wrist, hip, knee, ankle); sign -1 = subject's right = image left.
SIDES = {"r": (-1.0, 2, 3, 4, 8, 9, 10), "l": (1.0, 5, 6, 7, 11, 12, 13)}


def _motion_curves(num_frames: int, seed: int, fps: float) -> dict[str, np.ndarray]:
    """Each degree of freedom as centre + amplitude × a seeded blend of two sinusoids."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames) / fps
    curves = {}
    for name, (centre, amplitude) in MOTIONS.items():
        freqs = rng.uniform(0.2, 0.8, size=2)
        phases = rng.uniform(0.0, 2 * math.pi, size=2)
        weights = rng.dirichlet((2.0, 2.0))
        wave = sum(wt * np.sin(2 * math.pi * fr * t + ph) for wt, fr, ph in zip(weights, freqs, phases))
        curves[name] = centre + amplitude * wave
    return curves


def _along(origin: np.ndarray, angle: np.ndarray | float, length: float | np.ndarray) -> np.ndarray:
    """Points `length` from `origin` in direction `angle` (0 = down, positive turns towards image right)."""
    length = np.asarray(length)[..., None]
    return origin + length * np.stack(np.broadcast_arrays(np.sin(angle), np.cos(angle)), axis=-1)


def _rotate(offset: tuple[float, float], angle: np.ndarray) -> np.ndarray:
    """An upright-frame offset turned by `angle` (same sense as `_along`), one row per angle."""
    dx, dy = offset
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([dx * c + dy * s, -dx * s + dy * c], axis=-1)


def _to_frame(points: np.ndarray) -> np.ndarray:
    """Figure coordinates (frame heights, x centred) to normalised image coordinates."""
    return np.stack([0.5 + points[..., 0] / FRAME_ASPECT, points[..., 1]], axis=-1)


def _from_frame(points: np.ndarray) -> np.ndarray:
    """Normalised image coordinates back to figure coordinates."""
    return np.stack([(points[..., 0] - 0.5) * FRAME_ASPECT, points[..., 1]], axis=-1)


def synthetic_dance(num_frames: int, seed: int = 0, fps: float = 24.0) -> np.ndarray:
    """Normalised OpenPose-18 body keypoints (F, 18, 3), score 1, of a front-facing figure dancing."""
    total = max(num_frames, round(FIT_SECONDS * fps))
    m = _motion_curves(total, seed, fps)
    lean = m["lean"]
    points = np.zeros((total, 18, 2))
    hip = np.stack([m["sway_x"], HIP_Y + m["bob_y"]], axis=-1)
    neck = _along(hip, math.pi + lean, TORSO)
    points[:, 1] = neck
    for side, (sign, shoulder, elbow, wrist, hip_i, knee, ankle) in SIDES.items():
        points[:, shoulder] = neck + _rotate((sign * SHOULDER_HALF_WIDTH, 0.0), lean)
        points[:, hip_i] = hip + np.array([sign * HIP_HALF_WIDTH, 0.0])
        upper = lean + sign * m[f"{side}_shoulder"]
        points[:, elbow] = _along(points[:, shoulder], upper, UPPER_ARM)
        points[:, wrist] = _along(points[:, elbow], upper + sign * m[f"{side}_elbow"], FOREARM)
        thigh = sign * m[f"{side}_hip"]
        points[:, knee] = _along(points[:, hip_i], thigh, THIGH)
        points[:, ankle] = _along(points[:, knee], thigh - sign * m[f"{side}_knee"], SHIN)
    head = lean + m["head_tilt"]
    nose = _along(neck, math.pi + head, NECK_TO_NOSE)
    points[:, 0] = nose
    for (right, left), (dx, dy) in (((14, 15), EYE_OFFSET), ((16, 17), EAR_OFFSET)):
        points[:, right] = nose + _rotate((-dx, dy), head)
        points[:, left] = nose + _rotate((dx, dy), head)
    xy = _to_frame(points)
    scale = min(1.0, (0.5 - MARGIN) / np.abs(xy - 0.5).max())  # shrink about the centre if a pose leaves the frame
    xy = 0.5 + scale * (xy[:num_frames] - 0.5)
    return np.concatenate([xy, np.ones((num_frames, 18, 1))], axis=-1)


def synthetic_hands(body: np.ndarray) -> np.ndarray:
    """Open hands (F, 2, 21, 3) at the wrists of `synthetic_dance` keypoints, fingers along the forearm."""
    points = _from_frame(body[..., :2])
    size = np.linalg.norm(points[:, 1] - (points[:, 8] + points[:, 11]) / 2, axis=-1) / TORSO
    hands = np.ones((body.shape[0], 2, 21, 3))
    for h, (sign, _, elbow, wrist, *_) in enumerate(SIDES.values()):
        forearm = points[:, wrist] - points[:, elbow]
        direction = np.arctan2(forearm[:, 0], forearm[:, 1])
        hand = [points[:, wrist]]
        for spread, base in zip(FINGER_SPREAD, FINGER_BASE):
            angle = direction + sign * spread  # the thumb is on the outer side of a front-facing palm
            hand.append(_along(points[:, wrist], angle, base * PALM * size))
            for _ in range(3):
                hand.append(_along(hand[-1], angle, FINGER_SEGMENT * size))
        hands[:, h, :, :2] = _to_frame(np.stack(hand, axis=1))
    return hands


def _person_palette(rng: np.random.Generator) -> dict[str, tuple[int, int, int]]:
    """Seeded RGB colours for skin, hair, shirt, trousers and shoes."""
    skins = ((255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36))
    shirt = cv2.cvtColor(np.uint8([[[rng.integers(0, 180), 200, 210]]]), cv2.COLOR_HSV2RGB)[0, 0]
    trousers = cv2.cvtColor(np.uint8([[[rng.integers(0, 180), 150, 110]]]), cv2.COLOR_HSV2RGB)[0, 0]
    return {
        "skin": skins[rng.integers(len(skins))],
        "hair": tuple(int(v) for v in rng.integers(20, 90, size=3)),
        "shirt": tuple(int(v) for v in shirt),
        "trousers": tuple(int(v) for v in trousers),
        "shoes": (40, 35, 35),
    }


def _background(rng: np.random.Generator, width: int, height: int, floor_y: int) -> np.ndarray:
    """A light wall with soft blotches and grain, and a darker floor from `floor_y` down."""
    wall = rng.uniform(205, 240, size=3)
    floor = wall * rng.uniform(0.7, 0.85)
    image = np.empty((height, width, 3))
    image[:floor_y], image[floor_y:] = wall, floor
    blotches = cv2.resize(rng.normal(size=(max(height // 48, 2), max(width // 48, 2))), (width, height),
                          interpolation=cv2.INTER_CUBIC)
    image += 10.0 * blotches[..., None] + rng.normal(scale=3.0, size=(height, width, 1))
    return np.clip(image, 0, 255).astype(np.uint8)


def draw_person(body_frame: np.ndarray, width: int, height: int, seed: int = 0) -> np.ndarray:
    """A cartoon person in the pose of one normalised (18, 3) body frame: HxWx3 uint8 RGB, for example references."""
    rng = np.random.default_rng(seed)
    colour = _person_palette(rng)
    p = body_frame[:, :2] * np.array([width, height])
    unit = np.linalg.norm(p[1] - (p[8] + p[11]) / 2) / TORSO  # pixels per frame height of this figure
    image = _background(rng, width, height, int(min(height - 1, max(p[10, 1], p[13, 1]) - 0.02 * unit)))

    def pt(xy: np.ndarray) -> tuple[int, int]:
        """A pixel position rounded for OpenCV."""
        return int(round(xy[0])), int(round(xy[1]))

    def limb(a: np.ndarray, b: np.ndarray, thickness: float, rgb: tuple[int, int, int]) -> None:
        """A round-capped stroke `thickness` frame heights wide."""
        cv2.line(image, pt(a), pt(b), rgb, max(int(thickness * unit), 1), cv2.LINE_AA)

    for _, _, _, _, hip, knee, ankle in SIDES.values():
        limb(p[hip], p[knee], 0.06, colour["trousers"])
        limb(p[knee], p[ankle], 0.05, colour["trousers"])
        cv2.ellipse(image, pt(p[ankle] + [0, 0.01 * unit]), (int(0.035 * unit), int(0.018 * unit)), 0, 0, 360,
                    colour["shoes"], -1, cv2.LINE_AA)
    widen = 0.02 * unit * (p[5] - p[2]) / np.linalg.norm(p[5] - p[2])
    torso = np.array([p[2] - widen, p[5] + widen, p[11] + widen, p[8] - widen]).round().astype(np.int32)
    cv2.fillPoly(image, [torso], colour["shirt"], cv2.LINE_AA)
    limb(p[1], p[0], 0.035, colour["skin"])
    for _, shoulder, elbow, wrist, *_ in SIDES.values():
        limb(p[shoulder], p[elbow], 0.045, colour["shirt"])
        limb(p[elbow], p[wrist], 0.035, colour["skin"])
        cv2.circle(image, pt(p[wrist]), int(0.025 * unit), colour["skin"], -1, cv2.LINE_AA)
    up = (p[0] - p[1]) / np.linalg.norm(p[0] - p[1])
    radius = int(0.06 * unit)
    cv2.circle(image, pt(p[0] + up * 0.03 * unit), int(radius * 1.08), colour["hair"], -1, cv2.LINE_AA)
    cv2.circle(image, pt(p[0] + up * 0.01 * unit), radius, colour["skin"], -1, cv2.LINE_AA)
    for eye in (14, 15):
        cv2.circle(image, pt(p[eye]), max(int(0.007 * unit), 1), (30, 30, 40), -1, cv2.LINE_AA)
    mouth = p[0] - up * 0.02 * unit
    cv2.ellipse(image, pt(mouth), (int(0.015 * unit), int(0.006 * unit)), 0, 0, 180, (150, 60, 60), 1, cv2.LINE_AA)
    return image
