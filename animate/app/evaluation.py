"""Generated videos against their ground truth: PSNR, SSIM, L1 and flicker, per video and on average.

Conventions: frames are float RGB in [0, 1] (8-bit inputs divided by 255), metrics are computed in float64.
- PSNR is 10·log10(1 / MSE) per frame, averaged over frames. A frame identical to its truth has PSNR +inf, so a
  video's PSNR is +inf as soon as one frame is identical (the plain mean; leaving perfect frames out would let a
  perfect frame lower the score). Identical videos give +inf.
- SSIM is Wang et al. 2004: 11x11 Gaussian window, σ 1.5, K1 0.01, K2 0.03, data range 1, population statistics,
  averaged over the window-valid pixels of each RGB channel, then over frames. Identical frames give exactly 1.0.
- flicker is mean|pred[t] - pred[t-1]| / mean|gt[t] - gt[t-1]|: 1.0 = as much change as the truth, 0 = frozen.
  A static truth gives 1.0 if the prediction is static too, else +inf; a single frame gives nan (undefined).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..atomic import write_text
from ..errors import AnimateError
from ..media.image import load_image
from ..media.video import probe_video, read_frames
from ..pose.arcface import ArcFace
from .face_scores import FACE_METRICS, FaceScores, face_truth

METRICS = ("psnr", "ssim", "l1", "flicker")
VIDEO_EXTENSIONS = {".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm"}

_SSIM_WINDOW, _SSIM_SIGMA = 11, 1.5
_SSIM_C1, _SSIM_C2 = 0.01**2, 0.03**2
_COLUMNS = (("psnr", "PSNR (dB)", "{:.2f}"), ("ssim", "SSIM", "{:.4f}"), ("l1", "L1", "{:.4f}"),
            ("flicker", "flicker", "{:.3f}"))
_FACE_COLUMNS = (("face_psnr", "face PSNR (dB)", "{:.2f}"), ("skin", "skin Δ", "{:.4f}"), ("hair", "hair Δ", "{:.4f}"),
                 ("eyes", "eyes Δ", "{:.4f}"), ("arcface", "ArcFace cos", "{:.3f}"))
_NAMES_SHOWN = 5


def psnr(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean over frames of 10·log10(1 / MSE) on [F, H, W, 3] frames in [0, 1]; +inf if any frame is identical."""
    return float(np.mean([_frame_psnr(p, g) for p, g in _frame_pairs(pred, gt)]))


def ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean over frames and RGB channels of SSIM (Gaussian 11x11 window, σ 1.5, data range 1)."""
    return float(np.mean([_frame_ssim(p, g) for p, g in _frame_pairs(pred, gt)]))


def l1(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean absolute difference of [F, H, W, 3] frames in [0, 1]."""
    return float(np.mean([_mean_abs(p, g) for p, g in _frame_pairs(pred, gt)]))


def flicker(pred: np.ndarray, gt: np.ndarray) -> float:
    """The prediction's mean frame-to-frame change over the truth's (1.0 = as much; conventions in the module doc)."""
    change = _Change()
    for p, g in _frame_pairs(pred, gt):
        change.add(p, g)
    return change.ratio()


