"""`animate prepare`: filters and their reasons, meta files, frame-aligned pose videos, resuming, the split, the CLI."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.data import astronaut

import animate.pose.extract
from animate.errors import AnimateError
from animate.pose.frames import draw_sequence
from animate.pose.keypoints import PoseSequence
from animate.media.video import VideoWriter, probe_video
from data_tools import prepare
from data_tools.prepare import (PrepareOptions, find_videos, missing_share, person_height, prepare_dataset, split_of,
                                video_names)

KEPT = ["a", "c", "sub__b"]
SKIPPED = {"corrupt.mp4": "unreadable", "grey.mp4": "no-person", "short.mp4": "too-short", "two.mp4": "several-people"}


def _clip(x0: int, frames: int = 12) -> list[np.ndarray]:
    """A 128x160 crop of the astronaut photo panning right 4 px per frame."""
    photo = cv2.resize(astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    return [np.ascontiguousarray(photo[20:180, x0 + 4 * i:x0 + 4 * i + 128]) for i in range(frames)]


def _write(path: Path, frames: list[np.ndarray], fps: float = 12) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(path, fps) as writer:
        writer.write(np.stack(frames))
    return path


def _options(videos: Path, data: Path, **overrides) -> PrepareOptions:
    return PrepareOptions(videos, data, **{"workers": 1, "val_fraction": 0.5, "min_frames": 8, "progress": False,
                                           **overrides})


class _Spy:
    """Counts extract_video calls and passes them on."""

    def __init__(self):
        self.calls, self._extract = 0, animate.pose.extract.extract_video

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self._extract(*args, **kwargs)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Seven videos prepared twice: a first run that crashes while drawing the second pose video, then a resumed run.

    Returns (videos folder, data folder, the run's Summary, extract_video calls of the resumed run).
    """
    videos, data = tmp_path_factory.mktemp("videos"), tmp_path_factory.mktemp("data")
    _write(videos / "a.mp4", _clip(30))
    _write(videos / "c.mp4", _clip(40)[::-1])
    _write(videos / "sub" / "b.mov", _clip(50))
    _write(videos / "short.mp4", _clip(30, frames=3))
    _write(videos / "grey.mp4", [np.full((160, 128, 3), 128, np.uint8)] * 12)
    _write(videos / "two.mp4", [np.concatenate([f, f[:, ::-1]], axis=1) for f in _clip(30)])
    (videos / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(4000))

    drawn = []

    def crash_on_second_video(seq, width, height, draw):
        drawn.append(seq)
        for i, frame in enumerate(draw_sequence(seq, width, height, draw)):
            if len(drawn) == 2 and i == 2:
                raise RuntimeError("crash")
            yield frame

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(prepare, "draw_sequence", crash_on_second_video)
        with pytest.raises(RuntimeError, match="crash"):
            prepare_dataset(_options(videos, data))
    assert sorted(p.name for p in (data / "poses").iterdir()) == ["a.mp4"]  # c.mp4 was being written: nothing left
    assert sorted(p.name for p in (data / ".prepare").iterdir()) == ["a.json"]

    spy = _Spy()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(animate.pose.extract, "extract_video", spy)
        summary = prepare_dataset(_options(videos, data))
    return videos, data, summary, spy.calls


def test_kept_and_skipped_videos_with_reasons(dataset):
    videos, data, summary, calls = dataset
    assert (summary.kept, summary.frames, summary.resumed) == (3, 36, 1)
    assert summary.skipped == {"unreadable": 1, "too-short": 1, "several-people": 1, "no-person": 1}
    assert calls == 3  # c, grey and sub/b; a was done before the crash; the others fail before extraction
    log = [line.split("\t") for line in (data / "prepare.log").read_text().splitlines()]
    assert {source: reason for reason, source, _ in log} == SKIPPED
    text = str(summary)
    assert "kept 3 videos / 36 frames (train 1, val 2" in text and "no-person 1" in text
    assert sorted(p.name for p in (data / "poses").iterdir()) == [f"{name}.mp4" for name in KEPT]


