"""A video's depth clip: Depth Anything over its frames in batches, steadied around the dancer, placed like the pose."""

import numpy as np
from tqdm.auto import tqdm
from transformers import DepthAnythingForDepthEstimation

from ..media.video import probe_video, read_frames
from ..pose.keypoints import PoseSequence
from ..pose.retarget import Placement
from .estimate import INPUT_SIDE, estimate_nearness
from .maps import DepthClip
from .place import place_depth
from .steady import person_masks, steady

UNPLACED = Placement(1.0, np.zeros(2))  # the video's own frame


def _batches(frames, size: int):
    """Lists of up to `size` frames from an iterator."""
    batch = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def video_depth(path, model: DepthAnythingForDepthEstimation, people: PoseSequence | None,
                out_size: tuple[int, int], placement: Placement = UNPLACED, photo_size: tuple[int, int] | None = None,
                side: int = INPUT_SIDE, batch_size: int = 8, max_frames: int | None = None,
                progress: bool = True) -> DepthClip:
    """The depth clip of a video at out_size (width, height): nearness steadied over the scene outside `people` (the
    dancer's keypoints in the video's pixels; None: every pixel), moved by `placement` into the photo's frame
    (photo_size; default the video's) and fitted to the canvas as the pose is, then mapped to levels once.

    Frames are kept at most at the model's input scale (short side `side`), so memory follows the output, not the
    source resolution."""
    info = probe_video(path)
    count = info.num_frames if max_frames is None else min(max_frames, info.num_frames)
    work = min(1.0, side / min(info.width, info.height))  # working pixels per video pixel
    work_size = (max(1, round(info.width * work)), max(1, round(info.height * work)))
    nearness = np.empty((count, work_size[1], work_size[0]), np.float32)
    done = 0
    bar = tqdm(total=count, desc="depth", unit="frame", disable=not progress)
    for batch in _batches(read_frames(path, 0, count), batch_size):
        nearness[done:done + len(batch)] = estimate_nearness(model, np.stack(batch), side, batch_size, work_size)
        done += len(batch)
        bar.update(len(batch))
    bar.close()
    nearness = nearness[:done]
    people_masks = None if people is None else person_masks(people.slice(0, done), *work_size, scale=work)
    steadied = steady(nearness, people_masks)
    working = Placement(placement.scale / work, placement.offset)  # working pixels -> the photo's
    placed = place_depth(steadied, working, photo_size or (info.width, info.height), out_size)
    return DepthClip.from_nearness(placed, info.fps)

