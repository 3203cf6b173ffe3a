"""Atomic writes: a file or folder is written under a hidden name beside its target, then renamed onto it, so a
reader sees the old result or the whole new one and a failed or killed writer leaves nothing half-written."""

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def staging_path(path: str | os.PathLike, suffix: str = "", shared: bool = False) -> Path:
    """The hidden name `path` is written under until complete: this process's own, or, when `shared`, one name for
    every process of a run (they write one checkpoint together); `suffix` keeps an extension a writer needs."""
    path = Path(path)
    owner = "" if shared else f".{os.getpid()}"
    return path.with_name(f".{path.name}{owner}.partial{suffix}")


def discard(staged: str | os.PathLike) -> None:
    """Delete a staged file or folder, if there."""
    staged = Path(staged)
    if staged.is_dir() and not staged.is_symlink():
        shutil.rmtree(staged, ignore_errors=True)
    else:
        staged.unlink(missing_ok=True)


def publish(staged: str | os.PathLike, path: str | os.PathLike, replace: bool = True) -> None:
    """Move a complete staged file or folder onto `path`. A folder replacing a folder sets the old one aside first and
    deletes it once the new one is in place; a file never replaces a folder. With replace=False (files only) an
    existing `path` raises FileExistsError and nothing moves."""
    staged, path = Path(staged), Path(path)
    if not replace:
        os.link(staged, path)  # fails if path exists: nothing is replaced
        staged.unlink()
        return
    if staged.is_dir() and path.is_dir() and not path.is_symlink():
        aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))  # a fresh name, never a stale one
        os.replace(path, aside / path.name)
        try:
            os.replace(staged, path)
        except BaseException:
            os.replace(aside / path.name, path)
            raise
        finally:
            shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(staged, path)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "", replace: bool = True) -> Iterator[Path]:
    """Yield the staging path of `path` (its folder made) for the block to write a file or folder at; published onto
    `path` when the block ends, discarded when it raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = staging_path(path, suffix)
    discard(staged)
    try:
        yield staged
        publish(staged, path, replace)
    except BaseException:
        discard(staged)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_path(path) as staged:
        staged.write_text(text, encoding="utf-8")
    return Path(path)
