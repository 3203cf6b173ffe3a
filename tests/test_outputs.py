"""The finished output of `animate infer` (upscaled, audio, PNG frames, all-or-nothing), `animate upscale`, and jobs."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest
import torch
from PIL import Image

from animate.media.upscale import UPSCALERS
from animate.media.video import audio_codec, probe_video, read_frames

FAST = ["--weights", "random:tiny", "-W", "64", "--steps", "1", "--no-progress"]


def with_sine(video: Path, out: Path, seconds: float = 5.0) -> Path:
    """`video` with a 440 Hz sine track of `seconds` (longer than the video)."""
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(video), "-f", "lavfi", "-i",
                    f"sine=frequency=440:duration={seconds}", "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac",
                    str(out)], check=True)
    return out


def audio_seconds(path: Path) -> float:
    """Length of the first audio track, decoded."""
    raw = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "s16le",
                          "-ac", "1", "-ar", "8000", "-"], capture_output=True, check=True).stdout
    return len(raw) / 2 / 8000


def partials(root: Path) -> list[Path]:
    """Anything a finished or failed run must not leave behind."""
    return sorted(root.rglob("*.partial*"))


def small_rrdbnet_file(path: Path, scale: int = 4) -> Path:
    """A tiny RRDBNet (official key names) saved as a Real-ESRGAN release is: {"params_ema": ...}."""
    from animate.media.rrdbnet import RRDBNet

    torch.manual_seed(0)
    net = RRDBNet(scale=scale, num_feat=8, num_block=1, num_grow_ch=4)
    torch.save({"params_ema": net.state_dict()}, path)
    return path


def test_upscaled_result_with_the_dance_audio_trimmed_and_png_frames(run_cli, ref_photo, pose_video, tmp_path):
    pose = with_sine(pose_video(6, fps=12), tmp_path / "dance_with_music.mp4")
    result = run_cli(["infer", "--ref", ref_photo, "--pose", pose, *FAST, "-o", "out.mp4", "--upscale", "2",
                      "--upscaler", "lanczos", "--frames-dir", "frames", "--grid", "--crf", "10"])
    assert result.code == 0, result.err
    info = probe_video(tmp_path / "out.mp4")
    assert (info.width, info.height, info.num_frames) == (128, 192, 6) and info.fps == pytest.approx(12)
    assert audio_codec(tmp_path / "out.mp4") == "aac"
    assert audio_seconds(tmp_path / "out.mp4") == pytest.approx(0.5, abs=0.05)  # 6 frames at 12 fps, not 5 s
    assert audio_codec(tmp_path / "out_grid.mp4") is None  # the grid is a silent side-by-side at the generated size
    assert probe_video(tmp_path / "out_grid.mp4").width == 3 * 64
    pngs = sorted((tmp_path / "frames").iterdir())
    assert [p.name for p in pngs] == [f"{i:06d}.png" for i in range(6)]
    video_frames = np.stack(list(read_frames(tmp_path / "out.mp4")))
    png_frames = np.stack([np.asarray(Image.open(p)) for p in pngs])
    assert png_frames.shape == (6, 192, 128, 3)
    diffs = np.abs(video_frames[:, None].astype(int) - png_frames[None]).mean(axis=(2, 3, 4))  # video i vs png j
    assert all(diffs[i, i] < 0.5 * np.delete(diffs[i], i).min() for i in range(6))  # png i is video frame i
    assert partials(tmp_path) == []


def test_no_audio_track_when_the_dance_has_none(run_cli, ref_photo, pose_video, tmp_path):
    result = run_cli(["infer", "--ref", ref_photo, "--pose", pose_video(4), *FAST, "-o", "out.mp4"])
    assert result.code == 0, result.err
    assert audio_codec(tmp_path / "out.mp4") is None


def test_upscaler_weights_missing_is_one_line_before_any_work(run_cli, ref_photo, pose_video, tmp_path):
    result = run_cli(["infer", "--ref", ref_photo, "--pose", pose_video(4), *FAST, "-o", "out.mp4", "--upscale", "4"])
    lines = result.err.strip().splitlines()
    assert result.code == 2 and len(lines) == 1  # refused before the models load: nothing else said
    assert lines[0].startswith("error: realesrgan-x4plus weights not found") and "animate download --upscaler" in lines[0]
    assert not (tmp_path / "out.mp4").exists() and partials(tmp_path) == []


def test_existing_outputs_are_refused_unless_forced(run_cli, ref_photo, pose_video, tmp_path):
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "mine.txt").write_text("keep me")
    args = ["infer", "--ref", ref_photo, "--pose", pose_video(4), *FAST, "-o", "out.mp4", "--frames-dir", "frames"]
    result = run_cli(args)
    assert result.code == 2 and result.err.strip().splitlines()[-1] == "error: frames already exists (use --force to overwrite)"
    assert (tmp_path / "frames" / "mine.txt").read_text() == "keep me" and not (tmp_path / "out.mp4").exists()
    (tmp_path / "out.mp4").write_bytes(b"an earlier result")
    (tmp_path / "frames" / "mine.txt").unlink()  # an empty folder may be filled
    result = run_cli(args)
    assert result.code == 2 and "out.mp4 already exists (use --force to overwrite)" in result.err
    assert (tmp_path / "out.mp4").read_bytes() == b"an earlier result"
    result = run_cli(args + ["--force"])
    assert result.code == 0, result.err
    assert probe_video(tmp_path / "out.mp4").num_frames == 4 and len(list((tmp_path / "frames").iterdir())) == 4


def test_an_exception_mid_write_leaves_none_of_the_files(run_cli, ref_photo, pose_video, tmp_path, monkeypatch):
    from animate.pipeline.animate import AnimatePipeline

    decode = AnimatePipeline.decode

    def failing_decode(self, latents, chunk=8):
        chunks = decode(self, latents, 2)
        yield next(chunks)
        raise RuntimeError("decoder exploded")

    monkeypatch.setattr(AnimatePipeline, "decode", failing_decode)
    result = run_cli(["infer", "--ref", ref_photo, "--pose", pose_video(6), *FAST, "-o", "out.mp4", "--grid",
                      "--frames-dir", "frames", "--upscale", "2", "--upscaler", "lanczos"])
    assert result.code == 1 and "decoder exploded" in result.err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "tmp") == []


def test_a_full_disk_mid_write_says_so_and_leaves_nothing(run_cli, ref_photo, pose_video, tmp_path, monkeypatch):
    """ENOSPC while the PNG frames are written: one line that says the disk is full, and no file, partial or not."""
    import errno

    from PIL import Image

    def full_disk(self, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(Image.Image, "save", full_disk)
    result = run_cli(["infer", "--ref", ref_photo, "--pose", pose_video(6), *FAST, "-o", "out.mp4", "--frames-dir",
                      "frames"])
    assert result.code == 2
    assert result.err.strip().splitlines()[-1].startswith("error: no space left on device (writing "), result.err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "tmp") == []


def test_sigterm_mid_write_leaves_nothing(ref_photo, pose_video, tmp_path):
    """A real process stopped by SIGTERM while its files are being written: exit 143 (128 + SIGTERM, as a shell
    reports it) and no file, partial or not."""
    command = [sys.executable, "-m", "animate.app.cli", "infer", "--ref", str(ref_photo), "--pose", str(pose_video(96)),
               "--weights", "random:tiny", "-W", "64", "--steps", "1", "--no-progress", "-o", "out.mp4", "--grid",
               "--frames-dir", "frames", "--upscale", "4", "--upscaler", "lanczos"]
    process = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while process.poll() is None and time.time() < deadline and not list(tmp_path.glob(".frames.*.partial/*.png")):
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be interrupted mid-write"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert err.strip().splitlines()[-1] == "terminated"
    assert list(tmp_path.iterdir()) == []


def test_upscale_command_keeps_size_rate_and_audio(run_cli, pose_video, tmp_path):
    source = with_sine(pose_video(5, fps=10), tmp_path / "clip.mp4", seconds=3)
    weights = small_rrdbnet_file(tmp_path / "tiny_x4.pth")
    result = run_cli(["upscale", source, "-o", "big.mp4", "--scale", "4", "--upscaler", weights, "--upscale-tile", "32",
                      "--no-progress"])
    assert result.code == 0, result.err
    info = probe_video(tmp_path / "big.mp4")
    assert (info.width, info.height, info.num_frames) == (256, 384, 5) and info.fps == pytest.approx(10)
    assert audio_seconds(tmp_path / "big.mp4") == pytest.approx(0.5, abs=0.05)
    result = run_cli(["upscale", source, "-o", "big.mp4", "--scale", "2", "--upscaler", "lanczos", "--no-progress"])
    assert result.code == 2 and result.err.strip() == "error: big.mp4 already exists (use --force to overwrite)"
    result = run_cli(["upscale", source, "-o", "big.mp4", "--scale", "2", "--upscaler", "lanczos", "--force",
                      "--no-progress"])
    assert result.code == 0, result.err
    small = next(read_frames(source))
    lanczos = cv2.resize(small, (128, 192), interpolation=cv2.INTER_LANCZOS4)
    assert np.abs(next(read_frames(tmp_path / "big.mp4")).astype(int) - lanczos).mean() < 4
    assert partials(tmp_path) == []


def test_upscale_command_errors_are_one_line(run_cli, pose_video, tmp_path):
    result = run_cli(["upscale", tmp_path / "nope.mp4", "-o", "big.mp4", "--scale", "2", "--upscaler", "lanczos"])
    assert result.code == 2 and result.err.strip() == f"error: video not found: {tmp_path / 'nope.mp4'}"
    result = run_cli(["upscale", pose_video(2), "-o", "big.mp4", "--scale", "4", "--weights-dir", tmp_path])
    assert result.code == 2 and "animate download --upscaler realesrgan-x4plus" in result.err
    assert len(result.err.strip().splitlines()) == 1 and not (tmp_path / "big.mp4").exists()
    result = run_cli(["upscale", pose_video(2), "-o", "big.mp4", "--scale", "2", "--upscaler", "lanczos",
                      "--upscale-tile", "-5"])
    assert result.code == 2 and result.err.strip() == "error: --upscale-tile must be >= 0 (0: whole frames), got -5"
    (tmp_path / "afile").write_text("not a folder\n")
    result = run_cli(["upscale", pose_video(2), "-o", tmp_path / "afile" / "big.mp4", "--scale", "2", "--upscaler",
                      "lanczos"])
    assert result.code == 2 and result.err.strip() == (
        f"error: {tmp_path / 'afile' / 'big.mp4'}: cannot be written ({tmp_path / 'afile'} is a file, not a folder)")
    (tmp_path / "notes.txt").write_text("these are my notes\n")
    result = run_cli(["upscale", pose_video(2), "-o", "big.mp4", "--scale", "2", "--upscaler", tmp_path / "notes.txt"])
    assert result.code == 2 and result.err.strip() == (f"error: {tmp_path / 'notes.txt'}: not a readable weight file "
                                                       "(neither torch.save's zip archive nor a pickle)")
    assert not (tmp_path / "big.mp4").exists()


def test_default_upscalers_are_the_released_ones():
    from animate.app.infer import DEFAULT_UPSCALERS

    assert {UPSCALERS[name].scale for name in DEFAULT_UPSCALERS.values()} == set(DEFAULT_UPSCALERS)


# --- jobs ----------------------------------------------------------------------------------------------------


def write_jobs(folder: Path, text: str) -> Path:
    path = folder / "jobs.yaml"
    path.write_text(text)
    return path


class WriteRecorder:
    """A text stream that forwards to another and keeps each write call's text."""

    def __init__(self, stream):
        self.stream, self.writes = stream, []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return self.stream.write(text)

    def __getattr__(self, name):
        return getattr(self.stream, name)


