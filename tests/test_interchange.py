"""Keypoint JSON: our export/import round trip and OpenPose/DWPose import."""

import json

import numpy as np
import pytest

from animate.errors import AnimateError
from animate.pose.interchange import BODY_25_TO_18, load_json, load_openpose_json, save_json
from animate.pose.keypoints import PoseSequence

W, H = 512, 768


def _random_sequence(frames: int = 5, seed: int = 0) -> PoseSequence:
    """Random keypoints in pixels with about a third of them missing (score 0, x = y = 0)."""
    rng = np.random.default_rng(seed)

    def part(*shape):
        points = rng.uniform(0, 1, (*shape, 3)) * np.array([W, H, 1.0])
        points[rng.uniform(size=shape) < 0.3] = 0.0
        return points

    return PoseSequence(part(frames, 18), part(frames, 2, 21), part(frames, 68), W, H, 29.97)


def _flat(points: np.ndarray) -> list[float]:
    """(n, 3) points as OpenPose's flat [x, y, c, ...] list."""
    return [float(v) for v in np.asarray(points, dtype=np.float32).ravel()]


def _person(body: np.ndarray, right_hand=None, left_hand=None, face=None) -> dict:
    """One OpenPose person entry."""
    return {"person_id": [-1], "pose_keypoints_2d": _flat(body),
            "hand_right_keypoints_2d": _flat(right_hand) if right_hand is not None else [],
            "hand_left_keypoints_2d": _flat(left_hand) if left_hand is not None else [],
            "face_keypoints_2d": _flat(face) if face is not None else []}


def _write_frames(folder, frames: list[dict]) -> None:
    """OpenPose's layout: one `<video>_<12-digit frame>_keypoints.json` per frame, written last frame first."""
    folder.mkdir(exist_ok=True)
    for i, frame in reversed(list(enumerate(frames))):
        (folder / f"clip_{i:012d}_keypoints.json").write_text(json.dumps(frame))


