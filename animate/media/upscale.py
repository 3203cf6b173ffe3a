"""Super-resolution of output frames: Real-ESRGAN networks run tiled and batched, or a plain Lanczos resize."""

import math
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import AnimateError
from ..strict import check_state_dict
from ..torch_files import load_torch_file
from .rrdbnet import UNSHUFFLE, RRDBNet
from .srvgg import SRVGGNetCompact


@dataclass(frozen=True)
class UpscalerSpec:
    """A released Real-ESRGAN weight file and the scale its network was trained for."""

    name: str
    filename: str
    url: str
    sha256: str
    scale: int


_RELEASES = "https://github.com/xinntao/Real-ESRGAN/releases/download"
UPSCALERS: dict[str, UpscalerSpec] = {
    spec.name: spec
    for spec in (
        UpscalerSpec("realesrgan-x4plus", "RealESRGAN_x4plus.pth", f"{_RELEASES}/v0.1.0/RealESRGAN_x4plus.pth",
                     "4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1", 4),
        UpscalerSpec("realesrgan-x2plus", "RealESRGAN_x2plus.pth", f"{_RELEASES}/v0.2.1/RealESRGAN_x2plus.pth",
                     "49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb", 2),
        UpscalerSpec("realesr-general-x4v3", "realesr-general-x4v3.pth", f"{_RELEASES}/v0.2.5.0/realesr-general-x4v3.pth",
                     "8dc7edb9ac80ccdc30c3a5dca6616509367f05fbc184ad95b731f05bece96292", 4),
        UpscalerSpec("realesr-animevideov3", "realesr-animevideov3.pth", f"{_RELEASES}/v0.2.5.0/realesr-animevideov3.pth",
                     "3a5ca263a93b5c827d6e4a482b8857df6cc8a5c78a9a6065b5e72d4f60b0c7d6", 4),
    )
}
UPSCALER_NAMES = (*UPSCALERS, "lanczos")
UPSCALER_DIR = Path("pretrained_weights") / "Real-ESRGAN"


def read_sr_state_dict(path: Path | str) -> dict[str, torch.Tensor]:
    """The state dict of a Real-ESRGAN .pth (weights_only, memory-mapped): `params_ema`, else `params`, else the file's dict."""
    path = Path(path)
    if not path.is_file():
        raise AnimateError(f"{path}: upscaler weight file not found")
    state = load_torch_file(path)
    if isinstance(state, dict):
        state = next((state[k] for k in ("params_ema", "params") if isinstance(state.get(k), dict)), state)
    if not isinstance(state, dict) or not state or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise AnimateError(f"{path}: not a state dict of tensors (optionally under 'params_ema' or 'params')")
    return state


def _shape(state: dict[str, torch.Tensor], key: str, source: str, arch: str) -> torch.Size:
    if key not in state:
        raise AnimateError(f"{source}: missing key {key!r} for {arch}")
    return state[key].shape


def _rrdbnet(state: dict[str, torch.Tensor], source: str) -> RRDBNet:
    first = _shape(state, "conv_first.weight", source, "RRDBNet")
    scales = {3 * factor**2: scale for scale, factor in UNSHUFFLE.items()}
    if len(first) != 4 or first[1] not in scales:
        raise AnimateError(f"{source}: conv_first.weight has shape {list(first)}; RRDBNet on RGB takes 3 (x4), 12 (x2) or 48 (x1) channels")
    num_block = len({m.group(1) for k in state if (m := re.match(r"body\.(\d+)\.", k))})
    grow = _shape(state, "body.0.rdb1.conv1.weight", source, "RRDBNet")[0]
    out = _shape(state, "conv_last.weight", source, "RRDBNet")[0]
    if out != 3:
        raise AnimateError(f"{source}: conv_last.weight gives {out} channels, not RGB")
    return RRDBNet(3, 3, scales[first[1]], first[0], num_block, grow)


