"""Pose-tool speed: extraction + gap filling + smoothing + rendering, in frames per second, at 512×768 on this machine.

Frames contain a person: a crop of scikit-image's astronaut photo moving across it (a dance it is not, but
every frame has a body and a face to find). Prints a markdown table.

    python scripts/bench_pose.py [--frames 120] [--workers 1,2] [--out docs/benchmarks.md]
"""

import argparse
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from animate.pose.extract import extract_video
from animate.pose.frames import draw_sequence
from animate.pose.render import draw_pose
from animate.pose.smooth import fill_gaps, smooth_sequence
from animate.media.video import VideoWriter


def write_test_video(path: Path, frames: int, width: int = 512, height: int = 768) -> None:
    """A 512×768 crop sliding across an enlarged astronaut photo (a person in every frame)."""
    photo = cv2.resize(data.astronaut(), (height + 256, height))
    with VideoWriter(path, 30) as writer:
        for i in range(frames):
            x = int(128 + 100 * np.sin(i / 15))
            writer.write(np.ascontiguousarray(photo[:, x : x + width]))


def measure(path: Path, workers: int) -> dict:
    """Seconds spent in each stage for one pass over the video."""
    start = time.perf_counter()
    seq = extract_video(path, progress=False, workers=workers)
    extracted = time.perf_counter()
    seq = smooth_sequence(fill_gaps(seq))
    smoothed = time.perf_counter()
    for _ in draw_sequence(seq, seq.width, seq.height, draw_pose):
        pass
    drawn = time.perf_counter()
    found = float((seq.body[:, 1, 2] > 0).mean())
    return {"frames": len(seq), "extract": extracted - start, "smooth": smoothed - extracted,
            "render": drawn - smoothed, "total": drawn - start, "found": found}


def main() -> None:
    """Run the measurement for each worker count and print (and optionally append) the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts to compare")
    parser.add_argument("--out", type=Path, help="append the table to this markdown file")
    args = parser.parse_args()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    lines = [
        f"{cpu}, {os.cpu_count()} cores; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"load average at start {os.getloadavg()[0]:.1f}",
        "",
        f"{args.frames} frames at 512x768 with a person; MediaPipe Holistic (model_complexity 1), "
        "gap filling, One-Euro smoothing, DWPose rendering at 512x768",
        "",
        "| workers | extract s | smooth s | render s | total s | fps (all stages) | frames with a body |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "astronaut_pan.mp4"
        write_test_video(video, args.frames)
        for workers in (int(w) for w in args.workers.split(",")):
            r = measure(video, workers)
            lines.append(f"| {workers} | {r['extract']:.1f} | {r['smooth']:.2f} | {r['render']:.2f} | "
                         f"{r['total']:.1f} | {r['frames'] / r['total']:.1f} | {r['found']:.0%} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        with args.out.open("a") as f:
            f.write("\n" + table + "\n")


if __name__ == "__main__":
    main()
