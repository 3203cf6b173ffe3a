"""The five models of a weight set, built at a named size."""

import json
from dataclasses import dataclass, field, fields

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from omegaconf import OmegaConf
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, CLIPVisionConfig, CLIPVisionModelWithProjection

from ..errors import AnimateError
from ..paths import model_size_dir
from .guider import ContentGuider, check_guide_shapes, guider_config
from .pose_guider import PoseGuider
from .reference import ReferenceNet
from .student import StudentSampling
from .unet import AnimateUNet, build_unet


@dataclass
class AnimateModels:
    """VAE, CLIP image encoder, ReferenceNet and AnimateUNet (denoising UNet + pose guider), plus their profile, the
    Video ControlNets of the set by kind (depth, pose) with their default scales, and the content guider with the
    text encoder and tokenizer its prompts go through (each None when the set has none), and a step-distilled
    student's sampling defaults (None: not a student)."""

    vae: AutoencoderKL
    image_encoder: CLIPVisionModelWithProjection
    reference_net: ReferenceNet
    animate_unet: AnimateUNet
    profile: str = "ours"
    controlnets: torch.nn.ModuleDict = field(default_factory=torch.nn.ModuleDict)
    control_scales: dict[str, float] = field(default_factory=dict)
    guider: ContentGuider | None = None
    text_encoder: CLIPTextModel | None = None
    tokenizer: CLIPTokenizer | None = None
    student: StudentSampling | None = None

    def modules(self) -> dict[str, torch.nn.Module]:
        """The models by field name (the ControlNets as one ModuleDict)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), torch.nn.Module)}

    @property
    def reference_unet(self) -> UNet2DConditionModel:
        """The ReferenceNet's UNet (weight files: `reference_unet`)."""
        return self.reference_net.unet

    @property
    def denoising_unet(self) -> UNet2DConditionModel:
        """The denoising UNet with its motion modules (weight files: `denoising_unet`)."""
        return self.animate_unet.unet

    @property
    def pose_guider(self) -> PoseGuider:
        """The pose guider (weight files: `pose_guider`)."""
        return self.animate_unet.pose_guider

    @property
    def latent_scale(self) -> int:
        """Pixels per latent pixel: 2 ** (VAE levels - 1), as in diffusers (8 for SD's VAE, 4 for the demo size's)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def check_scales(self) -> None:
        """Refuse a pose guider whose downsampling differs from the VAE's (its features must match the latents)."""
        pose_scale = 2 ** (len(self.pose_guider.channels) - 1)
        if pose_scale != self.latent_scale:
            raise AnimateError(f"the pose guider downsamples by {pose_scale} but the VAE by {self.latent_scale}: "
                               "they come from different model sizes")

    def check_guider(self, source: str) -> None:
        """Refuse, in one line, a guider that does not fit the denoising UNet, the image encoder or the text encoder."""
        if self.guider is None:
            return
        check_guide_shapes(self.guider, self.denoising_unet, source)
        if self.guider.config.image_dim != self.image_encoder.config.hidden_size:
            raise AnimateError(f"{source}: the guider reads image features of {self.guider.config.image_dim}, the "
                               f"image encoder gives {self.image_encoder.config.hidden_size}")
        if self.text_encoder is not None and self.text_encoder.config.hidden_size != self.guider.config.context_dim:
            raise AnimateError(f"{source}: the text encoder gives tokens of {self.text_encoder.config.hidden_size}, "
                               f"the guider reads {self.guider.config.context_dim} (another model size's)")

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "AnimateModels":
        """Move every model (in place) and return self."""
        for module in self.modules().values():
            # torch's own `to`: diffusers' override warns about fp32-only modules even when there are none ([])
            torch.nn.Module.to(module, device=device, dtype=dtype)
        return self


def size_config(size: str) -> dict:
    """The configs of a model size: unet, vae, image_encoder, text_encoder (dicts) and the pose-guider, motion and
    guider settings."""
    folder = model_size_dir(size)
    config = {name: json.loads((folder / name / "config.json").read_text())
              for name in ("unet", "vae", "image_encoder", "text_encoder")}
    config.update(OmegaConf.to_container(OmegaConf.load(folder / "model.yaml")))
    return config


def build_animate_unets(unet_config: dict, pose_guider_channels: list[int],
                        motion_pe: int | None) -> tuple[ReferenceNet, AnimateUNet]:
    """ReferenceNet and AnimateUNet (pose guider, + motion modules when motion_pe is set) of one UNet config."""
    pose_guider = PoseGuider(unet_config["block_out_channels"][0], pose_guider_channels)
    return ReferenceNet(build_unet(unet_config)), AnimateUNet(build_unet(unet_config), pose_guider, motion_pe)


def build_random_models(size: str, seed: int = 0, motion: bool = True) -> AnimateModels:
    """Randomly initialised models of a size (tests, the demo before a trained model, smoke runs)."""
    config = size_config(size)
    torch.manual_seed(seed)
    unets = build_animate_unets(config["unet"], config["pose_guider_channels"], config["motion_pe_length"] if motion else None)
    vae = AutoencoderKL.from_config({k: v for k, v in config["vae"].items() if not k.startswith("_")})
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**config["image_encoder"]))
    return AnimateModels(vae, image_encoder, *unets, profile="ours")


def new_guider(models: AnimateModels, shape: dict) -> ContentGuider:
    """A fresh content guider for the models' UNet and image encoder (`shape`: num_tokens, depth, heads, head_dim),
    its keys and values copied from attn2 (IP-Adapter's start), in the UNet's dtype."""
    unet = models.denoising_unet
    guider = ContentGuider(guider_config(unet, models.image_encoder.config.hidden_size, **shape))
    guider.init_from(unet)
    return torch.nn.Module.to(guider, dtype=next(unet.parameters()).dtype)


def random_text_encoder(size: str) -> tuple[CLIPTextModel, CLIPTokenizer]:
    """A random small CLIP text encoder of a size (tiny, demo) and the size's tokenizer."""
    folder = model_size_dir(size)
    if not (folder / "tokenizer").is_dir():
        raise AnimateError(f"the {size} size has no small text encoder: use SD-1.5's (`animate download --set text`)")
    text = {k: v for k, v in size_config(size)["text_encoder"].items() if k != "architectures"}
    return CLIPTextModel(CLIPTextConfig(**text)), CLIPTokenizer.from_pretrained(str(folder / "tokenizer"))


def build_random_guider(models: AnimateModels, size: str, seed: int = 0) -> AnimateModels:
    """Give `models` a random content guider, text encoder and tokenizer of the size; returns `models`."""
    torch.manual_seed(seed)
    models.guider = new_guider(models, size_config(size)["guider"])
    models.text_encoder, models.tokenizer = random_text_encoder(size)
    torch.nn.Module.to(models.text_encoder, dtype=next(models.denoising_unet.parameters()).dtype)
    return models
