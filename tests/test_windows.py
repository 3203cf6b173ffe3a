"""Sliding windows and their blend weights."""

import pytest
import torch

from animate.pipeline.guidance import classifier_free_guidance
from animate.pipeline.windows import blend_weights, context_windows

CASES = [(n, size, overlap) for n in (1, 5, 23, 24, 25, 47, 48, 100, 385) for size, overlap in ((24, 4), (16, 8), (8, 0), (48, 4))]


@pytest.mark.parametrize("n,size,overlap", CASES)
def test_windows_cover_every_frame_without_wrapping(n, size, overlap):
    windows = context_windows(n, size, overlap)
    covered = sorted({f for w in windows for f in w})
    assert covered == list(range(n))
    assert all(0 <= w.start < w.stop <= n for w in windows)  # no wrap-around to the first frames
    assert all(len(w) == min(size, n) for w in windows)
    assert [w.start for w in windows] == sorted(w.start for w in windows)
    assert all(b.start - a.start <= size - overlap for a, b in zip(windows, windows[1:]))


@pytest.mark.parametrize("n,size,overlap", CASES)
def test_blend_weights_sum_to_one_per_frame(n, size, overlap):
    windows = context_windows(n, size, overlap)
    weights = blend_weights(windows, n, overlap)
    total = torch.zeros(n)
    for window, weight in zip(windows, weights):
        assert weight.shape == (len(window),) and (weight > 0).all()
        total[window.start : window.stop] += weight
    assert torch.allclose(total, torch.ones(n), atol=1e-6)


def test_blending_is_smooth_across_an_overlap():
    windows = context_windows(44, 24, 4)
    first, second = blend_weights(windows, 44, 4)
    assert windows == [range(0, 24), range(20, 44)]
    fade_out = first[20:]
    assert torch.all(fade_out[1:] < fade_out[:-1])  # the earlier window fades out monotonically
    assert torch.allclose(first[20:] + second[:4], torch.ones(4))
    assert torch.all(first[:20] == 1) and torch.all(second[4:] == 1)


def test_short_video_is_one_window():
    assert context_windows(5, 24, 4) == [range(5)]
    assert torch.equal(blend_weights([range(5)], 5, 4)[0], torch.ones(5))


@pytest.mark.parametrize("args", [(0, 24, 4), (10, 0, 0), (10, 8, 8), (10, 8, -1)])
def test_invalid_window_plans(args):
    with pytest.raises(ValueError):
        context_windows(*args)


def test_guidance_formula():
    prediction = torch.stack([torch.full((3,), 1.0), torch.full((3,), 3.0)])
    assert torch.equal(classifier_free_guidance(prediction, 3.5), torch.full((1, 3), 8.0))
    assert torch.equal(classifier_free_guidance(prediction, 1.0), prediction[1:])
