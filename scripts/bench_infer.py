"""Benchmark `animate infer` speed and memory per video length; prints a markdown table (one fresh process per length)."""

import argparse
import dataclasses
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import torch
from diffusers import AutoencoderTiny
from PIL import Image

from animate.errors import AnimateError
from animate.dtypes import resolve_device
from animate.models.bundle import AnimateModels, build_random_models
from animate.models.weights import load_models
from animate.pipeline.animate import AnimatePipeline, AnimateSettings
from animate.pipeline.compile import compiled_models
from animate.pipeline.schedulers import SAMPLERS
from animate.pose.frames import PoseFrames
from animate.pose.render import draw_pose
from animate.pose.synthetic import draw_person, synthetic_dance, synthetic_hands
from animate.media.video import VideoWriter

SIZE_DEFAULTS = {"tiny": (128, 192, 4), "sd15": (512, 768, 20)}  # width, height, steps
FPS = 24.0
WARMUP_FRAMES = 4
COLUMNS = ("frames", "total s", "CPU s", "s/frame", "denoise s/(frame·step)", "UNet calls", "peak RSS MiB",
           "tracemalloc peak MiB", "CUDA peak MiB", "load")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; sizes and steps left unset take the --size defaults."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=SIZE_DEFAULTS, default="tiny", help="model size of the random weights (default tiny)")
    parser.add_argument("--frames", default="24,96,384", help="comma-separated video lengths (default 24,96,384)")
    parser.add_argument("-W", "--width", type=int, help="output width (default tiny 128, sd15 512)")
    parser.add_argument("-H", "--height", type=int, help="output height (default tiny 192, sd15 768)")
    parser.add_argument("--steps", type=int, help="sampling steps (default tiny 4, sd15 20)")
    parser.add_argument("--context-frames", type=int, default=24)
    parser.add_argument("--context-overlap", type=int, default=4)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--dtype", choices=("auto", "fp16", "fp32"), default="auto")
    parser.add_argument("--weights", help="a weight set (as for `animate infer --weights`); default random weights of --size")
    parser.add_argument("--cfg", type=float, default=3.5)
    parser.add_argument("--sampler", choices=SAMPLERS, default="ddim")
    parser.add_argument("--cfg-steps", type=float, default=1.0, help="CFG on this first share of the steps (fast mode)")
    parser.add_argument("--cache-interval", type=int, default=1, help="DeepCache interval (fast mode)")
    parser.add_argument("--window-batch", type=int, default=1)
    parser.add_argument("--decoder", choices=("vae", "tiny"), default="vae",
                        help="tiny: a random TAESD-shaped AutoencoderTiny (timing only)")
    parser.add_argument("--compile", action="store_true", help="torch.compile (inductor) the per-step models")
    parser.add_argument("--out", type=Path, help="also append the table to this markdown file")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one length in this process
    args = parser.parse_args(argv)
    default_w, default_h, default_steps = SIZE_DEFAULTS[args.size]
    args.width = default_w if args.width is None else args.width
    args.height = default_h if args.height is None else args.height
    args.steps = default_steps if args.steps is None else args.steps
    try:
        args.frame_counts = [int(n) for n in args.frames.split(",")]
    except ValueError:
        parser.error(f"--frames must be comma-separated integers, got {args.frames!r}")
    if min(args.frame_counts) < 1:
        parser.error("--frames values must be at least 1")
    try:
        args.torch_device, args.torch_dtype = resolve_device(args.device, args.dtype)
    except AnimateError as err:
        parser.error(str(err))
    return args


def write_pose_video(path: Path, num_frames: int, width: int, height: int) -> None:
    """The synthetic dance drawn DWPose-style (body and hands) at the output size, as an h264 mp4."""
    body = synthetic_dance(num_frames, seed=0, fps=FPS)
    hands = synthetic_hands(body)
    with VideoWriter(path, FPS) as writer:
        for frame_body, frame_hands in zip(body, hands):
            writer.write(draw_pose(frame_body, frame_hands, None, width, height))


def load(args: argparse.Namespace) -> AnimateModels:
    """The weight set named by --weights, else random weights of --size."""
    return load_models(args.weights) if args.weights else build_random_models(args.size)


def infer(pipeline: AnimatePipeline, reference: Image.Image, pose_path: Path, out: Path, num_frames: int,
          settings: AnimateSettings) -> float:
    """run_infer's path after loading: pose frames, denoise, decode streamed into an mp4; returns the denoise seconds."""
    poses = PoseFrames.from_video(pose_path, settings.width, settings.height, num_frames)
    try:
        start = time.perf_counter()
        latents = pipeline.denoise(reference, poses, settings, progress=False)
        synchronize(pipeline.device)
        denoise_s = time.perf_counter() - start
        with VideoWriter(out, FPS) as writer:
            for frames in pipeline.decode(latents):
                writer.write(frames)
    finally:
        poses.close()
    return denoise_s


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work so wall-clock timings are complete."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class CallCounter:
    """Counts a module's forward calls (a forward pre-hook)."""

    def __init__(self, module: torch.nn.Module):
        self.calls = 0
        module.register_forward_pre_hook(self)

    def __call__(self, *_) -> None:
        self.calls += 1


def settings_of(args: argparse.Namespace) -> AnimateSettings:
    """The sampling settings of the timed runs (guidance and sampler at AnimateSettings' defaults)."""
    return AnimateSettings(width=args.width, height=args.height, steps=args.steps, guidance=args.cfg, sampler=args.sampler,
                           context_frames=args.context_frames, context_overlap=args.context_overlap,
                           cfg_steps=args.cfg_steps, cache_interval=args.cache_interval, window_batch=args.window_batch)


