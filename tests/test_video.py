"""Video I/O: probe, streamed reading (decord and ffmpeg), fitting, atomic h264 writing."""

import re
import subprocess

import imageio_ffmpeg
import numpy as np
import pytest

from animate.media import video
from animate.errors import AnimateError
from animate.media.video import VideoWriter, fit_frame, probe_video, read_frames

W, H, N, FPS = 64, 48, 12, 12.5


def pattern(n: int = N, width: int = W, height: int = H) -> np.ndarray:
    """A smooth, moving colour gradient, [n, H, W, 3] uint8."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for t in range(n):
        r = 128 + 100 * np.sin((x + 3 * t) / width * 2 * np.pi)
        g = 128 + 100 * np.cos((y - 2 * t) / height * 2 * np.pi)
        b = np.full_like(x, 40 + 15 * t)
        frames.append(np.stack([r, g, b], -1))
    return np.clip(frames, 0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 arrays, in dB."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / max(mse, 1e-10)))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A silent 12-frame 64x48 video at 12.5 fps, and the frames written into it."""
    path = tmp_path_factory.mktemp("clip") / "nested" / "dir" / "clip.mp4"
    frames = pattern()
    with VideoWriter(path, FPS) as writer:
        writer.write(frames[:5])
        for frame in frames[5:]:
            writer.write(frame)
    assert writer.frames_written == N
    return path, frames


def test_round_trip(clip):
    path, frames = clip
    info = probe_video(path)
    assert (info.width, info.height, info.num_frames) == (W, H, N)
    assert info.fps == pytest.approx(FPS)
    assert video.audio_codec(path) is None and info.path == str(path)
    decoded = list(read_frames(path))
    assert len(decoded) == N
    assert all(f.shape == (H, W, 3) and f.dtype == np.uint8 for f in decoded)
    assert psnr(np.stack(decoded), frames) > 30
    assert np.abs(np.stack(decoded).mean((1, 2, 3)) - frames.mean((1, 2, 3))).max() < 2


def test_writer_leaves_no_temp_file(clip):
    path, _ = clip
    assert sorted(p.name for p in path.parent.iterdir()) == ["clip.mp4"]


def test_start_stop(clip):
    path, _ = clip
    full = np.stack(list(read_frames(path)))
    np.testing.assert_array_equal(np.stack(list(read_frames(path, 3, 7))), full[3:7])
    np.testing.assert_array_equal(np.stack(list(read_frames(path, start=9, stop=100))), full[9:])
    np.testing.assert_array_equal(np.stack(list(read_frames(path, start=10))), full[10:])
    assert list(read_frames(path, 5, 5)) == []
    with pytest.raises(ValueError):
        read_frames(path, start=-1)


@pytest.mark.parametrize("use_decord", [True, False])
def test_slicing_across_keyframes_and_b_frames(tmp_path, monkeypatch, use_decord):
    path = tmp_path / "gop.mp4"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi",
         "-i", "testsrc2=size=64x48:rate=25:duration=4", "-c:v", "libx264", "-g", "12", "-bf", "3",
         "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )
    if not use_decord:
        monkeypatch.setattr(video, "decord", None)
    full = np.stack(list(read_frames(path)))
    assert len(full) == probe_video(path).num_frames == 100
    assert list(read_frames(path, 9, 3)) == list(read_frames(path, 100, 120)) == []
    for start, stop in [(0, 5), (11, 13), (37, 62), (95, 100)]:
        np.testing.assert_array_equal(np.stack(list(read_frames(path, start, stop))),
                                      full[start:stop])


def test_read_with_size(clip):
    path, _ = clip
    full = list(read_frames(path))
    fitted = list(read_frames(path, 2, 4, size=(32, 32)))
    assert [f.shape for f in fitted] == [(32, 32, 3)] * 2
    np.testing.assert_array_equal(fitted[0], fit_frame(full[2], 32, 32))


def test_ffmpeg_fallback_matches_decord(clip, monkeypatch):
    path, _ = clip
    info = probe_video(path)
    full = np.stack(list(read_frames(path)))
    window = np.stack(list(read_frames(path, 4, 9, size=(40, 40))))
    monkeypatch.setattr(video, "decord", None)
    assert probe_video(path) == info
    fallback_frames = list(read_frames(path))
    assert all(f.flags.writeable for f in fallback_frames)
    fallback = np.stack(fallback_frames)
    assert fallback.shape == full.shape
    assert np.abs(fallback.astype(int) - full).max() <= 2
    fallback_window = np.stack(list(read_frames(path, 4, 9, size=(40, 40))))
    assert fallback_window.shape == window.shape == (5, 40, 40, 3)
    assert np.abs(fallback_window.astype(int) - window).max() <= 2


