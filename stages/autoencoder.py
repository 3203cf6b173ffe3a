"""Train the autoencoder of a small model size on video frames (sd15 uses the released sd-vae-ft-mse instead).

    animate train autoencoder --config configs/train/autoencoder_tiny.yaml [key=value ...]

The loss is SD's without its perceptual and adversarial terms (their networks are not available here): L1 + MSE
reconstruction and SD's small KL weight. The posterior's width is set narrow at the start and not trained: decoding
the mean and taking only the KL's mean term leave the log-variance without gradient. (Trained, the width only grew:
Adam's steps do not shrink with the KL's tiny weight, and the latents drowned in noise.) At the end the latent
scaling factor is set so the latents have unit variance on the data, as SD's 0.18215 does for its VAE, and a whole
weight set (the rest as `init.weights` gave it) is written.
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from animate.errors import AnimateError
from animate.models.weights import load_models, save_weight_set

from .datasets import load_meta, read_frames_at
from .training import start_run


class FrameDataset(Dataset):
    """Random frames of the meta's videos, each randomly cropped to (width, height), in [-1, 1]; `length` items."""

    def __init__(self, meta: list[str], width: int, height: int, length: int, seed: int):
        self.entries = load_meta(meta)
        if not self.entries:
            raise AnimateError("the dataset meta lists no videos")
        self.width, self.height, self.length, self.seed = width, height, length, seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        rng = np.random.default_rng((self.seed, index))
        entry = self.entries[rng.integers(len(self.entries))]
        frame = read_frames_at(entry.video, [int(rng.integers(entry.num_frames))])[0]
        height, width = frame.shape[:2]
        if width < self.width or height < self.height:
            raise AnimateError(f"{entry.video}: frames of {width}x{height} are smaller than the {self.width}x"
                               f"{self.height} crop")
        top, left = rng.integers(height - self.height + 1), rng.integers(width - self.width + 1)
        crop = frame[top:top + self.height, left:left + self.width]
        return torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float() / 127.5 - 1


@torch.no_grad()
def narrow_posterior(vae, logvar: float) -> None:
    """Set every latent's posterior log-variance to `logvar` (quant_conv's second half: zero weights, that bias).

    A random encoder's posterior has unit variance; this is the width stage 1's sampled latents get instead, and
    `autoencoder_loss` gives it no gradient, so it stays.
    """
    half = vae.quant_conv.out_channels // 2
    vae.quant_conv.weight[half:].zero_()
    vae.quant_conv.bias[half:].fill_(logvar)


def autoencoder_loss(vae, images: torch.Tensor, kl_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """L1 + MSE reconstruction of the posterior mean plus kl_weight × the KL's mean term; returns (loss, the L1 part).

    The posterior's width takes no gradient: it stays as `narrow_posterior` set it (see the module docstring).
    """
    mean = vae.encode(images).latent_dist.mean
    reconstruction = vae.decode(mean).sample
    l1 = F.l1_loss(reconstruction, images)
    return l1 + F.mse_loss(reconstruction, images) + kl_weight * 0.5 * mean.pow(2).sum((1, 2, 3)).mean(), l1


@torch.no_grad()
def latent_scaling_factor(vae, loader: DataLoader, batches: int) -> float:
    """1 / the standard deviation of sampled latents over `batches` batches: the factor that gives unit variance."""
    latents = [vae.encode(images).latent_dist.sample() for images, _ in zip(loader, range(batches))]
    return float(1 / torch.cat(latents).std())


def train(config_path: str | Path, overrides: list[str] = (), resume_from: str | None = None) -> Path:
    """Train the autoencoder; returns the output folder, whose weights/ is a whole weight set with it."""
    if resume_from:
        raise AnimateError("the autoencoder run is short and has no checkpoints to resume from")
    cfg, accelerator, _ = start_run(config_path, overrides)
    if accelerator.num_processes > 1:
        raise AnimateError("the autoencoder trains in one process: run it without `accelerate launch`")
    run = cfg.train
    output_dir = Path(run.output_dir)
    if (output_dir / "weights").exists():
        raise AnimateError(f"{output_dir / 'weights'} already exists")

    models = load_models(cfg.init.weights)
    vae = models.vae.train().requires_grad_(True)
    if cfg.init.posterior_logvar is not None:
        narrow_posterior(vae, cfg.init.posterior_logvar)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=run.learning_rate, weight_decay=run.weight_decay)
    dataset = FrameDataset(list(cfg.data.meta), cfg.data.width, cfg.data.height,
                           run.max_steps * run.batch_size * run.gradient_accumulation, run.seed)
    loader = DataLoader(dataset, batch_size=run.batch_size, num_workers=cfg.data.num_workers)
    vae, optimizer, loader = accelerator.prepare(vae, optimizer, loader)
    accelerator.init_trackers("autoencoder")

    step = 0
    progress = tqdm(total=run.max_steps, desc="autoencoder", disable=not accelerator.is_main_process)
    for images in loader:
        with accelerator.accumulate(vae):
            loss, l1 = autoencoder_loss(vae, images, run.kl_weight)
            if not torch.isfinite(loss):
                raise AnimateError(f"loss is {loss.item()} at step {step + 1}: stopped before saving anything")
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(vae.parameters(), run.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad()
        if not accelerator.sync_gradients:
            continue
        step += 1
        progress.update()
        if step % run.log_every == 0:
            accelerator.log({"loss": loss.item(), "l1": l1.item()}, step=step)
        if step >= run.max_steps:
            break
    progress.close()

    vae = accelerator.unwrap_model(vae).eval()
    scaling = latent_scaling_factor(vae, DataLoader(dataset, batch_size=run.batch_size), run.scale_batches)
    vae.register_to_config(scaling_factor=scaling)
    models.vae = vae.requires_grad_(False)
    if accelerator.is_main_process:
        save_weight_set(models, output_dir / "weights", "ours", torch.float32)
    accelerator.end_training()
    return output_dir
