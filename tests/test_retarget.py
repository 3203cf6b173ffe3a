"""Retargeting on constructed keypoints: bone ratios, directions, alignment, fallbacks, hands, face, missing points."""

import numpy as np
import pytest

from animate.errors import AnimateError
from animate.pose.keypoints import PoseSequence
from animate.pose.retarget import BONES, POPULATION, body_proportions, retarget

# Upright bone directions in degrees, image axes (y down; the subject's right is the image's left).
UPRIGHT = {"head": -90, "r_eye": -135, "l_eye": -45, "r_ear": 170, "l_ear": 10, "r_shoulder": 180, "l_shoulder": 0,
           "r_upper_arm": 100, "l_upper_arm": 80, "r_forearm": 110, "l_forearm": 70, "r_torso": 100, "l_torso": 80,
           "r_thigh": 95, "l_thigh": 85, "r_shin": 90, "l_shin": 90}
DRIVING_SIZE, PHOTO_SIZE = (1920, 1080), (512, 768)
FRAMES = 12
T = np.arange(FRAMES)


def _figure(neck: np.ndarray, lengths: dict[str, np.ndarray], angles: dict[str, np.ndarray]) -> np.ndarray:
    """(F, 18, 3) bodies, all scores 1, built down the tree from a neck (F, 2) with per-frame lengths and angles."""
    body = np.zeros((len(neck), 18, 3))
    body[:, 1, :2] = neck
    body[..., 2] = 1.0
    for name, (parent, child) in BONES.items():
        angle = np.radians(angles[name])
        direction = np.stack([np.cos(angle), np.sin(angle)], axis=-1)
        body[:, child, :2] = body[:, parent, :2] + direction * lengths[name][:, None]
    return body


def _factors(seed: int, low: float, high: float) -> dict[str, float]:
    """A seeded per-bone factor, so the proportions differ from the table and between people."""
    rng = np.random.default_rng(seed)
    return {name: float(rng.uniform(low, high)) for name in BONES}


def _driving_body(varying: bool = False) -> np.ndarray:
    """A dancer 180 px per shoulder width turning every bone and moving; `varying` also changes bone lengths."""
    factors = _factors(1, 0.9, 1.1)
    lengths, angles = {}, {}
    for k, name in enumerate(BONES):
        change = 0.8 + 0.2 * np.cos(0.5 * T + k) if varying else np.ones(FRAMES)
        lengths[name] = POPULATION[name] * 180 * factors[name] * change
        angles[name] = UPRIGHT[name] + 25 * np.sin(0.5 * T + k)
    neck = np.stack([900 + 60 * np.sin(0.4 * T), 300 + 20 * np.cos(0.7 * T)], axis=-1)
    return _figure(neck, lengths, angles)


def _photo_body() -> np.ndarray:
    """The photo's upright person, 90 px per shoulder width, with proportions of their own."""
    factors = _factors(2, 0.85, 1.15)
    lengths = {name: np.array([POPULATION[name] * 90 * factors[name]]) for name in BONES}
    return _figure(np.array([[256.0, 220.0]]), lengths, {name: np.array([a]) for name, a in UPRIGHT.items()})[0]


def _sequence(body: np.ndarray, hands: np.ndarray | None = None, face: np.ndarray | None = None) -> PoseSequence:
    """A driving PoseSequence of the given parts (missing parts all score 0)."""
    frames = len(body)
    hands = np.zeros((frames, 2, 21, 3)) if hands is None else hands
    face = np.zeros((frames, 68, 3)) if face is None else face
    return PoseSequence(body, hands, face, *DRIVING_SIZE, 24.0)


def _lengths(body: np.ndarray, name: str) -> np.ndarray:
    """Per-frame length of one bone of (F, 18, 3) bodies."""
    parent, child = BONES[name]
    return np.linalg.norm(body[:, child, :2] - body[:, parent, :2], axis=-1)


