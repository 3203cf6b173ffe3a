"""`animate synth`: a dataset of procedural figures dancing, with exact keypoints, in `animate prepare`'s layout.

Per video `<split>_<index>`: videos/<name>.mp4 (the figure dancing), poses/<name>.mp4 (its keypoints drawn in the
profile's style, frame-aligned), keypoints/<name>.pose.npz, depth/<name>.depth.npz (the exact depth of every frame,
`data_tools.depth`, as nearness 1/z in animate.depth.maps' lossless format) and depth/<name>.mp4 (its 8-bit
rendering, near bright), refs/<name>.png (the same figure in a relaxed pose on the same background, for evaluation)
with its keypoints (refs/<name>.pose.npz), and for the test split regions/<name>.npz (`regions`: per frame which
pixels show the skin, hair and irises of the head, data_tools.figures.FACE_REGIONS, for `animate eval --face`;
`labels`: the part labels, 0 = the room);
meta.json, meta_train.json and meta_test.json list them like prepare's meta files (`split` = train or test) plus
depth_path (the .mp4; the .depth.npz beside it), ref_path, figure_seed and dance_seed, identity (the seed of the
person: with `outfits` > 1 that many videos show one person in other clothes, rooms and dances) and caption (from the
video's parameters: "a figure with a striped green top and blue shorts in a purple room"). Everything follows from the
seed: each video's figure and dance seeds come from (seed, split, index) with the split in the lowest bit, so the test
split's figures and dances are never the train split's. Videos are rendered in parallel processes (`workers`); the
files do not depend on how many. The folder is built beside `out` and renamed into place at the end (or removed on any
failure).
"""

import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from animate.atomic import atomic_path
from animate.depth.maps import DepthClip
from animate.errors import AnimateError
from animate.pose.keypoints import PoseSequence
from animate.profiles import get_profile
from animate.media.video import VideoWriter

from .backgrounds import make_background, wall_colour
from .captions import caption
from .dances import make_dance, neutral_pose
from .depth import Room, draw_scene
from .figures import Figure, draw_figure, face_regions
from .framing import FRAMINGS, crop_origins, crop_points, render_size, video_framing, zoom_of
from .prepare import DEPTH, depth_names, output_names, render_pose_video

SPLITS = ("train", "test")
VIDEOS, REFS, REGIONS = "videos", "refs", "regions"


@dataclass
class SynthOptions:
    """Everything `animate synth` needs."""

    out: Path
    train_videos: int = 32
    test_videos: int = 8
    frames: int = 48
    width: int = 128
    height: int = 192
    fps: float = 24.0
    seed: int = 0
    profile: str = "moore"
    force: bool = False
    workers: int | None = None  # videos rendered at once (processes); None = one per core
    outfits: int = 1  # videos per identity: the same person in other clothes, rooms and dances
    framing: str = "full"  # full | half | head | mixed (data_tools.framing)


def video_seeds(seed: int, split: str, count: int) -> list[tuple[int, int]]:
    """(figure seed, dance seed) of a split's videos: 32-bit, from (seed, split, index), the lowest bit = the split."""
    bit = SPLITS.index(split)
    states = [np.random.SeedSequence([seed, bit, index]).generate_state(2) for index in range(count)]
    return [(int(f) >> 1 << 1 | bit, int(d) >> 1 << 1 | bit) for f, d in states]


def _check(options: SynthOptions) -> None:
    """One clear error for a bad option or an output folder that may not be replaced, before any work."""
    get_profile(options.profile)
    if options.train_videos < 0 or options.test_videos < 0 or options.train_videos + options.test_videos < 1:
        raise AnimateError(f"--train and --test must be >= 0 with at least one video, got {options.train_videos} "
                           f"and {options.test_videos}")
    if options.seed < 0:
        raise AnimateError(f"--seed must be >= 0, got {options.seed}")
    if options.frames < 2:
        raise AnimateError(f"--frames must be at least 2, got {options.frames}")
    if options.width < 16 or options.height < 16 or options.width % 2 or options.height % 2:
        raise AnimateError(f"-W and -H must be even and at least 16 (h264), got {options.width}x{options.height}")
    if options.framing not in FRAMINGS:
        raise AnimateError(f"unknown --framing {options.framing!r} (choose from {', '.join(FRAMINGS)})")
    if options.outfits < 1:
        raise AnimateError(f"--outfits must be at least 1, got {options.outfits}")
    if options.workers is not None and options.workers < 1:
        raise AnimateError(f"--workers must be at least 1, got {options.workers}")
    if not options.fps > 0:
        raise AnimateError(f"--fps must be positive, got {options.fps}")
    out = Path(options.out)
    if out.exists() and not out.is_dir():
        raise AnimateError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not options.force:
        raise AnimateError(f"{out} is not empty; pass --force to replace it")


