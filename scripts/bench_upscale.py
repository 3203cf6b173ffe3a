"""Benchmark the upscalers: frames/s and peak memory per architecture at 512x768 → x2/x4; prints a markdown table.

Each architecture runs in a fresh process (peak RSS is its own) with random weights of the released shapes (speed
and memory do not depend on the values), tiled as `animate infer --upscale` runs it.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from animate.dtypes import resolve_device
from animate.media.rrdbnet import RRDBNet
from animate.media.srvgg import SRVGGNetCompact
from animate.media.upscale import Upscaler
from bench_infer import machine_line

# name → (network builder, native scale, the scales to measure)
NETWORKS = {
    "realesrgan-x4plus": (lambda: RRDBNet(scale=4), 4, (4, 2)),
    "realesrgan-x2plus": (lambda: RRDBNet(scale=2), 2, (2,)),
    "realesr-general-x4v3": (lambda: SRVGGNetCompact(num_conv=32), 4, (4, 2)),
    "realesr-animevideov3": (lambda: SRVGGNetCompact(num_conv=16), 4, (4, 2)),
    "lanczos": (None, None, (4, 2)),
}
COLUMNS = ("upscaler", "scale", "frames", "tile", "s/frame", "frames/s", "peak RSS MiB", "CUDA peak MiB")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upscalers", default=",".join(NETWORKS), help="comma-separated (default: all)")
    parser.add_argument("--frames", type=int, default=2, help="timed frames per run (default 2)")
    parser.add_argument("-W", "--width", type=int, default=512)
    parser.add_argument("-H", "--height", type=int, default=768)
    parser.add_argument("--tile", type=int, default=512, help="tile size in input pixels (default 512, as infer)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto", help="auto: fp16 on a GPU, fp32 on a CPU")
    parser.add_argument("--out", type=Path, help="also append the table to this markdown file")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: name:scale measured in this process
    args = parser.parse_args(argv)
    args.names = args.upscalers.split(",")
    unknown = set(args.names) - set(NETWORKS)
    if unknown:
        parser.error(f"unknown upscalers: {', '.join(sorted(unknown))}")
    args.torch_device, args.torch_dtype = resolve_device(args.device, args.dtype)
    return args


def measure(args: argparse.Namespace, name: str, scale: int) -> dict:
    """Warm up on one small frame, then time `--frames` frames at the full size."""
    build, _, _ = NETWORKS[name]
    with tempfile.TemporaryDirectory() as tmp:
        source = "lanczos"
        if build is not None:
            source = str(Path(tmp) / f"{name}.pth")
            torch.save({"params_ema": build().state_dict()}, source)
        upscaler = Upscaler(source, scale, device=args.torch_device, dtype=args.torch_dtype, tile=args.tile)
    frames = np.random.default_rng(0).integers(0, 256, (args.frames, args.height, args.width, 3), dtype=np.uint8)
    upscaler(frames[:1, :64, :64])
    cuda = args.torch_device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    upscaler(frames)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"name": name, "scale": scale, "frames": args.frames, "seconds": seconds,
            "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "cuda_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None}


def table(args: argparse.Namespace, rows: list[dict]) -> str:
    """The results as a markdown table under the machine line."""
    lines = [machine_line(args.torch_device), "",
             f"{args.width}x{args.height} input frames, {str(args.torch_dtype).removeprefix('torch.')}, "
             f"random weights of the released shapes", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---:|" * len(COLUMNS)]
    for r in rows:
        cuda = "–" if r["cuda_mib"] is None else f"{r['cuda_mib']:.0f}"
        per_frame = r["seconds"] / r["frames"]
        cells = (r["name"], f"x{r['scale']}", r["frames"], args.tile, f"{per_frame:.3f}", f"{1 / per_frame:.3f}",
                 f"{r['rss_mib']:.0f}", cuda)
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Measure every (upscaler, scale) in its own process and print (and optionally append) the table."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.one is not None:
        name, scale = args.one.rsplit(":", 1)
        print(json.dumps(measure(args, name, int(scale))))
        return
    rows = []
    for name in args.names:
        for scale in NETWORKS[name][2]:
            command = [sys.executable, str(Path(__file__).resolve()), *argv, "--one", f"{name}:{scale}"]
            result = subprocess.run(command, stdout=subprocess.PIPE, text=True)
            if result.returncode != 0:
                raise SystemExit(f"the {name} x{scale} run failed (exit {result.returncode}); its error is above")
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
            print(f"measured {name} x{scale}: {rows[-1]['seconds'] / rows[-1]['frames']:.2f} s/frame", file=sys.stderr)
    text = table(args, rows)
    print(text, end="")
    if args.out:
        with args.out.open("a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