def measure_one(args: argparse.Namespace, num_frames: int) -> dict:
    """Warm up on a short clip, time one num_frames run, then a 1-step traced pass of it for the tracemalloc peak.

    tracemalloc slows every Python allocation, so it stays off while timing; the numpy/Python peak does not depend
    on the step count (every step reads the same windows, decoding is the same), so one step measures it.
    """
    settings = settings_of(args)
    decoder = AutoencoderTiny() if args.decoder == "tiny" else None
    pipeline = AnimatePipeline.for_inference(load(args), args.torch_device, args.torch_dtype, decoder=decoder)
    if args.compile:
        compiled_models(pipeline.per_step_models())
    pipeline.check(settings)
    counter = CallCounter(pipeline.models.denoising_unet)
    reference = Image.fromarray(draw_person(synthetic_dance(1, seed=1)[0], args.width, args.height, seed=1))
    one_step = dataclasses.replace(settings, steps=1)
    cuda = pipeline.device.type == "cuda"
    with tempfile.TemporaryDirectory(prefix="bench-infer-") as tmp:
        folder = Path(tmp)
        write_pose_video(folder / "warmup_pose.mp4", WARMUP_FRAMES, args.width, args.height)
        infer(pipeline, reference, folder / "warmup_pose.mp4", folder / "warmup.mp4", WARMUP_FRAMES, one_step)
        write_pose_video(folder / "pose.mp4", num_frames, args.width, args.height)
        counter.calls = 0
        if cuda:
            torch.cuda.reset_peak_memory_stats(pipeline.device)
        start, cpu_start = time.perf_counter(), time.process_time()
        denoise_s = infer(pipeline, reference, folder / "pose.mp4", folder / "out.mp4", num_frames, settings)
        synchronize(pipeline.device)
        total_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
        load_avg = os.getloadavg()[0]  # about the run's own threads when nothing else runs; more means contention
        rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
        cuda_mib = torch.cuda.max_memory_allocated(pipeline.device) / 2**20 if cuda else None
        unet_calls = counter.calls
        tracemalloc.start()
        infer(pipeline, reference, folder / "pose.mp4", folder / "traced.mp4", num_frames, one_step)
        traced_mib = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return {"frames": num_frames, "total_s": total_s, "cpu_s": cpu_s, "denoise_s": denoise_s, "unet_calls": unet_calls,
            "rss_mib": rss_mib, "traced_mib": traced_mib, "cuda_mib": cuda_mib, "load": load_avg}


def run_subprocess(argv: list[str], num_frames: int) -> dict:
    """Measure one length in a fresh interpreter (so ru_maxrss is that run's own peak); its last stdout line is JSON."""
    command = [sys.executable, str(Path(__file__).resolve()), *argv, "--one", str(num_frames)]
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise SystemExit(f"the {num_frames}-frame run failed (exit {result.returncode}); its error is above")
    return json.loads(result.stdout.strip().splitlines()[-1])


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (the platform's processor string elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_line(device: torch.device) -> str:
    """CPU, cores, torch threads and version, compute device, the date (UTC) and the load average (other work)."""
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "none (CPU run)"
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"CPU: {cpu_model()}, {os.cpu_count()} cores ({torch.get_num_threads()} torch threads); "
            f"torch {torch.__version__}; GPU: {gpu}; {date}; 1-min load average at start {os.getloadavg()[0]:.2f}")


def table(args: argparse.Namespace, machine: str, rows: list[dict]) -> str:
    """The results as a markdown table, with the machine and settings above it."""
    weights = args.weights or f"random {args.size} weights"
    s = settings_of(args)
    lines = [
        machine,
        "",
        f"{weights}, {s.width}x{s.height}, {s.steps} steps ({s.sampler}, CFG {s.guidance}, --cfg-steps {s.cfg_steps}, "
        f"--cache-interval {s.cache_interval}, --window-batch {s.window_batch}, decoder {args.decoder}"
        f"{', compiled' if args.compile else ''}), context {s.context_frames}"
        f"/overlap {s.context_overlap}, {args.torch_device.type} {str(args.torch_dtype).removeprefix('torch.')}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---:|" * len(COLUMNS),
    ]
    for r in rows:
        cuda = "–" if r["cuda_mib"] is None else f"{r['cuda_mib']:.0f}"
        cells = (r["frames"], f"{r['total_s']:.1f}", f"{r['cpu_s']:.1f}", f"{r['total_s'] / r['frames']:.3f}",
                 f"{r['denoise_s'] / (r['frames'] * args.steps):.4f}", r["unet_calls"], f"{r['rss_mib']:.0f}",
                 f"{r['traced_mib']:.1f}", cuda, f"{r['load']:.1f}")
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Measure every --frames length in its own process and print (and optionally append) the table."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.one is not None:
        try:
            print(json.dumps(measure_one(args, args.one)))
        except AnimateError as err:
            raise SystemExit(f"error: {err}") from None
        return
    machine, rows = machine_line(args.torch_device), []
    for n in args.frame_counts:
        rows.append(run_subprocess(argv, n))
        print(f"measured {n} frames: {rows[-1]['total_s']:.1f} s", file=sys.stderr)
    text = table(args, machine, rows)
    print(text, end="")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
