"""`animate prepare`: a folder of dance videos to a training set: pose videos, keypoints and meta.json."""

# Dataset folder (formats/README.md §3-4): meta.json, a JSON list of {video_path, kps_path (Moore's two fields, first),
# keypoints_path, frames, fps, width, height, split}, paths relative to DATA_DIR (video_path absolute for a video
# outside it); meta_train.json and meta_val.json with the same entries by split; poses/<name>.mp4 and
# keypoints/<name>.pose.npz. With --depth also depth/<name>.mp4 (8-bit, near bright) and depth/<name>.depth.npz
# (lossless), the depth steadied on the scene around the dancer in the video's own frame, and `depth_path` in meta.
# - Every video's keypoints are extracted (raw, then gaps filled and smoothed) and drawn into a pose video with the
#   source's size (rounded down to even for h264), frame count and fps: Moore's `kps_path` is frame-aligned with
#   `video_path`.
# - Videos that make poor training data are left out, each with one line in DATA_DIR/prepare.log:
#   `unreadable` (cannot be probed or decoded), `too-short` (< --min-frames), `several-people` (two or more people of
#   comparable size in at least half of 8 evenly spaced frames; Holistic follows one person and would switch between
#   dancers. Counted by a cheap multi-person detector: with MediaPipe the bundled full-range face detector, so people
#   facing away are not counted; with DWPose its YOLOX person boxes), `no-person` (nobody in more than --max-missing
#   of the frames, raw keypoints before gap filling), `person-too-small` (median vertical extent of the confident body
#   points, head to feet when the whole body is in view, below --min-person-height of the frame height).
# - Resumable: each finished video, kept or skipped, leaves a record DATA_DIR/.prepare/<name>.json with its source's
#   size, mtime and the settings its verdict depends on; a video whose record still matches (and, when kept, whose
#   outputs exist) is not done again. Every file is written to a temporary name and renamed, so a crash leaves no
#   half-written output.
# - The train/val split hashes the seed and the video's name, so a video's split does not change when others come.

import hashlib
import json
import multiprocessing
import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from functools import cache
from itertools import chain
from pathlib import Path, PurePosixPath

import numpy as np
from tqdm.auto import tqdm

from animate.atomic import write_text
from animate.depth.maps import DEPTH_SUFFIX
from animate.depth.release import DEFAULT_DEPTH_MODEL, INPUT_SIDE
from animate.errors import AnimateError, first_line
from animate.native_logs import native_stderr_silenced
from animate.pose.frames import draw_sequence
from animate.pose.keypoints import PoseSequence
from animate.pose.render import SCORE_THRESHOLD
from animate.pose.smooth import fill_gaps, smooth_sequence
from animate.pose.sources import BACKENDS, renderer
from animate.profiles import get_profile
from animate.media.video import VideoWriter, probe_video, read_frames

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi")
REASONS = ("unreadable", "too-short", "several-people", "no-person", "person-too-small")
POSES, KEYPOINTS, DEPTH, STATE, LOG = "poses", "keypoints", "depth", ".prepare", "prepare.log"
RECORD_SETTINGS = ("profile", "pose_backend", "min_frames", "max_missing", "min_person_height")
DEPTH_SETTINGS = ("depth_model", "depth_size")  # part of a record only when --depth is on
NO_PERSON = "no person found"  # the start of extract_video's error when no frame has anyone

PEOPLE_SAMPLES = 8  # frames checked for several people
SEVERAL_PEOPLE_SHARE = 0.5  # several people in at least this share of them → left out
COMPARABLE_SIZE = 0.5  # a detection counts as a person when at least this fraction of the largest one's height
FACE_SCORE = 0.5