def test_meta_files_and_frame_aligned_pose_videos(dataset):
    videos, data, summary, _ = dataset
    meta = json.loads((data / "meta.json").read_text())
    assert [Path(e["kps_path"]).stem for e in meta] == KEPT
    for entry in meta:
        assert list(entry)[:2] == ["video_path", "kps_path"]  # Moore's loader reads exactly these two
        source, pose = probe_video(entry["video_path"]), probe_video(data / entry["kps_path"])
        assert pose.num_frames == source.num_frames == entry["frames"] == 12
        assert pose.fps == source.fps == entry["fps"]
        assert (pose.width, pose.height) == (source.width, source.height) == (entry["width"], entry["height"])
        seq = PoseSequence.load(data / entry["keypoints_path"])
        assert len(seq) == 12 and (seq.width, seq.height) == (128, 160) and (seq.body[:, 0, 2] > 0.5).all()
    assert meta[2]["video_path"] == str(videos / "sub" / "b.mov") and meta[2]["kps_path"] == "poses/sub__b.mp4"
    splits = {split: json.loads((data / f"meta_{split}.json").read_text()) for split in ("train", "val")}
    assert splits["train"] + splits["val"] == sorted(meta, key=lambda e: e["split"] == "val")
    assert all(e["split"] == split for split, entries in splits.items() for e in entries)
    assert (len(splits["train"]), len(splits["val"])) == (summary.train, summary.val)


def test_resume_does_no_work_and_redoes_only_what_changed(dataset, tmp_path, monkeypatch):
    videos, data = tmp_path / "videos", tmp_path / "data"
    shutil.copytree(dataset[0], videos)  # copy2 keeps the mtimes the records hold
    shutil.copytree(dataset[1], data)
    spy = _Spy()
    monkeypatch.setattr(animate.pose.extract, "extract_video", spy)
    again = prepare_dataset(_options(videos, data))
    assert spy.calls == 0 and again.resumed == 7
    assert (again.kept, again.train, again.val, again.skipped) == (3, 1, 2, dataset[2].skipped)
    before = {e["kps_path"]: e["split"] for e in json.loads((data / "meta.json").read_text())}

    (data / "poses" / "a.mp4").unlink()
    _write(videos / "new.mp4", _clip(35))
    grown = prepare_dataset(_options(videos, data))
    assert spy.calls == 2 and grown.kept == 4 and (data / "poses" / "a.mp4").is_file()
    after = {e["kps_path"]: e["split"] for e in json.loads((data / "meta.json").read_text())}
    assert {k: after[k] for k in before} == before  # adding a video moves no other video between splits