def _ratio(photo: np.ndarray, driving: np.ndarray, name: str) -> float:
    """Photo / driving length of a bone (the driving's first frame)."""
    return float(_lengths(photo[None], name)[0] / _lengths(driving, name)[0])


def _scatter(centres: np.ndarray, count: int, spread: float, seed: int) -> np.ndarray:
    """(F, count, 3) points around per-frame centres (F, 2) with a fixed seeded shape, score 0.9."""
    shape = np.random.default_rng(seed).uniform(-spread, spread, size=(count, 2))
    points = np.full((len(centres), count, 3), 0.9)
    points[..., :2] = centres[:, None] + shape
    return points


def test_output_bones_have_the_photo_lengths_in_every_frame():
    photo = _photo_body()
    out = retarget(_sequence(_driving_body()), photo, PHOTO_SIZE)
    want = body_proportions(photo)
    assert set(want) == set(BONES)
    assert (out.width, out.height) == PHOTO_SIZE and out.fps == 24.0 and len(out) == FRAMES
    for frame in out.body:
        got = body_proportions(frame)
        assert set(got) == set(BONES)
        for name in BONES:
            assert got[name] == pytest.approx(want[name], rel=1e-4), name


def test_bone_directions_are_the_driving_frames():
    driving = _sequence(_driving_body())
    out = retarget(driving, _photo_body(), PHOTO_SIZE)
    for parent, child in BONES.values():
        old = driving.body[:, child, :2] - driving.body[:, parent, :2]
        new = out.body[:, child, :2] - out.body[:, parent, :2]
        old /= np.linalg.norm(old, axis=-1, keepdims=True)
        new /= np.linalg.norm(new, axis=-1, keepdims=True)
        np.testing.assert_allclose(new, old, atol=1e-4)


def test_first_neck_lands_on_the_photo_and_root_motion_scales_with_the_body():
    photo, body = _photo_body(), _driving_body()
    out = retarget(_sequence(body), photo, PHOTO_SIZE)
    np.testing.assert_allclose(out.body[0, 1, :2], photo[1, :2], atol=1e-3)
    scale = np.median([_ratio(photo, body, name) for name in BONES])  # the global scale: median bone ratio
    # One offset for all frames: out_neck[t] = photo_neck + scale × (neck[t] − neck[0]).
    np.testing.assert_allclose(out.body[:, 1, :2] - out.body[:1, 1, :2], scale * (body[:, 1, :2] - body[:1, 1, :2]),
                               atol=1e-3)


def test_ratios_are_fixed_so_the_driving_foreshortening_is_kept():
    photo, body = _photo_body(), _driving_body(varying=True)
    out = retarget(_sequence(body), photo, PHOTO_SIZE)
    for name in BONES:
        expected = _lengths(photo[None], name) * _lengths(body, name) / _lengths(body[:1], name)
        np.testing.assert_allclose(_lengths(out.body, name), expected, rtol=1e-4, err_msg=name)


def test_occluded_left_arm_takes_the_right_arms_ratio():
    photo, body = _photo_body(), _driving_body()
    photo[[6, 7], 2] = 0.2  # left elbow and wrist below the confidence threshold
    out = retarget(_sequence(body), photo, PHOTO_SIZE)
    for side in ("upper_arm", "forearm"):
        got = _lengths(out.body, f"l_{side}") / _lengths(body, f"l_{side}")
        np.testing.assert_allclose(got, _ratio(photo, body, f"r_{side}"), rtol=1e-4)


def test_both_arms_occluded_take_the_population_ratio():
    photo, body = _photo_body(), _driving_body()
    photo[[3, 4, 6, 7], 2] = 0.0
    out = retarget(_sequence(body), photo, PHOTO_SIZE)
    shoulder_width = np.linalg.norm(photo[2, :2] - photo[5, :2])
    for name in ("r_upper_arm", "r_forearm", "l_upper_arm", "l_forearm"):
        np.testing.assert_allclose(_lengths(out.body, name), POPULATION[name] * shoulder_width, rtol=1e-4)


