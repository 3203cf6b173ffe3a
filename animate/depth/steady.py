"""Depth steady over time. Depth Anything's maps are disparity up to an unknown scale and shift per frame; each frame's
scale and shift are fitted to the previous (already steadied) frame by robust least squares over the pixels outside
the person, where the scene holds still, so the clip can then be mapped to 0–255 once."""

import cv2
import numpy as np

from ..pose.keypoints import PoseSequence

CONFIDENT = 0.3  # keypoints below this score do not outline the person
HULL_MARGIN = 0.1  # the person's hull grows by this share of its larger side (loose clothes, hair, blur)
MIN_MARGIN = 2.0  # px
MIN_BACKGROUND = 0.05  # a share of the frame: with less scene outside the person, every pixel takes part in the fit
MAX_SAMPLES = 65536  # pixels per fit (a regular subsample of the larger sets)
HUBER = 1.345  # Huber's threshold in robust standard deviations (95% efficiency on Gaussian residuals)
ITERATIONS = 30


def person_masks(seq: PoseSequence, width: int, height: int, scale: float = 1.0) -> np.ndarray:
    """[F, H, W] bool: the convex hull of each frame's confident keypoints (seq's pixels times `scale`), grown by a
    margin."""
    masks = np.zeros((len(seq), height, width), np.uint8)
    points = np.concatenate([seq.body, seq.hands.reshape(len(seq), -1, 3), seq.face], axis=1)
    for frame, mask in zip(points, masks):
        xy = scale * frame[(frame[:, 2] >= CONFIDENT) & np.isfinite(frame[:, :2]).all(-1), :2]
        if len(xy) == 0:
            continue
        span = xy.max(0) - xy.min(0)
        margin = max(MIN_MARGIN, HULL_MARGIN * float(span.max()))
        hull = cv2.convexHull(np.round((xy - 0.5) * 16).astype(np.int32))  # pixel centres at j + 0.5; 4 fraction bits
        cv2.fillConvexPoly(mask, hull, 1, lineType=cv2.LINE_8, shift=4)
        size = 2 * int(np.ceil(margin)) + 1
        cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)), dst=mask)
    return masks.astype(bool)


def fit_scale_shift(source: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(a, b) minimising the Huber loss of a · source + b − target (iteratively reweighted least squares, robust
    scale from the median absolute deviation). A flat source, or a fit that would turn near and far around (a ≤ 0:
    a cut, not the same scene), gets a = 1 and the median shift."""
    x, y = source.astype(np.float64).ravel(), target.astype(np.float64).ravel()
    weights = np.ones_like(x)
    a, b = 1.0, float(np.median(y - x))
    for _ in range(ITERATIONS):
        total = weights.sum()
        mean_x, mean_y = (weights * x).sum() / total, (weights * y).sum() / total
        spread = (weights * (x - mean_x) ** 2).sum()
        if spread <= 1e-12 * max(total * mean_x**2, 1e-30):
            return 1.0, float(np.median(y - x))
        new_a = float((weights * (x - mean_x) * (y - mean_y)).sum() / spread)
        new_b = float(mean_y - new_a * mean_x)
        converged = abs(new_a - a) <= 1e-12 * abs(new_a) and abs(new_b - b) <= 1e-12 * max(abs(new_b), 1e-30)
        a, b = new_a, new_b
        residual = np.abs(a * x + b - y)
        sigma = 1.4826 * float(np.median(residual))
        if sigma == 0.0 or converged:
            break
        weights = np.minimum(1.0, HUBER * sigma / np.maximum(residual, 1e-300))
    if a <= 0:
        return 1.0, float(np.median(y - x))
    return a, b


def _samples(where: np.ndarray) -> np.ndarray:
    """Flat indices of the True pixels, thinned regularly to at most MAX_SAMPLES."""
    index = np.flatnonzero(where)
    return index[:: max(1, -(-len(index) // MAX_SAMPLES))]


def steady(nearness: np.ndarray, people: np.ndarray | None = None) -> np.ndarray:
    """Frames [F, H, W] with each one's scale and shift fitted to the previous steadied frame over the pixels outside
    the person in both (`people`: [F, H, W] bool; None: no person, every pixel)."""
    out = np.empty(nearness.shape, np.float32)
    out[0] = nearness[0]
    for k in range(1, len(nearness)):
        scene = np.ones(nearness.shape[1:], bool) if people is None else ~(people[k] | people[k - 1])
        if scene.mean() < MIN_BACKGROUND:
            scene = np.ones_like(scene)
        pick = _samples(scene)
        a, b = fit_scale_shift(nearness[k].ravel()[pick], out[k - 1].ravel()[pick])
        out[k] = a * nearness[k].astype(np.float64) + b
    return out
