"""Super-resolution: released Real-ESRGAN layouts load strictly, tiling is seamless, the Upscaler's shapes and errors."""

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from animate.errors import AnimateError
from animate.media.rrdbnet import RRDBNet
from animate.media.srvgg import SRVGGNetCompact
from animate.media.upscale import (
    UPSCALER_NAMES,
    UPSCALERS,
    Upscaler,
    build_sr_model,
    read_sr_state_dict,
    upscale_tiled,
)


def rrdbnet_shapes(in_ch: int, num_block: int = 23, nf: int = 64, gc: int = 32) -> dict[str, tuple]:
    """Key → shape of a released RRDBNet, written from the architecture description (not from our class)."""
    shapes = {"conv_first.weight": (nf, in_ch, 3, 3), "conv_first.bias": (nf,)}
    for block in range(num_block):
        for rdb in (1, 2, 3):
            for k in range(1, 6):
                out = nf if k == 5 else gc
                shapes[f"body.{block}.rdb{rdb}.conv{k}.weight"] = (out, nf + (k - 1) * gc, 3, 3)
                shapes[f"body.{block}.rdb{rdb}.conv{k}.bias"] = (out,)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (nf, nf, 3, 3), (nf,)
    shapes["conv_last.weight"], shapes["conv_last.bias"] = (3, nf, 3, 3), (3,)
    return shapes


def srvgg_shapes(num_conv: int, nf: int = 64, upscale: int = 4) -> dict[str, tuple]:
    """Key → shape of a released SRVGGNetCompact (PReLU): conv, prelu, num_conv × (conv, prelu), conv."""
    shapes = {"body.0.weight": (nf, 3, 3, 3), "body.0.bias": (nf,), "body.1.weight": (nf,)}
    for i in range(num_conv):
        shapes[f"body.{2 + 2 * i}.weight"], shapes[f"body.{2 + 2 * i}.bias"] = (nf, nf, 3, 3), (nf,)
        shapes[f"body.{3 + 2 * i}.weight"] = (nf,)
    last = 2 * num_conv + 2
    shapes[f"body.{last}.weight"], shapes[f"body.{last}.bias"] = (3 * upscale**2, nf, 3, 3), (3 * upscale**2,)
    return shapes


def random_state(shapes: dict[str, tuple], seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=generator) * 0.02 for k, shape in shapes.items()}


RELEASED = {  # registry name → (key shapes, architecture, native scale)
    "realesrgan-x4plus": (lambda: rrdbnet_shapes(3), RRDBNet, 4),
    "realesrgan-x2plus": (lambda: rrdbnet_shapes(12), RRDBNet, 2),
    "realesr-general-x4v3": (lambda: srvgg_shapes(32), SRVGGNetCompact, 4),
    "realesr-animevideov3": (lambda: srvgg_shapes(16), SRVGGNetCompact, 4),
}


def assert_one_line_error(excinfo, *parts: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message, message
    for part in parts:
        assert part in message, message


def test_registry():
    assert UPSCALER_NAMES == (*RELEASED, "lanczos")
    for name, (_, _, scale) in RELEASED.items():
        spec = UPSCALERS[name]
        assert spec.name == name and spec.scale == scale and len(spec.sha256) == 64
        assert spec.url.startswith("https://github.com/xinntao/Real-ESRGAN/releases/download/")
        assert spec.url.endswith("/" + spec.filename)


@pytest.mark.parametrize("name", RELEASED)
def test_released_layout_loads_strictly(name, tmp_path):
    shapes, arch, scale = RELEASED[name]
    state = random_state(shapes())
    path = tmp_path / UPSCALERS[name].filename
    torch.save({"params_ema": state}, path)
    model, native = build_sr_model(read_sr_state_dict(path), str(path))
    assert type(model) is arch and native == scale and not model.training
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == shapes()
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    with torch.no_grad():
        out = model(torch.rand(1, 3, 8, 8))
    assert out.shape == (1, 3, 8 * scale, 8 * scale) and torch.isfinite(out).all()


@pytest.mark.parametrize("wrap", ["params_ema over params", "params", "bare"])
def test_state_dict_wrappers(wrap, tmp_path):
    state = random_state(srvgg_shapes(16), seed=1)
    decoy = random_state(srvgg_shapes(16), seed=2)
    content = {"params_ema over params": {"params": decoy, "params_ema": state}, "params": {"params": state}, "bare": state}
    path = tmp_path / "net.pth"
    torch.save(content[wrap], path)
    loaded = read_sr_state_dict(path)
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)


