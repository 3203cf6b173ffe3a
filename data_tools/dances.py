"""Procedural dances: seeded joint-angle curves, looped moves, side steps, turns and zooms, to exact keypoints.

A dance is a set of joint-angle curves (ANGLES) built from a per-dance rest pose, a sequence of short moves (key poses
looped on the beat, jittered, sometimes mirrored, crossfaded), smooth noise, side steps that lift the leading leg,
turns about the vertical axis (half turns, spins, peeks to the side) and slow zooms (towards or away from the camera,
the feet staying on a floor in perspective). The figure's own proportions set every bone. Keypoints are in pixels;
the whole figure stays inside the frame, and a point's score is 1 only where the figure drawn from these keypoints
shows it: on one of its own parts and, for the face, turned towards the camera.
"""

import math
from dataclasses import dataclass

import numpy as np

from .figures import (FACE_TEMPLATE, HAND_PARTS, HEAD_POINTS, HEAD_TEMPLATE, JOINT_PARTS, PART, PART_NAMES, SIDES,
                      Figure, figure_bounds, labels_at)

# Joint angles in radians. shoulder: the upper arm from hanging (0) outwards and up (pi = straight up; < 0 across the
# body); elbow: the forearm turned further outwards (+) or inwards (-) from the upper arm; wrist: the hand from the
# forearm; spread, curl: fingers, 0..1; hip: the thigh outwards; knee: the shin turned back inwards from the thigh;
# lean: the torso tilted (+ = clockwise on screen); head_tilt: the head tilted from the torso; yaw: the turn (0 = facing
# the camera, pi = back to it, + = the subject's left side comes nearer).
ANGLES = ("yaw", "lean", "head_tilt",
          "r_shoulder", "r_elbow", "r_wrist", "r_spread", "r_curl",
          "l_shoulder", "l_elbow", "l_wrist", "l_spread", "l_curl",
          "r_hip", "r_knee", "l_hip", "l_knee")
REST = {"yaw": 0.0, "lean": 0.0, "head_tilt": 0.0, "r_shoulder": 0.25, "r_elbow": 0.1, "r_wrist": 0.0,
        "r_spread": 0.5, "r_curl": 0.3, "l_shoulder": 0.25, "l_elbow": 0.1, "l_wrist": 0.0, "l_spread": 0.5,
        "l_curl": 0.3, "r_hip": 0.08, "r_knee": 0.05, "l_hip": 0.08, "l_knee": 0.05}
LIMITS = {"lean": (-0.3, 0.3), "head_tilt": (-0.35, 0.35), "shoulder": (-0.7, 3.0), "elbow": (-2.5, 2.5),
          "wrist": (-0.8, 0.8), "spread": (0.0, 1.0), "curl": (0.0, 1.0), "hip": (-0.2, 0.9), "knee": (-0.1, 1.2)}
NOISE = {"lean": 0.05, "head_tilt": 0.08, "shoulder": 0.2, "elbow": 0.25, "wrist": 0.2, "spread": 0.2, "curl": 0.2,
         "hip": 0.04, "knee": 0.06}


@dataclass(frozen=True)
class Move:
    """A short pattern: key poses (angles they set; the rest pose elsewhere) taken in turn, one every
    `beats_per_key` beats, through a smooth curve (`flow`) or easing in and out of each (a hit)."""

    keys: tuple[dict[str, float], ...]
    beats_per_key: float
    flow: bool


def _both(**angles: float) -> dict[str, float]:
    """The same angle on both sides: shoulder=1 -> r_shoulder=1, l_shoulder=1."""
    return {f"{side}_{name}": value for name, value in angles.items() for side in "rl"}


