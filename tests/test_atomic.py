"""The one atomic-write helper: a result appears whole or not at all, and every writer of the project goes through it."""

import ast
import os
from pathlib import Path

import pytest

from animate.atomic import atomic_path, publish, staging_path, write_text
from animate.paths import REPO_ROOT


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_file_appears_whole_and_no_staging_file_stays(tmp_path):
    target = tmp_path / "deep" / "out.json"
    with atomic_path(target) as staged:
        staged.write_text("half")
        assert not target.exists()  # nothing at the target while it is written
        staged.write_text("whole")
    assert target.read_text() == "whole"
    assert _names(target.parent) == ["out.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as staged:
            staged.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert _names(tmp_path) == ["out.json"]


def test_a_folder_replaces_a_full_one_and_nothing_is_set_aside(tmp_path):
    target = tmp_path / "frames"
    target.mkdir()
    (target / "old.png").write_text("old")
    with atomic_path(target) as staged:
        staged.mkdir()
        (staged / "new.png").write_text("new")
        assert (target / "old.png").exists()
    assert _names(target) == ["new.png"]
    assert _names(tmp_path) == ["frames"]


def test_a_stale_aside_folder_never_blocks_a_replacement(tmp_path):
    """A run killed between its two renames leaves an old folder aside; later runs still publish."""
    target = tmp_path / "frames"
    target.mkdir()
    stale = tmp_path / f".frames.{os.getpid()}.old" / "x"
    stale.mkdir(parents=True)
    for new in ("a.png", "b.png"):
        with atomic_path(target) as staged:
            staged.mkdir()
            (staged / new).write_text(new)
        assert _names(target) == [new]
    assert sorted(_names(tmp_path)) == [f".frames.{os.getpid()}.old", "frames"]  # only the stale one, untouched


def test_a_failed_folder_keeps_the_old_one(tmp_path):
    target = tmp_path / "frames"
    target.mkdir()
    (target / "old.png").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as staged:
            staged.mkdir()
            (staged / "new.png").write_text("new")
            raise RuntimeError("interrupted")
    assert _names(target) == ["old.png"]
    assert _names(tmp_path) == ["frames"]


def test_without_replace_an_existing_file_wins(tmp_path):
    target = tmp_path / "video.mp4"
    target.write_text("someone else's")
    with pytest.raises(FileExistsError):
        with atomic_path(target, replace=False) as staged:
            staged.write_text("ours")
    assert target.read_text() == "someone else's"
    assert _names(tmp_path) == ["video.mp4"]


def test_staging_names_are_hidden_per_process_and_keep_a_suffix(tmp_path):
    own = staging_path(tmp_path / "a.mp4", ".mp4")
    assert own.parent == tmp_path and own.name.startswith(".a.mp4.") and own.name.endswith(".mp4")
    assert str(os.getpid()) in own.name
    assert str(os.getpid()) not in staging_path(tmp_path / "ckpt", shared=True).name


def test_publish_restores_the_old_folder_when_the_new_one_cannot_move(tmp_path, monkeypatch):
    target, staged = tmp_path / "frames", tmp_path / "staged"
    for folder, name in ((target, "old.png"), (staged, "new.png")):
        folder.mkdir()
        (folder / name).write_text(name)
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(Path(src).name)
        if Path(src) == staged:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError):
        publish(staged, target)
    assert calls == ["frames", "staged", "frames"]  # set aside, failed, put back
    assert _names(target) == ["old.png"]
    assert sorted(_names(tmp_path)) == ["frames", "staged"]


def test_write_text(tmp_path):
    assert write_text(tmp_path / "a" / "b.txt", "é\n").read_text(encoding="utf-8") == "é\n"


RENAMES = {("os", "replace"), ("os", "rename"), ("tempfile", "mkstemp"), ("tempfile", "mkdtemp")}


def _renames(path):
    """(line, call) of every os.replace/os.rename/mkstemp/mkdtemp call and every `.rename(` call."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Name) and (owner.id, node.func.attr) in RENAMES:
                found.append((node.lineno, f"{owner.id}.{node.func.attr}"))
            elif node.func.attr == "rename":
                found.append((node.lineno, "rename"))
    return found


def test_every_atomic_write_goes_through_the_helper():
    """No module renames or stages files on its own: animate/atomic.py is the one way results are published."""
    sources = [p for folder in ("animate", "stages", "data_tools") for p in (REPO_ROOT / folder).rglob("*.py")
               if p != REPO_ROOT / "animate" / "atomic.py"]
    found = {str(p.relative_to(REPO_ROOT)): calls for p in sources if (calls := _renames(p))}
    assert found == {}


def test_a_file_never_replaces_a_folder(tmp_path):
    (tmp_path / "out.mp4").mkdir()
    with pytest.raises(IsADirectoryError):
        with atomic_path(tmp_path / "out.mp4") as staged:
            staged.write_text("video")
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"] and (tmp_path / "out.mp4").is_dir()
