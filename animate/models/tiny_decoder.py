"""TAESD, the tiny autoencoder of SD's latent space (madebyollin/taesd, MIT), as a fast decoder: diffusers'
AutoencoderTiny reads the same scaled latents the UNet makes and returns frames in [-1, 1], as the VAE does."""

from pathlib import Path

from diffusers import AutoencoderTiny

from ..errors import AnimateError
from ..pretrained import load_pretrained

TAESD_REPO = "madebyollin/taesd"
TAESD_DIR = "taesd"  # its folder inside a weights folder (`animate download --set taesd`)
TAESD_FILES = ("config.json", "diffusion_pytorch_model.safetensors")
DEFAULT_WEIGHTS = Path("pretrained_weights")


def tiny_decoder_folder(weights: str | Path) -> Path:
    """The tiny decoder of a weight set: <weights folder>/taesd, else pretrained_weights/taesd; one line saying how
    to get it when neither has one."""
    folder = Path(weights)
    folder = folder.parent if folder.is_file() else folder
    for base in (folder, DEFAULT_WEIGHTS):
        if (base / TAESD_DIR / "config.json").is_file():
            return base / TAESD_DIR
    raise AnimateError(f"--decoder tiny needs TAESD in {DEFAULT_WEIGHTS / TAESD_DIR} or beside the weights: run "
                       "`animate download --set taesd`")


def decoder_scale(decoder: AutoencoderTiny) -> int:
    """Pixels per latent pixel of a tiny autoencoder: one 2x upsampling between its decoder's levels."""
    return 2 ** (len(decoder.config.decoder_block_out_channels) - 1)


def load_tiny_decoder(weights: str | Path, latent_scale: int, latent_channels: int) -> AutoencoderTiny:
    """The tiny decoder for a weight set whose VAE has `latent_scale` and `latent_channels`, or one line saying how
    to get it (or that this model size has none)."""
    folder = tiny_decoder_folder(weights)
    decoder = load_pretrained(AutoencoderTiny, folder, "tiny decoder", folder.parent)
    scale, channels = decoder_scale(decoder), decoder.config.latent_channels
    if (scale, channels) != (latent_scale, latent_channels):
        raise AnimateError(f"{folder}: the tiny decoder reads {channels}-channel latents at 1/{scale} scale, these "
                           f"weights make {latent_channels}-channel latents at 1/{latent_scale} (TAESD is SD's: the "
                           "demo size has no tiny decoder)")
    return decoder