def test_jobs_file_with_a_bad_case_finishes_the_others(run_cli, ref_photo, pose_video, tmp_path, monkeypatch):
    from animate.app import infer

    # Unbuffered (PYTHONUNBUFFERED, as CI runs), each write is a system call: several processes on one pipe splice
    # their lines together unless every line is written whole, in one call.
    stdout, stderr = WriteRecorder(sys.stdout), WriteRecorder(sys.stderr)
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stderr", stderr)
    loads = []
    load_models = infer.load_models
    monkeypatch.setattr(infer, "load_models", lambda *a, **k: loads.append(a) or load_models(*a, **k))
    jobs_dir = tmp_path / "cases"
    jobs_dir.mkdir()
    Image.open(ref_photo).save(jobs_dir / "me.png")
    jobs = write_jobs(jobs_dir, f"""
steps: 1
width: 64
inference_config: ./configs/inference/inference_v2.yaml   # a Moore key: ignored with a note
test_cases:
  me.png: [{pose_video(3)}, missing_dance.mp4]
cases:
  - {{ref: me.png, pose: {pose_video(4)}, seed: 7, out: seven.mp4, grid: true}}
  - {{ref: me.png, pose: {pose_video(3)}, width: 60}}
""")
    result = run_cli(["infer", "--jobs", jobs, "--weights", "random:tiny", "--no-progress"])
    assert result.code == 1  # some failed
    assert len(loads) == 1  # the models were loaded once for all four cases
    assert result.out.splitlines() == [f"outputs/me_{pose_video(3).stem}_42.mp4", "seven.mp4"]
    assert probe_video(tmp_path / "seven.mp4").num_frames == 4 and (tmp_path / "seven_grid.mp4").is_file()
    err = result.err.splitlines()
    assert "note: " in err[0] and "inference_config" in err[0]
    assert any(line.startswith("error: ") and "missing_dance.mp4" in line for line in err)
    assert any("multiple of 8" in line for line in err if line.startswith("error: "))
    assert "2 of 4 cases done, 2 failed" in result.err and "Traceback" not in result.err
    assert partials(tmp_path) == []
    assert stdout.writes and all(text.endswith("\n") for text in stdout.writes + stderr.writes), stderr.writes


