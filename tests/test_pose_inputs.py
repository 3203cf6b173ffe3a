"""--pose inputs end to end: real videos (extracted, retargeted), skeleton videos, keypoint files; `animate pose`."""

import json
from pathlib import Path

import numpy as np
import pytest
from skimage import data

from animate.errors import AnimateError
from animate.pose.extract import extract_image
from animate.pose.interchange import load_json
from animate.pose.keypoints import PoseSequence
from animate.pose.sources import detect_pose_type, looks_like_skeleton
from animate.media.video import VideoWriter, probe_video, read_frames


@pytest.fixture(scope="session")
def dance_video(tmp_path_factory) -> Path:
    """A real-looking video: a crop of the astronaut photo panning sideways, 8 frames at 10 fps."""
    path = tmp_path_factory.mktemp("dance") / "astronaut_pan.mp4"
    photo = data.astronaut()
    with VideoWriter(path, 10) as writer:
        for i in range(8):
            writer.write(np.ascontiguousarray(photo[16:400, 8 + 4 * i : 264 + 4 * i]))
    return path


@pytest.fixture(scope="session")
def person_photo(tmp_path_factory) -> Path:
    """Grace Hopper (another person, other proportions and place) as the photo to animate."""
    import matplotlib.cbook

    from PIL import Image

    path = tmp_path_factory.mktemp("photo") / "hopper.png"
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        Image.open(f).convert("RGB").resize((256, 300)).save(path)
    return path


@pytest.fixture(scope="session")
def blank_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("blank") / "empty_room.mp4"
    with VideoWriter(path, 10) as writer:
        writer.write(np.full((4, 96, 64, 3), 128, np.uint8))
    return path


def test_pose_types_are_detected(dance_video, pose_video, tmp_path):
    assert detect_pose_type(dance_video) == "video"
    assert detect_pose_type(pose_video(6)) == "skeleton"
    assert detect_pose_type(pose_video(6, width=32, height=48)) == "skeleton"  # chroma dulled by h264 at this size
    assert detect_pose_type(Path("x.pose.npz")) == "keypoints"
    assert detect_pose_type(Path("frames.json")) == "keypoints"
    assert detect_pose_type(tmp_path) == "keypoints"  # a folder of OpenPose JSON


def test_a_dark_real_frame_is_not_a_skeleton():
    assert not looks_like_skeleton([(data.astronaut() * 0.12).astype(np.uint8)])
    assert looks_like_skeleton([np.zeros((64, 64, 3), np.uint8)])


def test_pose_command_extracts_draws_and_saves_keypoints(run_cli, dance_video, tmp_path):
    result = run_cli(["pose", dance_video, "-o", "pose.mp4", "--keypoints", "kp.pose.npz", "--no-progress"])
    assert result.code == 0, result.err
    info = probe_video(tmp_path / "pose.mp4")
    assert (info.num_frames, info.fps) == (8, 10)
    assert (info.width, info.height) == (512, 768)  # the video's 2:3 aspect, short side 512
    seq = PoseSequence.load(tmp_path / "kp.pose.npz")
    assert len(seq) == 8 and (seq.body[:, 1, 2] > 0).all()  # a neck in every frame
    assert detect_pose_type(tmp_path / "pose.mp4") == "skeleton"  # what it drew looks like a pose video
    result = run_cli(["pose", "kp.pose.npz", "-o", "again.mp4", "--keypoints", "kp.json", "--no-progress"])
    assert result.code == 0, result.err
    assert np.array_equal(load_json(tmp_path / "kp.json").body, seq.body)  # keypoints in, same keypoints out


def test_pose_command_retargets_to_the_photo(run_cli, dance_video, person_photo, tmp_path):
    result = run_cli(["pose", dance_video, "-o", "pose.mp4", "--keypoints", "kp.pose.npz", "--ref", person_photo,
                      "-W", "128", "--no-progress"])
    assert result.code == 0, result.err
    seq = PoseSequence.load(tmp_path / "kp.pose.npz")
    body, _, _ = extract_image(person_photo)
    assert (seq.width, seq.height) == (256, 300)  # the photo's frame
    assert np.allclose(seq.body[0, 1, :2], body[1, :2], atol=1.0)  # first frame's neck on the photo's neck
    info = probe_video(tmp_path / "pose.mp4")
    assert (info.width, info.height) == (128, 152)  # follows the photo's aspect