def small_rrdbnet_state(scale: int = 4) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return RRDBNet(scale=scale, num_feat=8, num_block=2, num_grow_ch=4).state_dict()


def _missing(state):
    del state["body.1.rdb2.conv3.bias"]
    return state, "missing key 'body.1.rdb2.conv3.bias'"


def _unexpected(state):
    state["body.0.rdb4.conv1.weight"] = torch.zeros(4, 8, 3, 3)
    return state, "unexpected key 'body.0.rdb4.conv1.weight'"


def _shape(state):
    state["conv_hr.weight"] = torch.zeros(8, 8, 1, 1)
    return state, "'conv_hr.weight' has shape [8, 8, 1, 1]"


def _unknown(state):
    return {"encoder.weight": torch.zeros(3)}, "not a Real-ESRGAN network"


def _channels(state):
    state["conv_first.weight"] = torch.zeros(8, 5, 3, 3)
    return state, "conv_first.weight has shape [8, 5, 3, 3]"


@pytest.mark.parametrize("damage", [_missing, _unexpected, _shape, _unknown, _channels])
def test_bad_state_dict_is_one_line_naming_file_and_key(damage, tmp_path):
    state, expected = damage(small_rrdbnet_state())
    path = tmp_path / "broken.pth"
    torch.save({"params_ema": state}, path)
    with pytest.raises(AnimateError) as excinfo:
        build_sr_model(read_sr_state_dict(path), str(path))
    assert_one_line_error(excinfo, str(path), expected)


@pytest.mark.parametrize("content, expected", [
    ([1, 2, 3], "not a state dict of tensors"),
    ({"params_ema": {"a": 1}}, "not a state dict of tensors"),
    (b"\x00 not a pickle at all", "not a readable weight file"),
    (b"these are my notes\n", "neither torch.save's zip archive nor a pickle"),
])
def test_unreadable_file_is_one_line(content, expected, tmp_path):
    path = tmp_path / "weird.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(AnimateError) as excinfo:
        read_sr_state_dict(path)
    assert_one_line_error(excinfo, str(path), expected)


def test_a_protocol_4_pickle_is_one_line_without_torch_warnings(tmp_path, recwarn):
    path = tmp_path / "p4.pth"
    torch.save({"params_ema": small_rrdbnet_state()}, path, pickle_protocol=4)
    with pytest.raises(AnimateError) as excinfo:
        read_sr_state_dict(path)
    assert_one_line_error(excinfo, str(path), "pickle protocol 4")
    assert [str(w.message) for w in recwarn] == []  # torch's own warning would be two more lines on stderr


# Receptive-field radii in input pixels of the small nets below, measured from input gradients: 19 (RRDBNet x4),
# 38 (RRDBNet x2: its trunk runs at half resolution) and 6 (SRVGG with 4 + 2 convs).
def small_rrdbnet(scale: int) -> RRDBNet:
    torch.manual_seed(scale)
    model = RRDBNet(scale=scale, num_feat=8, num_block=1, num_grow_ch=4).eval()
    model.conv_last.weight.data *= 8  # spread the output over [0, 1] so that clamping hides no seam
    model.conv_last.bias.data.fill_(0.5)
    return model


def small_srvgg() -> SRVGGNetCompact:
    torch.manual_seed(5)
    model = SRVGGNetCompact(num_feat=8, num_conv=4, upscale=4).eval()
    for prelu in model.body[1::2]:
        prelu.weight.data.uniform_(-0.5, 0.5)  # vary the slopes away from the 0.25 init
    return model


def reference(model, images: torch.Tensor, scale: int) -> torch.Tensor:
    """One pass over the whole image, replicate-padded on the bottom/right to the net's input multiple."""
    multiple = getattr(model, "input_multiple", 1)
    h, w = images.shape[-2:]
    padded = F.pad(images, (0, -w % multiple, 0, -h % multiple), mode="replicate")
    with torch.no_grad():
        return model(padded)[..., :h * scale, :w * scale].clamp(0, 1)


