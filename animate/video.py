"""Video I/O: probe, stream frames in, fit frames to a canvas, write h264 out atomically."""

from __future__ import annotations

import math
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import imageio_ffmpeg
import numpy as np

from animate.errors import AnimateError
from animate.native_logs import native_stderr_silenced

try:
    import decord
except ImportError:  # decord has no wheels for some platforms; ffmpeg does the job, slower
    decord = None

_BATCH = 8


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
    has_audio: bool


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


def _has_audio(path: str) -> bool:
    """Whether ffmpeg lists an audio stream in the file's header."""
    result = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", path],
        capture_output=True, text=True, errors="replace", timeout=60,
    )
    return any("Stream #" in line and "Audio:" in line for line in result.stderr.splitlines())


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Size, frame rate, frame count and audio presence of a video file."""
    path = os.fspath(path)
    _check_file(path)
    if decord is not None:
        try:
            reader = _open_decord(path)
            num_frames, fps = len(reader), float(reader.get_avg_fps())
            height, width = reader[0].shape[:2] if num_frames else (0, 0)
        except Exception as err:
            raise _unreadable(path) from err
    else:
        try:
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
    return VideoInfo(path, int(width), int(height), fps, int(num_frames), _has_audio(path))


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
    if decord is not None:
        try:
            reader = _open_decord(path)
        except Exception as err:
            raise _unreadable(path) from err
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


class _Abort(BaseException):
    """Thrown into imageio-ffmpeg's writer so that it kills ffmpeg instead of finishing."""


class VideoWriter:
    """Context manager that encodes RGB frames to h264 mp4, appearing at path only on success."""

    def __init__(self, path: str | os.PathLike, fps: float, crf: int = 18) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.crf = crf
        self.frames_written = 0
        self._temp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix or '.mp4'}")
        self._size: tuple[int, int] | None = None
        self._encoder = None

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
        if self._encoder is None:
            if size[0] % 2 or size[1] % 2:
                raise ValueError(f"h264 yuv420p needs an even frame size, got {size[0]}x{size[1]}")
            self._start(size)
        elif size != self._size:
            raise ValueError(f"frame size {size} differs from the video's {self._size}")
        for frame in frames:
            try:
                self._encoder.send(np.ascontiguousarray(frame))
            except OSError as err:
                self.abort()
                raise AnimateError(f"ffmpeg failed while writing {self.path}") from err
            self.frames_written += 1

    def close(self) -> None:
        """Finish encoding and move the finished video onto path."""
        if self.frames_written == 0:
            self.abort()
            raise AnimateError(f"no frames to write to {self.path}")
        self._encoder.close()
        self._encoder = None
        if not self._temp.is_file() or self._temp.stat().st_size == 0:
            self._temp.unlink(missing_ok=True)
            raise AnimateError(f"ffmpeg failed to write {self.path}")
        try:
            os.replace(self._temp, self.path)
        except OSError as err:
            self._temp.unlink(missing_ok=True)
            raise AnimateError(f"cannot write {self.path}: {err.strerror}") from None

    def abort(self) -> None:
        """Stop ffmpeg and delete the partial file, leaving nothing behind."""
        if self._encoder is not None:
            try:
                self._encoder.throw(_Abort)
            except (_Abort, StopIteration):
                pass
            self._encoder = None
        self._temp.unlink(missing_ok=True)

    def _start(self, size: tuple[int, int]) -> None:
        """Launch ffmpeg for frames of size (W, H)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._size = size
        self._encoder = imageio_ffmpeg.write_frames(
            str(self._temp), size, fps=self.fps, codec="libx264", pix_fmt_out="yuv420p",
            quality=None, output_params=["-crf", str(self.crf)], macro_block_size=1,
            ffmpeg_log_level="error",
        )
        self._encoder.send(None)
