"""The `*.pose.npz` keypoint file."""

import numpy as np
import pytest

from animate.errors import AnimateError
from animate.pose.keypoints import FORMAT_VERSION, PoseSequence


def sequence(frames: int = 4) -> PoseSequence:
    rng = np.random.default_rng(0)
    return PoseSequence(rng.random((frames, 18, 3)) * 100, rng.random((frames, 2, 21, 3)) * 100,
                        rng.random((frames, 68, 3)) * 100, width=320, height=480, fps=25.0)


def test_round_trip_is_exact(tmp_path):
    seq = sequence()
    loaded = PoseSequence.load(seq.save(tmp_path / "a.pose.npz"))
    for name in ("body", "hands", "face"):
        assert np.array_equal(getattr(loaded, name), getattr(seq, name))
    assert (loaded.width, loaded.height, loaded.fps, len(loaded)) == (320, 480, 25.0, 4)
    assert [p.name for p in tmp_path.iterdir()] == ["a.pose.npz"]  # no temp file left


def test_normalised_divides_coordinates_not_scores():
    seq = sequence()
    body, hands, face = seq.normalised(1)
    assert np.allclose(body[:, 0], seq.body[1, :, 0] / 320) and np.allclose(body[:, 1], seq.body[1, :, 1] / 480)
    assert np.array_equal(body[:, 2], seq.body[1, :, 2]) and hands.shape == (2, 21, 3) and face.shape == (68, 3)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="hands"):
        PoseSequence(np.zeros((2, 18, 3)), np.zeros((2, 21, 3)), np.zeros((2, 68, 3)), 10, 10, 30)


def test_bad_files_are_one_line_errors(tmp_path):
    with pytest.raises(AnimateError, match="not found"):
        PoseSequence.load(tmp_path / "none.pose.npz")
    (tmp_path / "bad.pose.npz").write_bytes(b"garbage")
    with pytest.raises(AnimateError, match="not a readable keypoint file"):
        PoseSequence.load(tmp_path / "bad.pose.npz")
    seq = sequence()
    np.savez(tmp_path / "new.pose.npz", version=FORMAT_VERSION + 1, width=1, height=1, fps=1.0,
             body=seq.body, hands=seq.hands, face=seq.face)
    with pytest.raises(AnimateError, match="newer"):
        PoseSequence.load(tmp_path / "new.pose.npz")
