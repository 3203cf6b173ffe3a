"""Training data: frames and their pose images from the videos of a meta.json, decoded lazily and cropped alike."""

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import decord
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from animate.errors import AnimateError, first_line
from animate.native_logs import native_stderr_silenced
from animate.pipeline.animate import clip_pixels, pose_pixels, vae_pixels
from animate.pose.face import face_crop
from animate.pose.keypoints import PoseSequence

CROP_SCALE = (0.9, 1.0)  # the crop's area as a share of the largest box of the output's aspect (Moore's img_scale)

MetaPaths = str | os.PathLike | Sequence[str | os.PathLike]
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class VideoEntry:
    """One meta entry: a source video, its frame-aligned pose video (and depth video), and their frame count; for the
    content guider its keypoints file, the person it shows (`identity`; the video itself when not given) and caption."""

    video: str
    pose: str
    num_frames: int
    depth: str | None = None
    keypoints: str | None = None
    identity: str = ""
    caption: str = ""


def _open(path: str) -> decord.VideoReader:
    """A decord reader of path (nothing decoded yet); AnimateError if the file cannot be read as a video."""
    if not os.path.isfile(path):
        raise AnimateError(f"video not found: {path}")
    try:
        with native_stderr_silenced():
            return decord.VideoReader(path)
    except Exception as err:
        raise AnimateError(f"cannot read video {path}: not a video or the file is corrupt") from err


def read_frames_at(path: str, indices: Sequence[int]) -> np.ndarray:
    """Only the frames at indices (repeats and any order allowed), uint8 RGB [n, H, W, 3]."""
    unique, order = np.unique(np.asarray(indices, dtype=np.int64), return_inverse=True)
    decord.bridge.set_bridge("native")
    return _open(path).get_batch(unique.tolist()).asnumpy()[order]


def _frame_count(video: str, *aligned: str) -> int:
    """The frame count shared by a video and its frame-aligned pose (and depth) videos; AnimateError if they differ."""
    num_frames = len(_open(video))
    for other in aligned:
        if (count := len(_open(other))) != num_frames:
            raise AnimateError(f"frame counts differ: {video} has {num_frames} frames, {other} has {count}")
    return num_frames


def load_meta(meta: MetaPaths, depth: bool = False, content: bool = False) -> list[VideoEntry]:
    """The entries of one or more meta.json files, paths resolved against each file's folder, frame counts checked;
    with `depth`, every entry needs a depth_path (`animate prepare --depth`, `animate synth`); with `content`, a
    keypoints_path (its identity and caption are optional)."""
    entries = []
    for file in map(Path, [meta] if isinstance(meta, (str, os.PathLike)) else meta):
        if not file.is_file():
            raise AnimateError(f"dataset meta not found: {file}")
        try:
            items = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise AnimateError(f"cannot read dataset meta {file}: {err}") from err
        if not isinstance(items, list):
            raise AnimateError(f"dataset meta {file} is not a JSON list of {{video_path, kps_path}} entries")
        for number, item in enumerate(items):
            if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("video_path", "kps_path")):
                raise AnimateError(f"dataset meta {file}: entry {number} needs string fields video_path and kps_path")
            video, pose = str(file.parent / item["video_path"]), str(file.parent / item["kps_path"])
            extra = _content_fields(item, file, number, video) if content else {}
            if not depth:
                entries.append(VideoEntry(video, pose, _frame_count(video, pose), **extra))
                continue
            if not isinstance(item.get("depth_path"), str):
                raise AnimateError(f"dataset meta {file}: entry {number} has no depth_path (prepare it with --depth)")
            depth_video = str(file.parent / item["depth_path"])
            entries.append(VideoEntry(video, pose, _frame_count(video, pose, depth_video), depth_video, **extra))
    return entries


def _content_fields(item: dict, file: Path, number: int, video: str) -> dict:
    """An entry's keypoints file, identity and caption (the guider's data), or a one-line error."""
    if not isinstance(item.get("keypoints_path"), str):
        raise AnimateError(f"dataset meta {file}: entry {number} has no keypoints_path (the face crops need it)")
    caption = item.get("caption", "")
    if not isinstance(caption, str):
        raise AnimateError(f"dataset meta {file}: entry {number}: caption must be a string")
    return {"keypoints": str(file.parent / item["keypoints_path"]), "identity": str(item.get("identity", video)),
            "caption": caption}


def crop_box(rng: np.random.Generator, frame_width: int, frame_height: int, width: int, height: int) -> Box:
    """A random box of aspect width:height, CROP_SCALE of the largest such box by area, as fractions of the frame."""
    side = min(frame_width / width, frame_height / height) * np.sqrt(rng.uniform(*CROP_SCALE))
    box_width, box_height = width * side, height * side
    left, top = rng.uniform(0, frame_width - box_width), rng.uniform(0, frame_height - box_height)
    return left / frame_width, top / frame_height, (left + box_width) / frame_width, (top + box_height) / frame_height


