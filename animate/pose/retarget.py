"""Retargeting: give a driving dance the body proportions of the person in the photo and place it on them.

`retarget(..., align=True)`:
1. Ratios. Every bone of the OpenPose tree (`BONES`), both palms and the face get one length ratio
   photo / driving, measured once — the driving length from the first frame where the segment is measurable — and
   kept for the whole video, so nothing wobbles and the driving's own foreshortening is kept. A segment the photo
   lacks (occluded: score < 0.3) takes, in order: its mirror's ratio (left forearm ← right forearm), its proxy's
   ratio (hand ← forearm, face ← head), the population table `POPULATION` scaled by the photo's shoulder width, the
   global scale. The global scale is the median of the measured bone ratios (the aspect fit's scale when none was
   measured); a measured ratio more than `MAX_DEVIATION` times away from it is taken for foreshortening and skipped,
   and every ratio is clamped to that band.
2. Rebuild. Each frame is rebuilt down the tree from the neck: child = new parent + ratio × (driving child − driving
   parent), so bone directions are the driving frame's. Root motion is scaled by the global scale, so the dance
   travels in proportion to the photo's person (driving and photo pixels differ in size). A joint whose parent is
   missing in a frame hangs from its nearest present ancestor with the global scale. Hands are scaled about the
   body wrist by the hand ratio, the face about the nose by the face ratio, and move with them.
3. Align. One translation for all frames puts the first driving frame's root (neck, else the hips' midpoint) on
   the photo's; no further rescaling. So out_neck[t] = photo_neck + scale × (neck[t] − neck[0]).
`align=False` (`--no-align`) only maps the driving coordinates into the photo's frame by the aspect-preserving,
centred fit; bones are not retargeted. Missing points (score 0 or non-finite x, y) come out as (0, 0, 0); the
scores of the others are kept.
"""

from dataclasses import dataclass

import numpy as np

from ..errors import AnimateError
from .keypoints import BODY_POINTS, FACE_POINTS, HAND_POINTS, PoseSequence

CONFIDENT = 0.3  # a point below this score is not measured (nor drawn, formats/README.md §2)
NECK, NOSE, R_SHOULDER, L_SHOULDER, R_HIP, L_HIP = 1, 0, 2, 5, 8, 11
MAX_DEVIATION = 2.0  # a ratio beyond global scale × / ÷ this is foreshortening, not anatomy

# The OpenPose kinematic tree rooted at the neck: bone -> (parent joint, child joint). Parents come before their
# children; every joint but the neck is the child of exactly one bone, which names its parent:
# nose ← neck, eyes ← nose, ears ← eyes, shoulders ← neck, elbows ← shoulders, wrists ← elbows,
# hips ← neck, knees ← hips, ankles ← knees.
BONES = {
    "head": (1, 0),
    "r_eye": (0, 14), "l_eye": (0, 15),
    "r_ear": (14, 16), "l_ear": (15, 17),
    "r_shoulder": (1, 2), "r_upper_arm": (2, 3), "r_forearm": (3, 4),
    "l_shoulder": (1, 5), "l_upper_arm": (5, 6), "l_forearm": (6, 7),
    "r_torso": (1, 8), "r_thigh": (8, 9), "r_shin": (9, 10),
    "l_torso": (1, 11), "l_thigh": (11, 12), "l_shin": (12, 13),
}
# Segments measured besides the bones: palm = hand wrist → middle-finger base, face = outer eye corners (iBUG 36, 45).
HANDS = {"r_hand": 4, "l_hand": 7}  # hands[:, i] -> its body wrist
PROXY = {"r_hand": "r_forearm", "l_hand": "l_forearm", "face": "head"}

# Typical adult bone lengths in shoulder widths (distance between the shoulder keypoints), front view. From
# Drillis & Contini's segment lengths as fractions of stature H (upper arm 0.186 H, forearm 0.146 H, thigh 0.245 H,
# shin 0.246 H, shoulder 0.818 H and hip 0.530 H above the floor) with the keypoints at the joint centres: shoulder
# width 0.21 H, hip width 0.11 H, neck → nose 0.09 H, nose → eye 0.03 H, eye → ear 0.04 H.
POPULATION = {
    "head": 0.43, "r_eye": 0.14, "l_eye": 0.14, "r_ear": 0.19, "l_ear": 0.19,
    "r_shoulder": 0.50, "l_shoulder": 0.50, "r_upper_arm": 0.89, "l_upper_arm": 0.89,
    "r_forearm": 0.70, "l_forearm": 0.70, "r_torso": 1.40, "l_torso": 1.40,
    "r_thigh": 1.17, "l_thigh": 1.17, "r_shin": 1.17, "l_shin": 1.17,
}
TORSO_IN_SHOULDERS = 1.37  # neck → hips' midpoint, for a photo whose shoulders are hidden


def _confident(points: np.ndarray) -> np.ndarray:
    """Score >= CONFIDENT and finite x, y: the point can be measured."""
    return (points[..., 2] >= CONFIDENT) & np.isfinite(points[..., :2]).all(-1)