MOVES = {
    "wave": Move(({"l_shoulder": 2.3, "l_elbow": 0.6, "l_wrist": 0.3, "l_spread": 1.0, "l_curl": 0.0,
                   "head_tilt": 0.12},
                  {"l_shoulder": 2.3, "l_elbow": -0.5, "l_wrist": -0.3, "l_spread": 1.0, "l_curl": 0.0,
                   "head_tilt": 0.12}), 0.5, True),
    "clap": Move((_both(shoulder=0.75, elbow=-2.0, wrist=-0.3, curl=0.0), _both(shoulder=1.0, elbow=-1.2, curl=0.0)),
                 0.5, False),
    "pump": Move(({"r_shoulder": 2.7, "r_elbow": 0.2, "l_shoulder": 0.5, "l_elbow": -2.1, "lean": 0.08,
                   **_both(curl=1.0)},
                  {"r_shoulder": 0.5, "r_elbow": -2.1, "l_shoulder": 2.7, "l_elbow": 0.2, "lean": -0.08,
                   **_both(curl=1.0)}), 1.0, False),
    "disco": Move(({"r_shoulder": 2.5, "r_elbow": 0.0, "r_curl": 0.8, "l_shoulder": 0.5, "l_elbow": -2.2,
                    "lean": -0.12, "r_hip": 0.2},
                   {"r_shoulder": -0.5, "r_elbow": 0.1, "r_curl": 0.8, "l_shoulder": 0.5, "l_elbow": -2.2,
                    "lean": 0.1, "l_hip": 0.2}), 1.0, False),
    "hands_up": Move(({"lean": 0.15, "head_tilt": 0.15, **_both(shoulder=2.8, elbow=0.3, spread=1.0)},
                      {"lean": -0.15, "head_tilt": -0.15, **_both(shoulder=2.8, elbow=0.3, spread=1.0)}), 1.0, True),
    "plie": Move((_both(hip=0.4, knee=0.75, shoulder=1.5, elbow=0.4),
                  _both(hip=0.2, knee=0.15, shoulder=1.1, elbow=0.2)), 1.0, True),
    "side_kick": Move(({"l_hip": 0.75, "l_knee": 0.1, "r_hip": 0.03, "r_shoulder": 1.4, "l_shoulder": 1.2,
                        "lean": -0.12},
                       {"l_hip": 0.08, "l_knee": 0.05, "r_hip": 0.08, "lean": 0.0, **_both(shoulder=0.5)}), 1.0, False),
    "cross_arms": Move(({"r_shoulder": -0.2, "r_elbow": -1.35, "l_shoulder": -0.2, "l_elbow": -1.45, "head_tilt": -0.1},
                        {"head_tilt": 0.1, **_both(shoulder=1.5, elbow=0.0, spread=1.0)}), 1.0, False),
    "robot": Move(({"r_shoulder": 1.57, "r_elbow": 1.57, "l_shoulder": 1.57, "l_elbow": -1.57, **_both(curl=0.2)},
                   {"r_shoulder": 1.57, "r_elbow": -1.57, "l_shoulder": 1.57, "l_elbow": 1.57, **_both(curl=0.2)}),
                  1.0, False),
    "sway": Move(({"lean": 0.18, "head_tilt": -0.1, "r_shoulder": 0.9, "l_shoulder": 0.3, "r_elbow": -0.6,
                   "l_elbow": 0.6, "r_hip": 0.18},
                  {"lean": -0.18, "head_tilt": 0.1, "r_shoulder": 0.3, "l_shoulder": 0.9, "r_elbow": 0.6,
                   "l_elbow": -0.6, "l_hip": 0.18}), 1.0, True),
    "point": Move(({"r_shoulder": 2.2, "r_elbow": 0.0}, {"r_shoulder": 1.2, "r_elbow": 0.0}, {"r_shoulder": 2.2},
                   {"r_shoulder": 0.3, "r_elbow": -1.2}), 0.5, False),
}
GROOVE = "groove"  # no move: the rest pose and the noise

# Hand layout per finger (thumb, index, middle, ring, pinky): base along the palm (share of its length), across it
# (share of its width, + = thumb side), direction at rest and per unit of spread (radians towards the thumb side),
# and length (share of finger_length per segment for the three segments).
FINGER_BASES = ((0.3, 0.5), (1.0, 0.38), (1.05, 0.12), (1.0, -0.14), (0.9, -0.4))
FINGER_ANGLES = ((0.55, 0.45), (0.08, 0.25), (0.0, 0.06), (-0.06, -0.12), (-0.12, -0.3))
FINGER_SEGMENTS = ((1.1, 0.9, 0.7), (0.95, 0.67, 0.52), (1.05, 0.74, 0.58), (1.0, 0.7, 0.55), (0.8, 0.56, 0.44))
CURL_BENDS = (1.1, 2.2, 3.0)  # cumulative bend of a finger's segments in a fist (radians into the palm)
THUMB_FOLD = 1.5  # a fist turns the thumb this far across the palm

