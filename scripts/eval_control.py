"""Score a Video ControlNet on the held-out split of a synthetic dataset (`animate synth`); prints markdown tables.

Every held-out figure's photo is animated with its dance's rendered pose video (as scripts/eval_synth.py does) in
three ways, each at the given sampling seeds:
- no control: the weight set without its ControlNet;
- cross-figure depth (the real use): the exact depth of a *different* figure (the next held-out video's) dancing the
  same dance in the same room, placed on the photo's figure only by the retargeting's global alignment (scale and
  offset of the first frame), at each --scales value;
- oracle depth: the held-out figure's own exact depth (it contains the answer's outline);
- black depth: the ControlNet on all-black frames (what it adds without any depth: a control for the control).
Scores per video against the rendered truth: PSNR, SSIM, L1, flicker (animate eval's), the figure-mask IoU (the
predicted mask: pixels more than --mask-threshold from the known empty room in any channel; the truth's: its part
labels), and PSNR over the limb-crossing frames alone (a wrist or elbow in front of the torso: between the shoulders
and between the neck and the hips). Prints the mean per run with the spread over seeds, and per-video wins against
no control.
"""

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from animate.app.controls import ControlOptions
from animate.app.evaluation import evaluate_pair, read_video_frames
from animate.app.infer import InferOptions, check_case, open_session, run_case
from animate.depth.maps import DepthClip
from animate.depth.place import place_depth
from animate.pose.keypoints import PoseSequence
from animate.pose.retarget import retarget_placed
from data_tools.backgrounds import make_background
from data_tools.dances import make_dance, neutral_pose
from data_tools.depth import Room, draw_scene
from data_tools.figures import Figure, part_labels

METRICS = ("psnr", "ssim", "l1", "flicker", "iou", "crossing_psnr")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the synthetic dataset folder (meta_test.json)")
    parser.add_argument("--weights", required=True, help="a weight set holding a depth ControlNet")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--cfg", type=float, default=1.0)
    parser.add_argument("--seeds", default="42,43", help="sampling seeds (comma-separated)")
    parser.add_argument("--scales", default="0.7", help="control scales of the cross-figure runs (comma-separated)")
    parser.add_argument("--oracle-scale", type=float, default=0.7)
    parser.add_argument("--mask-threshold", type=float, default=0.1, help="in [0, 1] units of a channel")
    parser.add_argument("--out", type=Path, help="also write the per-video scores here as JSON")
    return parser.parse_args(argv)


def test_entries(data: Path) -> list[dict]:
    """The test split's meta entries with absolute paths."""
    entries = json.loads((data / "meta_test.json").read_text())
    for entry in entries:
        name = Path(entry["video_path"]).stem
        entry.update(name=name, video=data / entry["video_path"], pose=data / entry["kps_path"],
                     ref=data / "refs" / f"{name}.png", depth=data / "depth" / f"{name}.depth.npz")
    return entries


def cross_figure_depth(entry: dict, other: dict, path: Path) -> Path:
    """The other entry's figure dancing this entry's dance in this entry's room, its exact depth placed on this
    entry's figure by the global alignment of retargeting (its reference pose as the photo), saved as .depth.npz."""
    width, height, frames, fps, seed = entry["width"], entry["height"], entry["frames"], entry["fps"], entry["dance_seed"]
    dancer, figure = Figure.from_seed(other["figure_seed"]), Figure.from_seed(entry["figure_seed"])
    body, hands, face = make_dance(seed, frames, fps, width, height, dancer)
    room, background = Room.from_seed(seed, width, height), make_background(seed, width, height)
    nearness = np.stack([draw_scene(dancer, body[f], hands[f], room, background).nearness for f in range(frames)])
    photo_body, _, _ = neutral_pose(figure, width, height, seed)
    driving = PoseSequence(body, hands, face, width, height, fps)
    _, placement = retarget_placed(driving, photo_body, (width, height))
    placed = place_depth(nearness, placement, (width, height), (width, height))
    return DepthClip.from_nearness(placed, fps).save(path)


def truth_masks(entry: dict) -> np.ndarray:
    """[F, H, W] bool: the held-out figure's pixels (its part labels)."""
    figure = Figure.from_seed(entry["figure_seed"])
    body, hands, _ = make_dance(entry["dance_seed"], entry["frames"], entry["fps"], entry["width"], entry["height"],
                                figure)
    return np.stack([part_labels(figure, body[f], hands[f], entry["width"], entry["height"]) > 0
                     for f in range(entry["frames"])])


def crossing_frames(entry: dict) -> np.ndarray:
    """[F] bool: a wrist or elbow in front of the torso (between the shoulders' x and the neck's and hips' y)."""
    body = PoseSequence.load(entry["video"].parent.parent / entry["keypoints_path"]).body
    left, right = np.minimum(body[:, 2, 0], body[:, 5, 0]), np.maximum(body[:, 2, 0], body[:, 5, 0])
    top, bottom = body[:, 1, 1], (body[:, 8, 1] + body[:, 11, 1]) / 2
    inside = [(left < body[:, j, 0]) & (body[:, j, 0] < right) & (top < body[:, j, 1]) & (body[:, j, 1] < bottom)
              & (body[:, j, 2] > 0) for j in (3, 4, 6, 7)]
    return np.any(inside, axis=0)