def test_person_too_small(dataset, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy2(dataset[0] / "a.mp4", videos)
    summary = prepare_dataset(_options(videos, tmp_path / "data", min_person_height=0.9))
    assert summary.kept == 0 and summary.skipped == {"person-too-small": 1}
    assert (tmp_path / "data" / "prepare.log").read_text().startswith("person-too-small\ta.mp4\tmedian body height 0.")


def test_split_is_deterministic_by_seed_and_name():
    names = [f"video{i}" for i in range(2000)]
    splits = [split_of(name, 0, 0.1) for name in names]
    assert splits == [split_of(name, 0, 0.1) for name in names]
    assert 0.08 < splits.count("val") / len(names) < 0.12
    assert splits != [split_of(name, 1, 0.1) for name in names]
    assert {split_of(name, 0, 0.0) for name in names} == {"train"}
    assert {split_of(name, 0, 1.0) for name in names} == {"val"}


def test_names_are_unique_and_outputs_are_not_inputs(tmp_path):
    assert video_names(["a.mp4", "d/b.mp4", "d/c.mp4"]) == ["a", "d__b", "d__c"]
    clashing = video_names(["a.mp4", "A.mov", "d/b.mp4", "d__b.mp4"])
    assert len({name.casefold() for name in clashing}) == 4 and all("-" in name for name in clashing)
    inputs = ("x.MP4", "y.webm", "deep/z.mkv", ".hidden.mp4", "notes.txt", "data/poses/p.mp4", "data/keypoints/k.avi")
    for name in inputs:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    found = [p.relative_to(tmp_path).as_posix() for p in find_videos(tmp_path, tmp_path / "data")]
    assert found == ["deep/z.mkv", "x.MP4", "y.webm"]


def test_missing_share_and_person_height():
    seq = PoseSequence.empty(4, 100, 200, 10.0)
    seq.body[:2, 0] = (50, 40, 0.9)  # head at y 40
    seq.body[:2, 10] = (50, 140, 0.9)  # ankle at y 140
    seq.body[0, 13] = (50, 400, 0.1)  # below the frame and unsure: ignored
    assert missing_share(seq) == 0.5
    assert person_height(seq) == pytest.approx(0.5)
    assert person_height(PoseSequence.empty(3, 100, 200, 10.0)) == 0.0


def test_cli_prepares_in_worker_processes_and_reports(dataset, tmp_path, run_cli, monkeypatch):
    monkeypatch.setattr("animate.app.cli._quiet_libraries", lambda: None)  # importing diffusers takes seconds
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a.mp4", "corrupt.mp4"):
        shutil.copy2(dataset[0] / name, videos)
    result = run_cli(["prepare", videos, "-o", tmp_path / "data", "--min-frames", 8, "--workers", 2, "--no-progress"])
    assert result.code == 0, result.err
    assert "kept 1 videos / 12 frames" in result.out and "unreadable 1" in result.out
    meta = json.loads((tmp_path / "data" / "meta.json").read_text())
    assert [(e["video_path"], e["kps_path"]) for e in meta] == [(str(videos / "a.mp4"), "poses/a.mp4")]

    missing = run_cli(["prepare", tmp_path / "nowhere", "-o", tmp_path / "data"])
    assert missing.code == 2
    assert missing.err.strip().splitlines() == [f"error: videos folder not found: {tmp_path / 'nowhere'}"]


def test_depth_is_written_beside_the_poses_and_resumes(tmp_path, monkeypatch):
    """--depth: depth/<name>.mp4 and .depth.npz frame-aligned with the source, meta depth_path; a resumed run does no
    work, and the same run without --depth keeps the records."""
    from animate.depth.maps import DepthClip

    videos, data = tmp_path / "videos", tmp_path / "data"
    _write(videos / "a.mp4", _clip(30))
    depth = {"depth": True, "depth_model": "random:tiny", "depth_size": 168}
    summary = prepare_dataset(_options(videos, data, **depth))
    assert summary.kept == 1
    entry = json.loads((data / "meta.json").read_text())[0]
    assert entry["depth_path"] == "depth/a.mp4"
    info = probe_video(data / entry["depth_path"])
    assert (info.width, info.height, info.num_frames) == (128, 160, 12)
    clip = DepthClip.load(data / "depth" / "a.depth.npz")
    assert clip.levels.shape == (12, 160, 128) and clip.levels.max() > 0
    assert find_videos(data, data) == []  # the dataset's own videos, depth/ included, are never inputs
    spy = _Spy()
    monkeypatch.setattr(animate.pose.extract, "extract_video", spy)
    assert prepare_dataset(_options(videos, data, **depth)).resumed == 1
    assert prepare_dataset(_options(videos, data)).resumed == 1 and spy.calls == 0
    assert "depth_path" not in json.loads((data / "meta.json").read_text())[0]


def test_depth_is_kept_at_the_model_scale(tmp_path, monkeypatch):
    """A source larger than the model's input keeps its depth at the working scale (memory follows the model, not
    the source); a video skipped in a depth run is redone by a run without depth."""
    from data_tools.prepare import _recorded

    videos, data = tmp_path / "videos", tmp_path / "data"
    _write(videos / "a.mp4", _clip(30))
    prepare_dataset(_options(videos, data, depth=True, depth_model="random:tiny", depth_size=56))
    assert probe_video(data / "depth" / "a.mp4").height == 70  # 160 * 56 / 128, even
    record = json.loads((data / ".prepare" / "a.json").read_text())
    record["outcome"]["reason"] = "unreadable"  # as a depth failure would record it
    (data / ".prepare" / "a.json").write_text(json.dumps(record))
    source = videos / "a.mp4"
    assert _recorded(source, "a.mp4", "a", _options(videos, data, depth=True, depth_model="random:tiny",
                                                   depth_size=56)) is not None
    assert _recorded(source, "a.mp4", "a", _options(videos, data)) is None


def test_missing_depth_weights_stop_prepare_before_any_work(tmp_path):
    videos, data = tmp_path / "videos", tmp_path / "data"
    _write(videos / "a.mp4", _clip(30))
    with pytest.raises(AnimateError, match="animate download --set depth"):
        prepare_dataset(_options(videos, data, depth=True, depth_model=str(tmp_path / "none")))
    assert not data.exists() or not any(data.iterdir())