# RRDBNet's 0.2-scaled residuals shrink the far edge of its field below float precision, so only SRVGG shows that one
# pixel less context already leaves a seam.
SEAMLESS = [  # (model, scale, height, width, tile, pad, pads too short)
    (lambda: small_rrdbnet(4), 4, 61, 47, 16, 19, (0,)),
    (lambda: small_rrdbnet(2), 2, 101, 87, 25, 38, (0,)),  # odd size; odd tile is rounded down to an even 24
    (small_srvgg, 4, 37, 29, 10, 6, (0, 5)),
]


@pytest.mark.parametrize("make, scale, height, width, tile, pad, too_short", SEAMLESS)
def test_tiles_are_seamless(make, scale, height, width, tile, pad, too_short):
    model = make()
    images = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(0))
    expected = reference(model, images, scale)
    tiled = upscale_tiled(model, images, scale, tile, pad)
    assert tiled.shape == (2, 3, height * scale, width * scale)
    # measured 0 at ATEN_CPU_CAPABILITY default/avx2/avx512 and 1/2 threads; a seam is > 1e-4 (below)
    torch.testing.assert_close(tiled, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(upscale_tiled(model, images, scale, 0, 0), expected, atol=1e-5, rtol=0)
    # without enough context the tile borders show
    for short in too_short:
        assert (upscale_tiled(model, images, scale, tile, short) - expected).abs().max() > 1e-4, short


def save_small_srvgg(path) -> None:
    torch.save({"params": small_srvgg().state_dict()}, path)


@pytest.fixture
def frames():
    return np.random.default_rng(0).integers(0, 256, (5, 13, 11, 3), dtype=np.uint8)


def test_lanczos(frames):
    upscaler = Upscaler("lanczos", 2)
    out = upscaler(frames)
    assert out.shape == (5, 26, 22, 3) and out.dtype == np.uint8
    assert np.array_equal(out[3], cv2.resize(frames[3], (22, 26), interpolation=cv2.INTER_LANCZOS4))
    assert "\n" not in upscaler.describe() and "lanczos" in upscaler.describe()


def test_network_from_path(frames, tmp_path):
    path = tmp_path / "small.pth"
    save_small_srvgg(path)
    upscaler = Upscaler(str(path), 4, tile=6, pad=6, batch=2)
    out = upscaler(frames)
    assert out.shape == (5, 52, 44, 3) and out.dtype == np.uint8
    images = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    expected = (reference(upscaler.model, images, 4) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert np.abs(out.astype(int) - expected).max() <= 1  # batches of 2, 2, 1; float error may flip a rounding
    line = upscaler.describe()
    assert "\n" not in line and "x4" in line and "tile 6" in line


def test_native_scale_resized_to_requested(frames, tmp_path):
    path = tmp_path / "small.pth"
    save_small_srvgg(path)
    native = Upscaler(str(path), 4, tile=0)(frames)
    half = Upscaler(str(path), 2, tile=0)(frames)
    assert half.shape == (5, 26, 22, 3) and half.dtype == np.uint8
    assert np.array_equal(half[1], cv2.resize(native[1], (22, 26), interpolation=cv2.INTER_AREA))


def test_missing_registry_weights(tmp_path):
    with pytest.raises(AnimateError) as excinfo:
        Upscaler("realesrgan-x4plus", 4, weights_dir=tmp_path / "Real-ESRGAN")
    assert_one_line_error(excinfo, "realesrgan-x4plus weights not found at", str(tmp_path / "Real-ESRGAN" / "RealESRGAN_x4plus.pth"),
                          "`animate download --upscaler realesrgan-x4plus`", "--upscaler lanczos")


def test_unknown_name_and_missing_file(tmp_path):
    with pytest.raises(AnimateError) as excinfo:
        Upscaler("esrgan-x8", 4)
    assert_one_line_error(excinfo, "'esrgan-x8'", *UPSCALER_NAMES)
    with pytest.raises(AnimateError) as excinfo:
        Upscaler(str(tmp_path / "nope.pth"), 4)
    assert_one_line_error(excinfo, str(tmp_path / "nope.pth"), "not found")
