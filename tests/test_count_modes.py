"""The counted FLOPs of the sampling modes (scripts/count_modes.py) at sd15: Moore's frame-step and ours match the
figures counted before (4.47 and 3.79 TFLOP), the outer level is what DeepCache leaves, and the --fast student mode
clears the 8x bar against Moore's pipeline."""

import sys

import pytest

from animate.paths import REPO_ROOT


@pytest.fixture(scope="module")
def count():
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    try:
        import count_modes
        yield count_modes, count_modes.costs()
    finally:
        sys.path.remove(str(REPO_ROOT / "scripts"))


def test_moore_and_our_frame_steps_are_the_counted_figures(count):
    module, c = count
    window = module.WINDOW
    ours = (c["full, CFG"] + c["pose guider"]) / window
    moore_step = (c["full, CFG, reference on both rows"]
                  + 2 * window * (c["Moore: bank K/V per row"] + c["Moore: uncond attn1 again per row"] / 2)) / window
    assert ours == pytest.approx(3.792, abs=0.002) and moore_step == pytest.approx(4.47, abs=0.01)
    assert module.windows_per_frame() == (1.2, 1.2)  # 6 windows of 24 for 120 frames, both


def test_deepcache_skips_the_deep_blocks_and_the_fast_student_clears_8x(count):
    module, c = count
    assert 0.3 < c["outer, CFG"] / c["full, CFG"] < 0.5
    moore = module.moore_tflop(c)
    by_name = {mode.name: module.mode_tflop(mode, c) for mode in module.MODES}
    assert by_name["reference: DDIM 30, CFG 3.5"] < moore
    assert moore / by_name["student: DDIM 4, no CFG"] >= 8  # what --fast runs on a student (with the VAE)
