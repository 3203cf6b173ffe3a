"""One training step's pieces shared by both stages: encode a batch, then the diffusion loss of the network."""

import torch
from diffusers import DDPMScheduler
from einops import rearrange

from animate.errors import AnimateError

from .content import ContentBatch
from .network import AnimateNet
from .objective import drop_mask, min_snr_weights, offset_noise, target, weighted_mse


@torch.no_grad()
def encode_batch(vae, image_encoder, batch: dict, uncond: torch.Tensor, dropout: float, dtype: torch.dtype):
    """Latents [B, 4, F, h, w] (an image batch is F = 1), reference latents, CLIP context with the dropped samples'
    replaced by `uncond`, pose images [B, F, 3, H, W], and which samples were dropped."""
    pixels, pose = batch["pixel_values"], batch["pose_pixel_values"]
    if pixels.dim() == 4:
        pixels, pose = pixels[:, None], pose[:, None]
    frames = pixels.shape[1]
    scale = vae.config.scaling_factor
    latents = vae.encode(pixels.flatten(0, 1).to(dtype)).latent_dist.sample() * scale
    latents = rearrange(latents.float(), "(b f) c h w -> b c f h w", f=frames)
    reference = vae.encode(batch["ref_pixel_values"].to(dtype)).latent_dist.sample().float() * scale
    embeds = image_encoder(batch["clip_pixel_values"].to(dtype)).image_embeds[:, None]
    dropped = drop_mask(len(latents), dropout)  # stays on the CPU: the call's row plan then needs no device sync
    context = torch.where(dropped.to(latents.device)[:, None, None], uncond, embeds).float()
    return latents, reference, context, pose, dropped


def diffusion_loss(net: AnimateNet, noise_schedule: DDPMScheduler, latents: torch.Tensor, reference: torch.Tensor,
                   context: torch.Tensor, pose: torch.Tensor, dropped: torch.Tensor, noise_offset: float,
                   snr_gamma: float, step: int, control: torch.Tensor | None = None,
                   content: ContentBatch | None = None) -> torch.Tensor:
    """Min-SNR-weighted MSE of the network's v-prediction at random timesteps; a NaN/inf loss is an error."""
    noise = offset_noise(latents, noise_offset)
    timesteps = torch.randint(0, noise_schedule.config.num_train_timesteps, (len(latents),), device=latents.device)
    noisy = noise_schedule.add_noise(latents, noise, timesteps)
    prediction = net(noisy, timesteps, reference, context, pose, dropped, control, content)
    loss = weighted_mse(prediction, target(noise_schedule, latents, noise, timesteps),
                        min_snr_weights(noise_schedule, timesteps, snr_gamma))
    return checked(loss, step)


def checked(loss: torch.Tensor, step: int) -> torch.Tensor:
    """The loss, or an error when it is NaN or infinite (nothing is saved from a diverged step)."""
    if not torch.isfinite(loss):
        raise AnimateError(f"loss is {loss.item()} at step {step}: stopped before saving anything")
    return loss