def _frame_pairs(pred: np.ndarray, gt: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Check two [F, H, W, 3] float videos match in shape and yield their frames as float64 pairs."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape or pred.ndim != 4 or pred.shape[-1] != 3 or len(pred) == 0:
        raise ValueError(f"expected two non-empty [F, H, W, 3] arrays of one shape, got {pred.shape} and {gt.shape}")
    if pred.dtype.kind != "f" or gt.dtype.kind != "f":
        raise ValueError(f"expected float frames in [0, 1], got {pred.dtype} and {gt.dtype}")
    for p, g in zip(pred, gt):
        yield p.astype(np.float64), g.astype(np.float64)


def _frame_psnr(pred: np.ndarray, gt: np.ndarray) -> float:
    """PSNR of one float frame pair at peak 1; +inf when identical."""
    mse = float(np.mean(np.square(pred - gt)))
    return math.inf if mse == 0 else -10 * math.log10(mse)


def _frame_ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    """SSIM of one HxWx3 float frame pair, averaged over channels and the pixels whose window lies inside."""
    height, width = pred.shape[:2]
    if min(height, width) < _SSIM_WINDOW:
        raise AnimateError(f"SSIM needs frames of at least {_SSIM_WINDOW}x{_SSIM_WINDOW} pixels, got {width}x{height}")

    def blur(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(image, (_SSIM_WINDOW, _SSIM_WINDOW), _SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)

    mu_p, mu_g = blur(pred), blur(gt)
    var_p = blur(pred * pred) - mu_p * mu_p
    var_g = blur(gt * gt) - mu_g * mu_g
    cov = blur(pred * gt) - mu_p * mu_g
    score = ((2 * mu_p * mu_g + _SSIM_C1) * (2 * cov + _SSIM_C2)
             / ((mu_p * mu_p + mu_g * mu_g + _SSIM_C1) * (var_p + var_g + _SSIM_C2)))
    pad = _SSIM_WINDOW // 2
    return float(score[pad:-pad, pad:-pad].mean())


def _mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two float frames."""
    return float(np.mean(np.abs(a - b)))


class _Change:
    """Frame-to-frame change of a prediction and of its truth, fed one frame pair at a time."""

    def __init__(self) -> None:
        self.frames = 0
        self.pred = self.gt = 0.0
        self._previous: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add the next float64 frame pair."""
        if self._previous is not None:
            self.pred += _mean_abs(pred, self._previous[0])
            self.gt += _mean_abs(gt, self._previous[1])
        self._previous = pred, gt
        self.frames += 1

    def ratio(self) -> float:
        """The prediction's change over the truth's: 0/0 = 1, x/0 = +inf, a single frame = nan."""
        if self.frames < 2:
            return math.nan
        if self.gt == 0:
            return 1.0 if self.pred == 0 else math.inf
        return self.pred / self.gt


class _Scores:
    """The metrics of a video pair, accumulated one frame pair at a time."""

    def __init__(self) -> None:
        self.psnr: list[float] = []
        self.ssim: list[float] = []
        self.l1: list[float] = []
        self.change = _Change()

    def add(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Score the next float64 frame pair."""
        self.psnr.append(_frame_psnr(pred, gt))
        self.ssim.append(_frame_ssim(pred, gt))
        self.l1.append(_mean_abs(pred, gt))
        self.change.add(pred, gt)

    def result(self) -> dict:
        """psnr, ssim, l1, flicker and frames of the frames added so far."""
        return {"psnr": float(np.mean(self.psnr)), "ssim": float(np.mean(self.ssim)), "l1": float(np.mean(self.l1)),
                "flicker": self.change.ratio(), "frames": len(self.psnr)}


@dataclass(frozen=True)
class _Video:
    """A video file or a folder of PNG frames: its path, frame count and frame size (W, H)."""

    path: Path
    num_frames: int
    size: tuple[int, int]
    pngs: tuple[Path, ...] = ()

    def frames(self) -> Iterator[np.ndarray]:
        """Its HxWx3 uint8 RGB frames, one at a time."""
        if not self.pngs:
            yield from read_frames(self.path)
            return
        for png in self.pngs:
            frame = np.asarray(load_image(png))
            if (frame.shape[1], frame.shape[0]) != self.size:
                raise AnimateError(f"{png} is {frame.shape[1]}x{frame.shape[0]} but the folder's first frame is "
                                   f"{self.size[0]}x{self.size[1]}")
            yield frame


def _natural_key(path: Path) -> tuple[list, str]:
    """Sort key putting frame_2.png before frame_10.png (zero-padded names sort as they are)."""
    parts = re.split(r"(\d+)", path.name)
    return [int(part) if i % 2 else part for i, part in enumerate(parts)], path.name


def _png_files(folder: Path) -> list[Path]:
    """The PNG files directly in folder, hidden ones skipped, in natural name order."""
    pngs = [p for p in folder.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith(".") and p.is_file()]
    return sorted(pngs, key=_natural_key)


def _open(path: str | os.PathLike) -> _Video:
    """Probe a video file or a folder of PNG frames (the first frame gives the size)."""
    path = Path(path)
    if not path.is_dir():
        info = probe_video(path)
        return _Video(path, info.num_frames, (info.width, info.height))
    pngs = _png_files(path)
    if not pngs:
        raise AnimateError(f"no PNG frames in {path}")
    return _Video(path, len(pngs), load_image(pngs[0]).size, tuple(pngs))


def read_video_frames(path: str | os.PathLike) -> np.ndarray:
    """All frames of a video file or a folder of PNG frames as [F, H, W, 3] float32 in [0, 1] (held in memory)."""
    frames = np.stack(list(_open(path).frames())).astype(np.float32)
    frames /= 255
    return frames


def evaluate_pair(pred_path: str | os.PathLike, gt_path: str | os.PathLike, face: FaceScores | None = None) -> dict:
    """psnr, ssim, l1, flicker and frames of a prediction against its truth, streamed one frame pair at a time, and
    the face scores when `face` (the truth's face) is given."""
    pred, gt = _open(pred_path), _open(gt_path)
    if pred.num_frames != gt.num_frames:
        raise AnimateError(f"frame counts differ: {pred.path} has {pred.num_frames} frames, "
                           f"{gt.path} has {gt.num_frames}")
    if pred.size != gt.size:
        raise AnimateError(f"frame sizes differ: {pred.path} is {pred.size[0]}x{pred.size[1]}, "
                           f"{gt.path} is {gt.size[0]}x{gt.size[1]}")
    scores = _Scores()
    for index, (p, g) in enumerate(itertools.zip_longest(pred.frames(), gt.frames())):
        if p is None or g is None:
            short = pred if p is None else gt
            raise AnimateError(f"frame counts differ: {short.path} ended after {index} of its "
                               f"{short.num_frames} frames")
        scores.add(p.astype(np.float64) / 255, g.astype(np.float64) / 255)
        if face is not None:
            face.add(index, p, g)
    return {**scores.result(), **(face.result() if face is not None else {})}


def _is_one_video(path: Path) -> bool:
    """Whether path is one video (a file or a folder of PNG frames) rather than a folder of videos."""
    if not path.exists():
        raise AnimateError(f"not found: {path}")
    return not path.is_dir() or bool(_png_files(path))


def _videos_in(folder: Path) -> dict[str, Path]:
    """The videos in a folder by name: video files by stem, subfolders of PNG frames by name."""
    found: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix.lower() in VIDEO_EXTENSIONS:
            name = entry.stem
        elif entry.is_dir() and _png_files(entry):
            name = entry.name
        else:
            continue
        if name in found:
            raise AnimateError(f"two videos named {name} in {folder}: {found[name].name} and {entry.name}")
        found[name] = entry
    if not found:
        raise AnimateError(f"no videos or folders of PNG frames in {folder}")
    return found


def _listed(names: list[str]) -> str:
    """Names joined for a one-line message, the first few only."""
    shown = ", ".join(names[:_NAMES_SHOWN])
    return shown if len(names) <= _NAMES_SHOWN else f"{shown} and {len(names) - _NAMES_SHOWN} more"


def _pairs(pred: Path, gt: Path) -> list[tuple[str, Path, Path]]:
    """(name, prediction, truth) for two videos, or for two folders of videos matched by name."""
    pred_single, gt_single = _is_one_video(pred), _is_one_video(gt)
    if pred_single and gt_single:
        return [(pred.stem if pred.is_file() else pred.name, pred, gt)]
    if pred_single or gt_single:
        one, many = (pred, gt) if pred_single else (gt, pred)
        raise AnimateError(f"{one} is one video but {many} is a folder of videos: give two videos or two folders")
    pred_videos, gt_videos = _videos_in(pred), _videos_in(gt)
    only_pred = sorted(pred_videos.keys() - gt_videos.keys())
    only_gt = sorted(gt_videos.keys() - pred_videos.keys())
    if only_pred or only_gt:
        sides = [f"only in {folder}: {_listed(names)}" for folder, names in ((pred, only_pred), (gt, only_gt)) if names]
        raise AnimateError("the videos do not match by name; " + "; ".join(sides))
    return [(name, pred_videos[name], gt_videos[name]) for name in sorted(pred_videos)]


def evaluate(pred: str | os.PathLike, gt: str | os.PathLike, face: bool = False,
             arcface: Path | None = None) -> list[dict]:
    """Score a prediction against its truth: two videos, or two folders of videos matched by name, one pair at a time.

    A video is a video file or a folder of PNG frames; each row holds name, pred, gt, frames and the metrics, and with
    `face` the face scores (face_scores.py; ArcFace's with `arcface`, its ONNX file).
    """
    pairs = _pairs(Path(pred), Path(gt))
    truths = [face_truth(gt_path) for _, _, gt_path in pairs] if face or arcface else [None] * len(pairs)
    model = ArcFace(arcface) if arcface else None
    rows = []
    for (name, pred_path, gt_path), truth in zip(pairs, truths):
        scores = None if truth is None else FaceScores(truth, model)
        rows.append({"name": name, "pred": str(pred_path), "gt": str(gt_path),
                     **evaluate_pair(pred_path, gt_path, scores)})
    return rows


def finite_mean(values: list[float]) -> float:
    """Mean of the finite values; +inf if there are none but some are +inf, else nan."""
    finite = [v for v in values if math.isfinite(v)]
    if finite:
        return float(np.mean(finite))
    return math.inf if math.inf in values else math.nan


def mean_scores(rows: list[dict]) -> dict:
    """Per metric the mean over videos of the finite values (an inf PSNR is left out), and the total frames."""
    means = {metric: finite_mean([row[metric] for row in rows]) for metric in (*METRICS, *FACE_METRICS)
             if metric in rows[0]}
    return {"frames": sum(row["frames"] for row in rows), **means}


def _cell(value: float, spec: str) -> str:
    """A metric for the table: inf as `inf`, nan (undefined) as `n/a`."""
    if math.isnan(value):
        return "n/a"
    return spec.format(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")


def format_table(rows: list[dict]) -> str:
    """A markdown table, one row per video and a `mean` row (means of finite values, total frames)."""
    columns = _COLUMNS + (_FACE_COLUMNS if "face_psnr" in rows[0] else ())
    lines = ["| video | frames | " + " | ".join(title for _, title, _ in columns) + " |",
             "|---|---:|" + "---:|" * len(columns)]
    for name, row in [(row["name"], row) for row in rows] + [("mean", mean_scores(rows))]:
        cells = [name.replace("|", "\\|"), str(row["frames"])] + [_cell(row[key], spec) for key, _, spec in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _json_value(value: object) -> object:
    """A value JSON can hold: +inf as "inf", -inf as "-inf", nan as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _write_json(path: Path, data: dict) -> None:
    """Write data as JSON to path, atomically."""
    try:
        write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")
    except OSError as err:
        raise AnimateError(f"cannot write {path}: {err.strerror or err}") from None


def run_eval(pred: Path, gt: Path, json_out: Path | None = None, face: bool = False,
             arcface: Path | None = None) -> str:
    """`animate eval`: score pred against gt, return the table; json_out gets {"videos": rows, "mean": means}."""
    rows = evaluate(pred, gt, face, arcface)
    if json_out is not None:
        clean = [{key: _json_value(value) for key, value in row.items()} for row in rows]
        mean = {key: _json_value(value) for key, value in mean_scores(rows).items()}
        _write_json(Path(json_out), {"videos": clean, "mean": mean})
    return format_table(rows)
