"""The denoising call reproduces the float64 outputs recorded before it was restructured (scripts/make_call_golden.py).

Tolerance: regenerating the goldens under ATEN_CPU_CAPABILITY default, avx2 and avx512 at 1 and 2 threads moved
the latents (|x| <= 3) by at most 4.1e-14 and the gradient statistics (|s| <= 6.2) by at most 8.9e-15, so an
absolute 1e-9 leaves more than 4 orders of magnitude for other CPUs while any change of the maths fails it.
"""

import runpy

import pytest
import torch
from safetensors.torch import load_file

from animate.paths import REPO_ROOT

golden = runpy.run_path(str(REPO_ROOT / "scripts" / "make_call_golden.py"))
TOLERANCE = 1e-9


@pytest.mark.parametrize("case", list(golden["PIPELINE_CASES"]))
def test_pipeline_reproduces_the_recorded_latents(case):
    expected = load_file(str(golden["OUT"] / f"pipeline_{case}.safetensors"))["latents"]
    latents = golden["pipeline_latents"](**golden["PIPELINE_CASES"][case])
    assert latents.dtype == torch.float64
    assert (latents - expected).abs().max() <= TOLERANCE


@pytest.mark.parametrize("checkpointing", [False, True], ids=["plain", "checkpointed"])
@pytest.mark.parametrize("stage", [1, 2])
def test_training_step_reproduces_the_recorded_loss_and_gradients(stage, checkpointing):
    expected_loss, expected = golden["load_training_step"](golden["OUT"] / f"stage{stage}.safetensors")
    loss, stats = golden["training_step"](stage, checkpointing)
    assert abs(loss.item() - expected_loss.item()) <= TOLERANCE
    assert stats.keys() == expected.keys()  # the same parameters receive a gradient
    worst = max((stats[name] - expected[name]).abs().max().item() for name in stats)
    assert worst <= TOLERANCE
