"""One-Euro smoothing and gap filling, measured on synthetic tracks in a 512x768 frame at 30 fps."""

import numpy as np
import pytest

from animate.pose.keypoints import PoseSequence
from animate.pose.smooth import fill_gaps, fill_track, one_euro, smooth_sequence

W, H, FPS = 512, 768, 30.0


def _spread(track: np.ndarray) -> float:
    """Std over time of (F, ..., 2) positions, averaged over points and axes."""
    return float(track.std(axis=0).mean())


def _jitter_ratio(points: int = 200, frames: int = 300, sigma: float = 2.0, **params) -> float:
    """Raw / smoothed std of still points with Gaussian jitter, after a 1 s settling."""
    rng = np.random.default_rng(0)
    raw = np.array([W / 2, H / 2]) + rng.normal(0.0, sigma, (frames, points, 2))
    out = one_euro(raw, np.ones((frames, points), bool), FPS, **params)
    return _spread(raw[30:]) / _spread(out[30:])


def _move_and_stop(speed: float = 600.0, **params) -> tuple[float, float, float]:
    """Max error (px) of a point at rest for 1 s, moving at `speed` px/s for 0.6 s, at rest for 1 s.

    Returned for the whole move, its second half (speed estimate settled), and after the stop (overshoot).
    """
    rest, move = 30, 18
    x = 100.0 + np.concatenate([np.zeros(rest), np.arange(1, move + 1) * speed / FPS, np.full(30, move * speed / FPS)])
    truth = np.stack([x, np.full_like(x, H / 2)], axis=-1)[:, None]
    error = np.abs(one_euro(truth, np.ones((len(x), 1), bool), FPS, **params) - truth).max(axis=(1, 2))
    return float(error[rest:rest + move].max()), float(error[rest + move // 2:rest + move].max()), \
        float(error[rest + move:].max())


def test_one_euro_removes_jitter_on_a_still_point():
    assert _jitter_ratio() >= 3.0  # measured 3.2 with the defaults


def test_one_euro_lag_on_a_fast_move_is_bounded():
    whole, settled, overshoot = _move_and_stop()
    assert whole <= 15.0  # measured 13.7: the first frames of the move, while the speed estimate catches up
    assert settled <= 6.0  # measured 5.5
    assert overshoot <= 2.0  # measured 1.2
    assert _move_and_stop(beta=0.0)[1] > 4 * settled  # the speed term is what keeps the lag small


def test_one_euro_first_frame_and_missing_entries_are_raw():
    rng = np.random.default_rng(1)
    values = rng.uniform(0, 500, (20, 3, 2))
    present = np.ones((20, 3), bool)
    present[5:8, 1] = False
    out = one_euro(values, present, FPS)
    np.testing.assert_array_equal(out[0], values[0])
    np.testing.assert_array_equal(out[5:8, 1], values[5:8, 1])


def test_one_euro_restarts_after_a_gap():
    values = np.zeros((30, 2, 2))
    values[:10] = [100.0, 200.0]
    values[15:] = [400.0, 50.0]
    present = np.ones((30, 2), bool)
    present[10:15, 0] = False  # point 0 vanishes and reappears elsewhere; point 1 jumps without a gap
    out = one_euro(values, present, FPS)
    np.testing.assert_array_equal(out[15:, 0], values[15:, 0])  # no smearing from before the gap
    assert np.abs(out[15, 1] - values[15, 1]).max() > 10  # without a gap the jump is filtered


def _track_sequence(body: np.ndarray) -> PoseSequence:
    """A sequence whose body, both hands' wrists and the face's first point all follow `body`'s first point."""
    frames = len(body)
    seq = PoseSequence.empty(frames, W, H, FPS)
    seq.body[:] = body
    seq.hands[:, :, 0] = body[:, None, 0]
    seq.face[:, 0] = body[:, 0]
    return seq


def test_smooth_sequence_smooths_every_part_and_keeps_scores_and_missing_points():
    rng = np.random.default_rng(2)
    body = np.zeros((120, 18, 3))
    body[..., :2] = [W / 2, H / 2] + rng.normal(0.0, 2.0, (120, 18, 2))
    body[..., 2] = rng.uniform(0.3, 1.0, (120, 18))
    body[40:50, 3] = 0.0
    seq = _track_sequence(body)
    out = smooth_sequence(seq)
    assert (out.width, out.height, out.fps, len(out)) == (W, H, FPS, 120)
    for raw, smooth in ((seq.body, out.body), (seq.hands, out.hands), (seq.face, out.face)):
        np.testing.assert_array_equal(smooth[..., 2], raw[..., 2])
        present = raw[..., 2] > 0
        np.testing.assert_array_equal(smooth[~present], raw[~present])
    assert _spread(seq.body[30:, 0, :2]) > 2.5 * _spread(out.body[30:, 0, :2])
    assert _spread(seq.hands[30:, 1, 0, :2]) > 2.5 * _spread(out.hands[30:, 1, 0, :2])
    assert _spread(seq.face[30:, 0, :2]) > 2.5 * _spread(out.face[30:, 0, :2])
    assert len(smooth_sequence(PoseSequence.empty(0, W, H, FPS))) == 0


def _linear(frames: int, points: int = 1) -> np.ndarray:
    """(frames, points, 3) tracks moving linearly, all present, scores 0.8."""
    t = np.arange(frames, dtype=np.float64)[:, None]
    xy = np.stack([10.0 + 3.0 * t + np.arange(points), 700.0 - 2.5 * t + 0 * np.arange(points)], axis=-1)
    return np.concatenate([xy, np.full((frames, points, 1), 0.8)], axis=-1)


def test_fill_interpolates_interior_gaps_up_to_max_gap_exactly():
    truth = _linear(40, 2)
    points = truth.copy()
    points[10:22, 0] = 0.0  # 12 frames = max_gap: interpolated
    points[22, 0, 2] = 0.5
    points[10:23, 1] = 0.0  # 13 frames: held from the ends instead
    out = fill_track(points, max_gap=12)
    np.testing.assert_allclose(out[10:22, 0, :2], truth[10:22, 0, :2], atol=1e-9)
    np.testing.assert_array_equal(out[10:22, 0, 2], 0.5)  # the lower of the two ends' scores
    np.testing.assert_array_equal(out[10:17, 1], np.broadcast_to(points[9, 1], (7, 3)))
    np.testing.assert_array_equal(out[17:23, 1], np.broadcast_to(points[23, 1], (6, 3)))
    present = points[..., 2] > 0
    np.testing.assert_array_equal(out[present], points[present])


def test_fill_holds_at_the_ends_up_to_the_limit_then_leaves_missing():
    points = _linear(40)
    points[:15] = 0.0
    points[30:] = 0.0
    out = fill_track(points, max_gap=4)
    np.testing.assert_array_equal(out[11:15, 0], np.broadcast_to(points[15, 0], (4, 3)))
    np.testing.assert_array_equal(out[:11], 0.0)
    np.testing.assert_array_equal(out[30:34, 0], np.broadcast_to(points[29, 0], (4, 3)))
    np.testing.assert_array_equal(out[34:], 0.0)
    np.testing.assert_array_equal(out[15:30], points[15:30])


def test_fill_long_interior_gap_is_held_from_the_nearer_side_then_missing():
    points = _linear(40)
    points[10:15] = 0.0  # 5 frames > max_gap 2: frames 10, 11 hold frame 9; 13, 14 hold frame 15; 12 stays missing
    points[20:23] = 0.0  # 3 frames > 2 but all within 2 of an end: 20, 21 (tie) hold frame 19, 22 holds frame 23
    out = fill_track(points, max_gap=2)
    np.testing.assert_array_equal(out[10:12, 0], np.broadcast_to(points[9, 0], (2, 3)))
    np.testing.assert_array_equal(out[12], 0.0)
    np.testing.assert_array_equal(out[13:15, 0], np.broadcast_to(points[15, 0], (2, 3)))
    np.testing.assert_array_equal(out[20:22, 0], np.broadcast_to(points[19, 0], (2, 3)))
    np.testing.assert_array_equal(out[22, 0], points[23, 0])


def test_fill_gaps_fills_whole_missing_frames_per_point_in_every_part():
    body = _linear(30, 18)
    body[:, 5:, 2] = np.linspace(0.4, 1.0, 13)  # different scores per point
    body[12:16] = 0.0  # nothing found in 4 frames
    body[:, 17] = 0.0  # a point never seen stays missing
    seq = _track_sequence(body)
    out = fill_gaps(seq, max_gap=6)
    truth = _linear(30, 18)
    np.testing.assert_allclose(out.body[12:16, :17, :2], truth[12:16, :17, :2], atol=1e-3)
    np.testing.assert_allclose(out.body[12:16, :17, 2], np.broadcast_to(body[11, :17, 2], (4, 17)), rtol=1e-6)
    np.testing.assert_array_equal(out.body[:, 17], 0.0)
    np.testing.assert_allclose(out.hands[12:16, :, 0, :2], np.repeat(truth[12:16, None, 0, :2], 2, 1), atol=1e-3)
    np.testing.assert_allclose(out.face[12:16, 0, :2], truth[12:16, 0, :2], atol=1e-3)
    assert not out.hands[:, :, 1:].any() and not out.face[:, 1:].any()  # never-seen points stay missing
    present = seq.body[..., 2] > 0
    np.testing.assert_array_equal(out.body[present], seq.body[present])
    assert len(fill_gaps(PoseSequence.empty(0, W, H, FPS))) == 0


@pytest.mark.parametrize("max_gap", [0, 3])
def test_fill_with_nothing_present_or_nothing_missing_is_unchanged(max_gap):
    np.testing.assert_array_equal(fill_track(np.zeros((10, 4, 3)), max_gap), 0.0)
    points = _linear(10, 4)
    np.testing.assert_array_equal(fill_track(points, max_gap), points)
