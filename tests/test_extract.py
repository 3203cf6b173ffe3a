"""MediaPipe Holistic extraction: landmarks on real photos, sides, the 68-point face layout, video, conversion."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from animate.errors import AnimateError
from animate.pose.extract import (FACE_MESH_TO_IBUG68, POSE_TO_OPENPOSE, HolisticExtractor, default_workers,
                                  extract_image, extract_video, landmarks_to_arrays, split_span)
from animate.media.video import VideoWriter

LANDMARKS = Path(__file__).parent / "data" / "landmarks"
# Face boxes (x0, y0, x1, y1) as fractions of the image, measured on MediaPipe's face mesh and widened by ~0.05.
ASTRONAUT_FACE = (0.30, 0.08, 0.60, 0.40)  # mesh measured at x 0.35-0.54, y 0.13-0.35 of 512x512
GRACE_HOPPER_FACE = (0.27, 0.15, 0.77, 0.62)  # mesh measured at x 0.32-0.71, y 0.20-0.56 of 512x600


def _astronaut() -> np.ndarray:
    from skimage.data import astronaut

    return astronaut()


def _grace_hopper() -> np.ndarray:
    from matplotlib.cbook import get_sample_data

    with Image.open(get_sample_data("grace_hopper.jpg")) as img:
        return np.asarray(img.convert("RGB"))


@pytest.fixture(scope="module")
def photos() -> dict[str, tuple[np.ndarray, tuple]]:
    """name → (rgb, extract_image's (body, hands, face)); both photos through one static-image graph."""
    out = {}
    with HolisticExtractor(video=False) as extractor:
        for name, rgb in (("astronaut", _astronaut()), ("grace_hopper", _grace_hopper())):
            out[name] = (rgb, extractor.extract_frame(rgb))
    return out


def _inside(points: np.ndarray, box: tuple, rgb: np.ndarray) -> np.ndarray:
    """Which (x, y) pixel points lie in box, given as fractions of rgb's size."""
    height, width = rgb.shape[:2]
    x0, y0, x1, y1 = box
    x, y = points[..., 0] / width, points[..., 1] / height
    return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)


@pytest.mark.parametrize("name, box", [("astronaut", ASTRONAUT_FACE), ("grace_hopper", GRACE_HOPPER_FACE)])
def test_body_lands_on_the_person_with_the_subjects_sides(photos, name, box):
    """Both subjects face the camera, so their right shoulder, eye and ear appear on the image left (smaller x)."""
    rgb, (body, hands, face) = photos[name]
    assert body.shape == (18, 3) and body.dtype == np.float32
    head = [0, 2, 5, 14, 15, 16, 17]  # nose, shoulders, eyes, ears: all clearly visible in both photos
    assert (body[head, 2] > 0.9).all(), body[head, 2]
    assert _inside(body[0], box, rgb), body[0]
    assert body[2, 1] > body[0, 1] and body[5, 1] > body[0, 1]  # shoulders below the nose
    assert body[2, 0] < body[5, 0] and body[14, 0] < body[15, 0] and body[16, 0] < body[17, 0]
    assert ((body[:, 2] >= 0) & (body[:, 2] <= 1)).all()


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_neck_is_the_shoulder_midpoint(photos, name):
    body = photos[name][1][0]
    np.testing.assert_allclose(body[1, :2], (body[2, :2] + body[5, :2]) / 2, rtol=1e-6)
    assert body[1, 2] == min(body[2, 2], body[5, 2])


