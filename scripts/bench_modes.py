"""The sampling modes side by side, in one run: CPU time, and the video each makes from the same noise against the
reference run (DDIM 30, CFG 3.5: the equal-output default) and against the truth, on the synthetic held-out split;
and the counted sd15 FLOPs per frame of a 120-frame video for each mode beside Moore-AnimateAnyone's pipeline.

    python scripts/bench_modes.py --data DATA --weights examples/weights --student STUDENT [--frames 8]
    python scripts/bench_modes.py --flops-only

Prints markdown tables (machine, date and load above them). Each mode's videos are decoded with the weights' VAE.
"""

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from animate.app.evaluation import flicker, psnr, ssim
from animate.media.video import read_frames
from animate.models.weights import load_models
from animate.pipeline.animate import AnimatePipeline, AnimateSettings
from animate.pose.frames import PoseFrames
from bench_infer import machine_line
from count_modes import MODES, Mode, counted_table

TIE_DB = 0.1  # per-video PSNR within this of the reference run's counts as a tie


@dataclass
class Scores:
    """One mode's per-video numbers."""

    seconds: list[float] = field(default_factory=list)
    frames: int = 0
    vs_reference: list[tuple[float, float, float]] = field(default_factory=list)  # PSNR, SSIM, flicker
    vs_truth: list[tuple[float, float, float]] = field(default_factory=list)
    latent_mse_teacher: list[float] = field(default_factory=list)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="a synthetic dataset folder (meta_test.json, refs/, poses/)")
    parser.add_argument("--weights", default="examples/weights", help="the model (default %(default)s)")
    parser.add_argument("--student", help="its distilled student (`animate train distill`); without: no student rows")
    parser.add_argument("--frames", type=int, default=8, help="frames of each held-out video (one window)")
    parser.add_argument("--max-videos", type=int, default=8)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="also write every per-video number here")
    parser.add_argument("--flops-only", action="store_true", help="only the counted FLOP table (no data needed)")
    return parser.parse_args(argv)


def held_out(data: Path, limit: int) -> list[dict]:
    """The test split's entries: name, photo, pose video and truth video paths, size."""
    entries = json.loads((data / "meta_test.json").read_text())[:limit]
    return [{"name": Path(e["video_path"]).stem, "photo": data / "refs" / f"{Path(e['video_path']).stem}.png",
             "pose": data / e["kps_path"], "truth": data / e["video_path"], "width": e["width"], "height": e["height"]}
            for e in entries]


def frames01(frames: np.ndarray) -> np.ndarray:
    """uint8 frames as float in [0, 1]."""
    return frames.astype(np.float32) / 255.0


def scores_of(pred: np.ndarray, target: np.ndarray) -> tuple[float, float, float]:
    """PSNR, SSIM and flicker of a video against another."""
    return psnr(pred, target), ssim(pred, target), flicker(pred, target)


def run_mode(pipeline: AnimatePipeline, mode: Mode, entry: dict, frames: int, seed: int) -> tuple[torch.Tensor, np.ndarray, float]:
    """The mode's latents and uint8 frames for one video, and the seconds they took (denoise + decode)."""
    settings = AnimateSettings(entry["width"], entry["height"], steps=mode.steps, guidance=mode.cfg,
                               context_frames=frames, context_overlap=0, sampler=mode.sampler, seed=seed,
                               cfg_steps=mode.cfg_steps, cache_interval=mode.cache_interval)
    photo = Image.open(entry["photo"]).convert("RGB")
    poses = PoseFrames.from_video(entry["pose"], entry["width"], entry["height"], frames)
    try:
        start = time.perf_counter()
        latents = pipeline.denoise(photo, poses, settings, progress=False)
        video = np.concatenate(list(pipeline.decode(latents)))
        return latents, video, time.perf_counter() - start
    finally:
        poses.close()


def mean(values: list[float]) -> float:
    """The mean, NaN for none."""
    return float(np.mean(values)) if values else math.nan


def table(results: dict[str, Scores]) -> str:
    """The measured table: time, against the reference run, against the truth, per-video wins or ties."""
    reference = next(r for m, r in results.items() if next(x for x in MODES if x.name == m).reference)
    ref_truth = [s[0] for s in reference.vs_truth]
    lines = ["| mode | CPU s/frame | speed-up | PSNR vs ref dB | SSIM vs ref | flicker vs ref | PSNR vs truth dB | "
             "SSIM vs truth | flicker vs truth | wins or ties vs ref (truth PSNR) | latent MSE to DDIM 16 CFG 3.5 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    ref_speed = sum(reference.seconds) / reference.frames
    for name, r in results.items():
        speed = sum(r.seconds) / r.frames
        truth = [s[0] for s in r.vs_truth]
        wins = sum(t >= rt - TIE_DB for t, rt in zip(truth, ref_truth))
        vs_ref = [mean([s[i] for s in r.vs_reference]) for i in range(3)]
        vs_truth = [mean([s[i] for s in r.vs_truth]) for i in range(3)]
        is_ref = r is reference
        lines.append(f"| {name} | {speed:.3f} | {ref_speed / speed:.1f}x | "
                     + (" – | – | – | " if is_ref else f"{vs_ref[0]:.2f} | {vs_ref[1]:.4f} | {vs_ref[2]:.3f} | ")
                     + f"{vs_truth[0]:.2f} | {vs_truth[1]:.4f} | {vs_truth[2]:.3f} | "
                     + ("– | " if is_ref else f"{wins} of {len(truth)} | ")
                     + f"{mean(r.latent_mse_teacher):.5f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run every mode on every held-out video from the same noise; print the tables."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    print(counted_table())
    if args.flops_only:
        return
    if args.data is None:
        raise SystemExit("error: --data is needed (or --flops-only)")
    print(f"\n{machine_line(torch.device('cpu'))}\n")
    pipelines = {False: AnimatePipeline.for_inference(load_models(args.weights))}
    if args.student:
        pipelines[True] = AnimatePipeline.for_inference(load_models(args.student))
    modes = [m for m in MODES if (args.student or not m.student) and m.decoder == "vae"]  # no TAESD at demo size
    entries = held_out(args.data, args.max_videos)
    results = {m.name: Scores() for m in modes}
    started = time.perf_counter()
    for entry in entries:
        truth = frames01(np.stack(list(read_frames(entry["truth"], 0, args.frames))))
        made = {}
        for mode in modes:
            made[mode.name] = run_mode(pipelines[mode.student], mode, entry, args.frames, args.seed)
        reference = frames01(made[MODES[0].name][1])
        teacher = made["DDIM 16, CFG 3.5 (the distillation's teacher)"][0]
        for mode in modes:
            latents, video, seconds = made[mode.name]
            r = results[mode.name]
            r.seconds.append(seconds)
            r.frames += len(video)
            r.vs_reference.append(scores_of(frames01(video), reference))
            r.vs_truth.append(scores_of(frames01(video), truth))
            r.latent_mse_teacher.append(float((latents - teacher).pow(2).mean()))
        print(f"{entry['name']}: done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    print(f"{len(entries)} held-out videos of {args.data}, first {args.frames} frames each (one window), seed "
          f"{args.seed}; model {args.weights}, student {args.student}; the whole run took "
          f"{(time.perf_counter() - started) / 60:.1f} min\n")
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps({name: vars(r) for name, r in results.items()}, indent=1))


if __name__ == "__main__":
    main()
