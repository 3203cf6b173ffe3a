"""A video's depth clip: Depth Anything over its frames in batches, steadied around the dancer, placed like the pose,
and written as the 8-bit video with the lossless maps beside it."""

from pathlib import Path

import numpy as np
from tqdm.auto import tqdm
from transformers import DepthAnythingForDepthEstimation

from ..errors import AnimateError
from ..media.video import VideoWriter, probe_video, read_frames
from ..pose.keypoints import PoseSequence
from ..pose.retarget import Placement
from .estimate import estimate_nearness
from .maps import DepthClip
from .place import place_depth
from .release import INPUT_SIDE
from .steady import person_masks, steady

UNPLACED = Placement(1.0, np.zeros(2))  # the video's own frame
CHUNK = 16  # frames handed to the video writer at a time


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


def working_scale(width: int, height: int, side: int = INPUT_SIDE) -> float:
    """Working pixels per video pixel: frames are kept at most at the model's input scale (short side `side`)."""
    return min(1.0, side / min(width, height))


def video_depth(path, model: DepthAnythingForDepthEstimation, people: PoseSequence | None,
                out_size: tuple[int, int], placement: Placement = UNPLACED, photo_size: tuple[int, int] | None = None,
                side: int = INPUT_SIDE, batch_size: int = 8, max_frames: int | None = None,
                progress: bool = True) -> DepthClip:
    """The depth clip of a video at out_size (width, height): nearness steadied over the scene outside `people` (the
    dancer's keypoints in the video's pixels, a frame each; None: every pixel), moved by `placement` into the photo's
    frame (photo_size; default the video's) and fitted to the canvas as the pose is, then mapped to levels once.

    Frames are kept at the working scale, so memory follows the output and the model's input, not the source."""
    info = probe_video(path)
    count = info.num_frames if max_frames is None else min(max_frames, info.num_frames)
    if people is not None and len(people) < count:
        raise AnimateError(f"{path}: the keypoints cover {len(people)} frames, the video has {count}")
    work = working_scale(info.width, info.height, side)
    work_size = (max(1, round(info.width * work)), max(1, round(info.height * work)))
    nearness = np.empty((count, work_size[1], work_size[0]), np.float32)
    done = 0
    with tqdm(total=count, desc="depth", unit="frame", disable=not progress) as bar:
        for batch in _batches(read_frames(path, 0, count), batch_size):
            nearness[done:done + len(batch)] = estimate_nearness(model, np.stack(batch), side, batch_size, work_size)
            done += len(batch)
            bar.update(len(batch))
    nearness = nearness[:done]
    people_masks = None if people is None else person_masks(people.slice(0, done), *work_size, scale=work)
    steadied = steady(nearness, people_masks)
    working = Placement(placement.scale / work, placement.offset)  # working pixels -> the photo's
    placed = place_depth(steadied, working, photo_size or (info.width, info.height), out_size)
    return DepthClip.from_nearness(placed, info.fps)


def write_depth(clip: DepthClip, video: Path, maps: Path, crf: int = 18, overwrite: bool = True) -> None:
    """The 8-bit video (streamed in chunks) and the lossless maps beside it; the video is encoded completely before
    either file appears, the maps land first."""
    writer = VideoWriter(video, clip.fps, crf=crf, overwrite=overwrite)
    try:
        for start in range(0, len(clip.levels), CHUNK):
            writer.write(clip.frames(start, start + CHUNK))
        writer.finish()
        clip.save(maps)
        writer.publish()
    except BaseException:
        writer.abort()
        raise