Keypoints = tuple[np.ndarray, np.ndarray, np.ndarray]  # body (..., 18, 3), hands (..., 2, 21, 3), face (..., 68, 3)

FACING_MIN = 0.15  # a face point shows only where the head's surface faces the camera at least this much
EAR_FACING_MIN = -0.15  # ears stick out: one a little behind the head's outline still shows
MARGIN = 0.02  # of the frame height: every painted part stays this far inside the frame
FLOOR = 0.94  # of the frame height: where the soles touch the floor at the figure's own size
FADE = 0.35  # seconds of crossfade between moves
SOFTNESS = 8.0  # of the angle limits (1/radian)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, a smooth S in between (zero slope at both ends)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _wiggle(rng: np.random.Generator, t: np.ndarray, low: float, high: float) -> np.ndarray:
    """A smooth random curve in [-1, 1]: three sinusoids of frequencies in [low, high] Hz."""
    freqs, phases, weights = rng.uniform(low, high, 3), rng.uniform(0, 2 * math.pi, 3), rng.dirichlet((2.0,) * 3)
    return np.sum(weights[:, None] * np.sin(2 * math.pi * freqs[:, None] * t[None] + phases[:, None]), axis=0)


def _kind(name: str) -> str:
    """An angle's name without its side: r_elbow -> elbow."""
    return name[2:] if name[:2] in ("r_", "l_") else name


def _limit(name: str, value: np.ndarray) -> np.ndarray:
    """The angle kept within its range by a smooth clamp (identity well inside it)."""
    if name == "yaw":
        return value
    low, high = LIMITS[_kind(name)]
    return low + (np.logaddexp(0.0, SOFTNESS * (value - low)) - np.logaddexp(0.0, SOFTNESS * (value - high))) / SOFTNESS


def _mirrored(pose: dict[str, float]) -> dict[str, float]:
    """The same pose with left and right swapped."""
    swap = {"r_": "l_", "l_": "r_"}
    return {(swap[k[:2]] + k[2:] if k[:2] in swap else k): (-v if k in ("lean", "head_tilt") else v)
            for k, v in pose.items()}


def _rest(rng: np.random.Generator) -> dict[str, float]:
    """A dancer's relaxed pose, a little different each dance."""
    rest = dict(REST)
    for side in "rl":
        rest.update({f"{side}_shoulder": rng.uniform(0.12, 0.5), f"{side}_elbow": rng.uniform(-0.4, 0.3),
                     f"{side}_wrist": rng.uniform(-0.2, 0.2), f"{side}_spread": rng.uniform(0.2, 0.8),
                     f"{side}_curl": rng.uniform(0.1, 0.6), f"{side}_hip": rng.uniform(0.04, 0.14),
                     f"{side}_knee": rng.uniform(0.0, 0.12)})
    return rest


def _move_curves(rng: np.random.Generator, move: Move, rest: dict[str, float], t: np.ndarray, start: float,
                 beat: float, mirror: bool, amplitude: float) -> dict[str, np.ndarray]:
    """The angles a move sets, over times t: its keys looped from `start`, each repetition jittered."""
    keys = [_mirrored(k) if mirror else k for k in move.keys]
    names = sorted({name for key in keys for name in key})
    step = move.beats_per_key * beat
    position = (t - start) / step
    index = np.floor(position).astype(int)
    frac = position - index
    first, last = int(index.min()) - 1, int(index.max()) + 2
    jitter = rng.normal(0.0, 0.07, size=(last - first + 1, len(names)))
    values = np.array([[rest[n] + amplitude * (keys[k % len(keys)].get(n, rest[n]) - rest[n]) for n in names]
                       for k in range(first, last + 1)]) + jitter
    p0, p1, p2, p3 = (values[index - first + d] for d in (-1, 0, 1, 2))
    f = frac[:, None]
    if move.flow:  # Catmull-Rom through the keys
        curve = 0.5 * (2 * p1 + (p2 - p0) * f + (2 * p0 - 5 * p1 + 4 * p2 - p3) * f**2
                       + (3 * p1 - p0 - 3 * p2 + p3) * f**3)
    else:
        curve = p1 + (p2 - p1) * _smoothstep(f)
    return {name: curve[:, i] for i, name in enumerate(names)}