class PoseVideoDataset(Dataset):
    """The videos of a meta with enough frames; items are cropped to (width, height) with one box per item, and hold
    the depth frames too when `depth` is asked for."""

    def __init__(self, meta: MetaPaths, width: int, height: int, min_frames: int, seed: int | None,
                 depth: bool = False, content: bool = False):
        if width < 8 or height < 8 or width % 8 or height % 8:
            raise AnimateError(f"width and height must be positive multiples of 8, got {width}x{height}")
        self.width, self.height, self.seed, self.epoch, self.depth = width, height, seed, 0, depth
        entries = load_meta(meta, depth, content)
        self.entries = [entry for entry in entries if entry.num_frames >= min_frames]
        if not self.entries:
            raise AnimateError(f"no video in the dataset meta has at least {min_frames} frames ({len(entries)} listed)")
        if skipped := len(entries) - len(self.entries):
            warnings.warn(f"skipping {skipped} of {len(entries)} videos with fewer than {min_frames} frames",
                          stacklevel=3)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        """The item of `index`; where its video can no longer be read (deleted or damaged since the run began), a
        warning and the next readable item, so that a run goes on."""
        for offset in range(len(self.entries)):
            entry = self.entries[(index + offset) % len(self.entries)]
            try:
                return self.item((index + offset) % len(self.entries))
            except (AnimateError, OSError, decord.DECORDError) as err:
                warnings.warn(f"skipping {entry.video}: {first_line(err)}", stacklevel=2)
        raise AnimateError(f"none of the {len(self.entries)} videos of the dataset can be read any more")

    def item(self, index: int) -> dict[str, torch.Tensor]:
        """The item of entry `index`, read from its videos (each kind of dataset says what it holds)."""
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Items of another epoch: other frames and crops of the same videos (with a seed)."""
        self.epoch = epoch

    def _rng(self, index: int) -> np.random.Generator:
        """The item's randomness: fixed by (seed, epoch, index) when a seed is set, so that any process, worker or
        resumed run draws the same item; else drawn from torch's generator."""
        if self.seed is not None:
            return np.random.default_rng((self.seed, self.epoch, index))
        return np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))

    def _crop(self, frames: np.ndarray, box: Box) -> list[Image.Image]:
        """Frames cut to box (fractions of the frame) and resized to (width, height), bilinear like vae_pixels."""
        height, width = frames.shape[1:3]
        pixel_box = (box[0] * width, box[1] * height, box[2] * width, box[3] * height)
        return [Image.fromarray(f).resize((self.width, self.height), Image.BILINEAR, box=pixel_box) for f in frames]

    def _vae(self, images: list[Image.Image]) -> torch.Tensor:
        """Cropped frames as VAE input, [n, 3, H, W] in [-1, 1]."""
        return torch.cat([vae_pixels(image, self.width, self.height) for image in images])

    @staticmethod
    def _control(images: list[Image.Image]) -> torch.Tensor:
        """Cropped pose or depth frames as control input, [n, 3, H, W] in [0, 1]."""
        return pose_pixels(np.stack([np.asarray(image) for image in images]))

    def _depth(self, entry: VideoEntry, indices: list[int], box: Box) -> dict[str, torch.Tensor]:
        """{"depth_pixel_values": the depth frames at indices in the item's crop} when depth is asked for, else {}."""
        if not self.depth:
            return {}
        return {"depth_pixel_values": self._control(self._crop(read_frames_at(entry.depth, indices), box))}


class Stage1Dataset(PoseVideoDataset):
    """Stage 1 items: reference and target frames of a video, the target's pose, one crop; CLIP gets the whole ref."""

    def __init__(self, meta: MetaPaths, width: int, height: int, sample_margin: int = 30, seed: int | None = None,
                 depth: bool = False, content: bool = False):
        if sample_margin < 0:
            raise AnimateError(f"sample_margin must be >= 0, got {sample_margin}")
        super().__init__(meta, width, height, min_frames=2, seed=seed, depth=depth, content=content)
        self.sample_margin = sample_margin

    def frame_pair(self, rng: np.random.Generator, num_frames: int) -> tuple[int, int]:
        """Reference and target indices at least sample_margin apart (as far as the video allows, at least 1)."""
        gap = max(1, min(self.sample_margin, num_frames - 1))
        frames = np.arange(num_frames)
        ref = int(rng.choice(frames[(frames + gap < num_frames) | (frames >= gap)]))
        return ref, int(rng.choice(frames[np.abs(frames - ref) >= gap]))

    def item(self, index: int) -> dict[str, torch.Tensor]:
        """Reference and target frames of entry `index`, the target's pose, one crop."""
        entry, rng = self.entries[index], self._rng(index)
        return self.pair_item(entry, rng, *self.frame_pair(rng, entry.num_frames))

    def pair_item(self, entry: VideoEntry, rng: np.random.Generator, ref: int, target: int) -> dict[str, torch.Tensor]:
        """The item of one (reference, target) frame pair of an entry."""
        frames = read_frames_at(entry.video, [ref, target])
        box = crop_box(rng, frames.shape[2], frames.shape[1], self.width, self.height)
        ref_pixels, target_pixels = self._vae(self._crop(frames, box))
        return {
            "pixel_values": target_pixels,
            "ref_pixel_values": ref_pixels,
            "pose_pixel_values": self._control(self._crop(read_frames_at(entry.pose, [target]), box))[0],
            "clip_pixel_values": clip_pixels(Image.fromarray(frames[0]))[0],
            **{key: value[0] for key, value in self._depth(entry, [target], box).items()},
        }


