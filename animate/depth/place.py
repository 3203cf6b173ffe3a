"""Depth placed like the pose: the retargeting's global placement (scale and offset of the first-frame alignment)
applied to whole depth frames, then the same canvas fitting. The body in the depth is not retargeted bone by bone."""

import cv2
import numpy as np

from ..pose.retarget import Placement


def place_depth(nearness: np.ndarray, placement: Placement, photo_size: tuple[int, int],
                out_size: tuple[int, int]) -> np.ndarray:
    """Frames [F, H, W] of the driving video moved into the photo's frame by `placement` and drawn at
    out_size (width, height) as the pose is; what the driving frame does not cover is the clip's farthest value.

    Coordinates are continuous with pixel centres at j + 0.5, as keypoints are."""
    (photo_width, photo_height), (width, height) = photo_size, out_size
    to_out = np.array([width / photo_width, height / photo_height])
    scale = placement.scale * to_out
    offset = placement.offset * to_out + 0.5 * (scale - 1)  # centres: j_out + 0.5 = scale (j + 0.5) + offset
    matrix = np.array([[scale[0], 0.0, offset[0]], [0.0, scale[1], offset[1]]])
    far = float(nearness.min())
    return np.stack([cv2.warpAffine(frame.astype(np.float32), matrix, (width, height), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=far) for frame in nearness])