def _choreography(rng: np.random.Generator, t: np.ndarray, beat: float) -> dict[str, np.ndarray]:
    """Every angle but yaw: moves one after another (crossfaded) over the rest pose, plus smooth noise."""
    rest = _rest(rng)
    duration = float(t[-1])
    start = -rng.uniform(0.0, 2 * beat)
    angles = {name: np.zeros_like(t) for name in ANGLES if name != "yaw"}
    total = np.zeros_like(t)
    while start < duration:
        name = str(rng.choice([*MOVES, GROOVE]))
        if name == GROOVE:
            end, curves = start + rng.uniform(2.0, 4.0) * beat, {}
        else:
            move = MOVES[name]
            end = start + int(rng.integers(1, 4)) * len(move.keys) * move.beats_per_key * beat
            curves = _move_curves(rng, move, rest, t, start, beat, bool(rng.random() < 0.5), rng.uniform(0.7, 1.1))
        weight = _smoothstep((t - start) / FADE + 0.5) * (1.0 - _smoothstep((t - end) / FADE + 0.5))
        for angle in angles:
            angles[angle] += weight * curves.get(angle, rest[angle])
        total += weight
        start = end
    return {angle: value / total + NOISE[_kind(angle)] * _wiggle(rng, t, 0.25, 1.2) for angle, value in angles.items()}