def test_foreshortened_photo_bone_falls_back_to_its_mirror():
    photo, body = _photo_body(), _driving_body()
    photo[4, :2] = photo[3, :2] + 0.1 * (photo[4, :2] - photo[3, :2])  # right forearm pointing at the camera
    out = retarget(_sequence(body), photo, PHOTO_SIZE)
    got = _lengths(out.body, "r_forearm") / _lengths(body, "r_forearm")
    np.testing.assert_allclose(got, _ratio(photo, body, "l_forearm"), rtol=1e-4)


def test_leg_missing_at_first_takes_its_ratio_from_the_first_frame_it_appears():
    photo, body = _photo_body(), _driving_body(varying=True)
    body[:2, [12, 13]] = 0.0  # no left knee or ankle in frames 0 and 1
    out = retarget(_sequence(body), photo, PHOTO_SIZE)
    assert (out.body[:2, [12, 13]] == 0).all()
    for name in ("l_thigh", "l_shin"):
        expected = _lengths(photo[None], name) * _lengths(body[2:], name) / _lengths(body[2:3], name)
        np.testing.assert_allclose(_lengths(out.body[2:], name), expected, rtol=1e-4)


def test_hands_follow_the_wrists_scaled_by_the_forearm_ratio():
    photo, body = _photo_body(), _driving_body()
    hands = np.stack([_scatter(body[:, 4, :2], 21, 30, 3), _scatter(body[:, 7, :2], 21, 30, 4)], axis=1)
    driving = _sequence(body, hands)
    out = retarget(driving, photo, PHOTO_SIZE)
    for side, (wrist, forearm) in enumerate(((4, "r_forearm"), (7, "l_forearm"))):
        expected = _ratio(photo, body, forearm) * (driving.hands[:, side, :, :2] - driving.body[:, wrist, None, :2])
        np.testing.assert_allclose(out.hands[:, side, :, :2] - out.body[:, wrist, None, :2], expected, atol=1e-3)
        np.testing.assert_array_equal(out.hands[:, side, :, 2], driving.hands[:, side, :, 2])


def test_photo_hands_set_the_palm_size():
    photo, body = _photo_body(), _driving_body()
    hands = np.stack([_scatter(body[:, 4, :2], 21, 30, 3), _scatter(body[:, 7, :2], 21, 30, 4)], axis=1)
    photo_hands = np.stack([_scatter(photo[None, 4, :2], 21, 16, 3)[0], _scatter(photo[None, 7, :2], 21, 20, 4)[0]])
    photo_hands[1, 9, 2] = 0.0  # the left palm cannot be measured: it takes the right palm's ratio
    out = retarget(_sequence(body, hands), photo, PHOTO_SIZE, photo_hands=photo_hands)
    palm = np.linalg.norm(out.hands[:, :, 0, :2] - out.hands[:, :, 9, :2], axis=-1)
    driving_palm = np.linalg.norm(hands[:, :, 0, :2] - hands[:, :, 9, :2], axis=-1)
    right_ratio = np.linalg.norm(photo_hands[0, 0, :2] - photo_hands[0, 9, :2]) / driving_palm[0, 0]
    np.testing.assert_allclose(palm[:, 0], right_ratio * driving_palm[:, 0], rtol=1e-4)
    np.testing.assert_allclose(palm[:, 1], right_ratio * driving_palm[:, 1], rtol=1e-4)


def test_face_follows_the_nose_scaled_by_the_head_ratio_or_the_photo_face():
    photo, body = _photo_body(), _driving_body()
    face = _scatter(body[:, 0, :2], 68, 25, 7)
    driving = _sequence(body, face=face)
    out = retarget(driving, photo, PHOTO_SIZE)
    expected = _ratio(photo, body, "head") * (driving.face[..., :2] - driving.body[:, 0, None, :2])
    np.testing.assert_allclose(out.face[..., :2] - out.body[:, 0, None, :2], expected, atol=1e-3)
    photo_face = _scatter(photo[None, 0, :2], 68, 12, 7)[0]  # the same face at 0.48 times the size
    out = retarget(driving, photo, PHOTO_SIZE, photo_face=photo_face)
    span = np.linalg.norm(out.face[:, 36, :2] - out.face[:, 45, :2], axis=-1)
    np.testing.assert_allclose(span, np.linalg.norm(photo_face[36, :2] - photo_face[45, :2]), rtol=1e-4)


