"""Stage-1 starting points besides a released weight set: an SD image-variations folder and a ControlNet-openpose."""

from pathlib import Path

from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPVisionModelWithProjection

from animate.errors import AnimateError
from animate.models.bundle import AnimateModels
from animate.models.pose_guider import PoseGuider
from animate.models.reference import ReferenceNet
from animate.strict import check_state_dict
from animate.models.unet import AnimateUNet
from animate.models.weights import read_state_dict

CONTROLNET_PREFIX = "controlnet_cond_embedding."
CONTROLNET_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")


def pose_guider_from_controlnet(folder: Path, out_channels: int) -> PoseGuider:
    """A pose guider whose conv_in and blocks come from a ControlNet's condition embedding (conv_out stays zero)."""
    files = [folder / name for name in CONTROLNET_FILES if (folder / name).is_file()]
    if not files:
        raise AnimateError(f"{folder}: no ControlNet weights ({' or '.join(CONTROLNET_FILES)})")
    state = {k[len(CONTROLNET_PREFIX):]: v for k, v in read_state_dict(files[0]).items()
             if k.startswith(CONTROLNET_PREFIX) and not k.startswith(CONTROLNET_PREFIX + "conv_out.")}
    channels = [state["conv_in.weight"].shape[0]] + [state[f"blocks.{i}.weight"].shape[0] for i in (1, 3, 5)] \
        if "conv_in.weight" in state and "blocks.5.weight" in state else None
    if channels is None:
        raise AnimateError(f"{files[0]}: no {CONTROLNET_PREFIX}conv_in/blocks weights (not a ControlNet?)")
    guider = PoseGuider(out_channels, channels)
    keys = {k for k in guider.state_dict() if not k.startswith("conv_out.")}
    check_state_dict(guider, state, files[0], "pose guider (ControlNet condition embedding)", keys)
    guider.load_state_dict(state, strict=False)
    return guider


def models_from_image_variations(base: Path, controlnet: Path | None) -> AnimateModels:
    """Both UNets from an sd-image-variations-diffusers folder (unet/, vae/, image_encoder/), pose guider from a
    ControlNet-openpose folder when given (else freshly initialised)."""
    for sub in ("unet", "vae", "image_encoder"):
        if not (base / sub / "config.json").is_file():
            raise AnimateError(f"{base}: no {sub}/config.json (expected an sd-image-variations-diffusers folder)")
    reference = ReferenceNet(UNet2DConditionModel.from_pretrained(base / "unet"))
    denoising = UNet2DConditionModel.from_pretrained(base / "unet")
    width = denoising.config.block_out_channels[0]
    pose_guider = pose_guider_from_controlnet(controlnet, width) if controlnet else PoseGuider(width)
    return AnimateModels(AutoencoderKL.from_pretrained(base / "vae"),
                         CLIPVisionModelWithProjection.from_pretrained(base / "image_encoder"),
                         reference, AnimateUNet(denoising, pose_guider), profile="ours")
