"""Reference photo loading (any mode to upright 8-bit RGB) and output canvas size."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps

from ..errors import AnimateError

_ALPHA_MODES = {"RGBA", "RGBa", "LA", "PA"}
_WIDE_GREY_MODES = {"I", "F"}


def load_image(path: str | os.PathLike) -> Image.Image:
    """Open a photo as upright 8-bit RGB, transparency composited on white."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise AnimateError(f"image not found: {path}")
    if not os.path.isfile(path):
        raise AnimateError(f"not an image file: {path}")
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            return _to_rgb(img)
    except Image.DecompressionBombError as err:
        raise AnimateError(f"image is too large to load safely: {path}") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise AnimateError(f"cannot read image {path}: not an image or corrupt") from err


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert a decoded image of any Pillow mode to 8-bit RGB."""
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if img.mode.startswith("I;16"):
        grey = (np.asarray(img).astype(np.uint16) >> 8).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if img.mode in _WIDE_GREY_MODES:
        return Image.fromarray(_grey_to_uint8(np.asarray(img))).convert("RGB")
    return img.convert("RGB")


def _grey_to_uint8(values: np.ndarray) -> np.ndarray:
    """Scale 32-bit int or float grey values to 0..255 by the range they actually use."""
    if values.dtype.kind != "f":
        values = np.clip(values.astype(np.int64), 0, None)
        peak = values.max(initial=0)
        if peak > 65535:
            return np.round(values * (255 / peak)).astype(np.uint8)
        return (values >> 8 if peak > 255 else values).astype(np.uint8)
    values = np.clip(np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0), 0, None)
    peak = values.max(initial=0.0)
    scale = 255.0 if peak <= 1 else 1.0 if peak <= 255 else 255 / peak
    return np.round(values * scale).astype(np.uint8)


def _round_to(value: float, multiple: int) -> int:
    """Nearest multiple of multiple, at least multiple."""
    return max(multiple, int(value / multiple + 0.5) * multiple)


def canvas_size(
    image_width: int,
    image_height: int,
    width: int | None = None,
    height: int | None = None,
    short_side: int = 512,
    multiple: int = 8,
) -> tuple[int, int]:
    """Output (W, H) following the photo's aspect; missing sides come from it, all multiples."""
    if image_width <= 0 or image_height <= 0:
        raise ValueError(f"image size must be positive, got {image_width}x{image_height}")
    for flag, value in (("-W", width), ("-H", height)):
        if value is not None and (value <= 0 or value % multiple):
            raise AnimateError(f"{flag} must be a positive multiple of {multiple}, got {value}")
    aspect = image_width / image_height
    if width is None and height is None:
        if image_width <= image_height:
            width = short_side
        else:
            height = short_side
    if width is None:
        width = height * aspect
    if height is None:
        height = width / aspect
    return _round_to(width, multiple), _round_to(height, multiple)
