"""Pixel-exact checks of the DWPose drawing and the synthetic dancer."""

import colorsys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from animate.pose.render import (
    BODY_COLOURS, BODY_LIMBS, FACE_POINT_COLOUR, HAND_EDGES, HAND_POINT_COLOUR, canvas_size, draw_pose,
)
from animate.pose.synthetic import draw_person, synthetic_dance, synthetic_hands

W, H = 512, 768  # canvas size for this target, so no resize happens
GOLDEN = Path(__file__).parent / "data" / "golden_pose"
MUSE = 1024  # a musepose target whose canvas is the target itself


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
    """The RGB pixel at normalised (x, y) of an image."""
    h, w = image.shape[:2]
    return tuple(int(v) for v in image[int(y * h), int(x * w)])


@pytest.mark.parametrize("case", sorted(p.stem for p in GOLDEN.glob("*.npz")))
def test_matches_the_reference_drawing_exactly(case):
    inputs = np.load(GOLDEN / f"{case}.npz")
    expected = np.asarray(Image.open(GOLDEN / f"{case}.png").convert("RGB"))
    image = draw_pose(inputs["body"], inputs["hands"], inputs["face"], int(inputs["width"]), int(inputs["height"]),
                      style=str(inputs["style"]))
    assert np.array_equal(image, expected), f"{np.any(image != expected, axis=-1).sum()} pixels differ"


def test_there_are_golden_images_for_both_styles():
    assert {p.stem.split("_")[0] for p in GOLDEN.glob("*.npz")} == {"moore", "musepose"}


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


def test_score_threshold_is_strict_for_the_body_and_inclusive_for_hands():
    body = _body({2: (0.3, 0.25, 0.3)})
    hands = np.zeros((2, 21, 3))
    hands[0, 0] = (0.6, 0.5, 0.3)
    image = draw_pose(body, hands, None, W, H)
    assert _at(image, 0.3, 0.25) == (0, 0, 0)
    assert _at(image, 0.6, 0.5) == HAND_POINT_COLOUR
    body32 = body.astype(np.float32)  # float32(0.3) is above 0.3: DWPose draws it
    assert _at(draw_pose(body32, None, None, W, H), 0.3, 0.25) == BODY_COLOURS[2]


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
    np.testing.assert_array_equal(small, cv2.resize(big, (256, 384), interpolation=cv2.INTER_LINEAR))
    assert not np.array_equal(small, draw_pose(body, hands, None, 256, 384, canvas_short_side=256))


def test_hand_edges_use_hsv_colours_and_points_are_blue():
    hands = np.zeros((2, 21, 3))
    hands[0, 0] = (0.3, 0.5, 1.0)  # wrist
    hands[0, 5] = (0.5, 0.5, 1.0)  # index base: edge 0-5
    hands[0, 6] = (0.001, 0.7, 1.0)  # truncates to pixel 0: missing, so edge 5-6 is not drawn
    hands[0, 7] = (0.005, 0.9, 1.0)  # pixel 2: drawn (DWPose's 0.01 applies to pixels, not normalised coordinates)
    hands[1, 0] = (0.6, 0.3, 1.0)
    hands[1, 1] = (0.6, 0.2, 0.1)  # low score: missing
    image = draw_pose(np.zeros((18, 3)), hands, None, W, H)
    k = HAND_EDGES.index((0, 5))
    expected = tuple(int(v) for v in np.round(np.array(colorsys.hsv_to_rgb(k / 20, 1.0, 1.0)) * 255))
    assert expected == (204, 255, 0)
    assert _at(image, 0.4, 0.5) == expected
    assert _at(image, 0.3, 0.5) == _at(image, 0.5, 0.5) == _at(image, 0.6, 0.3) == HAND_POINT_COLOUR
    assert _at(image, 0.25, 0.6) == (0, 0, 0)
    assert _at(image, 0.005, 0.9) == HAND_POINT_COLOUR
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