def scores(pred: Path, entry: dict, threshold: float) -> dict:
    """animate eval's scores, the figure-mask IoU and the PSNR of the limb-crossing frames."""
    result = evaluate_pair(pred, entry["video"])
    frames = read_video_frames(pred).astype(np.float64)  # in [0, 1]
    truth = read_video_frames(entry["video"]).astype(np.float64)
    room = make_background(entry["dance_seed"], entry["width"], entry["height"]).astype(np.float64) / 255
    predicted = np.abs(frames - room).max(-1) > threshold
    masks = truth_masks(entry)
    result["iou"] = float((predicted & masks).sum() / max((predicted | masks).sum(), 1))
    crossing = crossing_frames(entry)
    error = ((frames[crossing] - truth[crossing]) ** 2).mean()
    result["crossing_psnr"] = float(10 * np.log10(1 / error)) if crossing.any() else float("nan")
    result["crossing_frames"] = int(crossing.sum())
    return result


def main(argv: list[str] | None = None) -> None:
    """Animate every held-out video per run and seed, score it, print the tables."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    entries = test_entries(args.data)
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = {"no control": (None, 0.0)}
    runs |= {f"cross-figure depth, scale {float(s):g}": ("cross", float(s)) for s in args.scales.split(",")}
    runs[f"oracle depth (own exact depth), scale {args.oracle_scale:g}"] = ("oracle", args.oracle_scale)
    runs[f"black depth (no depth at all), scale {args.oracle_scale:g}"] = ("black", args.oracle_scale)
    table: dict[str, dict[int, list[dict]]] = {run: {seed: [] for seed in seeds} for run in runs}
    with tempfile.TemporaryDirectory(prefix="eval-control-") as tmp:
        base = InferOptions(ref=Path(), pose=Path(), weights=args.weights, steps=args.steps, cfg=args.cfg,
                            pose_type="skeleton", progress=False, controls=ControlOptions(control="depth"))
        session = open_session(base)
        cross = {e["name"]: cross_figure_depth(e, entries[(i + 1) % len(entries)], Path(tmp) / f"{e['name']}.depth.npz")
                 for i, e in enumerate(entries)}
        black = DepthClip(np.zeros((entries[0]["frames"], entries[0]["height"], entries[0]["width"]), np.uint16), 0.0,
                          1.0, entries[0]["fps"]).save(Path(tmp) / "black.depth.npz")
        for run, (source, scale) in runs.items():
            for seed in seeds:
                for entry in entries:
                    controls = ControlOptions()
                    if source is not None:
                        depth = {"cross": cross[entry["name"]], "oracle": entry["depth"], "black": black}[source]
                        controls = ControlOptions(control="depth", depth=str(depth), control_scale=str(scale))
                    out = Path(tmp) / f"{len(table[run][seed])}-{seed}-{abs(hash(run))}.mp4"
                    options = dataclasses.replace(base, ref=entry["ref"], pose=entry["pose"], width=entry["width"],
                                                  height=entry["height"], seed=seed, out=out, controls=controls)
                    run_case(session, options, check_case(options))
                    table[run][seed].append({"video": entry["name"], **scores(out, entry, args.mask_threshold)})
                    out.unlink()
                print(f"done: {run}, seed {seed}", file=sys.stderr)
    report(table, entries, args)
    if args.out is not None:
        args.out.write_text(json.dumps(table, indent=1))


def report(table: dict, entries: list[dict], args: argparse.Namespace) -> None:
    """Mean ± spread over seeds per run, and per-video wins against no control (mean over seeds)."""
    seeds = list(next(iter(table.values())))
    print(f"{len(entries)} held-out videos of {args.data}, weights {args.weights}, {args.steps} steps, CFG {args.cfg}, "
          f"seeds {', '.join(map(str, seeds))}; mean over videos, ± half the spread between the seeds' means\n")
    print("| run | PSNR dB | SSIM | L1 | flicker | mask IoU | PSNR, limb-crossing frames |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for run, by_seed in table.items():
        cells = []
        for metric in METRICS:
            means = [np.nanmean([row[metric] for row in rows]) for rows in by_seed.values()]
            cells.append(f"{np.mean(means):.3f} ± {(max(means) - min(means)) / 2:.3f}")
        print(f"| {run} | " + " | ".join(cells) + " |")
    crossing = sum(row["crossing_frames"] for row in next(iter(table.values()))[seeds[0]])
    print(f"\nLimb-crossing frames: {crossing} of {sum(e['frames'] for e in entries)}.\n")
    base = table["no control"]
    print("Per-video wins against no control (each video's mean over the seeds; L1 and flicker: lower wins):\n")
    print("| run | PSNR | SSIM | L1 | mask IoU |\n|---|---:|---:|---:|---:|")
    for run, by_seed in table.items():
        if run == "no control":
            continue
        wins = []
        for metric, lower in (("psnr", False), ("ssim", False), ("l1", True), ("iou", False)):
            ours = np.mean([[row[metric] for row in rows] for rows in by_seed.values()], axis=0)
            theirs = np.mean([[row[metric] for row in rows] for rows in base.values()], axis=0)
            wins.append(int(((ours < theirs) if lower else (ours > theirs)).sum()))
        print(f"| {run} | " + " | ".join(f"{w} of {len(entries)}" for w in wins) + " |")


if __name__ == "__main__":
    main()
