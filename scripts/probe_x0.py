"""Teacher-forced probe of a weight set on the held-out split of a synthetic dataset (`animate synth`).

    python scripts/probe_x0.py --data runs/demo/data --weights WEIGHTS [--timesteps 999,600,200] [--frames 8]

For each held-out video, the true frames' latents are noised to timestep t, the model (reference on, frames
independent) predicts x0 in one step, and the decoded x0 is scored against the truth with `animate eval`'s PSNR.
At t = 999 (pure noise) this is the model's mean estimate of the frame from the photo and the pose alone; a
sample is a draw around it. The last column is the photo baseline on the same frames.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from diffusers import DDPMScheduler
from PIL import Image

from animate.errors import AnimateError
from animate.app.evaluation import psnr
from animate.models.weights import load_models
from animate.pipeline.animate import AnimatePipeline, pose_pixels
from stages.datasets import read_frames_at
from stages.objective import training_scheduler


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the synthetic dataset folder (meta_test.json, refs/)")
    parser.add_argument("--weights", required=True, help="the weight set to probe")
    parser.add_argument("--timesteps", default="999,600,200", help="comma-separated timesteps of 0..999")
    parser.add_argument("--frames", type=int, default=8, help="frames per video, evenly spaced (8)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def x0_from_velocity(schedule: DDPMScheduler, noisy: torch.Tensor, velocity: torch.Tensor, t: int) -> torch.Tensor:
    """The clean latents a v-prediction implies: √ᾱ·x_t − √(1−ᾱ)·v."""
    alpha = schedule.alphas_cumprod[t]
    return alpha.sqrt() * noisy - (1 - alpha).sqrt() * velocity


def as_frames(pixels: torch.Tensor) -> np.ndarray:
    """[n, 3, H, W] in [-1, 1] → [n, H, W, 3] floats in [0, 1], as `animate eval` scores them."""
    return ((pixels.clamp(-1, 1).permute(0, 2, 3, 1).double().numpy() + 1) / 2)


@torch.no_grad()
def probe_video(pipeline: AnimatePipeline, schedule: DDPMScheduler, ref: Image.Image, truth: torch.Tensor,
                pose: torch.Tensor, timesteps: list[int]) -> dict[int, float]:
    """PSNR of the decoded one-step x0 per timestep, for truth frames [n, 3, H, W] in [-1, 1] and their pose images."""
    models = pipeline.models
    scale = models.vae.config.scaling_factor
    latents = (models.vae.encode(truth).latent_dist.mean * scale).permute(1, 0, 2, 3)[None]  # [1, 4, n, h, w]
    reference, context = pipeline.encode_reference(ref, truth.shape[-1], truth.shape[-2])
    tokens = models.reference_net(reference, context)
    features = models.pose_guider(pose)
    scores = {}
    for t in timesteps:
        step = torch.tensor(t)
        noisy = schedule.add_noise(latents, torch.randn_like(latents), step)
        velocity = models.animate_unet(noisy, step, context, features, reference=tokens).float()
        x0 = x0_from_velocity(schedule, noisy, velocity, t)[0].permute(1, 0, 2, 3)
        scores[t] = psnr(as_frames(models.vae.decode(x0 / scale).sample), as_frames(truth))
    return scores


def probe_entry(pipeline: AnimatePipeline, schedule: DDPMScheduler, data: Path, entry: dict, frames: int,
                timesteps: list[int]) -> list[float]:
    """One meta_test.json entry's x0 PSNR per timestep, then the photo baseline's PSNR on the same frames."""
    ref_path = data / "refs" / f"{Path(entry['video_path']).stem}.png"
    if not ref_path.is_file():
        raise AnimateError(f"reference photo not found: {ref_path}")
    ref = Image.open(ref_path).convert("RGB")
    indices = np.linspace(0, entry["frames"] - 1, frames).round().astype(int)
    truth = torch.from_numpy(read_frames_at(str(data / entry["video_path"]), indices))
    truth = truth.permute(0, 3, 1, 2).float() / 127.5 - 1
    pose = pose_pixels(read_frames_at(str(data / entry["kps_path"]), indices))
    scores = probe_video(pipeline, schedule, ref, truth, pose, timesteps)
    photo = torch.from_numpy(np.asarray(ref.resize((truth.shape[-1], truth.shape[-2]), Image.BICUBIC)))
    photo = photo.permute(2, 0, 1)[None].float() / 127.5 - 1
    return [scores[t] for t in timesteps] + [psnr(as_frames(photo.expand_as(truth)), as_frames(truth))]


def main(argv: list[str] | None = None) -> None:
    """Print the mean x0 PSNR per timestep over the held-out videos, beside the photo baseline."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        timesteps = [int(t) for t in args.timesteps.split(",")]
    except ValueError:
        sys.exit(f"error: --timesteps must be comma-separated integers, got {args.timesteps!r}")
    if not all(0 <= t <= 999 for t in timesteps):
        sys.exit(f"error: --timesteps must lie in 0..999, got {args.timesteps}")
    if args.frames < 1:
        sys.exit(f"error: --frames must be at least 1, got {args.frames}")
    meta = args.data / "meta_test.json"
    if not meta.is_file():
        sys.exit(f"error: {meta} not found (give a folder `animate synth` wrote)")
    torch.manual_seed(args.seed)
    try:
        models = load_models(args.weights, motion=False).to(dtype=torch.float32)
        pipeline, schedule = AnimatePipeline.for_inference(models), training_scheduler()
        rows = [probe_entry(pipeline, schedule, args.data, entry, args.frames, timesteps)
                for entry in json.loads(meta.read_text())]
    except AnimateError as error:
        sys.exit(f"error: {error}")
    means = np.mean(rows, axis=0)
    print(f"{len(rows)} held-out videos of {args.data}, {args.frames} frames each, weights {args.weights}\n")
    print("| t | " + " | ".join(map(str, timesteps)) + " | photo baseline |")
    print("|---|" + "---:|" * (len(timesteps) + 1))
    print("| x0 PSNR dB | " + " | ".join(f"{m:.2f}" for m in means) + " |")


if __name__ == "__main__":
    main()
