"""Stage-1 starting points: an SD image-variations folder and a ControlNet-openpose condition embedding."""

import pytest
import torch
from safetensors.torch import save_file

from animate.errors import AnimateError
from animate.models.bundle import build_random_models
from stages.init import models_from_image_variations, pose_guider_from_controlnet


@pytest.fixture(scope="module")
def image_variations(tmp_path_factory):
    """A tiny sd-image-variations-diffusers folder (unet/, vae/, image_encoder/) saved with diffusers/transformers."""
    from diffusers import UNet2DConditionModel

    from animate.models.bundle import size_config

    root = tmp_path_factory.mktemp("base") / "sd-image-variations-diffusers"
    models = build_random_models("tiny", seed=4, motion=False)
    config = {k: v for k, v in size_config("tiny")["unet"].items() if not k.startswith("_")}
    unet = UNet2DConditionModel.from_config(config)
    unet.save_pretrained(root / "unet")
    models.vae.save_pretrained(root / "vae")
    models.image_encoder.save_pretrained(root / "image_encoder")
    return root, unet


@pytest.fixture(scope="module")
def controlnet(tmp_path_factory):
    folder = tmp_path_factory.mktemp("controlnet") / "control_v11p_sd15_openpose"
    folder.mkdir()
    guider = build_random_models("tiny", seed=5).pose_guider
    state = {f"controlnet_cond_embedding.{k}": torch.randn_like(v) for k, v in guider.state_dict().items()}
    state["controlnet_cond_embedding.conv_out.weight"] = torch.randn(32, 64, 3, 3)
    state["controlnet_down_blocks.0.weight"] = torch.zeros(1)  # the rest of a ControlNet is ignored
    save_file(state, str(folder / "diffusion_pytorch_model.safetensors"))
    return folder, state


def test_both_unets_and_the_pose_guider_come_from_their_folders(image_variations, controlnet):
    root, unet = image_variations
    folder, state = controlnet
    models = models_from_image_variations(root, folder)
    source = unet.state_dict()
    for model in (models.reference_unet, models.denoising_unet):
        assert all(torch.equal(v, source[k]) for k, v in model.state_dict().items())
    assert models.reference_unet.conv_out is None
    assert torch.equal(models.pose_guider.blocks[5].weight, state["controlnet_cond_embedding.blocks.5.weight"])
    assert (models.pose_guider.conv_out.weight == 0).all()  # not taken from the ControlNet: starts at zero


def test_bad_folders_are_one_line_errors(tmp_path):
    with pytest.raises(AnimateError, match="no unet/config.json"):
        models_from_image_variations(tmp_path, None)
    with pytest.raises(AnimateError, match="no ControlNet weights"):
        pose_guider_from_controlnet(tmp_path, 32)