def test_infer_from_a_real_video_and_from_keypoints(run_cli, dance_video, person_photo, tmp_path):
    result = run_cli(["infer", "--ref", person_photo, "--pose", dance_video, "--weights", "random:tiny", "-W", "64",
                      "--steps", "1", "--no-progress", "--grid", "-o", "a.mp4"])
    assert result.code == 0, result.err
    assert probe_video(tmp_path / "a.mp4").num_frames == 8
    grid = np.stack(list(read_frames(tmp_path / "a_grid.mp4")))
    pose_panel = grid[:, :, 64:128]
    assert pose_panel.max() > 100 and (pose_panel.max(axis=-1) < 24).mean() > 0.6  # a skeleton on black

    run_cli(["pose", dance_video, "-o", "p.mp4", "--keypoints", "kp.pose.npz", "--no-progress"])
    result = run_cli(["infer", "--ref", person_photo, "--pose", "kp.pose.npz", "--weights", "random:tiny", "-W", "64",
                      "--steps", "1", "--no-progress", "-o", "b.mp4", "-L", "5"])
    assert result.code == 0, result.err
    info = probe_video(tmp_path / "b.mp4")
    assert (info.num_frames, info.fps) == (5, 10)


def test_skeleton_video_is_used_as_is_with_a_note(run_cli, pose_video, ref_photo):
    result = run_cli(["infer", "--ref", ref_photo, "--pose", pose_video(4), "--weights", "random:tiny", "-W", "64",
                      "--steps", "1", "--no-progress"])
    assert result.code == 0, result.err
    assert "cannot be retargeted" in result.err


def test_no_person_in_the_video_is_one_clear_error(run_cli, blank_video, person_photo, tmp_path):
    result = run_cli(["infer", "--ref", person_photo, "--pose", blank_video, "--pose-type", "video",
                      "--weights", "random:tiny", "-W", "64", "--steps", "1", "--no-progress"])
    assert result.code != 0
    assert result.err.strip().splitlines() == [f"error: no person found in {blank_video}"]
    assert not (tmp_path / "outputs").exists() or not list((tmp_path / "outputs").iterdir())
    result = run_cli(["pose", blank_video, "-o", "p.mp4", "--no-progress"])
    assert result.code != 0 and "no person found" in result.err and not (tmp_path / "p.mp4").exists()


def test_no_person_in_the_photo_is_one_clear_error_unless_not_aligning(run_cli, dance_video, tmp_path):
    from PIL import Image

    Image.fromarray(np.full((96, 64, 3), 200, np.uint8)).save(tmp_path / "wall.png")
    args = ["infer", "--ref", "wall.png", "--pose", dance_video, "--weights", "random:tiny", "-W", "64", "--steps", "1",
            "--no-progress", "-o", "w.mp4"]
    result = run_cli(args)
    assert result.code != 0 and result.err.strip().splitlines() == ["error: no person found in the photo"]
    assert not (tmp_path / "w.mp4").exists()
    result = run_cli(args + ["--no-align"])
    assert result.code == 0, result.err


def test_pose_command_refuses_a_skeleton_video_and_bad_outputs(run_cli, pose_video, dance_video, tmp_path):
    result = run_cli(["pose", pose_video(4), "-o", "p.mp4"])
    assert result.code != 0 and "already a rendered pose video" in result.err
    result = run_cli(["pose", dance_video, "-o", "p.avi"])
    assert result.code != 0 and ".mp4" in result.err
    (tmp_path / "taken.mp4").write_bytes(b"x")
    result = run_cli(["pose", dance_video, "-o", "taken.mp4"])
    assert result.code != 0 and "already exists" in result.err and (tmp_path / "taken.mp4").read_bytes() == b"x"


def test_a_newer_keypoint_json_keeps_its_own_error(run_cli, tmp_path, ref_photo):
    (tmp_path / "new.json").write_text(json.dumps({"format": "animate-pose", "version": 99, "width": 8, "height": 8,
                                                   "fps": 1, "frames": []}))
    result = run_cli(["infer", "--ref", ref_photo, "--pose", "new.json", "--weights", "random:tiny", "-W", "64"])
    assert result.code == 2 and "newer" in result.err and "OpenPose" not in result.err


def test_an_output_that_cannot_be_renamed_into_place_leaves_nothing(run_cli, pose_video, ref_photo, tmp_path):
    (tmp_path / "taken.mp4").mkdir()  # a folder where the video should go
    result = run_cli(["infer", "--ref", ref_photo, "--pose", pose_video(3), "--weights", "random:tiny", "-W", "64",
                      "--steps", "1", "--no-progress", "-o", "taken.mp4", "--force"])
    assert result.code == 2 and result.err.strip().splitlines() == ["error: -o/--out taken.mp4 is a folder"]
    assert not list(tmp_path.glob(".*partial*"))


def test_video_writer_removes_its_temp_file_when_the_rename_fails(tmp_path):
    (tmp_path / "out.mp4").mkdir()
    with pytest.raises(AnimateError, match="cannot write"):
        with VideoWriter(tmp_path / "out.mp4", 8) as writer:
            writer.write(np.zeros((2, 16, 16, 3), np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]
