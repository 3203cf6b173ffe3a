"""scripts/eval_autoencoder.py: held-out reconstruction PSNR and colour error of a weight set's autoencoder."""

import math
import runpy
from types import SimpleNamespace

import pytest
import torch

from animate.paths import REPO_ROOT

script = runpy.run_path(str(REPO_ROOT / "scripts" / "eval_autoencoder.py"))


class OffsetAutoencoder:
    """Encodes to the image itself and decodes it plus a constant (in [-1, 1] units)."""

    def __init__(self, offset: float):
        self.offset = offset

    def encode(self, images: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(latent_dist=SimpleNamespace(mean=images))

    def decode(self, latents: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(sample=latents + self.offset)


def test_a_known_offset_gives_the_known_psnr_and_colour_error():
    frames = torch.rand(3, 3, 8, 8) * 1.6 - 0.8          # away from the clamp at ±1
    psnr, colour = script["reconstruction_scores"](OffsetAutoencoder(0.1), frames)
    assert psnr == pytest.approx(-10 * math.log10(0.05 ** 2), abs=1e-3)   # 0.1 in [-1, 1] is 0.05 of the range
    assert colour == pytest.approx(0.05, abs=1e-5)


def test_a_perfect_autoencoder_scores_infinity():
    psnr, colour = script["reconstruction_scores"](OffsetAutoencoder(0.0), torch.rand(2, 3, 8, 8) - 0.5)
    assert psnr == math.inf and colour == 0


def test_a_missing_meta_is_one_line(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        script["main"](["--meta", str(tmp_path / "meta.json"), "--weights", "random:demo"])
    assert exit_info.value.code == f"error: dataset meta not found: {tmp_path / 'meta.json'}"
