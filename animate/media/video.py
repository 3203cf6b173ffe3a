"""Video I/O: probe, stream frames in, fit frames to a canvas, write h264 out atomically."""

from __future__ import annotations

import math
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import imageio_ffmpeg
import numpy as np

from ..atomic import discard, publish, staging_path
from ..errors import AnimateError
from ..native_logs import native_stderr_silenced

try:
    import decord
except ImportError:  # decord has no wheels for some platforms; ffmpeg does the job, slower
    decord = None

_BATCH = 8
FILE_SYSTEM_REFUSALS = ("No space left on device", "Disk quota exceeded", "Read-only file system", "Permission denied")


def _open_decord(path: str) -> decord.VideoReader:
    """A decord reader, quiet on failure (the caller turns the exception into one line)."""
    with native_stderr_silenced():
        return decord.VideoReader(path, ctx=decord.cpu(0))


@dataclass(frozen=True)
class VideoInfo:
    """What probe_video learns about a video file."""

    path: str
    width: int
    height: int
    fps: float
    num_frames: int


def _check_file(path: str) -> None:
    """Raise AnimateError unless path is an existing, non-empty regular file."""
    if not os.path.exists(path):
        raise AnimateError(f"video not found: {path}")
    if not os.path.isfile(path):
        raise AnimateError(f"not a video file: {path}")
    if os.path.getsize(path) == 0:
        raise AnimateError(f"video file is empty: {path}")


def _unreadable(path: str) -> AnimateError:
    """The error for a file that exists but cannot be decoded."""
    return AnimateError(f"cannot read video {path}: not a video or the file is corrupt")


