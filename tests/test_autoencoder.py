"""The small size's autoencoder training: it learns to reconstruct, its latents get unit variance, the set loads."""

import math

import torch
from torch.utils.data import DataLoader

from animate.models.bundle import build_random_models
from animate.models.weights import load_models
from animate.paths import CONFIG_DIR
from stages.autoencoder import FrameDataset, autoencoder_loss, latent_scaling_factor, narrow_posterior


def test_reconstruction_improves_when_fitting_one_batch(dataset):
    torch.manual_seed(0)
    vae = build_random_models("tiny", motion=False).vae.train()
    images = torch.stack([FrameDataset([dataset], 32, 48, 4, seed=0)[i] for i in range(4)])  # crops of 64x96 frames
    assert images.shape == (4, 3, 48, 32) and -1 <= images.min() and images.max() <= 1
    optimizer = torch.optim.Adam(vae.parameters(), lr=2e-3)
    errors = []
    for _ in range(40):
        loss, l1 = autoencoder_loss(vae, images, 1e-6)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        errors.append(l1.item())
    assert errors[-1] < 0.5 * errors[0], errors


def test_scaling_factor_gives_unit_variance_latents(dataset):
    torch.manual_seed(0)
    vae = build_random_models("tiny", motion=False).vae.eval()
    loader = DataLoader(FrameDataset([dataset], 64, 96, 16, seed=1), batch_size=8)
    scale = latent_scaling_factor(vae, loader, 2)
    with torch.no_grad():
        latents = torch.cat([vae.encode(images).latent_dist.sample() for images in loader]) * scale
    assert abs(latents.std().item() - 1) < 0.1 and scale != vae.config.scaling_factor


def test_train_command_writes_a_weight_set_with_the_trained_autoencoder(dataset, tmp_path, run_cli):
    result = run_cli(["train", "autoencoder", "--config", CONFIG_DIR / "train" / "autoencoder_tiny.yaml",
                      f"data.meta=[{dataset}]", f"train.output_dir={tmp_path}/ae", "train.max_steps=3",
                      "train.batch_size=2", "train.scale_batches=2"])
    assert result.code == 0, result.err
    trained = load_models(tmp_path / "ae" / "weights")
    start = load_models("random:tiny")
    assert trained.vae.config.scaling_factor != start.vae.config.scaling_factor  # set from the data
    assert not torch.equal(trained.vae.encoder.conv_in.weight, start.vae.encoder.conv_in.weight)  # trained
    assert torch.equal(trained.reference_unet.conv_in.weight, start.reference_unet.conv_in.weight)  # the rest as given
    again = run_cli(["train", "autoencoder", "--config", CONFIG_DIR / "train" / "autoencoder_tiny.yaml",
                     f"data.meta=[{dataset}]", f"train.output_dir={tmp_path}/ae", "train.max_steps=1"])
    assert again.code == 2 and again.err.strip() == f"error: {tmp_path / 'ae' / 'weights'} already exists"


def test_the_posterior_starts_narrow_and_training_leaves_its_width(dataset):
    torch.manual_seed(0)
    vae = build_random_models("demo", motion=False).vae.train()
    narrow_posterior(vae, -8.0)
    images = torch.stack([FrameDataset([dataset], 32, 48, 2, seed=0)[i] for i in range(2)])
    assert torch.allclose(vae.encode(images).latent_dist.std, torch.tensor(math.exp(-4.0)))
    before = vae.quant_conv.weight.detach().clone()
    optimizer = torch.optim.Adam(vae.parameters(), lr=1e-3)
    loss, _ = autoencoder_loss(vae, images, 1e-6)
    loss.backward()
    optimizer.step()
    assert torch.equal(vae.quant_conv.weight[4:], before[4:])  # log-variance rows: no gradient, no step
    assert not torch.equal(vae.quant_conv.weight[:4], before[:4])  # the means train
    assert torch.allclose(vae.encode(images).latent_dist.std, torch.tensor(math.exp(-4.0)))
