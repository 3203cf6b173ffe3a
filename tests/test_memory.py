"""Memory stays flat in video length: the pose guider, VAE decoder and writer only ever see a window or a chunk,
decoded frames are written as they come, and the traced peak of a 384-frame run is that of a 24-frame run."""

import tracemalloc

import numpy as np
import pytest

import animate.app.infer
from animate.app.infer import InferOptions, run_infer
from animate.models.bundle import build_random_models
from animate.pipeline.animate import AnimatePipeline
from animate.pose.frames import PoseFrames
from animate.media.video import VideoWriter, probe_video

W, H = 32, 48  # canvas for the 64x96 reference photo at -W 32
CHUNK = 8  # write_video's decode chunk
MB = 1 << 20


@pytest.fixture(scope="module")
def models():
    """This module's own random tiny models (spies are put on them; run_infer reuses them instead of rebuilding)."""
    return build_random_models("tiny")


@pytest.fixture
def prebuilt(models, monkeypatch):
    """run_infer(weights='random:tiny') gets `models` instead of building new ones."""

    def load_models(spec, profile=None, motion_module=None):
        assert str(spec) == "random:tiny" and motion_module is None
        return models

    monkeypatch.setattr(animate.app.infer, "load_models", load_models)
    return models


def options(ref, pose, out, **kw) -> InferOptions:
    return InferOptions(ref=ref, pose=pose, weights="random:tiny", out=out, width=W, progress=False, **kw)


def test_only_windows_and_chunks_reach_the_models_and_the_writer(prebuilt, ref_photo, pose_video, tmp_path,
                                                                 monkeypatch):
    frames, context, overlap, steps = 60, 24, 4, 2
    pose = pose_video(frames, width=W, height=H, fps=12)
    events: list[tuple[str, int]] = []  # in call order
    pose_reads: list[range] = []

    guider_forward = prebuilt.pose_guider.forward
    unet_forward = prebuilt.denoising_unet.forward
    vae_decode = prebuilt.vae.decode
    read, write = PoseFrames.read, VideoWriter.write

    def spy_guider(pose_pixels, *a, **k):
        events.append(("pose_guider", pose_pixels.shape[0]))
        return guider_forward(pose_pixels, *a, **k)

    def spy_unet(sample, *a, **k):
        events.append(("unet", sample.shape[0]))
        return unet_forward(sample, *a, **k)

    def spy_decode(z, *a, **k):
        events.append(("vae_decode", z.shape[0]))
        return vae_decode(z, *a, **k)

    def spy_read(self, start, stop):
        pose_reads.append(range(start, stop))
        return read(self, start, stop)

    def spy_write(self, frames):
        events.append((f"write:{self.path.name}", len(frames) if np.ndim(frames) == 4 else 1))
        write(self, frames)

    monkeypatch.setattr(prebuilt.pose_guider, "forward", spy_guider)
    monkeypatch.setattr(prebuilt.denoising_unet, "forward", spy_unet)
    monkeypatch.setattr(prebuilt.vae, "decode", spy_decode)
    monkeypatch.setattr(PoseFrames, "read", spy_read)
    monkeypatch.setattr(VideoWriter, "write", spy_write)

    out = tmp_path / "long.mp4"
    run_infer(options(ref_photo, pose, out, steps=steps, context_frames=context, context_overlap=overlap, grid=True))
    assert probe_video(out).num_frames == frames
    assert probe_video(tmp_path / "long_grid.mp4").num_frames == frames

    def sizes(kind: str) -> list[int]:
        return [n for k, n in events if k == kind]

    # 60 frames, windows of 24 stepping 20: [0, 24) [20, 44) [36, 60), each denoising step
    guider = sizes("pose_guider")
    assert guider == [context] * 3 * steps  # one window of pose rows per call; CFG does not double them ...
    assert sizes("unet") == [2 * context] * 3 * steps  # ... while the UNet does get both CFG halves
    denoise_reads = pose_reads[: 3 * steps]
    assert [(r.start, r.stop) for r in denoise_reads[:3]] == [(0, 24), (20, 44), (36, 60)]
    assert denoise_reads[3:] == denoise_reads[:3]

    decoded = sizes("vae_decode")
    assert decoded and max(decoded) <= CHUNK and sum(decoded) == frames
    for name in ("long.mp4", "long_grid.mp4"):
        written = sizes(f"write:{name}")
        assert written and max(written) <= CHUNK and sum(written) == frames
    grid_reads = pose_reads[3 * steps :]  # the grid's pose panel, read alongside each decoded chunk
    assert grid_reads and all(len(r) <= CHUNK for r in grid_reads) and sum(len(r) for r in grid_reads) == frames

    # streaming: a chunk is written before the next one is decoded, so at most one chunk is ever held
    pending = 0
    for kind, n in events:
        if kind == "vae_decode":
            pending += n
            assert pending <= CHUNK, events
        elif kind == "write:long.mp4":
            pending -= n
    assert pending == 0


