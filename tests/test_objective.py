"""The training objective's pieces."""

import torch

from stages.objective import (drop_mask, min_snr_weights, offset_noise, reference_index, target, training_scheduler,
                              weighted_mse)


def test_schedule_has_zero_terminal_snr_and_predicts_velocity():
    scheduler = training_scheduler()
    assert scheduler.config.prediction_type == "v_prediction"
    assert scheduler.alphas_cumprod[-1] == 0 and scheduler.alphas_cumprod[0] > 0.99


def test_min_snr_weights_are_finite_at_the_last_timestep_and_capped():
    scheduler = training_scheduler()
    weights = min_snr_weights(scheduler, torch.tensor([0, 500, 999]), gamma=5.0)
    assert torch.isfinite(weights).all()
    assert weights[2] == 1.0  # SNR 0 → (0+1): min(1, 5)/1
    assert torch.isclose(weights[0], torch.tensor(5.0) / (scheduler.alphas_cumprod[0] / (1 - scheduler.alphas_cumprod[0]) + 1))


def test_offset_noise_is_one_constant_per_video_and_channel():
    latents = torch.zeros(64, 4, 6, 8, 8)
    offset = offset_noise(latents, 0.05, torch.Generator().manual_seed(0)) - offset_noise(
        latents, 0.0, torch.Generator().manual_seed(0))  # same Gaussian part, so only the offset remains
    assert torch.allclose(offset, offset[:, :, :1, :1, :1].expand_as(offset), atol=1e-6)  # constant over frames and pixels
    assert 0.03 < offset[:, :, 0, 0, 0].std() < 0.07  # strength 0.05
    assert offset[:, :, 0, 0, 0].unique().numel() == 64 * 4  # drawn per video and channel


def test_velocity_target_matches_its_definition():
    scheduler = training_scheduler()
    x0, noise, t = torch.randn(3, 4, 2, 2), torch.randn(3, 4, 2, 2), torch.tensor([10, 400, 999])
    a = scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    assert torch.allclose(target(scheduler, x0, noise, t), a.sqrt() * noise - (1 - a).sqrt() * x0, atol=1e-6)


def test_weighted_mse_weights_each_sample():
    prediction, truth = torch.zeros(2, 3), torch.tensor([[1.0, 1, 1], [2, 2, 2]])
    assert weighted_mse(prediction, truth, None) == 2.5
    assert weighted_mse(prediction, truth, torch.tensor([1.0, 0.0])) == 0.5


def test_dropout_is_per_sample_and_masks_exactly_those_rows():
    dropped = torch.tensor([False, True, False])
    assert reference_index(dropped) == [0, -1, 2]
    share = drop_mask(20000, 0.1, torch.Generator().manual_seed(0)).float().mean()
    assert abs(share - 0.1) < 0.01


def test_unconditional_context_embeds_an_all_zero_clip_input_as_released(tiny_models):
    from PIL import Image

    from animate.pipeline.animate import clip_pixels
    from stages.training import unconditional_context

    encoder = tiny_models.image_encoder
    size = encoder.config.image_size
    released = unconditional_context(encoder, "zero_image", "cpu", torch.float32)
    with torch.no_grad():
        expected = encoder(torch.zeros(1, 3, size, size)).image_embeds[:, None]
        black = encoder(clip_pixels(Image.new("RGB", (size, size)))).image_embeds[:, None]
    assert released.shape == (1, 1, encoder.config.projection_dim)
    assert torch.equal(released, expected)
    assert not torch.allclose(released, black)  # the zeroed *preprocessed* tensor, not a black picture
    assert torch.count_nonzero(unconditional_context(encoder, "zeros", "cpu", torch.float32)) == 0
