"""Score a content guider on the held-out split of a synthetic dataset (`animate synth --framing head|half
--outfits 2`: faces big enough to see, and each person in two held-out videos); prints markdown tables.

Every held-out video is animated with its rendered pose video, at each sampling seed, in seven ways:
- photo mode (the video's photo): `base` (no face, no prompt: the weight set without its guider, bit for bit), `own
  face` (the photo's face crop, from its keypoints), `other face` (the face crop of the photo of the person's *other* held-out video:
  other clothes, room and light; the real use of --face PHOTO);
- text + face mode (no photo): `text + face` (the video's caption and the other video's face), `face only` (prompt
  ""), `text only` (--face none), `face as context` (the face's CLIP embedding as context but no face tokens:
  --face-scale 0, which tells the face tokens' part from the context's).
Scores per video against the rendered truth: whole-frame PSNR, and `animate eval --face`'s face PSNR and skin, hair
and iris colour errors; and the mean-colour error (RGB in [0, 1]) of the room (label 0), the top (torso) and the
bottom (thighs) from the truth's part labels, which is what the caption names. Prints the mean per run with the
spread (max − min) over seeds, and per-video wins (the mean over seeds) of each guided run against its comparison.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from animate.app.evaluation import finite_mean, psnr
from animate.app.face_scores import FaceScores, FaceTruth
from animate.media.video import read_frames
from animate.models.weights import load_models
from animate.pipeline.animate import AnimatePipeline, AnimateSettings, Content
from animate.pose.face import face_crop
from animate.pose.frames import PoseFrames
from animate.pose.keypoints import PoseSequence
from data_tools.figures import PART

RUNS = ("base", "own face", "other face", "text + face", "face only", "text only", "face as context")
COMPARISONS = (("own face", "base"), ("other face", "base"), ("text + face", "face only"),
               ("text + face", "text only"), ("text + face", "face as context"))
PARTS = {"room": (0,), "top": (PART["torso"],), "bottom": (PART["r_thigh"], PART["l_thigh"])}
SCORES = ("psnr", "face_psnr", "skin", "hair", "eyes", "room", "top", "bottom")
HIGHER = {"psnr", "face_psnr"}  # the rest are errors: lower is better


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the synthetic dataset folder (meta_test.json)")
    parser.add_argument("--weights", required=True, help="a weight set holding a content guider")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--cfg", type=float, default=1.0)
    parser.add_argument("--seeds", default="42,43", help="sampling seeds (comma-separated)")
    parser.add_argument("--face-scale", type=float, default=1.0)
    parser.add_argument("--text-scale", type=float, default=1.0)
    parser.add_argument("--out", type=Path, help="also write the per-video scores here as JSON")
    return parser.parse_args(argv)


def photo_face(data: Path, entry: dict) -> Image.Image:
    """The face crop of a video's photo (refs/<name>.png, a relaxed pose facing the camera), from its keypoints."""
    photo = Image.open(data / entry["ref_path"]).convert("RGB")
    keypoints = PoseSequence.load(data / entry["ref_path"].replace(".png", ".pose.npz"))
    face = face_crop(photo, keypoints.body[0], keypoints.face[0])
    if face is None:
        raise SystemExit(f"error: no face seen in {entry['ref_path']}")
    return face