@pytest.mark.parametrize("name, box", [("astronaut", ASTRONAUT_FACE), ("grace_hopper", GRACE_HOPPER_FACE)])
def test_face_68_points_have_the_ibug_layout(photos, name, box):
    rgb, (body, hands, face) = photos[name]
    assert face.shape == (68, 3) and (face[:, 2] == 1).all()
    assert _inside(face, box, rgb).mean() >= 0.95
    x, y = face[:, 0], face[:, 1]
    right_eye, left_eye, mouth = slice(36, 42), slice(42, 48), slice(48, 68)
    # The jaw runs down from the image-left ear (subject's right) to the chin, then up to the other ear.
    assert (np.diff(y[0:9]) > 0).all() and (np.diff(y[8:17]) < 0).all()
    assert x[0:8].max() < x[8] < x[9:17].min()
    assert x[16] - x[0] > x[45] - x[36]  # jaw wider than the eyes' outer corners
    assert x[right_eye].mean() < x[left_eye].mean() and x[17:22].mean() < x[22:27].mean()
    assert y[17:27].mean() < min(y[right_eye].mean(), y[left_eye].mean())  # brows above the eyes
    assert y[27] < y[28] < y[29] < y[30]  # nose bridge runs down to the tip
    assert max(y[right_eye].max(), y[left_eye].max()) < y[30] < y[mouth].min()  # eyes, nose tip, mouth downwards
    assert y[51] < min(y[62], y[66]) and max(y[62], y[66]) < y[57]  # inner lips between the outer ones
    assert x[48] < x[51] < x[54] and (np.diff(x[31:36]) > 0).all()
    assert _inside(body[0], (x.min() / rgb.shape[1], y.min() / rgb.shape[0], x.max() / rgb.shape[1],
                             y.max() / rgb.shape[0]), rgb)  # the body's nose is inside the face points


def test_hands_are_missing_on_these_photos(photos):
    """Hands cannot be checked on these photos (no hand is visible to MediaPipe in either): they come back as
    zeros. Hand conversion is checked on recorded landmarks in test_hand_conversion_*."""
    for _, (_, hands, _) in photos.values():
        assert hands.shape == (2, 21, 3) and not hands.any()


def test_extract_image_takes_a_path_and_rejects_a_photo_without_a_person(tmp_path):
    path = tmp_path / "astronaut.png"
    Image.fromarray(_astronaut()).save(path)
    body, hands, face = extract_image(path)
    assert body[0, 2] > 0.9 and _inside(body[0], ASTRONAUT_FACE, _astronaut())
    blank = np.full((256, 256, 3), 200, np.uint8)
    with pytest.raises(AnimateError, match="no person found in the photo"):
        extract_image(blank)
    Image.fromarray(blank).save(tmp_path / "blank.png")
    with pytest.raises(AnimateError, match="no person found in .*blank.png"):
        extract_image(tmp_path / "blank.png")


@pytest.fixture(scope="module")
def astronaut_video(tmp_path_factory) -> Path:
    """8 frames (320x384, 8 fps) of a crop window panning across the astronaut photo."""
    rgb = _astronaut()
    path = tmp_path_factory.mktemp("extract") / "astronaut_pan.mp4"
    with VideoWriter(path, fps=8) as writer:
        for i in range(8):
            writer.write(np.ascontiguousarray(rgb[8 + 3 * i:392 + 3 * i, 40 + 8 * i:360 + 8 * i]))
    return path


def test_extract_video_tracks_the_person_in_every_frame(astronaut_video):
    seq = extract_video(astronaut_video, progress=False)
    assert (len(seq), seq.width, seq.height, seq.fps) == (8, 320, 384, 8)
    assert (seq.body[:, [0, 1, 2, 5], 2] > 0.5).all()
    assert (seq.face[:, :, 2] == 1).all()
    crop_origin = np.stack([40 + 8 * np.arange(8), 8 + 3 * np.arange(8)], axis=1)
    nose_in_photo = seq.body[:, 0, :2] + crop_origin
    assert _inside(nose_in_photo, ASTRONAUT_FACE, _astronaut()).all(), nose_in_photo
    assert seq.body[-1, 0, 0] < seq.body[0, 0, 0] - 30  # the window pans right 56 px, so the person moves left
    assert len(extract_video(astronaut_video, max_frames=3, progress=False)) == 3


def test_extract_video_without_a_person_fails(tmp_path):
    path = tmp_path / "empty.mp4"
    with VideoWriter(path, fps=8) as writer:
        writer.write(np.full((4, 64, 64, 3), 90, np.uint8))
    with pytest.raises(AnimateError, match="no person found in .*empty.mp4"):
        extract_video(path, progress=False)


def _recorded_hands() -> tuple[np.ndarray, np.ndarray]:
    data = json.loads((LANDMARKS / "holistic_hands.json").read_text())
    return np.array(data["right_hand_landmarks"]), np.array(data["left_hand_landmarks"])