def test_traced_peak_memory_is_flat_in_video_length(prebuilt, ref_photo, pose_video, tmp_path, monkeypatch):
    short, long = pose_video(24, width=W, height=H, fps=12), pose_video(384, width=W, height=H, fps=12)

    # tracemalloc sees numpy and Python allocations but not torch storage, and the decoded frames are numpy views
    # of torch tensors; copying each chunk as it leaves decode() makes the decoded frames visible to the trace.
    decode = AnimatePipeline.decode

    def traced_decode(self, latents, chunk=CHUNK):
        for frames in decode(self, latents, chunk):
            yield np.array(frames)

    monkeypatch.setattr(AnimatePipeline, "decode", traced_decode)

    # Encoding the reference preprocesses a 224x224 float32 CLIP input: ~1.9 MB of temporaries, the same for every
    # video, that would hide any growth smaller than itself. So the peak is taken separately before it (pose
    # decoding, pipeline set-up) and after it (denoising, decoding, writing).
    encode = AnimatePipeline.encode_reference
    peaks: dict[str, int] = {}

    def encode_between_phases(self, *args, **kwargs):
        peaks["setup"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        result = encode(self, *args, **kwargs)
        peaks["reference"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        return result

    monkeypatch.setattr(AnimatePipeline, "encode_reference", encode_between_phases)

    def measure(pose, name: str) -> dict[str, int]:
        peaks.clear()
        tracemalloc.reset_peak()
        out = run_infer(options(ref_photo, pose, tmp_path / name, steps=1, cfg=1.0))
        peaks["video"] = tracemalloc.get_traced_memory()[1]
        peaks["whole"] = max(peaks.values())
        assert probe_video(out).num_frames == probe_video(pose).num_frames
        return dict(peaks)

    run_infer(options(ref_photo, short, tmp_path / "warm.mp4", steps=1, cfg=1.0))  # first-call caches, lazy imports
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        small = measure(short, "short.mp4")
        big = measure(long, "long.mp4")
    finally:
        if not was_tracing:
            tracemalloc.stop()

    # Measured (tiny, 32x48, 1 step): setup ~0.3 MB, reference ~1.9 MB, video ~0.12 MB at 24 frames and ~0.15 MB
    # at 384. One 384-frame array of canvas frames is 384*48*32*3 = 1.77 MB: holding the poses in memory (instead of
    # the disk-backed memmap) or holding every decoded frame (list(pipeline.decode(...)); +1.77 MB, +5.3 MB with
    # --grid's panels) breaks the bounds below by a wide margin.
    full_video = 384 * H * W * 3
    bound = lambda peak: 1.25 * peak + 0.25 * MB  # noqa: E731
    report = f"24 frames: {small}, 384 frames: {big} (bytes)"
    assert big["setup"] <= bound(small["setup"]), report
    assert big["video"] <= bound(small["video"]), report
    assert big["whole"] <= bound(small["whole"]), report
    assert bound(small["video"]) < small["video"] + full_video / 2  # the bound is tight enough to mean something
