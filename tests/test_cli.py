"""The `animate` command end to end: infer (random and on-disk tiny weights), convert, and one-line errors."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from animate.pipeline.animate import AnimatePipeline
from animate.pose.keypoints import PoseSequence
from animate.media.video import VideoWriter, fit_frame, probe_video, read_frames

FAST = ["-W", "64", "--steps", "2", "--no-progress"]  # 64x96 canvas for the 64x96 photo


def infer_args(ref: Path, pose: Path, weights="random:tiny", *extra) -> list:
    return ["infer", "--ref", ref, "--pose", pose, "--weights", weights, *FAST, *extra]


def leftovers(root: Path) -> list[Path]:
    """Files a failed run must not leave: anything under outputs/, any *.partial* file, any temporary file."""
    found = [p for p in (root / "outputs").rglob("*") if p.is_file()] if (root / "outputs").exists() else []
    found += [p for p in root.rglob("*.partial*")]
    found += [p for p in (root / "tmp").rglob("*")]
    return sorted(set(found))


def assert_one_error_line(result, code: int | None = None) -> str:
    """A refused run: non-zero exit, stderr exactly one 'error: ...' line, no traceback; returns the line."""
    assert result.code != 0, result
    if code is not None:
        assert result.code == code, result
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ") and len(lines[0]) > len("error: ") + 5, result.err
    assert "Traceback" not in result.err
    return lines[0]


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


# --- infer: success paths -----------------------------------------------------------------------------------


def test_infer_random_tiny_default_output_names(run_cli, ref_photo, pose_video, tmp_path):
    pose = pose_video(10, fps=12)
    result = run_cli(infer_args(ref_photo, pose))
    assert result.code == 0, result.err
    first = Path("outputs") / f"{ref_photo.stem}_{pose.stem}_42.mp4"
    assert result.out.splitlines()[-1] == str(first)
    info = probe_video(tmp_path / first)
    assert (info.width, info.height) == (64, 96)  # the photo's 2:3 aspect at -W 64
    assert info.num_frames == 10
    assert info.fps == pytest.approx(12.0)
    assert "random weights" in result.err and "position table 32 frames" in result.err
    assert leftovers(tmp_path) == [tmp_path / first]

    before = (tmp_path / first).read_bytes()
    again = run_cli(infer_args(ref_photo, pose))
    assert again.code == 0, again.err
    second = Path("outputs") / f"{ref_photo.stem}_{pose.stem}_42_1.mp4"
    assert again.out.splitlines()[-1] == str(second)
    assert probe_video(tmp_path / second).num_frames == 10
    assert (tmp_path / first).read_bytes() == before  # the first result is not overwritten

    seeded = run_cli(infer_args(ref_photo, pose, "random:tiny", "--seed", "7", "-L", "2"))
    assert seeded.code == 0, seeded.err
    assert seeded.out.splitlines()[-1] == str(Path("outputs") / f"{ref_photo.stem}_{pose.stem}_7.mp4")


def test_infer_moore_folder_fps_max_frames_grid(run_cli, ref_photo, pose_video, tiny_moore_weights, tmp_path):
    pose = pose_video(12, fps=12)
    out = tmp_path / "clip.mp4"
    result = run_cli(infer_args(ref_photo, pose, tiny_moore_weights, "-L", "5", "--fps", "8", "--grid", "-o", out))
    assert result.code == 0, result.err
    assert result.out.splitlines()[-1] == str(out)
    assert "profile moore" in result.err and "random weights" not in result.err
    info = probe_video(out)
    assert (info.width, info.height, info.num_frames) == (64, 96, 5)
    assert info.fps == pytest.approx(8.0)  # --fps overrides the pose video's 12

    grid = tmp_path / "clip_grid.mp4"
    grid_info = probe_video(grid)
    assert (grid_info.width, grid_info.height, grid_info.num_frames) == (3 * 64, 96, 5)
    assert grid_info.fps == pytest.approx(8.0)
    # ref | pose | result, each panel what it claims to be (h264 is lossy: compare loosely, but against a
    # baseline — a wrong panel differs by far more than encoding noise)
    grid_frames = np.stack(list(read_frames(grid)))
    result_frames = np.stack(list(read_frames(out)))
    pose_frames = np.stack(list(read_frames(pose, 0, 5, size=(64, 96))))
    ref = np.asarray(Image.open(ref_photo).convert("RGB"))
    assert mean_abs(grid_frames[:, :, :64], np.broadcast_to(ref, (5, 96, 64, 3))) < 10  # measured ~3
    assert mean_abs(grid_frames[:, :, 64:128], pose_frames) < 10  # ~0.6
    assert mean_abs(grid_frames[:, :, 128:], result_frames) < 10  # ~3
    assert mean_abs(grid_frames[:, :, 64:128], result_frames) > 40  # ~120: the panels really differ
    assert sorted(p.name for p in tmp_path.glob("*.mp4")) == ["clip.mp4", "clip_grid.mp4"]
    assert leftovers(tmp_path) == []


def test_infer_landscape_pose_is_letterboxed_into_portrait_canvas(run_cli, ref_photo, pose_video, tmp_path):
    pose = pose_video(6, width=96, height=64, fps=12)
    result = run_cli(infer_args(ref_photo, pose, "random:tiny", "--grid", "-o", "land.mp4"))
    assert result.code == 0, result.err
    info = probe_video(tmp_path / "land.mp4")
    assert (info.width, info.height, info.num_frames) == (64, 96, 6)
    grid = np.stack(list(read_frames(tmp_path / "land_grid.mp4")))
    assert grid.shape == (6, 96, 192, 3)
    pose_panel = grid[:, :, 64:128]
    # 96x64 scaled to 64x43 and centred: black bands of ~26 rows above and below, the drawing in between
    assert pose_panel[:, :24].max() < 30 and pose_panel[:, -24:].max() < 30  # measured 4 (h264 ringing)
    assert pose_panel[:, 30:68].max() > 50  # measured 90 (the limbs, dimmed to 60%)
    expected = np.stack([fit_frame(f, 64, 96) for f in read_frames(pose)])
    assert mean_abs(grid[:, :, 64:128], expected) < 10  # measured ~0.4


def test_existing_output_is_refused_unless_forced(run_cli, ref_photo, pose_video, tiny_ours_weights, tmp_path):
    pose = pose_video(10, fps=12)
    out = tmp_path / "taken.mp4"
    out.write_bytes(b"precious bytes")
    refused = run_cli(infer_args(ref_photo, pose, tiny_ours_weights, "-L", "2", "-o", out))
    line = assert_one_error_line(refused, 2)
    assert "already exists" in line and "--force" in line
    assert out.read_bytes() == b"precious bytes"

    forced = run_cli(infer_args(ref_photo, pose, tiny_ours_weights, "-L", "2", "-o", out, "--force"))
    assert forced.code == 0, forced.err
    assert probe_video(out).num_frames == 2
    assert leftovers(tmp_path) == []


# --- infer: bad inputs ---------------------------------------------------------------------------------------


def _linked_copy(src: Path, dst: Path, replace: dict[str, bytes | dict]) -> Path:
    """A weight folder that links to src's files except those in `replace` (raw bytes, or a state dict to save)."""
    dst.mkdir()
    for entry in src.iterdir():
        if entry.name in replace:
            content = replace[entry.name]
            if isinstance(content, dict):
                torch.save(content, dst / entry.name)
            else:
                (dst / entry.name).write_bytes(content)
        else:
            (dst / entry.name).symlink_to(entry)
    return dst


