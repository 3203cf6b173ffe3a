"""The files of one result (video, grid video, PNG frames): written aside, then published together or not at all."""

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np
from PIL import Image

from ..atomic import discard, publish, staging_path
from ..errors import AnimateError


def check_output_folder(path: str | os.PathLike) -> None:
    """Refuse, before any work, an output whose folder cannot be made or written into: a parent that is a file, a
    folder without write access, a filesystem that takes no new files (a file is made and removed there to know)."""
    existing = Path(path).absolute().parent
    try:
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise AnimateError(f"{path}: cannot be written ({existing} is a file, not a folder)")
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise AnimateError(f"{path}: cannot be written in {existing} ({err.strerror or type(err).__name__})") from None


class StagedOutput(Protocol):
    """A result written aside: finish() completes it, publish() moves it into place, abort() removes it."""

    def finish(self) -> None: ...

    def publish(self) -> None: ...

    def abort(self) -> None: ...


class FrameFolder:
    """PNG frames (000000.png, ...) written into a hidden folder beside `path`, moved onto it when complete."""

    def __init__(self, path: str | os.PathLike, overwrite: bool = False) -> None:
        self.path = Path(path)
        if self.path.exists() and not (self.path.is_dir() and (overwrite or not any(self.path.iterdir()))):
            raise AnimateError(f"{self.path} already exists (use --force to overwrite)" if self.path.is_dir()
                               else f"--frames-dir {self.path} is a file")
        self._temp = staging_path(self.path)
        self.frames_written = 0
        self._published = False

    def write(self, frames: np.ndarray) -> None:
        """Append [N, H, W, 3] uint8 frames as numbered PNGs."""
        self._temp.mkdir(parents=True, exist_ok=True)
        for frame in frames:
            Image.fromarray(frame).save(self._temp / f"{self.frames_written:06d}.png", compress_level=1)
            self.frames_written += 1

    def finish(self) -> None:
        """Nothing to complete: PNGs are whole once written."""
        if self.frames_written == 0:
            raise AnimateError(f"no frames to write to {self.path}")

    def publish(self) -> None:
        """Move the folder onto path, replacing an older one there; once."""
        if self._published:
            return
        publish(self._temp, self.path)
        self._published = True

    def abort(self) -> None:
        """Delete the partial folder."""
        discard(self._temp)


@contextmanager
def published_together(outputs: list[StagedOutput], publish: Callable[[], None] | None = None) -> Iterator[None]:
    """Run the block that writes `outputs`; then finish every one before publishing any (each in turn, or by
    `publish`), or abort them all."""
    try:
        yield
        for output in outputs:
            output.finish()
        if publish is not None:
            publish()
        for output in outputs:
            output.publish()
    except BaseException:
        for output in outputs:
            output.abort()
        raise
