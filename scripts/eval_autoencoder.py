"""Score a weight set's autoencoder on held-out frames: PSNR and colour error of encode → posterior mean → decode.

    python scripts/eval_autoencoder.py --meta runs/demo/data/meta_test.json --weights runs/demo/autoencoder/weights

Checks a trained autoencoder before stage 1 builds on it: the animation can be no better than this reconstruction.
Colour error is the mean absolute difference of each frame's channel means, as a share of the value range.
"""

import argparse
import sys

import numpy as np
import torch

from animate.errors import AnimateError
from animate.app.evaluation import psnr
from animate.models.weights import load_models
from stages.datasets import load_meta, read_frames_at


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meta", required=True, help="a dataset meta.json (the held-out split)")
    parser.add_argument("--weights", required=True, help="the weight set whose autoencoder is scored")
    parser.add_argument("--frames", type=int, default=3, help="frames per video, evenly spaced (3)")
    return parser.parse_args(argv)


def held_out_frames(meta: str, per_video: int) -> torch.Tensor:
    """`per_video` evenly spaced frames of every video in the meta, [n, 3, H, W] in [-1, 1]."""
    batches = [read_frames_at(entry.video, np.linspace(0, entry.num_frames - 1, per_video).round().astype(int))
               for entry in load_meta([meta])]
    return torch.from_numpy(np.concatenate(batches)).permute(0, 3, 1, 2).float() / 127.5 - 1


@torch.no_grad()
def reconstruction_scores(vae, frames: torch.Tensor) -> tuple[float, float]:
    """`animate eval`'s PSNR (dB, float frames in [0, 1]) and the mean colour error of decoding each posterior mean."""
    decoded = vae.decode(vae.encode(frames).latent_dist.mean).sample.clamp(-1, 1)
    pred, truth = ((x.permute(0, 2, 3, 1).double().numpy() + 1) / 2 for x in (decoded, frames))
    colour = float(np.abs(pred.mean((1, 2)) - truth.mean((1, 2))).mean())
    return psnr(pred, truth), colour


def main(argv: list[str] | None = None) -> None:
    """Print the held-out reconstruction PSNR and colour error."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        vae = load_models(args.weights, motion=False).vae.float().eval()
        frames = held_out_frames(args.meta, args.frames)
    except AnimateError as error:
        sys.exit(f"error: {error}")
    psnr, colour = reconstruction_scores(vae, frames)
    print(f"{len(frames)} frames of {args.meta}: reconstruction {psnr:.2f} dB, colour error {100 * colour:.1f} %")


if __name__ == "__main__":
    main()
