"""Where the face is, from the keypoints we already extract: a square around the eye and mouth points of the iBUG-68
face (the body's eyes and nose when the face points are missing), with a margin that takes in the brow and chin.

A short-range face detector misses the small faces of full-body photos; the holistic model's face mesh does not.
"""

from dataclasses import dataclass

import numpy as np
from PIL import Image

EYES, MOUTH = range(36, 48), range(48, 68)  # iBUG-68
BODY_FACE = (0, 14, 15)  # OpenPose: nose, right eye, left eye
MARGIN = 2.0  # the square's side over the eye-and-mouth box's longer side
BODY_MARGIN = 3.2  # over the eyes-and-nose box's (it misses the mouth: a smaller box)
MIN_SIDE = 16  # px: a smaller face has too few pixels to say who it is (CLIP sees it at 224)
MIN_SCORE = 0.3


@dataclass(frozen=True)
class FaceBox:
    """A square in image pixels (it may reach past the image's edges)."""

    left: float
    top: float
    side: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(left, top, right, bottom)."""
        return self.left, self.top, self.left + self.side, self.top + self.side


def _square(points: np.ndarray, margin: float) -> FaceBox:
    """The square of side margin × the points' box's longer side, centred on that box."""
    low, high = points.min(axis=0), points.max(axis=0)
    centre, side = (low + high) / 2, float((high - low).max()) * margin
    return FaceBox(float(centre[0] - side / 2), float(centre[1] - side / 2), side)


def face_box(body: np.ndarray, face: np.ndarray, min_side: float = MIN_SIDE) -> FaceBox | None:
    """The face's square from one frame's body (18, 3) and face (68, 3) keypoints in pixels, or None when the face
    is not seen (both eyes and the mouth needed, or the body's eyes and nose) or is smaller than `min_side` px."""
    seen = face[:, 2] >= MIN_SCORE
    right_eye, left_eye = [i for i in EYES[:6] if seen[i]], [i for i in EYES[6:] if seen[i]]
    mouth = [i for i in MOUTH if seen[i]]
    if len(right_eye) >= 3 and len(left_eye) >= 3 and mouth:
        eyes = right_eye + left_eye
        box = _square(face[[*eyes, *mouth], :2], MARGIN)
    elif (body[list(BODY_FACE), 2] >= MIN_SCORE).all():
        box = _square(body[list(BODY_FACE), :2], BODY_MARGIN)
    else:
        return None
    return box if box.side >= min_side else None


def crop_face(image: Image.Image, box: FaceBox) -> Image.Image:
    """The face's square of the image (past its edges: black), at its own pixel size."""
    left, top, right, bottom = (round(v) for v in box.box)
    return image.convert("RGB").crop((left, top, right, bottom))


def face_crop(image: Image.Image, body: np.ndarray, face: np.ndarray) -> Image.Image | None:
    """The face crop of an image from its body (18, 3) and face (68, 3) keypoints, or None where no face is seen."""
    box = face_box(body, face)
    return None if box is None else crop_face(image, box)
