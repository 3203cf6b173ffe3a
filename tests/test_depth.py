"""Depth from real videos: the clip format, Depth Anything's preprocessing and loading, steadiness over time, placement
like the pose, and `animate depth` end to end with a tiny random model."""

import re
import warnings

import numpy as np
import pytest
import torch

from animate.depth.estimate import (INPUT_SIDE, MEAN, STD, estimate_nearness, input_size, load_depth_model,
                                    model_pixels)
from animate.depth.maps import LEVELS, DepthClip
from animate.depth.place import place_depth
from animate.depth.steady import fit_scale_shift, person_masks, steady
from animate.errors import AnimateError
from animate.media.video import VideoWriter, probe_video, read_frames
from animate.pose.keypoints import PoseSequence
from animate.pose.retarget import retarget_placed
from animate.pose.synthetic import draw_person, synthetic_dance

W, H, FPS = 64, 96, 12


# ---- the clip format ----------------------------------------------------------------------------------------------

def test_levels_span_the_clip_once_and_render_near_bright(tmp_path):
    nearness = np.stack([np.full((4, 5), 1.0), np.full((4, 5), 3.0)])
    nearness[1, 0, 0] = 2.0
    clip = DepthClip.from_nearness(nearness, FPS)
    assert clip.levels[0].max() == 0 and clip.levels[1, 1, 1] == LEVELS  # one mapping for the whole clip
    frames = clip.frames()
    assert frames.shape == (2, 4, 5, 3) and frames.dtype == np.uint8
    assert frames[0, 0, 0].tolist() == [0, 0, 0] and frames[1, 1, 1].tolist() == [255, 255, 255]
    assert frames[1, 0, 0, 0] == 128  # halfway in nearness, halfway in brightness
    np.testing.assert_allclose(clip.nearness(), nearness, atol=2 / LEVELS)
    loaded = DepthClip.load(clip.save(tmp_path / "a.depth.npz"))
    assert np.array_equal(loaded.levels, clip.levels) and (loaded.lo, loaded.hi, loaded.fps) == (1.0, 3.0, FPS)


def test_a_flat_clip_is_black_with_one_warning():
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="raise"):
        warnings.simplefilter("always")
        clip = DepthClip.from_nearness(np.full((3, 4, 4), 1e-9), FPS)
    assert [str(w.message) for w in caught] == ["the depth maps are flat (no depth seen): writing black frames"]
    assert clip.frames().max() == 0


def test_bad_depth_files_and_values_are_one_line_errors(tmp_path):
    (tmp_path / "bad.depth.npz").write_bytes(b"not a zip")
    with pytest.raises(AnimateError, match="not a depth file"):
        DepthClip.load(tmp_path / "bad.depth.npz")
    with pytest.raises(AnimateError, match="non-finite"):
        DepthClip.from_nearness(np.array([[[np.nan, 1.0]]]), FPS)


# ---- steady over time ---------------------------------------------------------------------------------------------

def _scene(rng, height=40, width=50):
    return rng.random((height, width)) + np.linspace(0, 3, width)[None]


def test_random_per_frame_affines_of_one_map_steady_to_identical_frames():
    rng = np.random.default_rng(0)
    scene = _scene(rng)
    scales, shifts = rng.uniform(0.2, 5, 8), rng.uniform(-3, 3, 8)
    clip = scales[:, None, None] * scene + shifts[:, None, None]
    raw = DepthClip.from_nearness(clip, FPS).frames()
    assert len({frame.tobytes() for frame in raw}) == 8  # unsteadied, every frame differs
    frames = DepthClip.from_nearness(steady(clip), FPS).frames()
    assert all(np.array_equal(frame, frames[0]) for frame in frames)
    assert np.array_equal(frames[0], DepthClip.from_nearness(scene[None], FPS).frames()[0])