@dataclass
class PrepareOptions:
    """Everything `animate prepare` needs."""

    videos_dir: Path
    data_dir: Path
    profile: str = "moore"
    workers: int | None = None  # videos prepared at once; None = one per 2 cores
    val_fraction: float = 0.05
    seed: int = 0
    min_frames: int = 24
    max_missing: float = 0.2
    min_person_height: float = 0.2
    pose_backend: str = "mediapipe"
    dwpose_dir: Path = Path("pretrained_weights")
    depth: bool = False
    depth_model: str = DEFAULT_DEPTH_MODEL
    depth_size: int = INPUT_SIDE
    device: str = "auto"
    progress: bool = True

    def settings(self) -> dict:
        """The options a video's outputs and verdict depend on: a record made with others is redone (the depth
        settings count only with --depth)."""
        keys = RECORD_SETTINGS + (DEPTH_SETTINGS if self.depth else ())
        return {key: str(getattr(self, key)) if key == "depth_model" else getattr(self, key) for key in keys}


@dataclass
class Outcome:
    """What became of one video: kept (reason None) with its size and length, or skipped and why."""

    name: str
    source: str  # path under videos_dir, '/'-separated
    reason: str | None = None
    detail: str = ""
    frames: int = 0
    fps: float = 0.0
    width: int = 0
    height: int = 0


@dataclass
class Summary:
    """Counts of a finished run."""

    data_dir: Path
    kept: int
    frames: int
    train: int
    val: int
    skipped: dict[str, int]
    resumed: int

    def __str__(self) -> str:
        skipped = ", ".join(f"{reason} {count}" for reason, count in self.skipped.items()) or "none"
        return (f"kept {self.kept} videos / {self.frames} frames (train {self.train}, val {self.val}; "
                f"{self.resumed} videos done by an earlier run)\n"
                f"skipped {sum(self.skipped.values())}: {skipped} (reasons in {self.data_dir / LOG})\n"
                f"{self.data_dir / 'meta.json'}")


class _Skip(Exception):
    """A video left out of the dataset, and why."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def find_videos(folder: Path, data_dir: Path) -> list[Path]:
    """Video files under folder (recursive, sorted), without hidden files and folders or this tool's outputs."""
    ours = {(data_dir / sub).resolve() for sub in (POSES, KEYPOINTS, DEPTH)}
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".") and Path(root, d).resolve() not in ours]
        found += [Path(root, f) for f in files if not f.startswith(".") and Path(f).suffix.lower() in VIDEO_SUFFIXES]
    return sorted(found)


def video_names(relative: list[str]) -> list[str]:
    """Output names: the '/'-separated paths under videos_dir without the extension, separators → '__'."""
    # Names that would clash (a.mp4 and a.mov, or a/b.mp4 and a__b.mp4; compared case-insensitively) get a hash of
    # their path appended, so a name stays the same from run to run unless a new file clashes with it.
    bases = ["__".join(PurePosixPath(path).with_suffix("").parts) for path in relative]
    counts = Counter(base.casefold() for base in bases)
    return [base if counts[base.casefold()] == 1 else f"{base}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"
            for base, path in zip(bases, relative)]


def split_of(name: str, seed: int, val_fraction: float) -> str:
    """'val' or 'train' from a hash of the seed and the name alone (stable when other videos come and go)."""
    digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
    return "val" if int.from_bytes(digest[:8], "big") / 2**64 < val_fraction else "train"


def output_names(name: str) -> tuple[str, str]:
    """(pose video, keypoint file) of the video called name, relative to the dataset folder."""
    return f"{POSES}/{name}.mp4", f"{KEYPOINTS}/{name}.pose.npz"


def depth_names(name: str) -> tuple[str, str]:
    """(depth video, lossless depth maps) of the video called name, relative to the dataset folder."""
    return f"{DEPTH}/{name}.mp4", f"{DEPTH}/{name}{DEPTH_SUFFIX}"


def _outputs(name: str, options: "PrepareOptions") -> tuple[str, ...]:
    """Every file a kept video leaves in the dataset folder."""
    return output_names(name) + (depth_names(name) if options.depth else ())


@cache
def _depth_model(spec: str, device: str):
    """The depth model, loaded once per process."""
    from animate.depth.estimate import open_depth_model

    return open_depth_model(spec, device)