def part_errors(pred: np.ndarray, truth: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Per part (room, top, bottom) the mean over frames of the distance between mean colours (in [0, 1])."""
    out = {}
    for name, parts in PARTS.items():
        values = []
        for p, g, frame_labels in zip(pred, truth, labels):
            mask = np.isin(frame_labels, parts)
            if mask.sum() >= 3:
                values.append(float(np.linalg.norm(p[mask].mean(0) - g[mask].mean(0)) / 255))
        out[name] = float(np.mean(values)) if values else float("nan")
    return out


def score(pred: np.ndarray, truth: np.ndarray, face: FaceTruth, labels: np.ndarray) -> dict[str, float]:
    """Whole-frame PSNR, the face scores and the part colour errors of one generated video."""
    faces = FaceScores(face)
    for index, (p, g) in enumerate(zip(pred, truth)):
        faces.add(index, p, g)
    scores = {"psnr": psnr(pred.astype(np.float64) / 255, truth.astype(np.float64) / 255), **faces.result()}
    return {**scores, **part_errors(pred.astype(np.float64), truth.astype(np.float64), labels)}


def run_video(pipeline: AnimatePipeline, data: Path, entry: dict, entries: list[dict], args: argparse.Namespace,
              seed: int) -> dict[str, dict[str, float]]:
    """The scores of the seven runs of one held-out video at one seed."""
    width, height = entry["width"], entry["height"]
    photo = Image.open(data / entry["ref_path"]).convert("RGB")
    own = photo_face(data, entry)
    others = [e for e in entries if e["identity"] == entry["identity"] and e is not entry]
    if not others:
        raise SystemExit(f"error: {entry['video_path']}: the person has no other held-out video (synth --outfits 2)")
    other = photo_face(data, others[0])
    caption = entry["caption"]
    scales = dict(face_scale=args.face_scale, text_scale=args.text_scale)
    runs = {"base": (photo, Content()), "own face": (photo, Content(face=own, **scales)),
            "other face": (photo, Content(face=other, **scales)),
            "text + face": (None, Content(face=other, prompt=caption, **scales)),
            "face only": (None, Content(face=other, **scales)),
            "text only": (None, Content(prompt=caption, **scales)),
            "face as context": (None, Content(face=other, prompt=caption, face_scale=0.0,
                                              text_scale=args.text_scale))}
    truth = np.stack(list(read_frames(data / entry["video_path"])))
    name = Path(entry["video_path"]).stem
    stored = np.load(data / "regions" / f"{name}.npz")
    face = FaceTruth(PoseSequence.load(data / entry["keypoints_path"]), stored["regions"])
    settings = AnimateSettings(width, height, steps=args.steps, guidance=args.cfg, seed=seed,
                               context_frames=min(24, len(truth)), context_overlap=min(4, len(truth) - 1))
    out = {}
    for run, (image, content) in runs.items():
        poses = PoseFrames.from_video(data / entry["kps_path"], width, height, len(truth))
        try:
            latents = pipeline.denoise(image, poses, settings, progress=False, content=content)
        finally:
            poses.close()
        pred = np.concatenate(list(pipeline.decode(latents)))
        out[run] = score(pred, truth, face, stored["labels"])
    return out


def table(results: dict[int, dict[str, dict[str, dict[str, float]]]]) -> str:
    """Mean per run over videos and seeds, with the spread over seeds (the seeds' means: max − min)."""
    seeds = sorted(results)
    lines = ["| run | " + " | ".join(SCORES) + " |", "|---|" + "---:|" * len(SCORES)]
    for run in RUNS:
        cells = []
        for metric in SCORES:
            per_seed = [finite_mean([v[run][metric] for v in results[s].values()]) for s in seeds]  # nan: none
            cells.append(f"{np.mean(per_seed):.4f} ± {np.ptp(per_seed) / 2:.4f}" if len(seeds) > 1
                         else f"{per_seed[0]:.4f}")
        lines.append(f"| {run} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def wins(results: dict[int, dict[str, dict[str, dict[str, float]]]]) -> str:
    """Per comparison and metric, on how many videos the guided run beats its comparison (means over seeds)."""
    seeds, videos = sorted(results), sorted(next(iter(results.values())))
    lines = ["| guided vs comparison | " + " | ".join(SCORES) + " |", "|---|" + "---:|" * len(SCORES)]
    for run, against in COMPARISONS:
        cells = []
        for metric in SCORES:
            mine = [np.mean([results[s][v][run][metric] for s in seeds]) for v in videos]
            theirs = [np.mean([results[s][v][against][metric] for s in seeds]) for v in videos]
            better = [(m > t) if metric in HIGHER else (m < t) for m, t in zip(mine, theirs)
                      if np.isfinite(m) and np.isfinite(t)]
            cells.append(f"{sum(better)}/{len(better)}")
        lines.append(f"| {run} vs {against} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    """Score the guider of --weights on --data's held-out videos and print the tables."""
    args = parse_args(argv)
    entries = json.loads((args.data / "meta_test.json").read_text())
    models = load_models(args.weights)
    if models.guider is None:
        raise SystemExit(f"error: {args.weights} holds no content guider")
    pipeline = AnimatePipeline.for_inference(models, "cpu", torch.float32)
    results = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        results[seed] = {Path(e["video_path"]).stem: run_video(pipeline, args.data, e, entries, args, seed)
                         for e in entries}
    if args.out is not None:
        args.out.write_text(json.dumps({str(s): r for s, r in results.items()}, indent=1) + "\n")
    sys.stdout.write(f"{table(results)}\n\nPer-video wins (means over seeds):\n\n{wins(results)}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