def _write_video(root: Path, name: str, split: str, seeds: tuple[int, int, int], options: SynthOptions) -> dict:
    """Render one figure's dance, its pose video, keypoints and reference photo under root; its meta entry."""
    identity_seed, figure_seed, dance_seed = seeds
    width, height = options.width, options.height
    figure = Figure.from_seeds(identity_seed, figure_seed)
    framing = video_framing(options.framing, dance_seed)
    canvas = render_size(width, height, zoom_of(figure, framing))
    background = make_background(dance_seed, *canvas)
    body, hands, face = make_dance(dance_seed, options.frames, options.fps, *canvas, figure)
    room = Room.from_seed(dance_seed, *canvas)
    origins = np.zeros((options.frames, 2), np.int64)
    if framing != "full":
        origins = crop_origins(body, framing, (width, height), canvas)
    video_path = f"{VIDEOS}/{name}.mp4"
    nearness = np.empty((options.frames, height, width), np.float32)
    regions = np.zeros((options.frames, height, width), np.uint8) if split == "test" else None
    labels = np.zeros_like(regions) if regions is not None else None
    with VideoWriter(root / video_path, options.fps) as writer:
        for f in range(options.frames):
            scene = draw_scene(figure, body[f], hands[f], room, background)
            x, y = origins[f]
            window = np.s_[y:y + height, x:x + width]
            writer.write(scene.rgb[window])
            nearness[f] = scene.nearness[window]
            if regions is not None:  # the held-out videos' face regions, for `animate eval --face`
                regions[f] = face_regions(figure, body[f], hands[f], *canvas, background)[window]
                labels[f] = scene.labels[window]
    if regions is not None:
        (root / REGIONS).mkdir(exist_ok=True)
        np.savez_compressed(root / REGIONS / f"{name}.npz", regions=regions, labels=labels)
    if framing != "full":
        body, hands, face = (crop_points(points, origins, (width, height)) for points in (body, hands, face))
    depth_path, depth_maps = depth_names(name)  # `animate prepare --depth`'s layout
    clip = DepthClip.from_nearness(nearness, options.fps)
    with VideoWriter(root / depth_path, options.fps) as writer:
        writer.write(clip.frames())
    clip.save(root / depth_maps)
    seq = PoseSequence(body, hands, face, width, height, options.fps)
    pose_path, keypoints_path = output_names(name)
    render_pose_video(seq, root / pose_path, options.profile)
    seq.save(root / keypoints_path)
    ref_body, ref_hands, ref_face = neutral_pose(figure, *canvas, dance_seed)
    ref_path = f"{REFS}/{name}.png"
    (root / REFS).mkdir(exist_ok=True)
    ref = draw_figure(figure, ref_body, ref_hands, *canvas, background)[0]
    ref_points = [points[None] for points in (ref_body, ref_hands, ref_face)]
    if framing != "full":
        x, y = crop_origins(ref_body[None], framing, (width, height), canvas)[0]
        ref = ref[y:y + height, x:x + width]
        ref_points = [crop_points(points, np.array([[x, y]]), (width, height)) for points in ref_points]
    Image.fromarray(ref).save(root / ref_path)
    PoseSequence(*ref_points, width, height, options.fps).save(root / REFS / f"{name}.pose.npz")
    return {"video_path": video_path, "kps_path": pose_path, "keypoints_path": keypoints_path,
            "depth_path": depth_path, "frames": options.frames, "fps": options.fps, "width": width, "height": height,
            "split": split, "ref_path": ref_path, "figure_seed": figure_seed, "dance_seed": dance_seed,
            "identity": identity_seed, "caption": video_caption(figure, dance_seed), "framing": framing}


def video_caption(figure: Figure, dance_seed: int) -> str:
    """The caption of a video: the figure's top and bottom (shorts when the shins are bare) and the room's wall."""
    return caption(figure.top, figure.bottom, figure.cover["shin"] == 0.0, wall_colour(dance_seed))


def identity_seeds(seeds: list[tuple[int, int]], outfits: int) -> list[tuple[int, int, int]]:
    """(identity, figure, dance) seeds: each run of `outfits` videos shares its first video's figure as identity."""
    return [(seeds[index - index % outfits][0], figure, dance) for index, (figure, dance) in enumerate(seeds)]


def _render(root: Path, jobs: list[tuple[str, str, tuple[int, int, int]]], options: SynthOptions) -> list[dict]:
    """Every video's files and meta entry, in job order: here when one worker, else in spawned processes."""
    workers = min(options.workers or os.cpu_count() or 1, len(jobs))
    if workers == 1:
        return [_write_video(root, *job, options) for job in jobs]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_write_video, root, *job, options) for job in jobs]
        try:
            return [future.result() for future in futures]
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # nothing may still be writing when the folder goes
            raise


def synthesize(options: SynthOptions) -> str:
    """Write the synthetic dataset described by options into options.out; a one-paragraph summary."""
    _check(options)
    started = time.perf_counter()
    out = Path(options.out)
    with atomic_path(out) as built:  # what is at out is replaced (checked by _check)
        built.mkdir()
        jobs = [(f"{split}_{index:04d}", split, seeds)
                for split, count in zip(SPLITS, (options.train_videos, options.test_videos))
                for index, seeds in enumerate(identity_seeds(video_seeds(options.seed, split, count), options.outfits))]
        entries = _render(built, jobs, options)
        metas = {"meta": entries, **{f"meta_{split}": [e for e in entries if e["split"] == split] for split in SPLITS}}
        for name, chosen in metas.items():
            (built / f"{name}.json").write_text(json.dumps(chosen, indent=1) + "\n")
    seconds = time.perf_counter() - started
    return (f"synthesized {len(entries)} videos ({options.train_videos} train, {options.test_videos} test with unseen "
            f"figures and dances) of {options.frames} frames at {options.width}x{options.height}, {options.fps:g} fps, "
            f"seed {options.seed}, {options.profile} pose style, in {seconds:.1f} s: {out / 'meta.json'} "
            f"(meta_train.json, meta_test.json) with {VIDEOS}/, poses/, keypoints/, {DEPTH}/ and {REFS}/")
