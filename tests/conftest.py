"""Shared fixtures: small pose videos, a reference photo, tiny weight sets on disk, and an in-process CLI runner."""

import json
import os

# The test machines have 2 cores and tests run beside other processes. With several OpenMP threads the tiny models
# spend most of their time spinning on contended cores (a 2-step run measured 10-35 s instead of under 1 s), so torch
# gets one thread unless the environment says otherwise. Must be set before torch is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import contextlib  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import NamedTuple  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

REF_SIZE = (64, 96)  # portrait 2:3, like the synthetic figure


class CliResult(NamedTuple):
    """What one `animate` invocation did."""

    code: int
    out: str
    err: str


@pytest.fixture(scope="session")
def pose_video(tmp_path_factory):
    """Factory: pose_video(frames, width=64, height=96, fps=12, seed=0) → path of a rendered synthetic-dance video.

    Videos are written once per session per argument set (VideoWriter, h264, DWPose-style drawing).
    """
    from animate.pose.render import draw_pose
    from animate.pose.synthetic import synthetic_dance
    from animate.media.video import VideoWriter

    folder = tmp_path_factory.mktemp("poses")
    made: dict[tuple, Path] = {}

    def make(frames: int, width: int = 64, height: int = 96, fps: float = 12, seed: int = 0) -> Path:
        key = (frames, width, height, fps, seed)
        if key not in made:
            path = folder / f"dance{frames}_{width}x{height}_{fps:g}fps_s{seed}.mp4"
            body = synthetic_dance(frames, seed=seed, fps=fps)
            with VideoWriter(path, fps) as writer:
                for start in range(0, frames, 16):
                    writer.write(np.stack([draw_pose(b, None, None, width, height) for b in body[start:start + 16]]))
            made[key] = path
        return made[key]

    return make


@pytest.fixture(scope="session")
def ref_photo(tmp_path_factory) -> Path:
    """A 64x96 RGB PNG of the cartoon person in the dance's first pose."""
    from animate.pose.synthetic import draw_person, synthetic_dance

    path = tmp_path_factory.mktemp("ref") / "person.png"
    Image.fromarray(draw_person(synthetic_dance(1)[0], *REF_SIZE)).save(path)
    return path


@pytest.fixture(scope="session")
def tiny_models():
    """Random tiny models (seed 0); shared, so treat as read-only."""
    from animate.models.bundle import build_random_models

    return build_random_models("tiny")


def _save(tmp_path_factory, models, layout: str) -> Path:
    import torch

    from animate.models.weights import save_weight_set

    return save_weight_set(models, tmp_path_factory.mktemp(f"weights_{layout}") / "set", layout, torch.float32)


@pytest.fixture(scope="session")
def tiny_moore_weights(tmp_path_factory, tiny_models) -> Path:
    """A tiny weight set in the Moore-AnimateAnyone layout (four .pth, SD config, VAE, image encoder), fp32."""
    return _save(tmp_path_factory, tiny_models, "moore")


@pytest.fixture(scope="session")
def tiny_ours_weights(tmp_path_factory, tiny_models) -> Path:
    """A tiny weight set in our layout (animate.safetensors, VAE, image encoder), fp32."""
    return _save(tmp_path_factory, tiny_models, "ours")


@pytest.fixture
def run_cli(tmp_path, monkeypatch, capfd):
    """run_cli(args) → CliResult(code, out, err): `animate.app.cli.main(args)` in-process, cwd = tmp_path.

    Default outputs land in tmp_path/outputs; temporary files (the pose memmap) go to tmp_path/tmp so a test can
    check that nothing is left behind. Output is captured at the file-descriptor level, so anything C libraries
    (ffmpeg, decord) print shows up too. argparse's SystemExit becomes the exit code.
    """
    from animate.app.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANIMATE_DEBUG", raising=False)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    def run(args) -> CliResult:
        capfd.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        out, err = capfd.readouterr()
        return CliResult(code, out, err)

    return run


def _write_dataset(root: Path, clips: int) -> Path:
    """`clips` 12-frame clips of drawn figures dancing, their pose videos, and a meta.json; returns the meta."""
    from animate.pose.render import draw_pose
    from animate.pose.synthetic import draw_person, synthetic_dance
    from animate.media.video import VideoWriter

    entries = []
    for clip in range(clips):
        body = synthetic_dance(12, seed=clip)
        with VideoWriter(root / f"v{clip}.mp4", 12) as video, VideoWriter(root / f"p{clip}.mp4", 12) as pose:
            for frame in body:
                video.write(draw_person(frame, 64, 96, seed=clip))
                pose.write(draw_pose(frame, None, None, 64, 96))
        entries.append({"video_path": f"v{clip}.mp4", "kps_path": f"p{clip}.mp4"})
    (root / "meta.json").write_text(json.dumps(entries))
    return root / "meta.json"


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """Two 12-frame clips of a drawn figure dancing, their pose videos, and a meta.json."""
    return _write_dataset(tmp_path_factory.mktemp("data"), 2)


@pytest.fixture(scope="session")
def dataset_of(tmp_path_factory):
    """Factory: dataset_of(clips) → the meta.json of that many clips (written once per session per count)."""
    made: dict[int, Path] = {}

    def make(clips: int) -> Path:
        if clips not in made:
            made[clips] = _write_dataset(tmp_path_factory.mktemp(f"data{clips}"), clips)
        return made[clips]

    return make
