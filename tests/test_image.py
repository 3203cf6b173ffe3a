"""Reference photo loading in every Pillow mode, errors, and the output canvas size."""

import re

import numpy as np
import pytest
from PIL import Image

from animate.errors import AnimateError
from animate.media.image import canvas_size, load_image


def check_rgb(img: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """Assert img is 8-bit RGB of size (W, H) and return its pixels."""
    assert img.mode == "RGB" and img.size == size
    return np.asarray(img)


def test_rgb_png_unchanged(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (12, 20, 3), np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    np.testing.assert_array_equal(check_rgb(load_image(tmp_path / "a.png"), (20, 12)), pixels)


def test_rgba_composited_on_white(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:, :4] = (255, 0, 0, 255)  # opaque red left half, transparent black right half
    rgba[0, 0] = (0, 0, 255, 128)  # half-transparent blue
    Image.fromarray(rgba).save(tmp_path / "a.png")
    out = check_rgb(load_image(tmp_path / "a.png"), (8, 8))
    assert (out[:, 4:] == 255).all()
    assert (out[1:, :4] == (255, 0, 0)).all()
    assert np.abs(out[0, 0].astype(int) - (127, 127, 255)).max() <= 1


def test_la_composited_on_white(tmp_path):
    la = np.zeros((4, 4, 2), np.uint8)
    la[:2] = (50, 255)
    Image.fromarray(la, "LA").save(tmp_path / "a.png")
    out = check_rgb(load_image(tmp_path / "a.png"), (4, 4))
    assert (out[:2] == 50).all() and (out[2:] == 255).all()


def test_palette_with_transparency(tmp_path):
    img = Image.new("P", (6, 6), 1)
    img.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    img.putpixel((0, 0), 0)
    img.save(tmp_path / "a.png", transparency=0)
    out = check_rgb(load_image(tmp_path / "a.png"), (6, 6))
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[3, 3]) == (0, 200, 0)


def test_greyscale(tmp_path):
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(grey).save(tmp_path / "a.png")
    out = check_rgb(load_image(tmp_path / "a.png"), (8, 8))
    np.testing.assert_array_equal(out, np.repeat(grey[..., None], 3, -1))


@pytest.mark.parametrize("mode, name", [("I;16", "a.png"), ("I;16B", "a.tiff")])
def test_16_bit_greyscale(tmp_path, mode, name):
    values = np.array([[0, 256, 32768, 65535]], ">u2" if mode.endswith("B") else "<u2")
    Image.frombytes(mode, (4, 1), values.tobytes()).save(tmp_path / name)
    assert Image.open(tmp_path / name).mode == mode
    out = check_rgb(load_image(tmp_path / name), (4, 1))
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 128, 255])
    assert (out[..., 0] == out[..., 2]).all()


@pytest.mark.parametrize(
    "values, expected",
    [
        (np.array([[0, 100, 255]], np.int32), [0, 100, 255]),
        (np.array([[0, 32768, 65535]], np.int32), [0, 128, 255]),
        (np.array([[-5, 500_000, 1_000_000]], np.int32), [0, 128, 255]),
        (np.array([[0.0, 0.5, 1.0]], np.float32), [0, 128, 255]),
        (np.array([[0.0, 100.0, 255.0]], np.float32), [0, 100, 255]),
    ],
)
def test_32_bit_modes_scaled_by_range(tmp_path, values, expected):
    Image.fromarray(values).save(tmp_path / "a.tiff")
    out = check_rgb(load_image(tmp_path / "a.tiff"), (3, 1))
    np.testing.assert_array_equal(out[0, :, 1], expected)


def test_cmyk(tmp_path):
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(tmp_path / "a.tiff")
    out = check_rgb(load_image(tmp_path / "a.tiff"), (4, 4))
    assert (out == (255, 0, 0)).all()


def test_ycbcr_jpeg(tmp_path):
    Image.new("RGB", (16, 16), (30, 160, 220)).convert("YCbCr").save(tmp_path / "a.jpg")
    out = check_rgb(load_image(tmp_path / "a.jpg"), (16, 16))
    assert np.abs(out.astype(int) - (30, 160, 220)).max() <= 4


def test_exif_orientation_rotates(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = 255  # white left half
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = 6  # stored image must be rotated 90 degrees clockwise for display
    img.save(tmp_path / "a.jpg", exif=exif, quality=95)
    out = check_rgb(load_image(tmp_path / "a.jpg"), (20, 40))
    assert out[:18].mean() > 240 and out[22:].mean() < 15  # left became top


@pytest.mark.parametrize("kind", ["missing", "directory", "text", "truncated", "empty"])
def test_errors_name_the_path(tmp_path, kind):
    path = tmp_path / "photo.png"
    if kind == "directory":
        path.mkdir()
    elif kind == "text":
        path.write_text("this is not a picture\n")
    elif kind == "truncated":
        noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
        Image.fromarray(noise).save(path)
        path.write_bytes(path.read_bytes()[:2000])
    elif kind == "empty":
        path.write_bytes(b"")
    with pytest.raises(AnimateError, match=re.escape(str(path))) as err:
        load_image(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "image, given, expected",
    [
        ((300, 600), {}, (512, 1024)),
        ((600, 300), {}, (1024, 512)),
        ((640, 360), {}, (912, 512)),  # 910.2 rounds to 912
        ((512, 512), {}, (512, 512)),
        ((640, 360), {"width": 768}, (768, 432)),
        ((300, 600), {"height": 768}, (384, 768)),
        ((1000, 333), {"width": 512}, (512, 168)),  # 170.5 rounds to 168
        ((300, 600), {"width": 256, "height": 256}, (256, 256)),
        ((10, 4000), {"width": 8}, (8, 3200)),
        ((4000, 10), {"height": 8}, (3200, 8)),
        ((4000, 10), {"width": 64}, (64, 8)),  # never below the multiple
        ((300, 600), {"short_side": 500}, (504, 1000)),
        ((300, 600), {"multiple": 64}, (512, 1024)),
    ],
)
def test_canvas_size(image, given, expected):
    assert canvas_size(*image, **given) == expected


@pytest.mark.parametrize(
    "given, message",
    [
        ({"width": 500}, "-W must be a positive multiple of 8, got 500"),
        ({"width": 0}, "-W must be a positive multiple of 8, got 0"),
        ({"height": -16}, "-H must be a positive multiple of 8, got -16"),
        ({"width": 512, "height": 100}, "-H must be a positive multiple of 8, got 100"),
        ({"width": 96, "multiple": 64}, "-W must be a positive multiple of 64, got 96"),
    ],
)
def test_canvas_size_rejects_bad_sides(given, message):
    with pytest.raises(AnimateError, match=re.escape(message)):
        canvas_size(300, 600, **given)