def _yaw(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Turning: a sway about the start direction, plus half turns, spins and peeks to the side."""
    duration = float(t[-1])
    yaw = (math.pi if rng.random() < 0.12 else 0.0) + 0.22 * _wiggle(rng, t, 0.1, 0.5)
    for _ in range(rng.poisson(duration / 4 + 0.2)):
        kind = rng.choice(("half", "spin", "peek"), p=(0.35, 0.25, 0.4))
        start, sign = rng.uniform(-0.5, duration), rng.choice((-1.0, 1.0))
        if kind == "peek":
            length, hold = rng.uniform(0.5, 0.9), rng.uniform(0.2, 0.6)
            yaw = yaw + sign * rng.uniform(1.2, 1.7) * (_smoothstep((t - start) / length)
                                                        - _smoothstep((t - start - length - hold) / length))
        else:
            turn, length = (math.pi, rng.uniform(0.7, 1.3)) if kind == "half" else (2 * math.pi, rng.uniform(1.0, 1.6))
            yaw = yaw + sign * turn * _smoothstep((t - start) / length)
    return yaw


def _steps(rng: np.random.Generator, t: np.ndarray, beat: float, angles: dict[str, np.ndarray]) -> np.ndarray:
    """Side steps on the beat (figure units, + = image right), each lifting the leading leg; returns the offset."""
    offset, position = np.zeros_like(t), 0.0
    for when in np.arange(-rng.uniform(0.0, beat), float(t[-1]) + beat, beat):
        if rng.random() > 0.35:
            continue
        direction = -math.copysign(1.0, position) if abs(position) > 0.2 else float(rng.choice((-1.0, 1.0)))
        size = rng.uniform(0.08, 0.2)
        phase = np.clip((t - when) / beat, 0.0, 1.0)
        offset += direction * size * _smoothstep(phase)
        position += direction * size
        lead = "l" if direction * math.cos(float(np.interp(when, t, angles["yaw"]))) > 0 else "r"
        lift = 0.25 * np.sin(math.pi * phase) ** 2
        angles[f"{lead}_hip"] = angles[f"{lead}_hip"] + lift
        angles[f"{lead}_knee"] = angles[f"{lead}_knee"] + 0.5 * lift
    return offset


def _zoom(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Log scale over time: a slow drift, sometimes a walk towards or away from the camera."""
    zoom = 0.08 * _wiggle(rng, t, 0.08, 0.3)
    if rng.random() < 0.35:
        start, length = rng.uniform(-0.5, float(t[-1])), rng.uniform(0.8, 2.0)
        zoom = zoom + rng.choice((-1.0, 1.0)) * rng.uniform(0.1, 0.22) * _smoothstep((t - start) / length)
    return zoom


def _frontal(x: np.ndarray, y: np.ndarray, cos_yaw: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Offsets (x, y) in the body's frontal plane (x towards the subject's left) as image offsets (..., 2): turned by
    the yaw (x squeezed by its cosine), then rolled clockwise by `roll`. Per-frame values lead x and y's shape."""
    x, y = np.broadcast_arrays(x, y)
    extra = (1,) * (x.ndim - 1)
    c, r = cos_yaw.reshape(-1, *extra), roll.reshape(-1, *extra)
    sx = x * c
    return np.stack([sx * np.cos(r) - y * np.sin(r), sx * np.sin(r) + y * np.cos(r)], axis=-1)


def _hand(figure: Figure, sign: float, direction: np.ndarray, spread: np.ndarray,
          curl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 21 hand points relative to the wrist in the body's frontal plane, (x, y) each (F, 21)."""
    d = np.stack([sign * np.sin(direction), np.cos(direction)], axis=-1)
    n = sign * np.stack([d[:, 1], -d[:, 0]], axis=-1)  # towards the thumb
    points = [np.zeros_like(d)]
    for finger, ((along, across), (angle, per_spread), segments) in enumerate(
            zip(FINGER_BASES, FINGER_ANGLES, FINGER_SEGMENTS)):
        base = d * along * figure.palm_length + n * across * figure.palm_width
        turn = angle + per_spread * spread - (THUMB_FOLD * curl if finger == 0 else 0.0)
        towards = d * np.cos(turn)[:, None] + n * np.sin(turn)[:, None]
        points.append(base)
        for k, share in enumerate(segments):
            bend = 0.5 * CURL_BENDS[k] * curl if finger == 0 else CURL_BENDS[k] * curl
            points.append(points[-1] + towards * (share * figure.finger_length * np.cos(bend))[:, None])
    hand = np.stack(points, axis=1)
    return hand[..., 0], hand[..., 1]


def _head(template: np.ndarray, figure: Figure, centre: np.ndarray, yaw: np.ndarray,
          roll: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Head-sphere points in the image (F, N, 2) and how much each faces the camera (F, N, in [-1, 1])."""
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    x, y, z = template[:, 0], template[:, 1], template[:, 2]
    across = (x * c - z * s) * figure.head_half_width
    offsets = _frontal(across, np.broadcast_to(y * figure.head_half_height, across.shape), np.ones_like(yaw), roll)
    return centre[:, None] + offsets, x * s + z * c


def _pose(figure: Figure, a: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """Keypoints in figure units about the mid-hip (y down): body (F, 18, 2), hands (F, 2, 21, 2), face (F, 68, 2),
    and how the body's head points and the face points face the camera, (F, 18) and (F, 68)."""
    frames = len(a["yaw"])
    c, lean, flat = np.cos(a["yaw"]), a["lean"], np.zeros(frames)
    body, hands = np.zeros((frames, 18, 2)), np.zeros((frames, 2, 21, 2))
    facing = np.ones((frames, 18))
    body[:, 1] = _frontal(flat, flat - figure.torso_length, c, lean)
    for h, (sign, side, shoulder, elbow, wrist, hip, knee, ankle) in enumerate(SIDES):
        body[:, shoulder] = _frontal(flat + sign * figure.shoulder_half, flat - figure.torso_length, c, lean)
        body[:, hip] = _frontal(flat + sign * figure.hip_half, flat, c, lean)
        upper = a[f"{side}_shoulder"]
        fore = upper + a[f"{side}_elbow"]
        length = figure.upper_arm.length
        body[:, elbow] = body[:, shoulder] + _frontal(sign * np.sin(upper) * length, np.cos(upper) * length, c, lean)
        length = figure.forearm.length
        body[:, wrist] = body[:, elbow] + _frontal(sign * np.sin(fore) * length, np.cos(fore) * length, c, lean)
        x, y = _hand(figure, sign, fore + a[f"{side}_wrist"], a[f"{side}_spread"], a[f"{side}_curl"])
        hands[:, h] = body[:, wrist, None] + _frontal(x, y, c, lean)
        thigh = a[f"{side}_hip"]
        shin = thigh - a[f"{side}_knee"]
        length = figure.thigh.length
        body[:, knee] = body[:, hip] + _frontal(sign * np.sin(thigh) * length, np.cos(thigh) * length, c, flat)
        length = figure.shin.length
        body[:, ankle] = body[:, knee] + _frontal(sign * np.sin(shin) * length, np.cos(shin) * length, c, flat)
    roll = lean + a["head_tilt"]
    up = np.stack([np.sin(roll), -np.cos(roll)], axis=-1)
    centre = body[:, 1] + up * (figure.neck_length + figure.head_half_height)
    body[:, HEAD_POINTS], facing[:, HEAD_POINTS] = _head(HEAD_TEMPLATE, figure, centre, a["yaw"], roll)
    face, face_facing = _head(FACE_TEMPLATE, figure, centre, a["yaw"], roll)
    return body, hands, face, facing, face_facing


OWNS = np.array([[label in parts for label in range(len(PART_NAMES))] for parts in JOINT_PARTS])  # [joint, label]
FACING_LIMIT = np.full(18, -np.inf)
FACING_LIMIT[[0, 14, 15]], FACING_LIMIT[[16, 17]] = FACING_MIN, EAR_FACING_MIN
FOREARMS = (PART["r_forearm"], PART["l_forearm"])


def _visibility(figure: Figure, body: np.ndarray, hands: np.ndarray, face: np.ndarray, facing: np.ndarray,
                face_facing: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores (1 = shown, 0 = hidden) of body (F, 18), hands (F, 2, 21) and face (F, 68) points, from the labels of the
    figure drawn with these keypoints."""
    frames = len(body)
    body_score, hand_score, face_score = np.zeros((frames, 18)), np.zeros((frames, 2, 21)), np.zeros((frames, 68))
    for f in range(frames):
        on = labels_at(figure, body[f], hands[f], np.concatenate([body[f], hands[f].reshape(42, 2), face[f]]),
                       width, height)
        body_score[f] = OWNS[np.arange(18), on[:18]] & (facing[f] > FACING_LIMIT)
        for h, (part, forearm) in enumerate(zip(HAND_PARTS, FOREARMS)):
            hand = on[18 + 21 * h:39 + 21 * h]
            hand_score[f, h] = hand == part
            hand_score[f, h, 0] = hand[0] in (part, forearm)  # the wrist: hand or forearm
        face_score[f] = (on[60:] == PART["head"]) & (face_facing[f] > FACING_MIN)
    return body_score, hand_score, face_score


def _keypoints(figure: Figure, angles: dict[str, np.ndarray], steps: np.ndarray, zoom: np.ndarray, width: int,
               height: int, horizon: float) -> Keypoints:
    """Pixel keypoints with scores: the pose placed with its soles on a floor in perspective, stepped sideways, zoomed,
    then moved and, if need be, shrunk towards (frame centre, horizon) as a whole so that it stays inside the frame."""
    body, hands, face, facing, face_facing = _pose(figure, angles)
    base = figure.size * height / figure.standing_height
    scale = base * np.exp(zoom)
    floor = horizon + (FLOOR * height - horizon) * scale / base
    root = np.stack([np.zeros_like(scale), floor - scale * (body[:, [10, 13], 1].max(axis=1) + figure.sole)], axis=-1)

    def place(points: np.ndarray) -> np.ndarray:
        extra = (1,) * (points.ndim - 2)
        return root.reshape(-1, *extra, 2) + scale.reshape(-1, *extra, 1) * points

    body, hands, face = place(body), place(hands), place(face)
    bounds = np.array([figure_bounds(figure, b, h) for b, h in zip(body, hands)])
    margin = MARGIN * height
    low, high = margin - bounds[:, 0], width - margin - bounds[:, 2]  # where the root may go, per frame
    drift = base * (steps - (steps.max() + steps.min()) / 2)
    shift = np.full_like(drift, (low.max() + high.min()) / 2)
    for share in (1.0, 0.75, 0.5, 0.25):  # as much of the stepping as fits
        if (low - share * drift).max() <= (high - share * drift).min():
            shift = ((low - share * drift).max() + (high - share * drift).min()) / 2 + share * drift
            break
    bounds[:, [0, 2]] += shift[:, None]
    centre = np.array([width / 2, horizon])
    room = np.concatenate([(centre - margin) / np.maximum(centre - bounds[:, :2], 1e-9),
                           (np.array([width, height]) - margin - centre) / np.maximum(bounds[:, 2:] - centre, 1e-9)],
                          axis=1)
    shrink = min(1.0, float(room.min()))

    def fit(points: np.ndarray) -> np.ndarray:
        points = points + np.stack([shift, np.zeros_like(shift)], axis=-1).reshape(-1, *(1,) * (points.ndim - 2), 2)
        return (centre + shrink * (points - centre)).astype(np.float32).astype(np.float64)  # as stored

    body, hands, face = fit(body), fit(hands), fit(face)
    scores = _visibility(figure, body, hands, face, facing, face_facing, width, height)
    return tuple(np.concatenate([points, score[..., None]], axis=-1)
                 for points, score in zip((body, hands, face), scores))


def make_dance(seed: int, num_frames: int, fps: float, width: int, height: int, figure: Figure) -> Keypoints:
    """A seeded dance of `figure`: body (F, 18, 3), hands (F, 2, 21, 3) and face (F, 68, 3) keypoints in pixels of
    (width, height), score 1 where the drawn figure shows the point and 0 where it is hidden (positions kept)."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames) / fps
    beat = 60.0 / rng.uniform(85.0, 130.0)
    angles = _choreography(rng, t, beat)
    angles["yaw"] = _yaw(rng, t)
    steps = _steps(rng, t, beat, angles)
    zoom = _zoom(rng, t)
    horizon = rng.uniform(0.3, 0.5) * height
    angles = {name: _limit(name, value) for name, value in angles.items()}
    return _keypoints(figure, angles, steps, zoom, width, height, horizon)


def posed(figure: Figure, angles: dict[str, float], width: int, height: int) -> Keypoints:
    """One pose (angles not given: REST) standing at the figure's own size in the middle of the frame: body (18, 3),
    hands (2, 21, 3), face (68, 3) with scores as in make_dance."""
    curves = {name: np.array([float(angles.get(name, REST[name]))]) for name in ANGLES}
    body, hands, face = _keypoints(figure, curves, np.zeros(1), np.zeros(1), width, height, 0.4 * height)
    return body[0], hands[0], face[0]


def neutral_pose(figure: Figure, width: int, height: int, seed: int) -> Keypoints:
    """A seeded relaxed pose facing the camera (a reference photo's): body, hands and face keypoints as in `posed`."""
    rng = np.random.default_rng([seed, 3])
    angles = {"yaw": rng.uniform(-0.25, 0.25), "lean": rng.uniform(-0.05, 0.05), "head_tilt": rng.uniform(-0.1, 0.1)}
    for side in "rl":
        angles.update({f"{side}_shoulder": rng.uniform(0.15, 0.6), f"{side}_elbow": rng.uniform(-0.35, 0.15),
                       f"{side}_wrist": rng.uniform(-0.2, 0.2), f"{side}_spread": rng.uniform(0.3, 0.7),
                       f"{side}_curl": rng.uniform(0.1, 0.4), f"{side}_hip": rng.uniform(0.03, 0.15),
                       f"{side}_knee": rng.uniform(0.0, 0.1)})
    return posed(figure, angles, width, height)
