"""Training datasets: frame sampling, the shared crop, preprocessing, lazy decoding and meta validation."""

import json
import warnings

import decord
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from animate.errors import AnimateError
from animate.pipeline.animate import clip_pixels
from animate.media.video import VideoWriter
from stages.datasets import Stage1Dataset, Stage2Dataset, read_frames_at

FRAME_W, FRAME_H, N, SHORT = 128, 96, 40, 8
W, H = 64, 48
MARKER = (slice(20, 36), slice(84, 100))  # rows, columns of a white square in every frame of every video


def video_frames(count: int, video: int, pose: bool) -> np.ndarray:
    """Frame i is flat grey 16 + 5i (a pose: 211 - 5i), blue raised by 40 in video 1, with the white marker."""
    frames = np.zeros((count, FRAME_H, FRAME_W, 3), np.uint8)
    for i in range(count):
        level = 211 - 5 * i if pose else 16 + 5 * i
        frames[i] = (level, level, level + 40 * video)
        frames[i][MARKER] = 255
    return frames


def write(path, frames: np.ndarray) -> str:
    with VideoWriter(path, 25) as writer:
        writer.write(frames)
    return path.name


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A folder with two 40-frame videos and their pose videos, an 8-frame pair, a meta.json of relative paths."""
    root = tmp_path_factory.mktemp("dataset")
    entries = [{"video_path": write(root / f"video{k}.mp4", video_frames(N, k, False)),
                "kps_path": write(root / f"pose{k}.mp4", video_frames(N, k, True))} for k in (0, 1)]
    write(root / "short.mp4", video_frames(SHORT, 0, False))
    write(root / "short_pose.mp4", video_frames(SHORT, 0, True))
    (root / "meta.json").write_text(json.dumps(entries))
    return root


def meta_file(folder, entries: list[tuple[str, str]], name: str = "extra.json"):
    path = folder / name
    path.write_text(json.dumps([{"video_path": str(v), "kps_path": str(p)} for v, p in entries]))
    return path


def vae_image(pixels: torch.Tensor) -> np.ndarray:
    """[3, H, W] in [-1, 1] → [H, W, 3] in 0..255."""
    return ((pixels + 1) * 127.5).permute(1, 2, 0).numpy()


def pose_image(pixels: torch.Tensor) -> np.ndarray:
    """[3, H, W] in [0, 1] → [H, W, 3] in 0..255."""
    return (pixels * 255).permute(1, 2, 0).numpy()


def frame_index(image: np.ndarray, pose: bool = False) -> int:
    """Which frame a (cropped) image shows, from its background grey level."""
    level = np.median(image[..., 1])
    index = (211 - level) / 5 if pose else (level - 16) / 5
    assert abs(index - round(index)) < 0.4, index
    return round(index)


def video_id(image: np.ndarray) -> int:
    """Which of the two videos an image comes from, from its blue offset."""
    return round((np.median(image[..., 2]) - np.median(image[..., 1])) / 40)


def marker_centre(image: np.ndarray) -> np.ndarray:
    """(x, y) centroid of the white marker."""
    darkest = image.min(-1)
    ys, xs = np.nonzero(darkest > (np.median(darkest) + 255) / 2)
    return np.array([xs.mean(), ys.mean()])


def decoded_frame(path, index: int) -> np.ndarray:
    decord.bridge.set_bridge("native")
    return decord.VideoReader(str(path)).get_batch([index]).asnumpy()[0]


def test_stage1_item(data):
    dataset = Stage1Dataset(data / "meta.json", W, H, sample_margin=30, seed=0)
    assert len(dataset) == 2
    item = dataset[1]
    shapes = {"pixel_values": (3, H, W), "ref_pixel_values": (3, H, W), "pose_pixel_values": (3, H, W),
              "clip_pixel_values": (3, 224, 224)}
    assert {k: tuple(v.shape) for k, v in item.items()} == shapes
    assert all(v.dtype == torch.float32 for v in item.values())
    for key in ("pixel_values", "ref_pixel_values"):
        assert -1 <= item[key].min() and item[key].max() <= 1
    assert min(item["pixel_values"].min(), item["ref_pixel_values"].min()) < -0.4  # one of them is an early, dark frame
    assert 0 <= item["pose_pixel_values"].min() and item["pose_pixel_values"].max() <= 1


def test_stage1_sampling_and_shared_crop(data):
    centres = []
    for seed in range(10):
        dataset = Stage1Dataset(data / "meta.json", W, H, sample_margin=30, seed=seed)
        for video in (0, 1):
            item = dataset[video]
            ref, target, pose = (vae_image(item["ref_pixel_values"]), vae_image(item["pixel_values"]),
                                 pose_image(item["pose_pixel_values"]))
            ref_index, target_index = frame_index(ref), frame_index(target)
            assert abs(ref_index - target_index) >= 30
            assert frame_index(pose, pose=True) == target_index
            assert video_id(ref) == video_id(target) == video_id(pose) == video
            centre = marker_centre(target)
            np.testing.assert_allclose(marker_centre(ref), centre, atol=0.5)
            np.testing.assert_allclose(marker_centre(pose), centre, atol=0.5)
            centres.append(centre)
            expected_clip = clip_pixels(Image.fromarray(decoded_frame(data / f"video{video}.mp4", ref_index)))[0]
            torch.testing.assert_close(item["clip_pixel_values"], expected_clip)
    assert np.ptp(np.array(centres), axis=0).min() > 1  # the crop box moves between items


def test_stage1_short_video_uses_the_widest_gap(data):
    meta = meta_file(data, [("short.mp4", "short_pose.mp4")], "short.json")
    for seed in range(4):
        item = Stage1Dataset(meta, W, H, sample_margin=30, seed=seed)[0]
        pair = {frame_index(vae_image(item["ref_pixel_values"])), frame_index(vae_image(item["pixel_values"]))}
        assert pair == {0, SHORT - 1}


def test_stage2_item(data):
    frames = 8
    for seed in range(4):
        dataset = Stage2Dataset(data / "meta.json", W, H, n_sample_frames=frames, sample_rate=4, seed=seed)
        for video in (0, 1):
            item = dataset[video]
            assert tuple(item["pixel_values"].shape) == (frames, 3, H, W)
            assert tuple(item["pose_pixel_values"].shape) == (frames, 3, H, W)
            assert tuple(item["ref_pixel_values"].shape) == (3, H, W)
            assert tuple(item["clip_pixel_values"].shape) == (3, 224, 224)
            assert item["pixel_values"].abs().max() <= 1 and 0 <= item["pose_pixel_values"].min()
            assert item["pose_pixel_values"].max() <= 1
            images = [vae_image(p) for p in item["pixel_values"]]
            poses = [pose_image(p) for p in item["pose_pixel_values"]]
            indices = [frame_index(image) for image in images]
            assert np.all(np.diff(indices) == 4) and 0 <= indices[0] and indices[-1] < N
            assert [frame_index(pose, pose=True) for pose in poses] == indices
            ref = vae_image(item["ref_pixel_values"])
            ref_index = frame_index(ref)
            assert {video_id(image) for image in images + poses + [ref]} == {video}
            centre = marker_centre(ref)
            for image in images + poses:
                np.testing.assert_allclose(marker_centre(image), centre, atol=0.5)
            expected_clip = clip_pixels(Image.fromarray(decoded_frame(data / f"video{video}.mp4", ref_index)))[0]
            torch.testing.assert_close(item["clip_pixel_values"], expected_clip)


def test_stage2_lowers_the_stride_and_skips_short_videos(data):
    item = Stage2Dataset(data / "meta.json", W, H, n_sample_frames=8, sample_rate=8, seed=0)[0]
    indices = [frame_index(vae_image(p)) for p in item["pixel_values"]]
    assert np.all(np.diff(indices) == (N - 1) // 7)
    entries = [("video0.mp4", "pose0.mp4"), ("short.mp4", "short_pose.mp4"), ("video1.mp4", "pose1.mp4")]
    meta = meta_file(data, entries, "mixed.json")
    with pytest.warns(UserWarning, match="skipping 1 of 3 videos with fewer than 16 frames"):
        dataset = Stage2Dataset(meta, W, H, n_sample_frames=16, seed=0)
    assert len(dataset) == 2 and [e.num_frames for e in dataset.entries] == [N, N]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(AnimateError, match="no video in the dataset meta has at least 41 frames"):
            Stage2Dataset(meta, W, H, n_sample_frames=41)


def test_determinism(data):
    meta = data / "meta.json"
    for make in (lambda seed: Stage1Dataset(meta, W, H, seed=seed),
                 lambda seed: Stage2Dataset(meta, W, H, 8, seed=seed)):
        first, again, other = make(3)[1], make(3)[1], make(4)[1]
        assert all(torch.equal(first[k], again[k]) for k in first)
        assert not torch.equal(first["pixel_values"], other["pixel_values"])


def test_decodes_only_the_sampled_frames(data, monkeypatch):
    requested = []
    get_batch = decord.VideoReader.get_batch

    def spy(self, indices):
        requested.append(len(indices))
        return get_batch(self, indices)

    monkeypatch.setattr(decord.VideoReader, "get_batch", spy)
    Stage2Dataset(data / "meta.json", W, H, n_sample_frames=8, seed=0)[0]
    assert len(requested) == 2 and requested[0] <= 9 and requested[1] == 8
    requested.clear()
    Stage1Dataset(data / "meta.json", W, H, seed=0)[0]
    assert requested == [2, 1]
    assert read_frames_at(str(data / "video0.mp4"), [5, 3, 5]).shape == (3, FRAME_H, FRAME_W, 3)
    assert requested[-1] == 2


def test_data_loader_batches(data):
    stage1 = next(iter(DataLoader(Stage1Dataset(data / "meta.json", W, H, seed=0), batch_size=2, num_workers=0)))
    assert tuple(stage1["pixel_values"].shape) == (2, 3, H, W)
    assert tuple(stage1["clip_pixel_values"].shape) == (2, 3, 224, 224)
    stage2 = next(iter(DataLoader(Stage2Dataset(data / "meta.json", W, H, 8, seed=0), batch_size=2, num_workers=0)))
    assert tuple(stage2["pixel_values"].shape) == tuple(stage2["pose_pixel_values"].shape) == (2, 8, 3, H, W)
    assert tuple(stage2["ref_pixel_values"].shape) == (2, 3, H, W)


def test_meta_paths_resolve_against_the_meta_folder(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    absolute = meta_file(tmp_path, [(data / "video0.mp4", data / "pose0.mp4")])
    dataset = Stage1Dataset([data / "meta.json", absolute], W, H)
    assert [e.video for e in dataset.entries] == [str(data / f"video{k}.mp4") for k in (0, 1, 0)]


def test_meta_validation(data, tmp_path):
    with pytest.raises(AnimateError, match="dataset meta not found"):
        Stage1Dataset(tmp_path / "none.json", W, H)
    missing = tmp_path / "missing.mp4"
    with pytest.raises(AnimateError, match=f"video not found: {missing}"):
        Stage1Dataset(meta_file(tmp_path, [(missing, data / "pose0.mp4")]), W, H)
    with pytest.raises(AnimateError) as error:
        Stage1Dataset(meta_file(tmp_path, [(data / "video0.mp4", data / "short_pose.mp4")]), W, H)
    assert str(data / "video0.mp4") in str(error.value) and str(data / "short_pose.mp4") in str(error.value)
    assert f"{N} frames" in str(error.value) and "\n" not in str(error.value)
    (tmp_path / "bad.json").write_text(json.dumps([{"video_path": "video0.mp4"}]))
    with pytest.raises(AnimateError, match="entry 0 needs string fields video_path and kps_path"):
        Stage1Dataset(tmp_path / "bad.json", W, H)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(AnimateError, match="cannot read dataset meta"):
        Stage1Dataset(tmp_path / "broken.json", W, H)
    with pytest.raises(AnimateError, match="multiples of 8"):
        Stage1Dataset(data / "meta.json", 60, H)


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_a_video_lost_mid_run_is_skipped_with_a_warning(data, tmp_path, damage):
    """The up-front check passed; then a video went away or was cut short. Its items come from the next readable
    video, with a warning; with no readable video left, one clear error."""
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(data, root)
    dataset = Stage1Dataset(root / "meta.json", W, H, sample_margin=30, seed=0)
    lost = root / "video0.mp4"
    if damage == "deleted":
        lost.unlink()
    else:
        lost.write_bytes(lost.read_bytes()[:300])
    with pytest.warns(UserWarning, match=f"skipping {lost}"):
        item = dataset[0]
    assert video_id(vae_image(item["pixel_values"])) == 1  # from the other video
    assert video_id(vae_image(dataset[1]["pixel_values"])) == 1
    (root / "video1.mp4").unlink()
    with pytest.warns(UserWarning), pytest.raises(AnimateError, match="none of the 2 videos"):
        dataset[0]


@pytest.fixture(scope="module")
def depth_data(data):
    """The two videos with depth videos (frames like the video's: grey 16 + 5i, the marker) in a meta with depth_path."""
    entries = json.loads((data / "meta.json").read_text())
    for k, entry in enumerate(entries):
        entry["depth_path"] = write(data / f"depth{k}.mp4", video_frames(N, k, False))
    (data / "meta_depth.json").write_text(json.dumps(entries))
    return data / "meta_depth.json"


def test_stage1_depth_frames_share_the_target_and_its_crop(depth_data):
    dataset = Stage1Dataset(depth_data, W, H, sample_margin=30, seed=3, depth=True)
    for video in (0, 1):
        item = dataset[video]
        target, depth = vae_image(item["pixel_values"]), pose_image(item["depth_pixel_values"])
        assert item["depth_pixel_values"].shape == (3, H, W)
        assert frame_index(depth) == frame_index(target) and video_id(depth) == video
        np.testing.assert_allclose(marker_centre(depth), marker_centre(target), atol=0.5)
    assert "depth_pixel_values" not in Stage1Dataset(depth_data, W, H, seed=3)[0]


def test_stage2_depth_clip_follows_the_frames(depth_data):
    dataset = Stage2Dataset(depth_data, W, H, n_sample_frames=4, sample_rate=3, seed=5, depth=True)
    item = dataset[1]
    assert item["depth_pixel_values"].shape == (4, 3, H, W)
    for frame, depth in zip(item["pixel_values"], item["depth_pixel_values"]):
        assert frame_index(pose_image(depth)) == frame_index(vae_image(frame))
        np.testing.assert_allclose(marker_centre(pose_image(depth)), marker_centre(vae_image(frame)), atol=0.5)


def test_depth_asked_of_a_meta_without_it(data, depth_data, tmp_path):
    with pytest.raises(AnimateError, match="no depth_path"):
        Stage1Dataset(data / "meta.json", W, H, depth=True)
    entries = json.loads(depth_data.read_text())
    entries[0]["depth_path"] = "short.mp4"
    (data / "meta_short_depth.json").write_text(json.dumps(entries))
    with pytest.raises(AnimateError, match="frame counts differ"):
        Stage2Dataset(data / "meta_short_depth.json", W, H, depth=True)