def _present(points: np.ndarray) -> np.ndarray:
    """Score > 0 and finite x, y: the point exists."""
    return (points[..., 2] > 0) & np.isfinite(points[..., :2]).all(-1)


def _distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a − b| of two (F, 3) point tracks per frame; NaN unless both are confident and apart."""
    ok = _confident(a) & _confident(b)
    length = np.linalg.norm(np.where(ok[:, None], a[:, :2] - b[:, :2], 0.0), axis=-1)
    return np.where(ok & (length > 0), length, np.nan)


def _segment_lengths(body: np.ndarray, hands: np.ndarray, face: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame length of every bone, both palms and the face (NaN where not measurable)."""
    ends = {name: (body[:, a], body[:, b]) for name, (a, b) in BONES.items()}
    ends |= {name: (hands[:, i, 0], hands[:, i, 9]) for i, name in enumerate(HANDS)}
    ends["face"] = (face[:, 36], face[:, 45])
    return {name: _distance(a, b) for name, (a, b) in ends.items()}


def body_proportions(body: np.ndarray) -> dict[str, float]:
    """Length in pixels of each bone of one (18, 3) body whose two joints are confidently present."""
    body = np.asarray(body, dtype=np.float64)[None]
    lengths = {name: _distance(body[:, a], body[:, b])[0] for name, (a, b) in BONES.items()}
    return {name: float(length) for name, length in lengths.items() if np.isfinite(length)}


def _first(values: np.ndarray) -> float:
    """The first finite value of a track, NaN if none."""
    finite = np.flatnonzero(np.isfinite(values))
    return float(values[finite[0]]) if finite.size else np.nan


def _mirror(name: str) -> str | None:
    """The same segment on the subject's other side, None for the head and face."""
    sides = {"r_": "l_", "l_": "r_"}
    return sides[name[:2]] + name[2:] if name[:2] in sides else None


def _shoulder_width(body: np.ndarray) -> float:
    """One (18, 3) body's shoulder width, else neck-to-hips / TORSO_IN_SHOULDERS; NaN if neither is visible."""
    body = body[None]
    width = _distance(body[:, R_SHOULDER], body[:, L_SHOULDER])[0]
    hips = (body[:, R_HIP] + body[:, L_HIP]) / 2
    hips[:, 2] = np.minimum(body[:, R_HIP, 2], body[:, L_HIP, 2])
    return float(width if np.isfinite(width) else _distance(body[:, NECK], hips)[0] / TORSO_IN_SHOULDERS)


def segment_ratios(driving: PoseSequence, photo_body: np.ndarray, photo_hands: np.ndarray, photo_face: np.ndarray,
                   default: float) -> tuple[dict[str, float], float]:
    """(photo / driving length ratio of every segment, global scale); see the module docstring for the fallbacks."""
    reference = {name: _first(track) for name, track in
                 _segment_lengths(driving.body, driving.hands, driving.face).items()}
    photo = {name: track[0] for name, track in _segment_lengths(photo_body[None], photo_hands[None],
                                                                 photo_face[None]).items()}
    measured = {name: photo[name] / reference[name] for name in reference
                if np.isfinite(photo[name]) and np.isfinite(reference[name])}
    bones = [measured[name] for name in BONES if name in measured]
    scale = float(np.median(bones)) if bones else default
    low, high = scale / MAX_DEVIATION, scale * MAX_DEVIATION
    measured = {name: ratio for name, ratio in measured.items() if low <= ratio <= high}
    unit = _shoulder_width(photo_body)
    ratios: dict[str, float] = {}
    for name in reference:  # bones first, so a proxy's ratio is ready before it is used
        if name in measured:
            ratio = measured[name]
        elif _mirror(name) in measured:
            ratio = measured[_mirror(name)]
        elif name in PROXY:
            ratio = ratios[PROXY[name]]
        elif np.isfinite(unit) and np.isfinite(reference[name]):
            ratio = POPULATION[name] * unit / reference[name]
        else:
            ratio = scale
        ratios[name] = float(np.clip(ratio, low, high))
    return ratios, scale