def test_musepose_canvas_is_1024_on_the_short_side_truncated_to_even():
    assert canvas_size(768, 1024, 1024, "musepose") == (1024, 1364)
    assert canvas_size(768, 1024, 1024) == (1024, 1344)
    assert canvas_size(768, 768, 1024, "musepose") == (1024, 1024)


def _rows_lit(image: np.ndarray, x: float) -> int:
    """How many pixels of the column at normalised x are not black."""
    return int(image[:, int(x * image.shape[1])].any(axis=-1).sum())


def test_musepose_limb_width_grows_with_length():
    def thickness(length: float, style: str) -> int:
        body = _body({1: (0.5 - length / 2 / MUSE, 0.5, 1.0), 2: (0.5 + length / 2 / MUSE, 0.5, 1.0)})
        return _rows_lit(draw_pose(body, None, None, MUSE, MUSE, canvas_short_side=MUSE, style=style), 0.5)

    assert [thickness(n, "musepose") for n in (8, 30, 100, 400)] == [5, 9, 13, 17]  # half-axes 2, 4, 6, 8
    assert [thickness(n, "moore") for n in (8, 30, 100, 400)] == [9, 9, 9, 9]


def test_musepose_hand_lines_widen_with_length_and_points_shrink():
    def hand_image(length: float, style: str) -> np.ndarray:
        hands = np.zeros((2, 21, 3))
        hands[0, 0] = (0.5 - length / MUSE, 0.5, 1.0)
        hands[0, 5] = (0.5, 0.5, 1.0)
        hands[0, 12] = (0.7, 0.5, 1.0)  # a lone point
        return draw_pose(np.zeros((18, 3)), hands, None, MUSE, MUSE, canvas_short_side=MUSE, style=style)

    def line(thickness: int) -> int:
        canvas = np.zeros((MUSE, MUSE, 3), np.uint8)
        cv2.line(canvas, (MUSE // 2 - 204, MUSE // 2), (MUSE // 2, MUSE // 2), (255, 255, 255), thickness=thickness)
        return _rows_lit(canvas, 0.4)

    assert _rows_lit(hand_image(204, "musepose"), 0.4) == line(7) > _rows_lit(hand_image(30, "musepose"), 0.45)
    assert _rows_lit(hand_image(204, "moore"), 0.4) == line(2)
    assert _rows_lit(hand_image(204, "musepose"), 0.7) == 7  # point radius 3
    assert _rows_lit(hand_image(204, "moore"), 0.7) == 9  # point radius 4


def test_musepose_swaps_red_and_blue():
    body = _body({1: (0.5, 0.25, 1.0), 2: (0.3, 0.25, 1.0)})
    hands = np.zeros((2, 21, 3))
    hands[0, 0] = (0.6, 0.6, 1.0)
    image = draw_pose(body, hands, None, MUSE, MUSE, style="musepose")
    assert _at(image, 0.4, 0.25) == _dimmed(BODY_COLOURS[0])[::-1] == (0, 0, 153)
    assert _at(image, 0.5, 0.25) == BODY_COLOURS[1][::-1] == (0, 85, 255)
    assert _at(image, 0.6, 0.6) == HAND_POINT_COLOUR[::-1] == (255, 0, 0)


def test_musepose_draws_no_face():
    body = synthetic_dance(1, seed=2)[0]
    face = np.zeros((68, 3))
    face[:, :2], face[:, 2] = body[0, :2], 1.0
    face[:, 0] += np.linspace(-0.03, 0.03, 68)
    assert not np.array_equal(draw_pose(body, None, face, 768, 768), draw_pose(body, None, None, 768, 768))
    assert np.array_equal(draw_pose(body, None, face, 768, 768, style="musepose"),
                          draw_pose(body, None, None, 768, 768, style="musepose"))


def test_unknown_style_is_refused():
    with pytest.raises(ValueError, match="unknown pose style"):
        draw_pose(np.zeros((18, 3)), None, None, W, H, style="openpose")


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