def test_the_fit_uses_the_scene_outside_the_person():
    """A dancer who moves and changes depth does not drag the scene: outside her hull the frames come out equal."""
    rng = np.random.default_rng(1)
    scene = _scene(rng)
    people = np.zeros((5,) + scene.shape, bool)
    clip = []
    for k, (a, b) in enumerate(zip(rng.uniform(0.5, 2, 5), rng.uniform(-1, 1, 5))):
        frame = scene.copy()
        people[k, 10:30, 5 + 6 * k:15 + 6 * k] = True
        frame[people[k]] = 8 + 3 * k  # the dancer, nearer each frame
        clip.append(a * frame + b)
    steadied = steady(np.stack(clip), people)
    outside = ~people.any(0)
    for k in range(1, 5):
        np.testing.assert_allclose(steadied[k][outside], clip[0][outside], atol=1e-4)
    unmasked = steady(np.stack(clip))  # and the mask matters: without it, the dancer biases the fit
    assert np.abs(unmasked[4][outside] - clip[0][outside]).max() > 1e-2


def test_the_fit_is_robust_to_outliers():
    rng = np.random.default_rng(2)
    x = rng.random(20000)
    y = 2.5 * x - 0.7
    y[:2000] += rng.uniform(1, 10, 2000)  # a tenth of the pixels wrong by a lot
    a, b = fit_scale_shift(x, y)
    assert abs(a - 2.5) < 1e-3 and abs(b + 0.7) < 1e-3
    assert fit_scale_shift(np.ones(10), np.full(10, 4.0)) == (1.0, 3.0)  # a flat source: shift only


def test_person_masks_cover_the_keypoints_with_a_margin():
    seq = PoseSequence(np.zeros((1, 18, 3)), np.zeros((1, 2, 21, 3)), np.zeros((1, 68, 3)), W, H, FPS)
    seq.body[0, :3] = [[20, 30, 1], [40, 30, 1], [30, 60, 1]]
    mask = person_masks(seq, W, H)[0]
    assert mask[40, 30] and mask[30, 20] and not mask[5, 5] and not mask[90, 60]
    assert mask[27, 30] and not mask[25, 30]  # 3 px above the top edge (y = 30): the margin, 10% of 30 px
    assert not person_masks(PoseSequence.empty(1, W, H, FPS), W, H).any()


# ---- Depth Anything V2: preprocessing and loading -----------------------------------------------------------------

def test_input_size_follows_depth_anything_v2():
    assert input_size(512, 768) == (518, 784)  # short side 518, the long one rounded to a multiple of 14
    assert input_size(1920, 1080) == (924, 518)
    assert input_size(518, 518) == (518, 518)
    assert input_size(64, 96, 56) == (56, 84)
    for width, height in ((333, 517), (1000, 10)):
        w, h = input_size(width, height)
        assert w % 14 == 0 and h % 14 == 0 and min(w, h) >= INPUT_SIDE


def test_model_pixels_are_imagenet_normalised():
    frames = torch.full((2, 30, 20, 3), 200, dtype=torch.uint8)
    pixels = model_pixels(frames, 28)
    assert pixels.shape == (2, 3, 42, 28)
    expected = (200 / 255 - torch.tensor(MEAN)) / torch.tensor(STD)
    torch.testing.assert_close(pixels[0, :, 5, 5], expected, rtol=0, atol=1e-5)


