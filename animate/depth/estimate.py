"""Relative depth of video frames with Depth Anything V2 (transformers' DepthAnythingForDepthEstimation), batched,
in the model's own preprocessing done here with torch (no torchvision): the short side resized to 518 keeping the
aspect, each side a multiple of 14, bicubic, ImageNet normalisation. It predicts nearness (relative disparity)."""

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation

from ..dtypes import resolve_device
from ..errors import AnimateError
from ..paths import model_size_dir
from ..pretrained import load_pretrained
from .release import DEPTH_FILES, INPUT_SIDE

PATCH = 14
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
RANDOM_SEED = 0


def check_side(side: int) -> None:
    """Refuse a model input side that is not a positive multiple of the patch size."""
    if side < PATCH or side % PATCH:
        raise AnimateError(f"--depth-size must be a positive multiple of {PATCH}, got {side}")


def input_size(width: int, height: int, side: int = INPUT_SIDE) -> tuple[int, int]:
    """(width, height) the model sees: the short side scaled to `side`, each side rounded to a multiple of 14 and
    never below `side` (Depth Anything V2's 'lower_bound' resize)."""
    check_side(side)
    scale = side / min(width, height)

    def fit(length: int) -> int:
        rounded = round(length * scale / PATCH) * PATCH
        return rounded if rounded >= side else math.ceil(length * scale / PATCH) * PATCH

    return fit(width), fit(height)


def model_pixels(frames: torch.Tensor, side: int = INPUT_SIDE) -> torch.Tensor:
    """uint8 frames [N, H, W, 3] to the model's input [N, 3, h, w] (float32)."""
    height, width = frames.shape[1:3]
    size = input_size(width, height, side)
    pixels = frames.permute(0, 3, 1, 2).float() / 255
    pixels = F.interpolate(pixels, size=(size[1], size[0]), mode="bicubic", align_corners=False)
    mean = torch.tensor(MEAN, device=pixels.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=pixels.device).view(1, 3, 1, 1)
    return (pixels - mean) / std


def _random_model(size: str) -> DepthAnythingForDepthEstimation:
    """Random weights of configs/models/<size>/depth, drawn at a fan-in scale and with the last layer's bias at 1 so
    the maps are not flat (transformers' own init gives maps of about 0 everywhere, cut by the final ReLU)."""
    path = model_size_dir(size) / "depth" / "config.json"
    if not path.is_file():
        raise AnimateError(f"random:{size}: no depth model config for this size ({path} is missing)")
    config = DepthAnythingConfig.from_json_file(path)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        model = DepthAnythingForDepthEstimation(config)
        for parameter in model.parameters():
            if parameter.dim() > 1:
                torch.nn.init.normal_(parameter, 0.0, 1.0 / math.sqrt(parameter[0].numel()))
        torch.nn.init.ones_(model.head.conv3.bias)
    return model


def load_depth_model(spec: str | Path) -> DepthAnythingForDepthEstimation:
    """The depth model of a folder (the hub repo's files), or `random:SIZE`; on the CPU in eval mode."""
    text = str(spec)
    if text.startswith("random:"):
        return _random_model(text.split(":", 1)[1]).eval()
    folder = Path(spec)
    missing = [name for name in DEPTH_FILES if not (folder / name).is_file()]
    if missing:
        raise AnimateError(f"{folder}: no Depth Anything V2 weights ({', '.join(missing)} missing); fetch them with "
                           f"`animate download --set depth --dir {folder.parent}`")
    return load_pretrained(DepthAnythingForDepthEstimation, folder, "depth model", folder).eval()


def open_depth_model(spec: str | Path, device: str = "auto", dtype: str = "auto") -> DepthAnythingForDepthEstimation:
    """The depth model on the device and in the precision the option names give (auto: a GPU in fp16 if present)."""
    resolved, torch_dtype = resolve_device(device, dtype)
    return load_depth_model(spec).to(resolved, torch_dtype)


@torch.inference_mode()
def estimate_nearness(model: DepthAnythingForDepthEstimation, frames: np.ndarray, side: int = INPUT_SIDE,
                      batch_size: int = 8, size: tuple[int, int] | None = None) -> np.ndarray:
    """Nearness [N, h, w] float32 of uint8 frames [N, H, W, 3], at size (w, h) (default their own), `batch_size`
    frames a call, in the model's device and precision."""
    parameter = next(model.parameters())
    width, height = size or (frames.shape[2], frames.shape[1])
    out = np.empty((len(frames), height, width), np.float32)
    for start in range(0, len(frames), batch_size):
        chunk = torch.from_numpy(np.ascontiguousarray(frames[start:start + batch_size])).to(parameter.device)
        predicted = model(pixel_values=model_pixels(chunk, side).to(parameter.dtype)).predicted_depth
        resized = F.interpolate(predicted[:, None].float(), size=(height, width), mode="bilinear", align_corners=False)
        out[start:start + len(chunk)] = resized[:, 0].cpu().numpy()
    return out
