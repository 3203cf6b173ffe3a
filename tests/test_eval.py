"""animate eval: the metrics on known inputs, PNG folders and h264 videos, name matching, one-line errors, JSON."""

import json
import math

import cv2
import numpy as np
import pytest
from PIL import Image

from animate.errors import AnimateError
from animate.app.evaluation import (evaluate, evaluate_pair, flicker, format_table, l1, psnr, read_video_frames, run_eval,
                                ssim)
from animate.media.video import VideoWriter, read_frames

W, H, N = 32, 24, 6


def moving(n: int = N, width: int = W, height: int = H) -> np.ndarray:
    """A smooth colour gradient drifting one pixel a frame, [n, H, W, 3] float64 in [0, 1]."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    frames = [np.stack([0.5 + 0.4 * np.sin((x + t) / width * 2 * np.pi),
                        0.5 + 0.4 * np.cos((y - t) / height * 2 * np.pi),
                        np.full_like(x, 0.2 + 0.05 * t)], -1) for t in range(n)]
    return np.stack(frames)


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Float frames in [0, 1] as uint8."""
    return np.round(np.clip(frames, 0, 1) * 255).astype(np.uint8)


def write_pngs(folder, frames: np.ndarray):
    """Write uint8 frames as 000000.png, ... into folder (made here); return folder."""
    folder.mkdir(parents=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{i:06d}.png")
    return folder


def write_video(path, frames: np.ndarray):
    """Write uint8 frames as an h264 mp4 with animate's VideoWriter; return path."""
    with VideoWriter(path, 12) as writer:
        writer.write(frames)
    return path


def one_line_error(call, *words: str) -> str:
    """Run call, expecting an AnimateError of one line that mentions every word."""
    with pytest.raises(AnimateError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and all(word in message for word in words), message
    return message


def test_identical_videos():
    frames = moving()
    assert psnr(frames, frames.copy()) == math.inf
    assert ssim(frames, frames.copy()) == 1.0
    assert l1(frames, frames.copy()) == 0.0
    assert flicker(frames, frames.copy()) == 1.0


def test_identical_png_folders(tmp_path):
    frames = to_uint8(moving())
    pred, gt = write_pngs(tmp_path / "pred", frames), write_pngs(tmp_path / "gt", frames)
    assert evaluate_pair(pred, gt) == {"psnr": math.inf, "ssim": 1.0, "l1": 0.0, "flicker": 1.0, "frames": N}


def test_known_offsets_on_png_frames(tmp_path):
    gt = np.full((3, H, W, 3), 102, np.uint8)  # 0.4
    shifted = gt + np.uint8(51)  # 0.6 everywhere: MSE 0.04
    quarter = gt.copy()
    quarter[:, ::2, ::2] += 51  # 0.2 off on a quarter of the pixels: MSE 0.01
    gt_dir = write_pngs(tmp_path / "gt", gt)
    everywhere = evaluate_pair(write_pngs(tmp_path / "shifted", shifted), gt_dir)
    assert everywhere["psnr"] == pytest.approx(10 * math.log10(25), abs=1e-9)
    assert everywhere["l1"] == pytest.approx(0.2, abs=1e-12)
    assert everywhere["flicker"] == 1.0  # both static
    some = evaluate_pair(write_pngs(tmp_path / "quarter", quarter), gt_dir)
    assert some["psnr"] == pytest.approx(20.0, abs=1e-9)
    assert some["l1"] == pytest.approx(0.05, abs=1e-12)
    assert read_video_frames(gt_dir).dtype == np.float32
    assert psnr(read_video_frames(tmp_path / "quarter"), read_video_frames(gt_dir)) == pytest.approx(20.0, abs=1e-4)


def test_psnr_is_the_mean_of_frames_and_inf_if_one_is_identical():
    gt = np.full((2, H, W, 3), 0.5)
    pred = gt.copy()
    pred[0] += 0.1  # 20 dB
    pred[1] += 0.01  # 40 dB
    assert psnr(pred, gt) == pytest.approx(30.0)
    pred[1] = gt[1]
    assert psnr(pred, gt) == math.inf


def test_ssim_falls_with_noise_and_blur():
    gt = moving(2)
    rng = np.random.default_rng(0)
    scores = [ssim(np.clip(gt + rng.normal(0, sigma, gt.shape), 0, 1), gt) for sigma in (0.01, 0.03, 0.1, 0.3)]
    assert 1 > scores[0] > scores[1] > scores[2] > scores[3]
    blurred = np.stack([cv2.blur(frame, (5, 5)) for frame in gt])
    assert ssim(blurred, gt) < 1


def test_ssim_matches_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(1)
    gt = rng.random((2, 20, 27, 3))
    pred = np.clip(gt + rng.normal(0, 0.1, gt.shape), 0, 1)
    expected = np.mean([metrics.structural_similarity(p, g, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                                      use_sample_covariance=False, data_range=1.0)
                        for p, g in zip(pred, gt)])
    assert ssim(pred, gt) == pytest.approx(expected, abs=1e-12)


def test_flicker():
    gt = moving(8)
    alternating = gt.copy()
    alternating[1::2] = np.clip(alternating[1::2] + 0.1, 0, 1)
    assert flicker(alternating, gt) > 1
    frozen = np.repeat(gt[:1], 8, axis=0)
    assert flicker(frozen, gt) == 0.0
    assert flicker(gt[::-1].copy(), gt) == pytest.approx(1.0)
    static = np.full_like(gt, 0.3)
    assert flicker(static, static) == 1.0 and flicker(gt, static) == math.inf
    assert math.isnan(flicker(gt[:1], gt[:1]))


def test_pure_functions_refuse_bad_arrays():
    with pytest.raises(ValueError):
        psnr(moving(2), moving(3))
    with pytest.raises(ValueError):
        l1(to_uint8(moving(2)), to_uint8(moving(2)))
    one_line_error(lambda: ssim(moving(1, 10, 10), moving(1, 10, 10)), "11x11", "10x10")


def test_h264_videos(tmp_path):
    frames = to_uint8(moving(8, 64, 48))
    first = write_video(tmp_path / "first.mp4", frames)
    again = write_video(tmp_path / "again.mp4", np.stack(list(read_frames(first))))
    self_scores = evaluate_pair(first, first)
    assert self_scores["psnr"] == math.inf and self_scores["ssim"] == 1.0 and self_scores["frames"] == 8
    scores = evaluate_pair(again, first)
    assert 35 < scores["psnr"] < math.inf and 0.95 < scores["ssim"] < 1 and scores["l1"] < 0.02
    assert scores["flicker"] == pytest.approx(1.0, abs=0.1)
    decoded = write_pngs(tmp_path / "decoded", np.stack(list(read_frames(first))))
    assert evaluate_pair(decoded, first)["psnr"] == math.inf  # PNG frames and the decoder agree
    video = read_video_frames(first)
    assert video.shape == (8, 48, 64, 3) and video.dtype == np.float32 and 0 <= video.min() <= video.max() <= 1


def test_png_frames_in_natural_order(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for value in (1, 2, 10):
        Image.fromarray(np.full((H, W, 3), value, np.uint8)).save(folder / f"frame_{value}.png")
    (folder / "notes.txt").write_text("not a frame")
    assert [round(v * 255) for v in read_video_frames(folder)[:, 0, 0, 0]] == [1, 2, 10]


def test_folders_matched_by_name(tmp_path):
    a, b = to_uint8(moving(4, 32, 24)), to_uint8(moving(4, 32, 24)[::-1].copy())
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    write_video(pred / "alpha.mp4", a)
    write_pngs(pred / "beta", b)
    write_pngs(gt / "alpha", a)
    write_video(gt / "beta.mp4", b)
    (pred / "readme.txt").write_text("ignored")
    rows = evaluate(pred, gt)
    assert [row["name"] for row in rows] == ["alpha", "beta"]
    assert [row["gt"] for row in rows] == [str(gt / "alpha"), str(gt / "beta.mp4")]
    assert all(30 < row["psnr"] < math.inf and row["frames"] == 4 for row in rows)

    write_pngs(pred / "gamma", a)
    write_pngs(gt / "delta", a)
    one_line_error(lambda: evaluate(pred, gt), "only in", "gamma", "delta")
    write_video(gt / "gamma.mov", a)
    write_pngs(gt / "gamma", a)
    one_line_error(lambda: evaluate(pred, gt), "two videos named gamma", "gamma.mov")


def test_one_video_against_a_folder_and_missing_paths(tmp_path):
    video = write_pngs(tmp_path / "one", to_uint8(moving(2)))
    folder = tmp_path / "many"
    write_pngs(folder / "x", to_uint8(moving(2)))
    one_line_error(lambda: evaluate(video, folder), str(video), str(folder), "one video")
    one_line_error(lambda: evaluate(tmp_path / "nothing", video), "not found")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty2").mkdir()
    one_line_error(lambda: evaluate(tmp_path / "empty", tmp_path / "empty2"), "no videos", "empty")


def test_frame_count_and_size_mismatch(tmp_path):
    four = write_pngs(tmp_path / "four", to_uint8(moving(4)))
    three = write_pngs(tmp_path / "three", to_uint8(moving(3)))
    one_line_error(lambda: evaluate_pair(four, three), str(four), str(three), "4 frames", "has 3")
    big = write_video(tmp_path / "big.mp4", to_uint8(moving(4, 64, 48)))
    one_line_error(lambda: evaluate(big, four), "big.mp4 is 64x48", f"four is {W}x{H}")
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "four" / "000004.png")
    five = write_pngs(tmp_path / "five", to_uint8(moving(5)))
    one_line_error(lambda: evaluate_pair(four, five), "000004.png is 10x10")


def test_a_decoder_that_stops_early(tmp_path, monkeypatch):
    from animate.app import evaluation

    frames = to_uint8(moving(4, 32, 24))
    video, pngs = write_video(tmp_path / "short.mp4", frames), write_pngs(tmp_path / "pngs", frames)
    monkeypatch.setattr(evaluation, "read_frames", lambda path: iter(list(read_frames(path))[:3]))
    one_line_error(lambda: evaluate_pair(video, pngs), "short.mp4 ended after 3 of its 4 frames")


def test_table_and_json(tmp_path):
    frames = to_uint8(moving(3))
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    write_pngs(pred / "same", frames)
    write_pngs(gt / "same", frames)
    write_pngs(pred / "other", np.clip(frames.astype(int) + 10, 0, 255).astype(np.uint8))
    write_pngs(gt / "other", frames)
    out = tmp_path / "report" / "eval.json"
    table = run_eval(pred, gt, json_out=out)
    lines = table.splitlines()
    assert lines[0] == "| video | frames | PSNR (dB) | SSIM | L1 | flicker |" and len(lines) == 5
    other_psnr = -10 * math.log10(np.mean((np.clip(frames.astype(int) + 10, 0, 255) - frames) ** 2) / 255**2)
    assert lines[2].startswith(f"| other | 3 | {other_psnr:.2f} |")
    assert lines[3] == "| same | 3 | inf | 1.0000 | 0.0000 | 1.000 |"
    assert lines[4].startswith(f"| mean | 6 | {other_psnr:.2f} |")  # the inf PSNR is left out of the mean
    assert format_table([{"name": "a", "frames": 1, "psnr": 30.0, "ssim": 0.9, "l1": 0.1, "flicker": math.nan}]
                        ).splitlines()[2] == "| a | 1 | 30.00 | 0.9000 | 0.1000 | n/a |"

    def strict(name):
        raise ValueError(f"not JSON: {name}")

    data = json.loads(out.read_text(), parse_constant=strict)
    assert [row["name"] for row in data["videos"]] == ["other", "same"]
    assert data["videos"][1]["psnr"] == "inf" and data["videos"][1]["ssim"] == 1.0
    assert data["mean"]["frames"] == 6 and data["mean"]["psnr"] == pytest.approx(other_psnr)
    assert sorted(p.name for p in out.parent.iterdir()) == ["eval.json"]


def test_eval_command_prints_the_table_and_writes_json(run_cli, tmp_path):
    for name, value in (("pred", 153), ("gt", 102)):  # 0.6 vs 0.4 everywhere: MSE 0.04, PSNR 13.98 dB
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray(np.full((16, 16, 3), value, np.uint8)).save(tmp_path / name / f"{i:06d}.png")
    result = run_cli(["eval", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--json", "scores.json"])
    assert result.code == 0, result.err
    assert "13.98" in result.out and "| mean |" in result.out.replace("**", "")
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert abs(scores["mean"]["psnr"] - 10 * np.log10(25)) < 1e-6 and abs(scores["mean"]["l1"] - 0.2) < 1e-6
    result = run_cli(["eval", "--pred", tmp_path / "pred", "--gt", tmp_path / "nope"])
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
