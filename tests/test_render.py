"""Pixel-exact checks of the DWPose drawing and the synthetic dancer."""

import colorsys

import cv2
import numpy as np
import pytest

from animate.pose.render import BODY_COLOURS, BODY_LIMBS, FACE_POINT_COLOUR, HAND_EDGES, HAND_POINT_COLOUR, draw_pose
from animate.pose.synthetic import draw_person, synthetic_dance, synthetic_hands

W, H = 512, 768  # canvas size for this target, so no resize happens


def _body(points: dict[int, tuple[float, float, float]]) -> np.ndarray:
    """An (18, 3) body with only the given keypoints present."""
    body = np.zeros((18, 3))
    for i, xyz in points.items():
        body[i] = xyz
    return body


def _dimmed(colour: tuple[int, int, int]) -> tuple[int, ...]:
    """A limb colour after the 0.6 dimming."""
    return tuple(int(v) for v in (np.array(colour, np.uint8) * 0.6).astype(np.uint8))


def _at(image: np.ndarray, x: float, y: float) -> tuple[int, ...]:
    """The RGB pixel at normalised (x, y) of a W×H image."""
    return tuple(int(v) for v in image[int(y * H), int(x * W)])


def test_limb_is_dimmed_and_joints_full_colour():
    body = _body({1: (0.5, 0.25, 1.0), 2: (0.3, 0.25, 0.9)})  # neck, right shoulder: limb 0
    image = draw_pose(body, None, None, W, H)
    assert BODY_LIMBS[0] == (1, 2)
    assert _at(image, 0.4, 0.25) == _dimmed(BODY_COLOURS[0]) == (153, 0, 0)
    assert _at(image, 0.5, 0.25) == BODY_COLOURS[1]
    assert _at(image, 0.3, 0.25) == BODY_COLOURS[2]
    assert _at(image, 0.4, 0.25 + 6 / H) == (0, 0, 0)  # the ellipse is 4 px thick on each side
    assert _at(image, 0.4, 0.25 + 4 / H) == _dimmed(BODY_COLOURS[0])


def test_diagonal_limb_follows_the_segment():
    body = _body({8: (0.45, 0.5, 1.0), 9: (0.35, 0.7, 1.0)})  # right hip -> right knee: limb 7
    image = draw_pose(body, None, None, W, H)
    colour = _dimmed(BODY_COLOURS[BODY_LIMBS.index((8, 9))])
    for t in (0.25, 0.5, 0.75):
        assert _at(image, 0.45 - 0.1 * t, 0.5 + 0.2 * t) == colour
    assert _at(image, 0.45, 0.7) == (0, 0, 0)


def test_low_score_keypoint_is_not_drawn():
    body = _body({2: (0.3, 0.25, 1.0), 3: (0.3, 0.45, 0.2)})  # right elbow scores 0.2
    image = draw_pose(body, None, None, W, H)
    assert _at(image, 0.3, 0.45) == (0, 0, 0)
    assert _at(image, 0.3, 0.35) == (0, 0, 0)  # nor the limb to it
    assert _at(image, 0.3, 0.25) == BODY_COLOURS[2]


def test_output_shape_and_dtype():
    body = synthetic_dance(1)[0]
    for width, height in ((384, 576), (512, 512), (1280, 720)):
        image = draw_pose(body, None, None, width, height)
        assert image.shape == (height, width, 3) and image.dtype == np.uint8


def test_drawing_is_relative_to_the_canvas_not_the_target():
    body = synthetic_dance(1, seed=3)[0]
    hands = synthetic_hands(body[None])[0]
    big = draw_pose(body, hands, None, 512, 768)
    small = draw_pose(body, hands, None, 256, 384)
    np.testing.assert_array_equal(small, cv2.resize(big, (256, 384), interpolation=cv2.INTER_AREA))
    assert not np.array_equal(small, draw_pose(body, hands, None, 256, 384, canvas_short_side=256))


def test_hand_edges_use_hsv_colours_and_points_are_blue():
    hands = np.zeros((2, 21, 3))
    hands[0, 0] = (0.3, 0.5, 1.0)  # wrist
    hands[0, 5] = (0.5, 0.5, 1.0)  # index base: edge 0-5
    hands[0, 6] = (0.005, 0.7, 1.0)  # too close to the border: missing, so edge 5-6 is not drawn
    hands[1, 0] = (0.6, 0.3, 1.0)
    hands[1, 1] = (0.6, 0.2, 0.1)  # low score: missing
    image = draw_pose(np.zeros((18, 3)), hands, None, W, H)
    k = HAND_EDGES.index((0, 5))
    expected = tuple(int(v) for v in np.round(np.array(colorsys.hsv_to_rgb(k / 20, 1.0, 1.0)) * 255))
    assert expected == (204, 255, 0)
    assert _at(image, 0.4, 0.5) == expected
    assert _at(image, 0.3, 0.5) == _at(image, 0.5, 0.5) == _at(image, 0.6, 0.3) == HAND_POINT_COLOUR
    assert _at(image, 0.25, 0.6) == (0, 0, 0)
    assert _at(image, 0.6, 0.25) == (0, 0, 0)
    assert _at(image, 0.6, 0.2) == (0, 0, 0)


def test_face_points_are_white():
    face = np.zeros((68, 3))
    face[30] = (0.5, 0.2, 1.0)
    face[31] = (0.4, 0.2, 0.0)
    image = draw_pose(np.zeros((18, 3)), None, face, W, H)
    assert _at(image, 0.5, 0.2) == FACE_POINT_COLOUR
    assert _at(image, 0.5, 0.2 + 3 / H) == FACE_POINT_COLOUR
    assert _at(image, 0.4, 0.2) == (0, 0, 0)
    assert image.sum() == image[int(0.2 * H) - 3 : int(0.2 * H) + 4, int(0.5 * W) - 3 : int(0.5 * W) + 4].sum()


def test_synthetic_dance_is_deterministic_and_plausible():
    a, b, c = synthetic_dance(40, seed=0), synthetic_dance(40, seed=0), synthetic_dance(40, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_array_equal(synthetic_dance(7, seed=0), a[:7])
    for dance in (a, c):
        assert dance.shape == (40, 18, 3)
        assert (dance[..., :2] >= 0.05 - 1e-9).all() and (dance[..., :2] <= 0.95 + 1e-9).all()
        assert (dance[..., 2] == 1).all()
        assert (dance[:, 2, 0] < dance[:, 5, 0]).all()  # right shoulder on the image left
        assert (dance[:, 8, 0] < dance[:, 11, 0]).all()
        assert (dance[:, 0, 1] < dance[:, 1, 1]).all() and (dance[:, 1, 1] < dance[:, 10, 1]).all()
        assert np.abs(np.diff(dance[..., :2], axis=0)).max() < 0.05  # smooth at 24 fps


@pytest.mark.parametrize("seed", [0, 1])
def test_synthetic_hands_sit_on_the_wrists(seed):
    body = synthetic_dance(8, seed=seed)
    hands = synthetic_hands(body)
    assert hands.shape == (8, 2, 21, 3)
    np.testing.assert_allclose(hands[:, 0, 0, :2], body[:, 4, :2])
    np.testing.assert_allclose(hands[:, 1, 0, :2], body[:, 7, :2])


def test_draw_person_is_a_seeded_rgb_image():
    body = synthetic_dance(1, seed=1)[0]
    image = draw_person(body, 384, 576, seed=1)
    assert image.shape == (576, 384, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, draw_person(body, 384, 576, seed=1))
    assert not np.array_equal(image, draw_person(body, 384, 576, seed=2))