class Stage2Dataset(PoseVideoDataset):
    """Stage 2 items: n_sample_frames frames at a stride with their poses, a reference from the same video, one crop."""

    def __init__(self, meta: MetaPaths, width: int, height: int, n_sample_frames: int = 24, sample_rate: int = 4,
                 seed: int | None = None, depth: bool = False):
        if n_sample_frames < 1 or sample_rate < 1:
            raise AnimateError(f"n_sample_frames and sample_rate must be >= 1, got {n_sample_frames} and {sample_rate}")
        super().__init__(meta, width, height, min_frames=n_sample_frames, seed=seed, depth=depth)
        self.n_sample_frames, self.sample_rate = n_sample_frames, sample_rate

    def clip_indices(self, rng: np.random.Generator, num_frames: int) -> list[int]:
        """n_sample_frames indices from a random start, at sample_rate or the largest smaller stride that fits."""
        count = self.n_sample_frames
        stride = self.sample_rate if count == 1 else min(self.sample_rate, (num_frames - 1) // (count - 1))
        start = int(rng.integers(num_frames - (count - 1) * stride))
        return list(range(start, start + count * stride, stride))

    def item(self, index: int) -> dict[str, torch.Tensor]:
        """A clip of entry `index` with its poses and a reference frame, one crop."""
        entry, rng = self.entries[index], self._rng(index)
        indices = self.clip_indices(rng, entry.num_frames)
        frames = read_frames_at(entry.video, indices + [int(rng.integers(entry.num_frames))])
        box = crop_box(rng, frames.shape[2], frames.shape[1], self.width, self.height)
        pixels = self._vae(self._crop(frames, box))
        return {
            "pixel_values": pixels[:-1],
            "pose_pixel_values": self._control(self._crop(read_frames_at(entry.pose, indices), box)),
            "ref_pixel_values": pixels[-1],
            "clip_pixel_values": clip_pixels(Image.fromarray(frames[-1]))[0],
            **self._depth(entry, indices, box),
        }


class GuiderDataset(Stage1Dataset):
    """Stage 1 items plus the content guider's inputs: a face crop of the same person from another of its videos
    (another frame of this one when it has no other), never the target's own face, as CLIP input; whether a face was
    seen there; and the video's caption."""

    def __init__(self, meta: MetaPaths, width: int, height: int, sample_margin: int = 30, seed: int | None = None):
        super().__init__(meta, width, height, sample_margin, seed, content=True)
        self.by_identity: dict[str, list[int]] = {}
        for index, entry in enumerate(self.entries):
            self.by_identity.setdefault(entry.identity, []).append(index)

    def item(self, index: int) -> dict[str, torch.Tensor]:
        """The stage-1 item of entry `index` with a face crop from elsewhere and the caption."""
        entry, rng = self.entries[index], self._rng(index)
        ref, target = self.frame_pair(rng, entry.num_frames)
        face = self.face_crop(*self.face_source(rng, index, target))
        return {**self.pair_item(entry, rng, ref, target),
                "face_clip_pixel_values": clip_pixels(face or Image.new("RGB", (8, 8)))[0],
                "face_seen": torch.tensor(face is not None), "caption": entry.caption}

    def face_source(self, rng: np.random.Generator, index: int, target: int) -> tuple[VideoEntry, int]:
        """Where the face comes from: a random frame of another video of the person, else another frame of this one."""
        others = [other for other in self.by_identity[self.entries[index].identity] if other != index]
        if others:
            entry = self.entries[int(rng.choice(others))]
            return entry, int(rng.integers(entry.num_frames))
        entry = self.entries[index]
        frames = [frame for frame in range(entry.num_frames) if frame != target]
        return entry, int(rng.choice(frames))

    @staticmethod
    def face_crop(entry: VideoEntry, frame: int) -> Image.Image | None:
        """The face crop of a frame from its keypoints (None where no face is seen: a back view, a tiny face)."""
        keypoints = PoseSequence.load(entry.keypoints)
        image = Image.fromarray(read_frames_at(entry.video, [frame])[0])
        return face_crop(image, keypoints.body[frame], keypoints.face[frame])