def _placed(points: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """`points` with new x, y, scores kept; missing points become (0, 0, 0)."""
    present = _present(points)[..., None]
    return np.where(present, np.concatenate([xy, points[..., 2:]], axis=-1), 0.0)


def _hung(points: np.ndarray, anchor_old: np.ndarray, anchor_new: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(F, N, 3) points scaled about a per-frame anchor by a per-frame factor and moved with it."""
    xy = anchor_new[:, None] + scale[:, None, None] * (points[..., :2] - anchor_old[:, None])
    return _placed(points, xy)


def _rebuild(driving: PoseSequence, ratios: dict[str, float], scale: float) -> tuple[np.ndarray, ...]:
    """(body, hands, face) rebuilt down the tree from the neck with the bone ratios, before alignment."""
    body = driving.body.astype(np.float64)
    present = _present(body)
    old = np.where(present[..., None], body[..., :2], 0.0)
    new = np.zeros_like(old)
    new[:, NECK] = scale * old[:, NECK]  # a missing neck leaves the origin as the anchor of its children
    # Per joint: driving and new position of its nearest present ancestor-or-self.
    anchor_old, anchor_new = old.copy(), new.copy()
    for name, (parent, child) in BONES.items():
        factor = np.where(present[:, parent], ratios[name], scale)
        new[:, child] = anchor_new[:, parent] + factor[:, None] * (old[:, child] - anchor_old[:, parent])
        keep = present[:, child, None]
        anchor_old[:, child] = np.where(keep, old[:, child], anchor_old[:, parent])
        anchor_new[:, child] = np.where(keep, new[:, child], anchor_new[:, parent])
    hands = np.stack([_hung(driving.hands[:, i].astype(np.float64), anchor_old[:, wrist], anchor_new[:, wrist],
                            np.where(present[:, wrist], ratios[name], scale))
                      for i, (name, wrist) in enumerate(HANDS.items())], axis=1)
    face = _hung(driving.face.astype(np.float64), anchor_old[:, NOSE], anchor_new[:, NOSE],
                 np.where(present[:, NOSE], ratios["face"], scale))
    return _placed(body, new), hands, face


def _roots(body: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame (F, 2) neck and hips' midpoint, NaN where not confidently present."""
    hips = np.where(_confident(body[:, [R_HIP, L_HIP]]).all(-1)[:, None], body[:, [R_HIP, L_HIP], :2].mean(1), np.nan)
    return {"neck": np.where(_confident(body[:, NECK])[:, None], body[:, NECK, :2], np.nan), "hips": hips}


def _alignment(driving_body: np.ndarray, photo_body: np.ndarray, new_body: np.ndarray) -> np.ndarray:
    """The offset that puts the first driving frame's root (neck, else hips' midpoint) on the photo's same root."""
    photo = {kind: xy[0] for kind, xy in _roots(photo_body[None]).items() if np.isfinite(xy[0, 0])}
    if not photo:
        raise AnimateError("the photo shows no neck or hips to align the dance to; use --no-align")
    frames = {kind: np.flatnonzero(np.isfinite(xy[:, 0])) for kind, xy in _roots(driving_body).items() if kind in photo}
    found = [(ids[0], order, kind) for order, (kind, ids) in enumerate(frames.items()) if ids.size]
    if not found:
        raise AnimateError("no driving frame shows the neck or hips the photo has; use --no-align")
    frame, _, kind = min(found)
    return photo[kind] - _roots(new_body[frame:frame + 1])[kind][0]


def _fit(source: tuple[int, int], target: tuple[int, int]) -> tuple[float, np.ndarray]:
    """(scale, shift) of the aspect-preserving fit of a source frame centred in a target frame."""
    scale = min(target[0] / source[0], target[1] / source[1])
    return scale, (np.asarray(target, np.float64) - scale * np.asarray(source, np.float64)) / 2


def _checked(points: np.ndarray | None, shape: tuple[int, ...], name: str) -> np.ndarray:
    """`points` as float64 of the given shape (all missing when None)."""
    points = np.zeros(shape) if points is None else np.asarray(points, dtype=np.float64)
    if points.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {points.shape}")
    return points


@dataclass(frozen=True)
class Placement:
    """The global part of a retargeting, shared by everything drawn in the driving video's pixels (the depth maps):
    x -> scale · x + offset into the photo's frame. The dance's root (the neck) moves exactly so; the limbs
    are rebuilt bone by bone on top of it."""

    scale: float
    offset: np.ndarray  # (2,) x, y


def retarget(driving: PoseSequence, photo_body: np.ndarray, photo_size: tuple[int, int],
             photo_hands: np.ndarray | None = None, photo_face: np.ndarray | None = None,
             align: bool = True) -> PoseSequence:
    """The driving dance in the photo's pixel frame, retargeted to the photo's person (align) or only fitted."""
    return retarget_placed(driving, photo_body, photo_size, photo_hands, photo_face, align)[0]


def retarget_placed(driving: PoseSequence, photo_body: np.ndarray, photo_size: tuple[int, int],
                    photo_hands: np.ndarray | None = None, photo_face: np.ndarray | None = None,
                    align: bool = True) -> tuple[PoseSequence, Placement]:
    """`retarget`, and the placement it gave the dance as a whole."""
    photo_body = _checked(photo_body, (BODY_POINTS, 3), "photo_body")
    photo_hands = _checked(photo_hands, (2, HAND_POINTS, 3), "photo_hands")
    photo_face = _checked(photo_face, (FACE_POINTS, 3), "photo_face")
    width, height = photo_size
    fit, shift = _fit((driving.width, driving.height), (width, height))
    if not align:
        parts = [_placed(p.astype(np.float64), fit * p[..., :2] + shift) for p in (driving.body, driving.hands,
                                                                                   driving.face)]
        return PoseSequence(*parts, width, height, driving.fps), Placement(fit, shift)
    ratios, scale = segment_ratios(driving, photo_body, photo_hands, photo_face, default=fit)
    body, hands, face = _rebuild(driving, ratios, scale)  # the neck at scale · driving neck
    offset = _alignment(driving.body, photo_body, body)
    parts = [_placed(p, p[..., :2] + offset) for p in (body, hands, face)]
    return PoseSequence(*parts, width, height, driving.fps), Placement(scale, offset)