def test_fit_frame_letterbox():
    white = np.full((50, 100, 3), 255, np.uint8)
    out = fit_frame(white, 64, 64)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert (out[16:48] == 255).all()
    assert (out[:16] == 0).all() and (out[48:] == 0).all()


def test_fit_frame_pillarbox_and_enlarge():
    out = fit_frame(np.full((20, 20, 3), 200, np.uint8), 40, 20)
    assert out.shape == (20, 40, 3)
    assert (out[:, 10:30] == 200).all()
    assert (out[:, :10] == 0).all() and (out[:, 30:] == 0).all()


def test_fit_frame_same_size_unchanged():
    frame = pattern(1)[0]
    assert fit_frame(frame, W, H) is frame


def test_writer_exception_leaves_nothing(tmp_path):
    out_dir = tmp_path / "out"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(out_dir / "v.mp4", 10) as writer:
            writer.write(pattern(4))
            raise RuntimeError("boom")
    assert list(out_dir.iterdir()) == []


def test_writer_size_change_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="differs"):
        with VideoWriter(tmp_path / "v.mp4", 10) as writer:
            writer.write(pattern(2))
            writer.write(pattern(1, 32, 32))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "frame, message",
    [(np.zeros((H, W, 3), np.float32), "uint8"), (np.zeros((H, W), np.uint8), "uint8"),
     (np.zeros((H, W + 1, 3), np.uint8), "even")],
)
def test_writer_rejects_bad_frames(tmp_path, frame, message):
    with pytest.raises(ValueError, match=message):
        with VideoWriter(tmp_path / "v.mp4", 10) as writer:
            writer.write(frame)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("frames", [None, np.zeros((0, H, W, 3), np.uint8)])
def test_writer_zero_frames(tmp_path, frames):
    with pytest.raises(AnimateError, match="no frames"):
        with VideoWriter(tmp_path / "v.mp4", 10) as writer:
            if frames is not None:
                writer.write(frames)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("use_decord", [True, False])
@pytest.mark.parametrize(
    "content", [None, b"", b"\x00garbage" * 500, "dir"], ids=["missing", "empty", "garbage", "dir"]
)
def test_probe_errors(tmp_path, monkeypatch, content, use_decord):
    if not use_decord:
        monkeypatch.setattr(video, "decord", None)
    path = tmp_path / "bad.mp4"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(AnimateError, match=re.escape(str(path))) as err:
        probe_video(path)
    assert "\n" not in str(err.value)
    with pytest.raises(AnimateError, match=re.escape(str(path))):
        list(read_frames(path))


def test_audio_codec(tmp_path, clip):
    path, _ = clip
    with_audio = tmp_path / "audio.mp4"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(path),
         "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
         "-c:v", "copy", "-c:a", "aac", "-shortest", str(with_audio)],
        check=True,
    )
    assert video.audio_codec(with_audio) == "aac" and probe_video(with_audio).num_frames > 0


def _with_sine(tmp_path, clip, seconds: float, codec: str, suffix: str = ".mp4"):
    """The clip's video with a 440 Hz sine track of `seconds` in `codec`."""
    path, _ = clip
    out = tmp_path / f"sine_{codec}{suffix}"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(path), "-f", "lavfi", "-i",
                    f"sine=frequency=440:duration={seconds}", "-map", "0:v", "-map", "1:a", "-c:v", "copy",
                    "-c:a", codec, str(out)], check=True)
    return out


def _audio_samples(path, rate: int = 8000) -> np.ndarray:
    """The first audio track decoded to mono float samples at `rate` Hz."""
    raw = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "s16le",
                          "-ac", "1", "-ar", str(rate), "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.int16).astype(np.float64) / 32768