def _srvgg(state: dict[str, torch.Tensor], source: str) -> SRVGGNetCompact:
    first = state["body.0.weight"].shape
    convs = [int(m.group(1)) for k, v in state.items() if (m := re.fullmatch(r"body\.(\d+)\.weight", k)) and v.ndim == 4]
    if len(first) != 4 or len(convs) < 2:
        raise AnimateError(f"{source}: not an SRVGGNetCompact (body.0.weight is not a conv, or fewer than two convs)")
    last = state[f"body.{max(convs)}.weight"].shape[0]
    upscale = math.isqrt(last // 3)
    if first[1] != 3 or upscale < 1 or 3 * upscale**2 != last:
        raise AnimateError(
            f"{source}: not an RGB SRVGGNetCompact (body.0 takes {first[1]} channels, the last conv gives {last})"
        )
    return SRVGGNetCompact(3, 3, first[0], len(convs) - 2, upscale)


def build_sr_model(state_dict: dict[str, torch.Tensor], source: str) -> tuple[nn.Module, int]:
    """(network in eval mode, native scale) for an RRDBNet or SRVGGNetCompact state dict, detected and loaded strictly."""
    model: nn.Module
    if "conv_first.weight" in state_dict:
        rrdb = _rrdbnet(state_dict, source)
        model, scale = rrdb, rrdb.scale
    elif "body.0.weight" in state_dict:
        srvgg = _srvgg(state_dict, source)
        model, scale = srvgg, srvgg.upscale
    else:
        raise AnimateError(f"{source}: not a Real-ESRGAN network (no conv_first.weight or body.0.weight)")
    check_state_dict(model, state_dict, source, type(model).__name__)
    model.load_state_dict(state_dict, strict=True)
    return model.eval(), scale


def _spans(size: int, tile: int, multiple: int) -> list[tuple[int, int]]:
    """[start, end) ranges of nearly equal length, at most `tile` and multiples of `multiple`, covering `size`."""
    if tile <= 0 or tile >= size:
        return [(0, size)]
    tile = max(multiple, tile // multiple * multiple)
    step = -(-size // -(-size // tile))
    step = -(-step // multiple) * multiple
    return [(start, min(start + step, size)) for start in range(0, size, step)]


@torch.no_grad()
def upscale_tiled(model: nn.Module, images: torch.Tensor, scale: int, tile: int, pad: int) -> torch.Tensor:
    """[N, 3, H, W] in [0, 1] → [N, 3, H*scale, W*scale] in [0, 1], run in tiles with `pad` pixels of context.

    Equal to one pass over the whole image when `pad` covers the network's receptive field. Networks that unshuffle
    their input (`input_multiple`) get the image replicate-padded to a multiple and tiles aligned to it.
    """
    multiple = getattr(model, "input_multiple", 1)
    n, channels, height, width = images.shape
    full_h, full_w = -(-height // multiple) * multiple, -(-width // multiple) * multiple
    if (full_h, full_w) != (height, width):
        images = F.pad(images, (0, full_w - width, 0, full_h - height), mode="replicate")
    pad = -(-max(pad, 0) // multiple) * multiple
    out = images.new_empty(n, channels, full_h * scale, full_w * scale)
    for top, bottom in _spans(full_h, tile, multiple):
        for left, right in _spans(full_w, tile, multiple):
            y0, y1 = max(top - pad, 0), min(bottom + pad, full_h)
            x0, x1 = max(left - pad, 0), min(right + pad, full_w)
            result = model(images[:, :, y0:y1, x0:x1])
            out[:, :, top * scale:bottom * scale, left * scale:right * scale] = result[
                :, :, (top - y0) * scale:(bottom - y0) * scale, (left - x0) * scale:(right - x0) * scale
            ]
    return out.clamp_(0, 1)[:, :, :height * scale, :width * scale]


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """cv2 resize to (width, height): area averaging when shrinking, Lanczos-4 when growing."""
    shrink = size[0] < frame.shape[1] or size[1] < frame.shape[0]
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LANCZOS4)


def upscaler_weights(name: str, weights_dir: Path) -> Path | None:
    """The weight file of a registry name (in weights_dir) or a path; None for lanczos; a one-line error if missing."""
    if name == "lanczos":
        return None
    if name in UPSCALERS:
        path = weights_dir / UPSCALERS[name].filename
        if not path.is_file():
            raise AnimateError(
                f"{name} weights not found at {path}: run `animate download --upscaler {name}` (or pass --upscaler lanczos)"
            )
        return path
    path = Path(name)
    if not path.is_file() and not path.suffix and len(path.parts) == 1:
        raise AnimateError(f"unknown upscaler {name!r} (choose from {', '.join(UPSCALER_NAMES)}, or give a .pth file)")
    if not path.is_file():
        raise AnimateError(f"{path}: upscaler weight file not found")
    return path


def check_tile(tile: int) -> None:
    """Refuse a negative tile size (0 means whole frames)."""
    if tile < 0:
        raise AnimateError(f"--upscale-tile must be >= 0 (0: whole frames), got {tile}")


class Upscaler:
    """Frames to `scale` times their size: a Real-ESRGAN network (registry name or .pth path), or `lanczos`."""

    def __init__(self, name_or_path: str, scale: int, weights_dir: Path = UPSCALER_DIR,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                 tile: int = 512, pad: int = 16, batch: int = 4):
        if scale < 1 or batch < 1:
            raise AnimateError(f"upscaling needs a scale and a batch of at least 1 (got scale {scale}, batch {batch})")
        check_tile(tile)
        self.name, self.scale, self.tile, self.pad, self.batch = str(name_or_path), scale, tile, pad, batch
        self.device, self.dtype = torch.device(device), dtype
        self.model: nn.Module | None = None
        self.native_scale = scale
        if self.name != "lanczos":
            path = upscaler_weights(self.name, Path(weights_dir))
            model, self.native_scale = build_sr_model(read_sr_state_dict(path), str(path))
            self.model = model.to(device=self.device, dtype=dtype)

    def describe(self) -> str:
        """One line: which upscaler, its native and output scale, and the tiling."""
        if self.model is None:
            return f"upscaler lanczos: Lanczos-4 resize to x{self.scale}"
        resized = f" resized to x{self.scale}" if self.native_scale != self.scale else ""
        tiling = f"tile {self.tile} (pad {self.pad})" if self.tile > 0 else "untiled"
        return f"upscaler {self.name}: {type(self.model).__name__} x{self.native_scale}{resized}, {tiling}"

    def _network(self, frames: np.ndarray) -> np.ndarray:
        images = torch.tensor(frames).to(self.device).permute(0, 3, 1, 2).to(self.dtype).div_(255)
        result = upscale_tiled(self.model, images, self.native_scale, self.tile, self.pad)
        return result.float().mul_(255).round_().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """uint8 [N, H, W, 3] → uint8 [N, H*scale, W*scale, 3]."""
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected uint8 frames [N, H, W, 3], got {frames.dtype} {list(frames.shape)}")
        n, height, width, _ = frames.shape
        size = (width * self.scale, height * self.scale)
        out = np.empty((n, size[1], size[0], 3), np.uint8)
        for start in range(0, n, self.batch):
            chunk = frames[start:start + self.batch]
            if self.model is None:
                out[start:start + len(chunk)] = [cv2.resize(f, size, interpolation=cv2.INTER_LANCZOS4) for f in chunk]
            elif self.native_scale == self.scale:
                out[start:start + len(chunk)] = self._network(chunk)
            else:
                out[start:start + len(chunk)] = [_resize(f, size) for f in self._network(chunk)]
        return out