def test_the_released_small_config_has_the_released_size():
    """configs/models/sd15/depth is Depth-Anything-V2-Small: 24.8 M parameters (counted on the meta device)."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation

    from animate.paths import model_size_dir

    config = DepthAnythingConfig.from_json_file(model_size_dir("sd15") / "depth" / "config.json")
    with torch.device("meta"):
        model = DepthAnythingForDepthEstimation(config)
    assert sum(p.numel() for p in model.parameters()) == 24_785_089


def test_a_saved_model_folder_loads_and_predicts_the_same(tmp_path):
    """The released layout (config.json + model.safetensors) through the real loading code."""
    model = load_depth_model("random:tiny")
    model.save_pretrained(tmp_path / "depth")
    assert sorted(p.name for p in (tmp_path / "depth").iterdir()) == ["config.json", "model.safetensors"]
    frames = np.random.default_rng(0).integers(0, 255, (2, H, W, 3), dtype=np.uint8)
    ours = estimate_nearness(model, frames, side=56)
    loaded = load_depth_model(tmp_path / "depth")
    assert ours.shape == (2, H, W) and ours.std() > 0  # a random model that still sees structure
    np.testing.assert_array_equal(estimate_nearness(loaded, frames, side=56), ours)
    # One frame a call: batching changes float32 rounding only (measured ≤ 8.3e-7 on maps of ~1, at the default,
    # avx2 and avx512 kernels).
    np.testing.assert_allclose(estimate_nearness(loaded, frames, side=56, batch_size=1), ours, rtol=0, atol=1e-5)


def test_missing_depth_weights_name_the_download(tmp_path):
    with pytest.raises(AnimateError, match="animate download --set depth"):
        load_depth_model(tmp_path / "nothing")


# ---- placed like the pose -----------------------------------------------------------------------------------------

def _body(neck, width):
    """A standing body: neck, shoulders, hips, knees and ankles around `neck`, `width` the shoulder span."""
    x, y = neck
    body = np.zeros((18, 3))
    for index, (dx, dy) in {1: (0, 0), 2: (-0.5, 0), 5: (0.5, 0), 8: (-0.3, 1.4), 11: (0.3, 1.4), 9: (-0.3, 2.5),
                            12: (0.3, 2.5), 10: (-0.3, 3.6), 13: (0.3, 3.6), 0: (0, -0.45)}.items():
        body[index] = (x + dx * width, y + dy * width, 1.0)
    return body


@pytest.mark.parametrize("align", [True, False])
def test_depth_lands_where_the_pose_does(align):
    """A bright dot on the driving neck, placed with the retargeting's placement and drawn on the canvas, lies where
    the retargeted neck is drawn."""
    size, photo_size, out_size = (200, 300), (120, 160), (96, 128)
    driving_body = _body((80.5, 90.5), 40)
    seq = PoseSequence(driving_body[None], np.zeros((1, 2, 21, 3)), np.zeros((1, 68, 3)), *size, FPS)
    placed, placement = retarget_placed(seq, _body((70, 40), 22), photo_size, align=align)
    yy, xx = np.mgrid[0:size[1], 0:size[0]] + 0.5
    dot = np.exp(-((xx - driving_body[1, 0]) ** 2 + (yy - driving_body[1, 1]) ** 2) / (2 * 6.0**2))
    depth = place_depth(dot[None].astype(np.float32), placement, photo_size, out_size)[0]
    weights = depth - depth.min()
    oy, ox = np.mgrid[0:out_size[1], 0:out_size[0]] + 0.5
    centre = np.array([(weights * ox).sum(), (weights * oy).sum()]) / weights.sum()
    neck = placed.body[0, 1, :2] * np.array(out_size) / np.array(photo_size)
    np.testing.assert_allclose(centre, neck, atol=0.25)


# ---- `animate depth` ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dance(tmp_path_factory):
    """A 6-frame video of a drawn person dancing and its keypoints (.pose.npz)."""
    folder = tmp_path_factory.mktemp("depth_dance")
    body = synthetic_dance(6, fps=FPS)[:6]
    with VideoWriter(folder / "dance.mp4", FPS) as writer:
        for frame in body:
            writer.write(draw_person(frame, W, H))
    pixels = body.copy()
    pixels[..., :2] *= (W, H)
    PoseSequence(pixels, np.zeros((6, 2, 21, 3)), np.zeros((6, 68, 3)), W, H, FPS).save(folder / "dance.pose.npz")
    return folder / "dance.mp4", folder / "dance.pose.npz"


TINY = ["--depth-model", "random:tiny", "--depth-size", "56", "--no-progress"]


def test_depth_end_to_end_with_a_tiny_model(run_cli, dance, tmp_path):
    video, keypoints = dance
    result = run_cli(["depth", video, "-o", tmp_path / "d.mp4", "--keypoints", keypoints, *TINY])
    assert result.code == 0, result.err
    clip = DepthClip.load(tmp_path / "d.depth.npz")
    info = probe_video(tmp_path / "d.mp4")
    assert (info.width, info.height, info.num_frames) == (512, 768, 6) == (*clip.levels.shape[:0:-1], 6)
    assert clip.levels.max() == LEVELS and clip.levels.min() == 0
    decoded = np.stack(list(read_frames(tmp_path / "d.mp4"))).astype(np.int16)
    assert np.abs(decoded - clip.frames()).mean() < 2  # the video is the maps, up to h264
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("tmp")) == ["d.depth.npz", "d.mp4"]


def test_depth_placed_on_a_photo(run_cli, dance, ref_photo, tmp_path):
    video, keypoints = dance
    result = run_cli(["depth", video, "-o", tmp_path / "d.mp4", "--keypoints", keypoints, "--ref", ref_photo,
                      "--no-align", "-W", "64", *TINY])
    assert result.code == 0, result.err
    assert DepthClip.load(tmp_path / "d.depth.npz").levels.shape == (6, 96, 64)


def test_a_flat_model_warns_in_one_line(run_cli, dance, tmp_path, monkeypatch):
    import animate.depth.video

    monkeypatch.setattr(animate.depth.video, "estimate_nearness",
                        lambda model, frames, side, batch, size: np.zeros((len(frames), size[1], size[0]), np.float32))
    video, keypoints = dance
    result = run_cli(["depth", video, "-o", tmp_path / "d.mp4", "--keypoints", keypoints, *TINY])
    assert result.code == 0, result.err
    assert "warning: the depth maps are flat (no depth seen): writing black frames" in result.err.splitlines()
    assert "UserWarning" not in result.err and DepthClip.load(tmp_path / "d.depth.npz").levels.max() == 0


@pytest.mark.parametrize("case, message", [
    ("no person", "no person found"),
    ("no weights", "animate download --set depth"),
    ("corrupt", "corrupt|not a video"),
    ("taken", "already exists"),
    ("folder", "is a folder"),
    ("short keypoints", "keypoints of 4 frames, but 6"),
])
def test_bad_depth_input_is_one_line_and_writes_nothing(run_cli, tmp_path, case, message, dance):
    video, _ = dance
    args = ["-o", tmp_path / "d.mp4", *TINY]
    if case == "no person":
        with VideoWriter(tmp_path / "empty.mp4", FPS) as writer:
            writer.write(np.full((3, H, W, 3), 90, np.uint8))
        args = [tmp_path / "empty.mp4", *args]
    elif case == "no weights":
        args = [video, *args, "--depth-model", tmp_path / "missing"]
    elif case == "corrupt":
        (tmp_path / "bad.mp4").write_bytes(b"\x00" * 2000)
        args = [tmp_path / "bad.mp4", *args, "--no-align"]
    elif case == "taken":
        (tmp_path / "d.mp4").write_bytes(b"mine")
        args = [video, *args, "--no-align"]
    elif case == "folder":
        (tmp_path / "d.depth.npz").mkdir()
        args = [video, *args, "--no-align", "--force"]
    else:
        short = PoseSequence.load(dance[1]).slice(0, 4).save(tmp_path / "short.pose.npz")
        args = [video, *args, "--keypoints", short]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_cli(["depth", *args])
    assert result.code != 0
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert re.search(message, lines[0]), lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, nothing left aside


def test_infer_depth_auto_is_the_depth_of_the_dance_placed_like_the_pose(dance):
    """`infer --control depth --depth auto` past keypoint extraction: the dance's depth, steadied around its keypoints,
    placed by the retargeting's placement and drawn at the output size, one frame per pose frame."""
    from animate.app.controls import ControlOptions, depth_frames
    from animate.pose.retarget import Placement

    video, keypoints = dance
    options = ControlOptions(control="depth", depth_model="random:tiny", depth_size=56)
    seq = PoseSequence.load(keypoints)
    frames = depth_frames(options, video, seq, Placement(0.5, np.array([8.0, 4.0])), (W, H), (32, 48), 4, False)
    assert len(frames) == 4 and frames.read(0, 4).shape == (4, 48, 32, 3)
    same = depth_frames(options, video, seq, Placement(1.0, np.zeros(2)), (W, H), (32, 48), 4, False).read(0, 4)
    assert not np.array_equal(frames.read(0, 4), same)  # the placement moved it