def test_missing_points_stay_missing_and_nothing_is_nan():
    rng = np.random.default_rng(9)
    body = _driving_body()
    hands = np.stack([_scatter(body[:, 4, :2], 21, 30, 3), _scatter(body[:, 7, :2], 21, 30, 4)], axis=1)
    face = _scatter(body[:, 0, :2], 68, 25, 7)
    for part in (body, hands, face):
        gone = rng.random(part.shape[:-1]) < 0.25
        part[gone, 2] = 0.0
        part[gone & (rng.random(gone.shape) < 0.5), :2] = np.nan
        part[..., 2] *= np.where(part[..., 2] > 0, rng.uniform(0.1, 1.0, part.shape[:-1]), 1.0)
    photo = _photo_body()
    photo[[4, 13], 2] = 0.0
    driving = _sequence(body, hands, face)
    for align in (True, False):
        out = retarget(driving, photo, PHOTO_SIZE, align=align)
        for old, new in ((driving.body, out.body), (driving.hands, out.hands), (driving.face, out.face)):
            assert np.isfinite(new).all()
            missing = (old[..., 2] == 0) | ~np.isfinite(old[..., :2]).all(-1)
            assert (new[missing] == 0).all()
            np.testing.assert_array_equal(new[~missing][:, 2], old[~missing][:, 2])


def test_missing_first_neck_aligns_the_hips():
    photo, body = _photo_body(), _driving_body()
    body[0, 1] = 0.0
    out = retarget(_sequence(body), photo, PHOTO_SIZE)
    assert (out.body[0, 1] == 0).all()
    np.testing.assert_allclose(out.body[0, [8, 11], :2].mean(0), photo[[8, 11], :2].mean(0), atol=1e-3)
    assert np.isfinite(out.body).all()


def test_no_align_only_maps_the_coordinates():
    body = _driving_body()
    body[3, 6] = 0.0
    hands = np.stack([_scatter(body[:, 4, :2], 21, 30, 3), _scatter(body[:, 7, :2], 21, 30, 4)], axis=1)
    driving = _sequence(body, hands, _scatter(body[:, 0, :2], 68, 25, 7))
    out = retarget(driving, _photo_body(), PHOTO_SIZE, align=False)
    scale = min(512 / 1920, 768 / 1080)
    shift = np.array([0.0, (768 - 1080 * scale) / 2])
    for old, new in ((driving.body, out.body), (driving.hands, out.hands), (driving.face, out.face)):
        present = old[..., 2] > 0
        np.testing.assert_allclose(new[present][:, :2], scale * old[present][:, :2] + shift, atol=1e-3)
        assert (new[~present] == 0).all()


def test_photo_without_neck_or_hips_cannot_be_aligned():
    photo = _photo_body()
    photo[[1, 8, 11], 2] = 0.0
    with pytest.raises(AnimateError, match="no-align"):
        retarget(_sequence(_driving_body()), photo, PHOTO_SIZE)
    assert len(retarget(_sequence(_driving_body()), photo, PHOTO_SIZE, align=False)) == FRAMES


def test_body_proportions_skips_uncertain_bones():
    photo = _photo_body()
    photo[7, 2] = 0.2
    lengths = body_proportions(photo)
    assert "l_forearm" not in lengths and set(lengths) == set(BONES) - {"l_forearm"}
    assert lengths["r_shoulder"] == pytest.approx(np.linalg.norm(photo[2, :2] - photo[1, :2]))