def _points(n: int, seed: int, scale=(W, H)) -> np.ndarray:
    """n present points with scores in (0.5, 1]."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.uniform(0.1, 0.9, (n, 2)) * np.array(scale), rng.uniform(0.5, 1.0, (n, 1))], axis=1)


def test_json_round_trip_is_exact(tmp_path):
    seq = _random_sequence()
    path = save_json(seq, tmp_path / "sub" / "clip.pose.json")
    assert [p.name for p in path.parent.iterdir()] == ["clip.pose.json"]  # no temp file left behind
    data = json.loads(path.read_text())
    assert (data["format"], data["version"], data["width"], data["height"], len(data["frames"])) == \
        ("animate-pose", 1, W, H, 5)
    back = load_json(path)
    for name in ("body", "hands", "face"):
        np.testing.assert_array_equal(getattr(back, name), getattr(seq, name))
        assert getattr(back, name).dtype == np.float32
    assert (back.width, back.height, back.fps) == (W, H, 29.97)


def test_json_round_trip_of_no_frames(tmp_path):
    back = load_json(save_json(PoseSequence.empty(0, W, H, 25.0), tmp_path / "empty.json"))
    assert len(back) == 0 and back.hands.shape == (0, 2, 21, 3)


@pytest.mark.parametrize("content, message", [
    (None, "file not found"),
    ("{not json", "not readable JSON"),
    (json.dumps({"people": []}), "not an animate-pose JSON file"),
    (json.dumps({"format": "animate-pose", "version": 2, "frames": []}), "version 2 is newer"),
    (json.dumps({"format": "animate-pose", "version": 1, "width": W, "height": H, "fps": 30,
                 "frames": [{"body": [[0, 0, 0]] * 17, "hands": [[[0, 0, 0]] * 21] * 2, "face": [[0, 0, 0]] * 68}]}),
     "malformed keypoint JSON"),
], ids=["missing", "truncated", "openpose", "newer", "short-body"])
def test_load_json_errors_are_one_line_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(AnimateError) as err:
        load_json(path)
    text = str(err.value)
    assert message in text and str(path) in text and "\n" not in text


def test_openpose_body_18_folder_with_hands_and_face(tmp_path):
    body = [_points(18, seed) for seed in range(3)]
    body[1][4] = 0.0  # a missing right wrist
    right, left, face70 = _points(21, 10), _points(21, 11), _points(70, 12)
    frames = [{"version": 1.3, "people": [_person(b, right, left, face70)]} for b in body]
    _write_frames(tmp_path / "json", frames)
    (tmp_path / "json" / "notes.json").write_text("{}")  # not a *_keypoints.json: ignored
    seq = load_openpose_json(tmp_path / "json", W, H, fps=24)
    assert (len(seq), seq.width, seq.height, seq.fps) == (3, W, H, 24)
    np.testing.assert_allclose(seq.body, np.stack(body), rtol=1e-6)
    assert seq.body[1, 4, 2] == 0
    np.testing.assert_allclose(seq.hands[:, 0], np.broadcast_to(right, (3, 21, 3)), rtol=1e-6)  # right hand = 0
    np.testing.assert_allclose(seq.hands[:, 1], np.broadcast_to(left, (3, 21, 3)), rtol=1e-6)
    np.testing.assert_allclose(seq.face, np.broadcast_to(face70[:68], (3, 68, 3)), rtol=1e-6)  # pupils dropped


def test_openpose_body_25_is_mapped_to_18(tmp_path):
    body25 = _points(25, 1)
    body25[12] = 0.0  # a missing left hip
    path = tmp_path / "frame_keypoints.json"
    path.write_text(json.dumps({"people": [_person(body25)], "canvas_width": W, "canvas_height": H}))
    seq = load_openpose_json(path)
    assert (seq.width, seq.height, len(seq)) == (W, H, 1)
    expected = body25[[0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]]
    assert list(BODY_25_TO_18) == [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]
    np.testing.assert_allclose(seq.body[0], expected, rtol=1e-6)
    assert seq.body[0, 11, 2] == 0  # our 11 = left hip
    np.testing.assert_allclose(seq.body[0, 8], body25[9], rtol=1e-6)  # our 8 = right hip, not BODY_25's mid-hip
    assert not seq.hands.any() and not seq.face.any()  # empty lists = missing


def test_dwpose_normalised_list_file_is_scaled(tmp_path):
    body = _points(18, 2, scale=(1.0, 1.0))
    body[0, 2] = 0.0
    body[0, :2] = -1.0  # DWPose writes missing points as -1 with score 0
    hand = _points(21, 3, scale=(1.0, 1.0))
    frames = [{"people": [_person(body, None, hand)], "canvas_width": 640, "canvas_height": 480}] * 2
    path = tmp_path / "poses.json"
    path.write_text(json.dumps(frames))
    seq = load_openpose_json(path, fps=12)
    assert (len(seq), seq.width, seq.height, seq.fps) == (2, 640, 480, 12)
    np.testing.assert_allclose(seq.body[0, 1:, :2], body[1:, :2] * [640, 480], rtol=1e-5)
    np.testing.assert_array_equal(seq.body[:, 0], 0.0)
    np.testing.assert_allclose(seq.hands[1, 1, :, :2], hand[:, :2] * [640, 480], rtol=1e-5)
    seq = load_openpose_json(path, width=320, height=240)  # given size beats the canvas
    np.testing.assert_allclose(seq.body[0, 1:, :2], body[1:, :2] * [320, 240], rtol=1e-5)


def test_normalised_without_size_is_an_error(tmp_path):
    path = tmp_path / "poses.json"
    path.write_text(json.dumps([{"people": [_person(_points(18, 2, scale=(1.0, 1.0)))]}]))
    with pytest.raises(AnimateError, match="normalised.*pass the frame width and height"):
        load_openpose_json(path)
    path.write_text(json.dumps([{"people": [_person(_points(18, 2))]}]))
    with pytest.raises(AnimateError, match="no canvas size.*pass the frame width and height"):
        load_openpose_json(path)


def test_the_biggest_person_is_kept_and_no_people_is_a_missing_frame(tmp_path):
    small = _points(18, 4) * [0.2, 0.2, 1.0]
    big = _points(18, 5)
    ghost = _points(18, 6) * [1, 1, 0.1]  # huge but unsure: its points are below the confidence for the box
    ghost[:2, :2] = [[0, 0], [W, H]]
    frames = [{"people": [small, big, ghost]}, {"people": []}, {"people": [big, small]}]
    _write_frames(tmp_path / "json", [{"people": [_person(p) for p in f["people"]]} for f in frames])
    seq = load_openpose_json(tmp_path / "json", W, H)
    np.testing.assert_allclose(seq.body[0], big, rtol=1e-6)
    np.testing.assert_array_equal(seq.body[1], 0.0)
    assert not seq.hands[1].any() and not seq.face[1].any()
    np.testing.assert_allclose(seq.body[2], big, rtol=1e-6)


def test_explicit_file_list_keeps_its_order(tmp_path):
    a, b = tmp_path / "b_keypoints.json", tmp_path / "a_keypoints.json"
    a.write_text(json.dumps({"people": [_person(_points(18, 7))]}))
    b.write_text(json.dumps({"people": [_person(_points(18, 8))]}))
    seq = load_openpose_json([a, b], W, H)
    np.testing.assert_allclose(seq.body[0], _points(18, 7), rtol=1e-6)


@pytest.mark.parametrize("content, message", [
    ("[1, 2", "not readable JSON"),
    (json.dumps({"frames": []}), "'people' list"),
    (json.dumps({"people": [{"pose_keypoints_2d": [1.0] * 30}]}), "pose_keypoints_2d has 30 values, expected 54 or 75"),
    (json.dumps({"people": [{"hand_left_keypoints_2d": [1.0] * 60}]}), "hand_left_keypoints_2d has 60 values"),
    (json.dumps({"people": [{"pose_keypoints_2d": ["a"] * 54}]}), "not OpenPose keypoint JSON"),
    (json.dumps([]), "no frames"),
], ids=["truncated", "no-people", "short-body", "short-hand", "strings", "empty-list"])
def test_bad_openpose_files_are_one_line_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad_keypoints.json"
    path.write_text(content)
    with pytest.raises(AnimateError) as err:
        load_openpose_json(path, W, H)
    text = str(err.value)
    assert message in text and str(path) in text and "\n" not in text


def test_missing_inputs_are_errors(tmp_path):
    with pytest.raises(AnimateError, match="file not found"):
        load_openpose_json(tmp_path / "nope_keypoints.json", W, H)
    with pytest.raises(AnimateError, match=r"no \*_keypoints.json files"):
        load_openpose_json(tmp_path, W, H)
