"""Score a weight set on the held-out split of a synthetic dataset (`animate synth`); prints a markdown table.

For every test video the model animates the figure's reference photo with the video's rendered pose video; the
result is scored against the rendered figure video (`animate eval`'s metrics). Rows: the model; the same with
`--no-reference`; with `--no-motion`; and the trivial baseline "every frame = the reference photo".
"""

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path

from PIL import Image

from animate.app.evaluation import evaluate, mean_scores
from animate.app.infer import InferOptions, check_case, open_session, run_case

VARIANTS = {"model": {}, "no-reference": {"no_reference": True}, "no-motion": {"no_motion": True}}


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="the synthetic dataset folder (meta_test.json)")
    parser.add_argument("--weights", required=True, help="the weight set to score")
    parser.add_argument("--out", type=Path, help="keep the predicted frames here (default: a temporary folder)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfg", type=float, default=3.5)
    parser.add_argument("--max-videos", type=int, help="score only the first N test videos")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cache-interval", type=int, default=1, help="DeepCache interval of every run (fast mode)")
    parser.add_argument("--only-model", action="store_true", help="score the model alone (no ablations, no baseline)")
    return parser.parse_args(argv)


def test_entries(data: Path, limit: int | None) -> list[dict]:
    """The test split's meta entries with absolute paths and their reference photos."""
    entries = json.loads((data / "meta_test.json").read_text())[:limit]
    for entry in entries:
        name = Path(entry["video_path"]).stem
        entry.update(name=name, video=data / entry["video_path"], pose=data / entry["kps_path"],
                     ref=data / "refs" / f"{name}.png")
    return entries


def photo_baseline(entry: dict, folder: Path) -> None:
    """Every frame = the reference photo, as PNG frames at the video's size."""
    folder.mkdir(parents=True)
    photo = Image.open(entry["ref"]).convert("RGB").resize((entry["width"], entry["height"]), Image.BICUBIC)
    for index in range(entry["frames"]):
        photo.save(folder / f"{index:06d}.png")


def main(argv: list[str] | None = None) -> None:
    """Animate every test video per variant, score each against the truth, print the mean table."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    entries = test_entries(args.data, args.max_videos)
    with tempfile.TemporaryDirectory(prefix="eval-synth-") as tmp:
        out = args.out or Path(tmp)
        truth = Path(tmp) / "truth"
        truth.mkdir()
        for entry in entries:
            os.symlink(entry["video"].resolve(), truth / f"{entry['name']}.mp4")
        base = InferOptions(ref=Path(), pose=Path(), weights=args.weights, steps=args.steps, cfg=args.cfg,
                            seed=args.seed, pose_type="skeleton", progress=False, cache_interval=args.cache_interval)
        session = open_session(base)
        rows = {}
        for variant, changes in (VARIANTS if not args.only_model else {"model": {}}).items():
            for entry in entries:
                options = dataclasses.replace(base, ref=entry["ref"], pose=entry["pose"], width=entry["width"],
                                              height=entry["height"], out=Path(tmp) / f"{variant}-{entry['name']}.mp4",
                                              frames_dir=out / variant / entry["name"], **changes)
                run_case(session, options, check_case(options))
            rows[variant] = mean_scores(evaluate(out / variant, truth))
        if not args.only_model:
            for entry in entries:
                photo_baseline(entry, out / "reference-photo" / entry["name"])
            rows["reference photo"] = mean_scores(evaluate(out / "reference-photo", truth))
    print(f"{len(entries)} held-out videos of {args.data}, weights {args.weights}, {args.steps} steps, CFG {args.cfg}, "
          f"cache interval {args.cache_interval}\n")
    print("| | PSNR dB | SSIM | L1 | flicker |\n|---|---:|---:|---:|---:|")
    for name, s in rows.items():
        print(f"| {name} | {s['psnr']:.2f} | {s['ssim']:.4f} | {s['l1']:.4f} | {s['flicker']:.3f} |")


if __name__ == "__main__":
    main()