def test_every_console_line_is_written_whole():
    """No `print` outside animate/app/messages.py: print writes a line's text and its newline in two calls."""
    import ast

    root = Path(__file__).resolve().parents[1]
    prints = [f"{path.relative_to(root)}:{node.lineno}"
              for folder in ("animate", "stages", "data_tools") for path in sorted((root / folder).rglob("*.py"))
              for node in ast.walk(ast.parse(path.read_text()))
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"]
    assert prints == []


@pytest.mark.parametrize("text, message", [
    ("cases: [{ref: a.png}]", "case 1 needs ref and pose"),
    ("steps: 1\n", "no cases"),
    ("stepz: 1\ntest_cases: {a.png: [b.mp4]}", "top level: unknown option `stepz`"),
    ("weights: x\ntest_cases: {a.png: [b.mp4]}", "`weights` applies to every case: give it on the command line"),
    ("cases: [{ref: a.png, pose: b.mp4, device: cuda}]", "case 1: `device` applies to every case"),
    ("test_cases: [a.png]", "`test_cases` maps each photo to a list of pose videos"),
    ("[unclosed", "not valid YAML"),
], ids=["no-pose", "empty", "typo", "model-option", "case-model-option", "test-cases-list", "yaml"])
def test_bad_jobs_files_are_refused_before_loading(run_cli, tmp_path, text, message):
    result = run_cli(["infer", "--jobs", write_jobs(tmp_path, text), "--weights", "random:tiny"])
    lines = result.err.strip().splitlines()
    assert result.code == 2 and len(lines) == 1 and message in lines[0], result.err
    assert "loaded" not in result.err


def test_jobs_and_ref_are_exclusive(run_cli, ref_photo, tmp_path):
    result = run_cli(["infer", "--jobs", write_jobs(tmp_path, "steps: 1"), "--ref", ref_photo])
    assert result.code == 2 and "drop --ref/--pose/-o" in result.err
    result = run_cli(["infer", "--ref", ref_photo])
    assert result.code == 2 and result.err.strip() == ("error: infer needs --ref and --pose (or --prompt/--face PHOTO and "
                                                        "--pose, or --jobs FILE)")


def test_cases_are_split_round_robin_across_processes():
    from animate.app.jobs import split_cases

    cases = list(range(7))
    shares = [split_cases(cases, rank, 3) for rank in range(3)]
    assert shares == [[0, 3, 6], [1, 4], [2, 5]]
    assert sorted(sum(shares, [])) == cases


def test_jobs_split_across_two_accelerate_processes(ref_photo, pose_video, tmp_path):
    """`accelerate launch` with 2 CPU processes: each case runs once, in one process, and auto names never collide."""
    import os
    import socket

    jobs = write_jobs(tmp_path, f"steps: 1\nwidth: 64\ntest_cases:\n  {ref_photo}: [{pose_video(3)}, {pose_video(3)}, "
                                f"{pose_video(3)}]\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
               str(port), "-m", "animate.app.cli", "infer", "--jobs", str(jobs), "--weights", "random:tiny", "--no-progress"]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    stem = f"{ref_photo.stem}_{pose_video(3).stem}_42"
    written = sorted(result.stdout.split())
    assert written == sorted(f"outputs/{stem}{suffix}.mp4" for suffix in ("", "_1", "_2"))  # three, all distinct
    assert "process 1/2: 2 of 2 cases done" in result.stderr and "process 2/2: 1 of 1 cases done" in result.stderr
    assert all(probe_video(tmp_path / name).num_frames == 3 for name in written) and partials(tmp_path) == []