def test_hand_conversion_keeps_order_side_and_scales_to_pixels():
    right, left = _recorded_hands()
    assert right.shape == left.shape == (21, 3)
    body, hands, face = landmarks_to_arrays(None, right, left, None, 640, 480)
    assert not body.any() and not face.any()
    np.testing.assert_allclose(hands[0, :, :2], right[:, :2] * [640, 480], rtol=1e-6)  # subject's right → index 0
    np.testing.assert_allclose(hands[1, :, :2], left[:, :2] * [640, 480], rtol=1e-6)
    assert (hands[..., 2] == 1).all()
    # OpenPose hand order: wrist first, then each finger base to tip (thumb 1-4 ... pinky 17-20), tips farthest out.
    for side in hands:
        reach = np.linalg.norm(side[:, :2] - side[0, :2], axis=1)
        assert (np.diff(reach[1:].reshape(5, 4), axis=1) > 0).all()
    assert hands[0, 4, 0] > hands[0, 20, 0] and hands[1, 4, 0] < hands[1, 20, 0]  # thumbs towards the middle


def test_hand_conversion_of_one_hand_leaves_the_other_missing():
    right, left = _recorded_hands()
    _, hands, _ = landmarks_to_arrays(None, None, left, None, 100, 100)
    assert not hands[0].any() and (hands[1, :, 2] == 1).all()


def test_body_conversion_maps_openpose_points_scores_and_neck():
    pose = np.zeros((33, 4), np.float32)
    pose[:, 0] = np.arange(33) / 100  # x encodes the MediaPipe index
    pose[:, 1] = 0.5
    pose[:, 2] = np.linspace(-0.2, 1.2, 33)  # visibility, including out-of-range values
    pose[:, 3] = 0.7  # MediaPipe's presence column is ignored
    body, hands, face = landmarks_to_arrays(pose, None, None, None, 200, 100)
    assert not hands.any() and not face.any()
    expected = {0: 0, 2: 12, 3: 14, 4: 16, 5: 11, 6: 13, 7: 15, 8: 24, 9: 26, 10: 28, 11: 23, 12: 25, 13: 27,
                14: 5, 15: 2, 16: 8, 17: 7}
    for ours, theirs in expected.items():
        np.testing.assert_allclose(body[ours, :2], [theirs * 2, 50], rtol=1e-6)
        assert body[ours, 2] == pytest.approx(np.clip(pose[theirs, 2], 0, 1))
    np.testing.assert_allclose(body[1], [23, 50, np.clip(min(pose[11, 2], pose[12, 2]), 0, 1)], rtol=1e-6)
    assert POSE_TO_OPENPOSE[1] == -1


@pytest.mark.parametrize("mesh_points", [468, 478])
def test_face_conversion_picks_the_table_vertices(mesh_points):
    mesh = np.stack([np.arange(mesh_points) / 1000, np.full(mesh_points, 0.25), np.zeros(mesh_points)], axis=1)
    _, _, face = landmarks_to_arrays(None, None, None, mesh, 1000, 200)
    np.testing.assert_allclose(face[:, 0], FACE_MESH_TO_IBUG68, rtol=1e-6)
    assert (face[:, 1] == 50).all() and (face[:, 2] == 1).all()
    assert len(set(FACE_MESH_TO_IBUG68.tolist())) == 68 and FACE_MESH_TO_IBUG68.max() < 468


def test_split_span_covers_every_frame_in_order():
    for frames in (1, 7, 48, 301):
        for parts in (1, 2, 3, 8):
            spans = split_span(frames, parts)
            assert [f for span in spans for f in span] == list(range(frames))
            assert max(map(len, spans)) - min(map(len, spans)) <= 1
    assert default_workers(10) == 1  # short videos: one graph (no start-up cost, tracking unbroken)


def test_threaded_extraction_keeps_frame_order(astronaut_video):
    """Two graphs each track half the frames; the halves come back in order (the person keeps moving left)."""
    serial = extract_video(astronaut_video, progress=False, workers=1)
    threaded = extract_video(astronaut_video, progress=False, workers=2)
    assert len(threaded) == 8 and (threaded.body[:, 1, 2] > 0).all()
    # The second graph starts by detecting, not tracking, so its first frames differ by a few pixels; halves in the
    # wrong order would be 32 px off (the window pans 8 px per frame).
    assert np.abs(threaded.body[:, 1, :2] - serial.body[:, 1, :2]).max() < 16
    assert threaded.body[-1, 1, 0] < threaded.body[0, 1, 0] - 30
