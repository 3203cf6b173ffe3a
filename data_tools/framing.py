"""Camera framings of the synthetic videos: full body, or a closer camera that follows the neck (half body, head and
shoulders) so that faces are big enough to see. A close framing renders the scene larger and crops it per frame."""

import numpy as np

from .figures import Figure

FRAMINGS = ("full", "half", "head", "mixed")  # mixed: each video one of the first three, by its dance seed
HEAD_SHARE = {"half": 0.25, "head": 0.4}  # the standing head's height as a share of the frame height
NECK_AT = {"half": 0.3, "head": 0.62}  # the camera keeps the neck at this share of the height, centred across
NECK = 1  # OpenPose's neck keypoint


def video_framing(framing: str, dance_seed: int) -> str:
    """The framing of one video: as asked, or for `mixed` one of full, half and head drawn from the dance seed."""
    if framing != "mixed":
        return framing
    return FRAMINGS[int(np.random.default_rng([dance_seed, 4]).integers(3))]


def zoom_of(figure: Figure, framing: str) -> float:
    """How much larger than the frame the scene is rendered so the figure's head fills HEAD_SHARE of the frame."""
    if framing == "full":
        return 1.0
    head = 2 * figure.head_half_height / figure.standing_height * figure.size  # share of the frame at zoom 1
    return max(1.0, HEAD_SHARE[framing] / head)


def render_size(width: int, height: int, zoom: float) -> tuple[int, int]:
    """The larger canvas of a zoom (even sides, for the video writer)."""
    return 2 * round(width * zoom / 2), 2 * round(height * zoom / 2)


def crop_origins(body: np.ndarray, framing: str, size: tuple[int, int], canvas: tuple[int, int]) -> np.ndarray:
    """Per frame, the crop's top-left corner (x, y) on the canvas: the neck centred across and at NECK_AT down,
    kept inside the canvas."""
    (width, height), (big_width, big_height) = size, canvas
    x = np.clip(np.round(body[:, NECK, 0] - width / 2), 0, big_width - width)
    y = np.clip(np.round(body[:, NECK, 1] - NECK_AT[framing] * height), 0, big_height - height)
    return np.stack([x, y], axis=1).astype(np.int64)


def crop_points(points: np.ndarray, origins: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Keypoints (F, ..., 3) moved into each frame's crop; those that fall outside it get score 0 (positions kept), as
    an extractor misses what the camera does not see."""
    shift = origins.reshape(len(origins), *([1] * (points.ndim - 2)), 2)
    moved = points.copy()
    moved[..., :2] -= shift
    inside = ((moved[..., 0] >= 0) & (moved[..., 0] < size[0]) & (moved[..., 1] >= 0) & (moved[..., 1] < size[1]))
    moved[..., 2] *= inside
    return moved