@pytest.mark.parametrize("codec, suffix", [("aac", ".mp4"), ("pcm_s16le", ".mov")], ids=["copied", "re-encoded"])
def test_writer_copies_the_audio_trimmed_to_the_video(tmp_path, clip, codec, suffix):
    source = _with_sine(tmp_path, clip, 3.0, codec, suffix)  # audio longer than what we write
    frames = pattern(6)
    with VideoWriter(tmp_path / "out.mp4", FPS, audio_from=source) as writer:
        writer.write(frames)
    assert video.audio_codec(tmp_path / "out.mp4") == "aac"
    samples = _audio_samples(tmp_path / "out.mp4")
    assert len(samples) / 8000 == pytest.approx(6 / FPS, abs=0.05)  # trimmed to the 0.48 s of video
    spectrum = np.abs(np.fft.rfft(samples))
    assert np.fft.rfftfreq(len(samples), 1 / 8000)[spectrum.argmax()] == pytest.approx(440, abs=5)  # the sine, kept
    assert probe_video(tmp_path / "out.mp4").num_frames == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.mp4", source.name])


def test_writer_without_audio_source_track_writes_video_only(tmp_path, clip):
    path, frames = clip
    with VideoWriter(tmp_path / "out.mp4", FPS, audio_from=path) as writer:  # a source without audio
        writer.write(frames)
    assert video.audio_codec(tmp_path / "out.mp4") is None and probe_video(tmp_path / "out.mp4").num_frames == N


def test_writer_reports_an_ffmpeg_failure_and_leaves_nothing(tmp_path):
    with pytest.raises(AnimateError, match="ffmpeg failed"):
        with VideoWriter(tmp_path / "v.mp4", -5) as writer:  # ffmpeg refuses a negative frame rate
            writer.write(pattern(2))
    assert list(tmp_path.iterdir()) == []


def test_writer_without_overwrite_never_replaces(tmp_path):
    target = tmp_path / "v.mp4"
    target.write_bytes(b"earlier result")
    with pytest.raises(AnimateError, match="not replaced"):
        with VideoWriter(target, 10, overwrite=False) as writer:
            writer.write(pattern(2))
    assert target.read_bytes() == b"earlier result" and list(tmp_path.iterdir()) == [target]
    with VideoWriter(target, 10, crf=30) as writer:  # overwrite (the default) replaces
        writer.write(pattern(2))
    assert probe_video(target).num_frames == 2
    with pytest.raises(AnimateError, match="crf"):
        VideoWriter(target, 10, crf=60)


def test_crf_sets_the_quality(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (6, H, W, 3), dtype=np.uint8)
    for crf in (10, 40):
        with VideoWriter(tmp_path / f"crf{crf}.mp4", 10, crf=crf) as writer:
            writer.write(noise)
    assert (tmp_path / "crf40.mp4").stat().st_size < 0.5 * (tmp_path / "crf10.mp4").stat().st_size


def test_a_gif_decord_cannot_open_is_read_through_ffmpeg(tmp_path):
    from PIL import Image

    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40), (10, 10, 10)]
    frames = [np.broadcast_to(np.array(c, np.uint8), (96, 64, 3)).copy() for c in colours]
    for frame, column in zip(frames, range(5, 60, 11)):
        frame[:, column:column + 4] = 255  # a white bar that moves: frames stay in order
    path = tmp_path / "dance.gif"
    Image.fromarray(frames[0]).save(path, save_all=True, append_images=[Image.fromarray(f) for f in frames[1:]],
                                    duration=100, loop=0)
    info = probe_video(path)
    assert (info.width, info.height, info.num_frames) == (64, 96, 5) and info.fps == pytest.approx(10)
    got = np.stack(list(read_frames(path)))
    assert got.shape == (5, 96, 64, 3)
    assert np.abs(got.astype(int) - np.stack(frames)).max() <= 2  # a GIF's palette holds these colours exactly
    assert len(list(read_frames(path, 1, 3))) == 2


def test_a_full_disk_under_ffmpeg_says_so_and_leaves_nothing(tmp_path, monkeypatch):
    """ffmpeg's output goes to /dev/full, where every write fails with ENOSPC."""
    popen = subprocess.Popen

    def onto_dev_full(command, *args, **kwargs):
        full = [*command[:-1], "-f", "mp4", "/dev/full"]  # no file name to guess the format from
        return popen(full if command[-1].endswith(".partial.mp4") else command, *args, **kwargs)

    monkeypatch.setattr(video.subprocess, "Popen", onto_dev_full)
    writer = VideoWriter(tmp_path / "out.mp4", 12)
    with pytest.raises(AnimateError, match="No space left on device"):
        for _ in range(8):
            writer.write(np.zeros((4, 64, 64, 3), np.uint8))
        writer.close()
    assert list(tmp_path.iterdir()) == []