def _drop_motion_key(src: Path, dst: Path) -> tuple[Path, str]:
    state = torch.load(src / "motion_module.pth", weights_only=True)
    key = sorted(state)[len(state) // 2]
    del state[key]
    return _linked_copy(src, dst, {"motion_module.pth": state}), key


def _bad_case(name: str, tmp_path: Path, ref: Path, pose: Path, moore: Path) -> tuple[list, list[str]]:
    """(infer arguments, substrings the error line must contain) for one kind of bad input. Cases given the missing
    weights `no_weights` prove their refusal comes before any model is looked for."""
    if name == "missing-ref":
        return infer_args(tmp_path / "nobody.png", pose), ["image not found", "nobody.png"]
    if name == "text-ref":
        (tmp_path / "notes.png").write_text("this is not a picture\n")
        return infer_args(tmp_path / "notes.png", pose), ["cannot read image", "notes.png"]
    if name == "empty-pose":
        (tmp_path / "empty.mp4").write_bytes(b"")
        return infer_args(ref, tmp_path / "empty.mp4"), ["empty", "empty.mp4"]
    if name == "corrupt-pose":
        (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(20000))
        return infer_args(ref, tmp_path / "noise.mp4"), ["cannot read video", "noise.mp4"]
    if name == "missing-weights":
        return infer_args(ref, pose, tmp_path / "no_weights"), ["weights not found", "no_weights"]
    if name == "garbage-unet":
        folder = _linked_copy(moore, tmp_path / "garbage", {"denoising_unet.pth": os.urandom(4096)})
        return infer_args(ref, pose, folder), ["denoising_unet.pth", "not a readable weight file"]
    if name == "motion-key-missing":
        folder, key = _drop_motion_key(moore, tmp_path / "partial_mm")
        return infer_args(ref, pose, folder), ["motion_module.pth", f"missing key '{key}'"]
    if name == "width-not-multiple-of-8":
        return infer_args(ref, pose, "random:tiny", "-W", "100"), ["-W", "multiple of 8", "100"]
    if name == "context-over-position-table":
        return infer_args(ref, pose, "random:tiny", "--context-frames", "64"), ["--context-frames 64", "(32 frames)"]
    if name == "overlap-not-below-context":
        return infer_args(ref, pose, "random:tiny", "--context-frames", "24", "--context-overlap", "30"), \
            ["--context-overlap", "[0, 23]", "30"]
    if name == "zero-steps":
        return infer_args(ref, pose, "random:tiny", "--steps", "0"), ["--steps", "at least 1"]
    if name == "zero-frames":
        return infer_args(ref, pose, "random:tiny", "-L", "0"), ["-L", "at least 1"]
    if name == "dtype-fp64":
        return infer_args(ref, pose, "random:tiny", "--dtype", "fp64"), ["--dtype", "fp64"]
    if name == "cuda-without-gpu":
        return infer_args(ref, pose, "random:tiny", "--device", "cuda"), ["--device cuda", "no CUDA GPU"]
    if name == "negative-cfg":
        return infer_args(ref, pose, "random:tiny", "--cfg", "-1"), ["--cfg", "finite number >= 0", "-1"]
    if name == "nan-cfg":
        return infer_args(ref, pose, "random:tiny", "--cfg", "nan"), ["--cfg", "finite number >= 0", "nan"]
    if name == "negative-upscale-tile":
        return infer_args(ref, pose, "random:tiny", "--upscale", "2", "--upscaler", "lanczos", "--upscale-tile", "-5"), \
            ["--upscale-tile", ">= 0", "-5"]
    if name == "nan-keypoints-no-align":
        body = np.full((4, 18, 3), 0.9, np.float32)
        body[:, :, :2] = np.random.default_rng(0).uniform(10, 50, (4, 18, 2))
        body[2, 4, 0] = np.nan
        PoseSequence(body, np.zeros((4, 2, 21, 3)), np.zeros((4, 68, 3)), 64, 96, 12).save(tmp_path / "nan.pose.npz")
        return infer_args(ref, tmp_path / "nan.pose.npz", tmp_path / "no_weights", "--no-align"), \
            ["nan.pose.npz", "body", "NaN"]
    if name == "output-under-a-file":
        (tmp_path / "afile").write_text("not a folder\n")
        return infer_args(ref, pose, tmp_path / "no_weights", "-o", tmp_path / "afile" / "out.mp4"), \
            ["afile", "is a file, not a folder"]
    if name == "output-in-proc":
        return infer_args(ref, pose, tmp_path / "no_weights", "-o", "/proc/animate-out.mp4"), \
            ["/proc/animate-out.mp4", "cannot be written"]
    if name == "text-as-upscaler":
        (tmp_path / "notes.txt").write_text("these are my notes\n")
        return infer_args(ref, pose, tmp_path / "no_weights", "--upscale", "2", "--upscaler", tmp_path / "notes.txt"), \
            ["notes.txt", "neither torch.save's zip archive nor a pickle"]
    if name == "cfg-steps-above-one":
        return infer_args(ref, pose, tmp_path / "no_weights", "--cfg-steps", "1.5"), ["--cfg-steps", "[0, 1]", "1.5"]
    if name == "cache-interval-zero":
        return infer_args(ref, pose, tmp_path / "no_weights", "--cache-interval", "0"), ["--cache-interval", "at least 1"]
    if name == "window-batch-zero":
        return infer_args(ref, pose, tmp_path / "no_weights", "--window-batch", "0"), ["--window-batch", "at least 1"]
    if name == "tiny-decoder-missing":
        return infer_args(ref, pose, "random:tiny", "--decoder", "tiny"), ["--decoder tiny", "animate download --set taesd"]
    raise AssertionError(name)


BAD_CASES = [
    "missing-ref", "text-ref", "empty-pose", "corrupt-pose", "missing-weights", "garbage-unet", "motion-key-missing",
    "width-not-multiple-of-8", "context-over-position-table", "overlap-not-below-context", "zero-steps",
    "zero-frames", "dtype-fp64", "cuda-without-gpu", "negative-cfg", "nan-cfg", "negative-upscale-tile",
    "nan-keypoints-no-align", "output-under-a-file", "output-in-proc", "text-as-upscaler", "cfg-steps-above-one",
    "cache-interval-zero", "window-batch-zero", "tiny-decoder-missing",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_one_error_line_and_leaves_nothing(case, run_cli, ref_photo, pose_video, tiny_moore_weights,
                                                        tmp_path):
    if case == "cuda-without-gpu" and torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    args, expected = _bad_case(case, tmp_path, ref_photo, pose_video(6, fps=12), tiny_moore_weights)
    result = run_cli(args)
    line = assert_one_error_line(result, 2)  # AnimateError: a user mistake, not a crash
    for text in expected:
        assert text in line, line
    assert result.out == ""
    assert leftovers(tmp_path) == []


def test_unknown_option_is_one_argparse_line(run_cli, ref_photo, pose_video, tmp_path):
    result = run_cli(infer_args(ref_photo, pose_video(6, fps=12), "random:tiny", "--bogus-option", "3"))
    line = assert_one_error_line(result, 2)
    assert "--bogus-option" in line
    assert result.out == ""
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("grid", [False, True], ids=["plain", "grid"])
def test_failure_while_writing_leaves_no_partial_video(grid, run_cli, ref_photo, pose_video, monkeypatch, tmp_path):
    pose = pose_video(20, fps=12)  # written before VideoWriter.write is spied on
    decode = AnimatePipeline.decode
    write = VideoWriter.write
    seen_partial = []

    def failing_decode(self, latents, chunk=8):
        chunks = decode(self, latents, chunk)
        yield next(chunks)
        raise RuntimeError("decoder exploded")

    def spying_write(self, frames):
        write(self, frames)
        seen_partial.append(self._temp.is_file())  # the partial file really was there mid-run

    monkeypatch.setattr(AnimatePipeline, "decode", failing_decode)
    monkeypatch.setattr(VideoWriter, "write", spying_write)
    extra = ["--grid"] if grid else []
    result = run_cli(infer_args(ref_photo, pose, "random:tiny", *extra))
    assert result.code == 1, result.err
    last = result.err.splitlines()[-1]
    assert last.startswith("error: RuntimeError: decoder exploded") and "Traceback" not in result.err
    assert result.out == ""
    assert seen_partial and all(seen_partial) and len(seen_partial) == (2 if grid else 1)
    assert leftovers(tmp_path) == []


# --- convert -------------------------------------------------------------------------------------------------


def test_convert_then_infer_with_the_result(run_cli, ref_photo, pose_video, tmp_path):
    folder = tmp_path / "converted"
    result = run_cli(["convert", "random:tiny", "-o", folder, "--layout", "moore", "--dtype", "fp32"])
    assert result.code == 0, result.err
    assert result.out.splitlines()[-1] == str(folder)
    names = {p.name for p in folder.iterdir()}
    assert {"reference_unet.pth", "denoising_unet.pth", "pose_guider.pth", "motion_module.pth"} <= names
    unet = torch.load(folder / "denoising_unet.pth", weights_only=True)
    assert all(v.dtype == torch.float32 for v in unet.values() if v.is_floating_point())

    ran = run_cli(infer_args(ref_photo, pose_video(6, fps=12), folder, "-L", "3", "-o", "from_converted.mp4"))
    assert ran.code == 0, ran.err
    assert "profile moore" in ran.err
    assert probe_video(tmp_path / "from_converted.mp4").num_frames == 3

    listing = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    again = run_cli(["convert", "random:tiny", "-o", folder, "--layout", "moore", "--dtype", "fp32"])
    line = assert_one_error_line(again, 2)
    assert str(folder) in line and "not empty" in line
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == listing
    assert not list(tmp_path.glob(".converted.partial*"))  # no staging folder left beside it


# --- the installed console script -----------------------------------------------------------------------------


def _console_script() -> str:
    beside = Path(sys.executable).with_name("animate")
    found = str(beside) if beside.is_file() else shutil.which("animate")
    assert found, "the `animate` console script is not installed (pip install -e .)"
    return found


def test_console_script_entry_point(tmp_path):
    script = _console_script()
    helped = subprocess.run([script, "infer", "--help"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "--ref" in helped.stdout and "--context-frames" in helped.stdout

    bad = subprocess.run([script, "infer", "--ref", "a.png", "--pose", "b.mp4", "--frobnicate"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stdout == ""
    lines = bad.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--frobnicate" in lines[0], bad.stderr
    assert not (tmp_path / "outputs").exists()


def test_an_existing_grid_file_is_refused_too(run_cli, ref_photo, pose_video, tmp_path):
    (tmp_path / "o_grid.mp4").write_bytes(b"keep")
    result = run_cli(["infer", "--ref", ref_photo, "--pose", pose_video(3), "--weights", "random:tiny", "-W", "64",
                      "--steps", "1", "--no-progress", "-o", "o.mp4", "--grid"])
    assert result.code == 2 and "o_grid.mp4 already exists" in result.err
    assert (tmp_path / "o_grid.mp4").read_bytes() == b"keep" and not (tmp_path / "o.mp4").exists()


def test_infer_takes_a_gif_pose(run_cli, ref_photo, pose_video, tmp_path):
    from PIL import Image

    frames = [Image.fromarray(f) for f in read_frames(pose_video(6, fps=12))]
    gif = tmp_path / "dance.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=83, loop=0)
    result = run_cli(infer_args(ref_photo, gif, "random:tiny", "-o", "out.mp4"))
    assert result.code == 0, result.err
    assert "rendered skeleton" in result.err  # detected as what it is
    assert probe_video(tmp_path / "out.mp4").num_frames == 6


@pytest.mark.parametrize("argv", [["--help"], ["infer", "--help"], ["train", "--help"], ["depth", "--help"]])
def test_help_imports_no_heavy_library(argv):
    """`animate --help` and each command's --help answer from argparse alone: torch, diffusers, transformers,
    cv2 and mediapipe stay unimported (their import is what made the start-up slow)."""
    code = ("import sys\nfrom animate.app.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'cv2', 'mediapipe') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_infer_takes_a_folder_of_pose_frames(run_cli, ref_photo, pose_video, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(read_frames(pose_video(6, fps=12))):
        Image.fromarray(frame).save(folder / f"pose_{i:02d}.png")
    (folder / "notes.txt").write_text("not a frame\n")
    result = run_cli(infer_args(ref_photo, folder, "random:tiny", "-o", "out.mp4"))
    assert result.code == 0, result.err
    info = probe_video(tmp_path / "out.mp4")
    assert info.num_frames == 6 and info.fps == pytest.approx(30)  # a folder has no rate: 30 unless --fps
    result = run_cli(infer_args(ref_photo, folder, "random:tiny", "--pose-type", "skeleton", "--fps", "12", "-L", "4",
                                "-o", "short.mp4"))
    assert result.code == 0, result.err
    info = probe_video(tmp_path / "short.mp4")
    assert info.num_frames == 4 and info.fps == pytest.approx(12)
    (tmp_path / "empty").mkdir()
    result = run_cli(infer_args(ref_photo, tmp_path / "empty", "random:tiny", "--pose-type", "skeleton"))
    assert "holds none" in assert_one_error_line(result, 2)
    result = run_cli(infer_args(ref_photo, folder, "random:tiny", "--pose-type", "video"))
    assert "not as a real video's frames" in assert_one_error_line(result, 2)


def test_pose_frames_are_taken_in_name_order(tmp_path):
    from animate.pose.sources import pose_image_files

    for name in ("10.png", "b.png", "2.png", "a.jpg", "frame10.png", "frame9.png", "readme.md", "a.json.bak"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in pose_image_files(tmp_path)] == ["2.png", "10.png", "a.jpg", "b.png", "frame9.png",
                                                            "frame10.png"]
