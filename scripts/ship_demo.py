"""Copy a finished `scripts/train_demo.sh` run into examples/: the trained weights (fp16) and one held-out case.

    python scripts/ship_demo.py runs/demo [--case test_0000] [--out examples]

The case is a figure and a dance of the test split (neither seen in training): its reference photo (ref.png), its
pose video (dance_pose.mp4), its keypoints (dance.pose.npz) and the rendered truth (dance_truth.mp4) to score a
result against with `animate eval`.
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

from animate.models.weights import load_models, save_weight_set

CASE_FILES = {"ref_path": "ref.png", "kps_path": "dance_pose.mp4", "keypoints_path": "dance.pose.npz",
              "video_path": "dance_truth.mp4"}


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="the train_demo.sh output folder")
    parser.add_argument("--case", default="test_0000", help="the held-out video to ship (default test_0000)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "examples")
    return parser.parse_args(argv)


def final_weights(run: Path) -> Path:
    """The last stage-2 checkpoint's weight set of a run."""
    checkpoints = sorted((run / "stage2").glob("checkpoint-*"))
    if not checkpoints:
        sys.exit(f"error: {run / 'stage2'} has no checkpoint")
    return checkpoints[-1] / "weights"


def main(argv: list[str] | None = None) -> None:
    """Write the fp16 weight set and the case's four files into --out (files already there are replaced)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    data = args.run / "data"
    if not (data / "meta_test.json").is_file():
        sys.exit(f"error: {data / 'meta_test.json'} not found: is {args.run} a train_demo.sh output folder?")
    entries = {Path(e["video_path"]).stem: e for e in json.loads((data / "meta_test.json").read_text())}
    if args.case not in entries:
        sys.exit(f"error: {args.case} is not in {data / 'meta_test.json'} (held-out: {', '.join(sorted(entries))})")
    args.out.mkdir(parents=True, exist_ok=True)
    for key, name in CASE_FILES.items():
        shutil.copyfile(data / entries[args.case][key], args.out / name)
    weights = args.out / "weights"
    if weights.exists():
        shutil.rmtree(weights)
    save_weight_set(load_models(final_weights(args.run)), weights, "ours", torch.float16)
    print(f"shipped {args.case} and {final_weights(args.run)} as fp16 into {args.out}")


if __name__ == "__main__":
    main()