def write_video_depth(source: Path, seq: PoseSequence, name: str, options: "PrepareOptions",
                      threads: int | None = None) -> None:
    """The video's depth in its own frame, steadied around the dancer, at the working scale (the model's input size:
    a full-HD source does not fill memory; the datasets crop it by fractions like the video): depth/<name>.mp4 and
    depth/<name>.depth.npz."""
    import torch

    from animate.depth.video import video_depth, working_scale, write_depth

    if threads is not None:  # a worker process among others: one core each
        torch.set_num_threads(threads)
    scale = working_scale(seq.width, seq.height, options.depth_size)
    size = (max(2, round(seq.width * scale) // 2 * 2), max(2, round(seq.height * scale) // 2 * 2))
    clip = video_depth(source, _depth_model(options.depth_model, options.device), seq, size,
                       side=options.depth_size, progress=False)
    write_depth(clip, *(options.data_dir / path for path in depth_names(name)))


def missing_share(seq: PoseSequence) -> float:
    """Share of frames without anyone (no body point scored above 0)."""
    return float(1.0 - (seq.body[..., 2] > 0).any(axis=1).mean())


def person_height(seq: PoseSequence) -> float:
    """Median over frames with someone of the vertical extent of the confident body points, over the frame height."""
    confident = seq.body[..., 2] >= SCORE_THRESHOLD
    y = np.clip(seq.body[..., 1], 0, seq.height)
    extent = np.where(confident, y, -np.inf).max(axis=1) - np.where(confident, y, np.inf).min(axis=1)
    seen = confident.any(axis=1)
    return float(np.median(extent[seen]) / seq.height) if seen.any() else 0.0


def _people_heights(frames: list[np.ndarray], options: PrepareOptions) -> list[np.ndarray]:
    """Heights of the people a multi-person detector finds in each frame (faces for mediapipe, bodies for dwpose)."""
    if options.pose_backend == "dwpose":
        import cv2

        from animate.pose import dwpose

        detector = dwpose.DWPoseExtractor(options.dwpose_dir)
        heights = []
        for rgb in frames:
            people = detector.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            heights.append(people[:, 3] - people[:, 1])
        return heights
    import mediapipe as mp

    with native_stderr_silenced(), mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=FACE_SCORE) as faces:  # full range: people up to ~5 m away
        return [np.array([face.location_data.relative_bounding_box.height
                          for face in faces.process(rgb).detections or []]) for rgb in frames]


def several_people_share(source: Path, num_frames: int, options: PrepareOptions) -> float:
    """Share of evenly spaced frames with at least two people of comparable size."""
    picks = np.unique(np.linspace(0, num_frames - 1, min(PEOPLE_SAMPLES, num_frames)).round().astype(int))
    frames = [next(read_frames(source, i, i + 1)) for i in picks.tolist()]
    counts = [int((h >= COMPARABLE_SIZE * h.max()).sum()) if len(h) else 0 for h in _people_heights(frames, options)]
    return float(np.mean([count >= 2 for count in counts]))


def _extract(source: Path, options: PrepareOptions, threads: int | None) -> PoseSequence:
    """Raw keypoints of every frame with the chosen backend (threads: MediaPipe graphs at once; None = per core)."""
    if options.pose_backend == "dwpose":
        from animate.pose import dwpose

        return dwpose.extract_video(source, options.dwpose_dir, progress=False)
    from animate.pose import extract

    return extract.extract_video(source, progress=False, workers=threads)


def _checked_keypoints(source: Path, options: PrepareOptions, threads: int | None) -> PoseSequence:
    """The video's raw keypoints if it passes every filter; else _Skip naming the first it fails."""
    try:
        info = probe_video(source)
        if info.num_frames < options.min_frames:
            raise _Skip("too-short", f"{info.num_frames} frames < --min-frames {options.min_frames}")
        share = several_people_share(source, info.num_frames, options)
        if share >= SEVERAL_PEOPLE_SHARE:
            raise _Skip("several-people", f"2+ people in {share:.0%} of the checked frames")
        raw = _extract(source, options, threads)
    except AnimateError as err:
        raise _Skip("no-person" if str(err).startswith(NO_PERSON) else "unreadable", str(err)) from None
    missing = missing_share(raw)
    if missing > options.max_missing:
        raise _Skip("no-person", f"nobody in {missing:.0%} of the frames > --max-missing {options.max_missing}")
    height = person_height(raw)
    if height < options.min_person_height:
        raise _Skip("person-too-small",
                    f"median body height {height:.2f} of the frame < --min-person-height {options.min_person_height}")
    return raw


def render_pose_video(seq: PoseSequence, path: Path, profile: str) -> None:
    """Draw every frame in the profile's style at the keypoints' size (rounded down to even for h264), same fps."""
    draw = renderer(get_profile(profile))
    with VideoWriter(path, seq.fps) as writer:
        for frame in draw_sequence(seq, seq.width // 2 * 2, seq.height // 2 * 2, draw):
            writer.write(frame)


def _write_json(path: Path, value) -> None:
    """Write JSON to path, atomically."""
    write_text(path, json.dumps(value, indent=1) + "\n")


def _stamp(source: Path) -> dict:
    """Size and modification time of a source video: a record is valid while they match."""
    stat = source.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def prepare_video(source: Path, relative: str, name: str, options: PrepareOptions, threads: int | None) -> Outcome:
    """Filter one video, write its keypoints and pose video if kept, and record the outcome."""
    stamp = _stamp(source)
    try:
        seq = smooth_sequence(fill_gaps(_checked_keypoints(source, options, threads)))
        pose_path, keypoints_path = output_names(name)
        render_pose_video(seq, options.data_dir / pose_path, options.profile)  # first: no keypoints without a video
        if options.depth:
            write_video_depth(source, seq, name, options, threads)
        seq.save(options.data_dir / keypoints_path)
        outcome = Outcome(name, relative, frames=len(seq), fps=seq.fps, width=seq.width, height=seq.height)
    except _Skip as skip:
        outcome = Outcome(name, relative, skip.reason, skip.detail)
    except (AnimateError, ValueError, StopIteration) as err:  # a video that decodes badly part-way: skip, go on
        outcome = Outcome(name, relative, "unreadable", first_line(err))
    _write_json(options.data_dir / STATE / f"{name}.json",
                {"source": relative, **stamp, "settings": options.settings(), "outcome": asdict(outcome)})
    return outcome


def _recorded(source: Path, relative: str, name: str, options: PrepareOptions) -> Outcome | None:
    """The outcome of an earlier run if its record matches the source and the settings and its outputs exist."""
    try:
        record = json.loads((options.data_dir / STATE / f"{name}.json").read_text())
        outcome = Outcome(**record["outcome"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    settings = options.settings()  # a kept video's record with depth serves a run without it (the same other outputs)
    recorded = {key: value for key, value in record.get("settings", {}).items()
                if key in settings or outcome.reason is not None}
    current = {"source": relative, **_stamp(source)}
    if any(record.get(key) != value for key, value in current.items()) or recorded != settings:
        return None
    if outcome.reason is None and not all((options.data_dir / path).is_file() for path in _outputs(name, options)):
        return None
    return outcome


def _run(jobs: list[tuple[Path, str, str]], options: PrepareOptions, workers: int) -> Iterator[Outcome]:
    """Outcomes of the jobs as they finish: here when one at a time (extraction threaded), else in spawned processes."""
    if workers == 1 or len(jobs) <= 1:
        for job in jobs:
            yield prepare_video(*job, options, threads=None)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
        futures = [pool.submit(prepare_video, *job, options, 1) for job in jobs]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _meta_entry(outcome: Outcome, options: PrepareOptions) -> dict:
    """One meta.json entry: Moore's video_path and kps_path first (DATA_DIR-relative, or absolute outside it)."""
    data_dir = Path(os.path.abspath(options.data_dir))
    source = Path(os.path.abspath(options.videos_dir / outcome.source))
    pose_path, keypoints_path = output_names(outcome.name)
    return {
        "video_path": str(source.relative_to(data_dir) if source.is_relative_to(data_dir) else source),
        "kps_path": pose_path, "keypoints_path": keypoints_path,
        **({"depth_path": depth_names(outcome.name)[0]} if options.depth else {}),
        "frames": outcome.frames, "fps": outcome.fps, "width": outcome.width, "height": outcome.height,
        "split": split_of(outcome.name, options.seed, options.val_fraction),
    }


def _check(options: PrepareOptions) -> None:
    """One clear error for a bad option, a missing folder or missing DWPose files, before any work."""
    if not options.videos_dir.is_dir():
        raise AnimateError(f"videos folder not found: {options.videos_dir}")
    get_profile(options.profile)
    if options.pose_backend not in BACKENDS:
        raise AnimateError(f"unknown pose backend {options.pose_backend!r} (choose from {', '.join(BACKENDS)})")
    if options.workers is not None and options.workers < 1:
        raise AnimateError(f"--workers must be at least 1, got {options.workers}")
    if options.min_frames < 1:
        raise AnimateError(f"--min-frames must be at least 1, got {options.min_frames}")
    for flag, value in (("--val-fraction", options.val_fraction), ("--max-missing", options.max_missing),
                        ("--min-person-height", options.min_person_height)):
        if not 0 <= value <= 1:
            raise AnimateError(f"{flag} must be between 0 and 1, got {value}")
    if options.pose_backend == "dwpose":
        from animate.pose import dwpose

        dwpose.DWPoseExtractor(options.dwpose_dir)  # missing models or onnxruntime: one error now, not one per video
    if options.depth:
        from animate.depth.estimate import check_side, open_depth_model

        check_side(options.depth_size)
        open_depth_model(options.depth_model, "cpu")  # missing or broken depth weights: one error now, not one per video


def prepare_dataset(options: PrepareOptions) -> Summary:
    """Prepare every video under videos_dir into data_dir (continuing an earlier run) and write the meta files."""
    _check(options)
    sources = find_videos(options.videos_dir, options.data_dir)
    if not sources:
        raise AnimateError(f"no videos ({' '.join(VIDEO_SUFFIXES)}) in {options.videos_dir}")
    relative = [source.relative_to(options.videos_dir).as_posix() for source in sources]
    done, jobs = [], []
    for source, rel, name in zip(sources, relative, video_names(relative)):
        outcome = _recorded(source, rel, name, options)
        if outcome is None:
            jobs.append((source, rel, name))
        else:
            done.append(outcome)
    workers = options.workers or max(1, (os.cpu_count() or 1) // 2)
    options.data_dir.mkdir(parents=True, exist_ok=True)
    outcomes = []
    with open(options.data_dir / LOG, "w") as log, tqdm(total=len(sources), desc="preparing", unit="video",
                                                        disable=not options.progress) as bar:
        for outcome in chain(done, _run(jobs, options, workers)):
            outcomes.append(outcome)
            if outcome.reason:
                log.write(f"{outcome.reason}\t{outcome.source}\t{outcome.detail}\n")
                log.flush()
            bar.update()
    kept = sorted((o for o in outcomes if o.reason is None), key=lambda o: o.name)
    entries = [_meta_entry(outcome, options) for outcome in kept]
    _write_json(options.data_dir / "meta.json", entries)
    for split in ("train", "val"):
        _write_json(options.data_dir / f"meta_{split}.json", [e for e in entries if e["split"] == split])
    reasons = Counter(o.reason for o in outcomes if o.reason)
    return Summary(options.data_dir, len(kept), sum(o.frames for o in kept),
                   sum(e["split"] == "train" for e in entries), sum(e["split"] == "val" for e in entries),
                   {reason: reasons[reason] for reason in REASONS if reasons[reason]}, len(done))
