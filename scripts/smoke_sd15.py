"""Smoke test at the real SD-1.5 size: random weights in Moore's layout, loaded by the real loader, 8 frames at 128².

Proves the full-size models build, save, load (peak host RAM vs the weights' size) and run. Not part of CI:
it writes ~10 GB of weights and needs ~12 GB of RAM and a few minutes on a 2-core CPU.

    python scripts/smoke_sd15.py [--dir /tmp/sd15-random] [--keep]
"""

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def rss_now_mb() -> float:
    """Current resident set size (MB), from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_weights(folder: Path) -> None:
    """Random SD-1.5-size models saved in Moore-AnimateAnyone's pretrained_weights layout (fp32, like the release)."""
    import torch

    from animate.models.bundle import build_random_models
    from animate.models.weights import save_weight_set

    start = time.time()
    models = build_random_models("sd15")
    params = {name: sum(p.numel() for p in m.parameters()) for name, m in models.modules().items()}
    print(f"built random sd15 models in {time.time() - start:.0f} s: {json.dumps(params)}", flush=True)
    start = time.time()
    save_weight_set(models, folder, "moore", torch.float32)
    print(f"saved Moore layout in {time.time() - start:.0f} s", flush=True)


def load_and_run(folder: Path) -> dict:
    """In a fresh process: load through the real loader, measure RAM, run 8 frames at 128x128 with 2 steps."""
    import numpy as np
    import torch
    from PIL import Image

    from animate.models.weights import describe, load_models
    from animate.pipeline.animate import AnimatePipeline, AnimateSettings

    weight_bytes = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    baseline = rss_now_mb()
    start = time.time()
    models = load_models(folder)
    load_s = time.time() - start
    after_load_peak = peak_rss_mb()
    print(f"loaded: {describe(models)} in {load_s:.1f} s", flush=True)

    class Poses:
        def __len__(self) -> int:
            return 8

        def read(self, a: int, b: int) -> np.ndarray:
            return np.zeros((b - a, 128, 128, 3), np.uint8)

    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8))
    pipeline = AnimatePipeline.for_inference(models, "cpu", torch.float32)
    start = time.time()
    latents = pipeline.denoise(photo, Poses(), AnimateSettings(128, 128, steps=2, context_frames=8), progress=False)
    frames = np.concatenate(list(pipeline.decode(latents)))
    run_s = time.time() - start
    assert frames.shape == (8, 128, 128, 3), frames.shape
    assert torch.isfinite(latents).all()
    return {
        "weights_gb": weight_bytes / 1e9,
        "rss_baseline_mb": baseline,
        "peak_rss_after_load_mb": after_load_peak,
        "load_ratio": (after_load_peak - baseline) * 1e6 / weight_bytes,
        "peak_rss_after_run_mb": peak_rss_mb(),
        "run_ratio": (peak_rss_mb() - baseline) * 1e6 / weight_bytes,
        "load_s": load_s,
        "run_s": run_s,
        "frames": list(frames.shape),
    }


def main() -> None:
    """Write the weights (unless present), then load and run them in a child process."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, help="where to write the weights (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the weights afterwards")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(load_and_run(args.child)), flush=True)
        return
    folder = args.dir or Path(tempfile.mkdtemp(prefix="sd15-random-")) / "pretrained_weights"
    try:
        if not (folder / "denoising_unet.pth").is_file():
            write_weights(folder)
        child = subprocess.run([sys.executable, __file__, "--child", str(folder)], capture_output=True, text=True)
        sys.stderr.write(child.stderr[-3000:])
        if child.returncode != 0:
            sys.exit(f"smoke run failed (exit {child.returncode})")
        print(child.stdout, end="")
        result = json.loads(child.stdout.split("RESULT ", 1)[1])
        print(f"\npeak host RAM while loading: {result['load_ratio']:.2f} x the weights "
              f"({result['weights_gb']:.1f} GB on disk); after running: {result['run_ratio']:.2f} x")
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(folder.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