def audio_codec(path: str | os.PathLike) -> str | None:
    """The codec name of the file's first audio track (e.g. "aac"), or None when it has none."""
    result = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", os.fspath(path)],
        capture_output=True, text=True, errors="replace", timeout=60,
    )
    for line in result.stderr.splitlines():
        if "Stream #" in line and "Audio:" in line:
            return line.split("Audio:", 1)[1].split()[0].strip(",")
    return None


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Size, frame rate and frame count of a video file (decord, or the bundled ffmpeg for what decord cannot open:
    GIFs, some containers, or every file where decord is not installed)."""
    path = os.fspath(path)
    _check_file(path)
    reader = _decord_reader(path)
    try:
        if reader is not None:
            num_frames, fps = len(reader), float(reader.get_avg_fps())
            height, width = reader[0].shape[:2] if num_frames else (0, 0)
        else:
            frames = imageio_ffmpeg.read_frames(path)
            try:
                meta = next(frames)
            finally:
                frames.close()
            width, height = meta["size"]
            fps = float(meta["fps"])
            num_frames = imageio_ffmpeg.count_frames_and_secs(path)[0]
    except Exception as err:
        raise _unreadable(path) from err
    if num_frames <= 0:
        raise AnimateError(f"video has no frames: {path}")
    if not (fps > 0 and math.isfinite(fps)):
        raise AnimateError(f"{path}: the video has no usable frame rate ({fps})")
    return VideoInfo(path, int(width), int(height), fps, int(num_frames))


def _decord_reader(path: str) -> decord.VideoReader | None:
    """A decord reader of the file, or None where decord is missing or cannot open it (then ffmpeg reads it)."""
    if decord is None:
        return None
    try:
        return _open_decord(path)
    except Exception:
        return None


def read_frames(
    path: str | os.PathLike,
    start: int = 0,
    stop: int | None = None,
    size: tuple[int, int] | None = None,
) -> Iterator[np.ndarray]:
    """Stream HxWx3 uint8 RGB frames [start, stop), each fitted into size=(W, H) if given."""
    path = os.fspath(path)
    _check_file(path)
    if start < 0 or (stop is not None and stop < 0):
        raise ValueError(f"start and stop must be >= 0, got {start}, {stop}")
    reader = _decord_reader(path)
    if reader is not None:
        end = len(reader) if stop is None else min(stop, len(reader))
        frames = _decord_frames(path, reader, start, end)
    else:
        frames = _ffmpeg_frames(path, start, stop)
    return frames if size is None else (fit_frame(f, *size) for f in frames)


def _decord_frames(
    path: str, reader: decord.VideoReader, start: int, stop: int
) -> Iterator[np.ndarray]:
    """Frames [start, stop) from a decord reader, decoded a small batch at a time."""
    for first in range(start, stop, _BATCH):
        try:
            batch = reader.get_batch(list(range(first, min(first + _BATCH, stop)))).asnumpy()
        except Exception as err:
            raise _unreadable(path) from err
        yield from batch


def _ffmpeg_frames(path: str, start: int, stop: int | None) -> Iterator[np.ndarray]:
    """Frames [start, stop) decoded by the bundled ffmpeg, trimmed before they reach the pipe."""
    trim = f"trim=start_frame={start}" + ("" if stop is None else f":end_frame={stop}")
    params = ["-vf", trim, "-fps_mode", "passthrough"]
    stream = imageio_ffmpeg.read_frames(path, output_params=params)
    try:
        width, height = next(stream)["size"]
        for raw in stream:
            yield np.frombuffer(raw, np.uint8).reshape(height, width, 3).copy()
    except Exception as err:
        raise _unreadable(path) from err
    finally:
        stream.close()


def fit_frame(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale frame keeping its aspect to fit inside (width, height), centred on black."""
    h, w = frame.shape[:2]
    if (w, h) == (width, height):
        return frame
    scale = min(width / w, height / h)
    new_w = min(width, max(1, round(w * scale)))
    new_h = min(height, max(1, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(frame, (new_w, new_h), interpolation=interpolation)
    canvas = np.zeros((height, width) + frame.shape[2:], dtype=frame.dtype)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    canvas[top:top + new_h, left:left + new_w] = resized
    return canvas


class OutputTaken(AnimateError):
    """The target of a no-overwrite publish exists (another run wrote it meanwhile)."""


MP4_AUDIO_CODECS = {"aac", "mp3", "ac3", "eac3", "alac"}  # copied as they are; anything else becomes AAC


class VideoWriter:
    """Context manager that encodes RGB frames to h264 mp4, appearing at path only on success.

    The frames go to a temp file beside the target (its own per process); `audio_from` muxes that video's first
    audio track in, trimmed to the frames' length. Closing = `finish()` (ffmpeg done, exit status checked) then
    `publish()` (rename onto path; without `overwrite` an existing path is never replaced).
    """

    def __init__(self, path: str | os.PathLike, fps: float, crf: int = 18, audio_from: str | os.PathLike | None = None,
                 overwrite: bool = True) -> None:
        if not 0 <= crf <= 51:
            raise AnimateError(f"--crf must be between 0 and 51, got {crf}")
        self.path = Path(path)
        self.fps = float(fps)
        self.crf = crf
        self.audio_from = None if audio_from is None else os.fspath(audio_from)
        self.overwrite = overwrite
        self.frames_written = 0
        self._temp = staging_path(self.path, ".mp4")  # the extension tells ffmpeg the container
        self._size: tuple[int, int] | None = None
        self._ffmpeg: subprocess.Popen | None = None
        self._log = None
        self._finished = False
        self._published = False

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, frames: np.ndarray) -> None:
        """Append one HxWx3 uint8 frame or an [N,H,W,3] uint8 array of frames."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected HxWx3 or NxHxWx3 uint8 frames, got {frames.dtype} "
                             f"{frames.shape}")
        size = (frames.shape[2], frames.shape[1])
        if self._ffmpeg is None:
            if size[0] % 2 or size[1] % 2:
                raise ValueError(f"h264 yuv420p needs an even frame size, got {size[0]}x{size[1]}")
            self._start(size)
        elif size != self._size:
            raise ValueError(f"frame size {size} differs from the video's {self._size}")
        try:
            self._ffmpeg.stdin.write(np.ascontiguousarray(frames).tobytes())
        except OSError:
            message = self._ffmpeg_error()
            self.abort()
            raise AnimateError(f"ffmpeg failed while writing {self.path}: {message}") from None
        self.frames_written += len(frames)

    def close(self) -> None:
        """Finish encoding and move the finished video onto path (nothing is left if either fails)."""
        try:
            self.finish()
            self.publish()
        except BaseException:
            self.abort()
            raise

    def finish(self) -> None:
        """Let ffmpeg finish (an error if it failed) and mux the audio in; the video is complete but not yet at path."""
        if self._finished:
            return
        if self.frames_written == 0:
            self.abort()
            raise AnimateError(f"no frames to write to {self.path}")
        self._ffmpeg.stdin.close()
        code = self._ffmpeg.wait()
        if code != 0 or not self._temp.is_file() or self._temp.stat().st_size == 0:
            message = self._ffmpeg_error()
            self.abort()
            raise AnimateError(f"ffmpeg failed to write {self.path}: {message}")
        if self.audio_from is not None:
            self._mux_audio()
        self._close_log()
        self._finished = True

    def publish(self) -> None:
        """Move the finished video onto path (refused if path exists and overwrite is off); once."""
        if self._published:
            return
        self.finish()
        try:
            publish(self._temp, self.path, replace=self.overwrite)
            self._published = True
        except FileExistsError:
            raise OutputTaken(f"{self.path} appeared while this run was writing it; not replaced") from None
        except OSError as err:
            raise AnimateError(f"cannot write {self.path}: {err.strerror}") from None

    def abort(self) -> None:
        """Stop ffmpeg and delete the partial file, leaving nothing behind."""
        if self._ffmpeg is not None and self._ffmpeg.poll() is None:
            self._ffmpeg.kill()
            self._ffmpeg.wait()
        if self._ffmpeg is not None and self._ffmpeg.stdin and not self._ffmpeg.stdin.closed:
            try:
                self._ffmpeg.stdin.close()
            except OSError:
                pass
        self._close_log()
        discard(self._temp)
        discard(self._temp.with_suffix(".audio.mp4"))

    def _start(self, size: tuple[int, int]) -> None:
        """Launch ffmpeg reading raw RGB frames of size (W, H) from a pipe."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._size = size
        self._log = tempfile.TemporaryFile()
        command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                   "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size[0]}x{size[1]}", "-r", f"{self.fps}",
                   "-i", "pipe:0", "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(self.crf),
                   "-movflags", "+faststart", str(self._temp)]
        self._ffmpeg = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log)

    def _mux_audio(self) -> None:
        """Copy the first audio track of audio_from into the finished video, trimmed to its length."""
        codec = audio_codec(self.audio_from)
        if codec is None:
            return
        muxed = self._temp.with_suffix(".audio.mp4")
        audio = ["-c:a", "copy"] if codec in MP4_AUDIO_CODECS else ["-c:a", "aac", "-b:a", "192k"]
        command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(self._temp),
                   "-i", self.audio_from, "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", *audio,
                   "-t", f"{self.frames_written / self.fps:.6f}", "-movflags", "+faststart", str(muxed)]
        result = subprocess.run(command, capture_output=True, text=True, errors="replace")
        if result.returncode != 0 or not muxed.is_file():
            muxed.unlink(missing_ok=True)
            self.abort()
            last = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
            raise AnimateError(f"cannot copy the audio of {self.audio_from} into {self.path}: {last}")
        publish(muxed, self._temp)

    def _ffmpeg_error(self) -> str:
        """What ffmpeg said went wrong (after waiting for it to exit): a full disk or another file-system refusal
        when it names one (its last line is then a vaguer one), else its last error line."""
        if self._ffmpeg is not None:
            try:
                self._ffmpeg.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self._log is None:
            return "unknown error"
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").strip().splitlines()
        for refusal in FILE_SYSTEM_REFUSALS:
            if any(refusal in line for line in lines):
                return refusal
        return lines[-1] if lines else f"exit status {self._ffmpeg.returncode if self._ffmpeg else '?'}"

    def _close_log(self) -> None:
        """Drop ffmpeg's error log."""
        if self._log is not None:
            self._log.close()
            self._log = None
