"""Benchmark `animate depth`: frames/s of Depth Anything V2 at 512x768 (the tiny test model and the released Small
architecture with random weights: speed does not depend on the values), of the steadying and placement after it, and
the FLOPs per frame of both counted on the meta device; prints a markdown table.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation

from animate.depth.estimate import estimate_nearness, input_size, load_depth_model
from animate.depth.maps import DepthClip
from animate.depth.place import place_depth
from animate.depth.release import INPUT_SIDE
from animate.depth.steady import steady
from animate.dtypes import resolve_device
from animate.paths import model_size_dir
from animate.pose.retarget import Placement
from bench_infer import machine_line

SIZES = {"tiny": "tiny", "Small (released architecture)": "sd15"}
COLUMNS = ("model", "parameters", "model input", "GFLOPs/frame", "frames", "batch", "s/frame", "frames/s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8, help="timed frames per model (default 8)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("-W", "--width", type=int, default=512)
    parser.add_argument("-H", "--height", type=int, default=768)
    parser.add_argument("--side", type=int, default=INPUT_SIDE, help="the model's input short side (default 518)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto", help="auto: fp16 on a GPU, fp32 on a CPU")
    parser.add_argument("--out", type=Path, help="also append the table to this markdown file")
    args = parser.parse_args(argv)
    args.torch_device, args.torch_dtype = resolve_device(args.device, args.dtype)
    return args


def config(size: str) -> DepthAnythingConfig:
    """The shipped depth config of a model size."""
    return DepthAnythingConfig.from_json_file(model_size_dir(size) / "depth" / "config.json")


def flops_per_frame(size: str, width: int, height: int, side: int) -> tuple[float, int]:
    """(FLOPs of one frame's forward, parameters), counted on the meta device (nothing is computed)."""
    w, h = input_size(width, height, side)
    with torch.device("meta"):
        model = DepthAnythingForDepthEstimation(config(size)).eval()
        pixels = torch.empty(1, 3, h, w)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(pixel_values=pixels)
    return float(counter.get_total_flops()), sum(p.numel() for p in model.parameters())


def random_model(size: str) -> DepthAnythingForDepthEstimation:
    """A model of the size with random weights (the tiny one as the tests build it)."""
    if size == "tiny":
        return load_depth_model("random:tiny")
    return DepthAnythingForDepthEstimation(config(size)).eval()


def time_model(args: argparse.Namespace, size: str, frames: np.ndarray) -> float:
    """Seconds per frame of estimate_nearness after one warm-up batch."""
    model = random_model(size).to(args.torch_device, args.torch_dtype)
    estimate_nearness(model, frames[:1], args.side, 1)
    if args.torch_device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    estimate_nearness(model, frames, args.side, args.batch_size)
    if args.torch_device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / len(frames)


def time_after(nearness: np.ndarray, width: int, height: int) -> float:
    """Seconds per frame of steadying, placement and the mapping to levels (the CPU work after the model)."""
    start = time.perf_counter()
    placed = place_depth(steady(nearness), Placement(0.9, np.array([10.0, 5.0])), (width, height), (width, height))
    DepthClip.from_nearness(placed, 30.0).frames()
    return (time.perf_counter() - start) / len(nearness)


def main(argv: list[str] | None = None) -> None:
    """Measure and print the table."""
    args = parse_args(argv)
    machine = machine_line(args.torch_device)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (args.frames, args.height, args.width, 3), dtype=np.uint8)
    w, h = input_size(args.width, args.height, args.side)
    lines = [machine, "", f"{args.width}x{args.height} frames, model input {w}x{h}, "
             f"{args.torch_device.type} {str(args.torch_dtype).removeprefix('torch.')}", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---:|" * len(COLUMNS)]
    for name, size in SIZES.items():
        flops, parameters = flops_per_frame(size, args.width, args.height, args.side)
        seconds = time_model(args, size, frames)
        lines.append(f"| {name} | {parameters / 1e6:.3f} M | {w}x{h} | {flops / 1e9:.1f} | {args.frames} | "
                     f"{args.batch_size} | {seconds:.3f} | {1 / seconds:.2f} |")
    nearness = rng.random((args.frames, args.height, args.width)).astype(np.float32)
    after = time_after(nearness, args.width, args.height)
    lines += ["", f"Steadying, placement and levels after the model: {after * 1000:.1f} ms/frame "
                  f"({1 / after:.1f} frames/s) at {args.width}x{args.height}."]
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        with open(args.out, "a") as out:
            out.write(text + "\n")


if __name__ == "__main__":
    main()
