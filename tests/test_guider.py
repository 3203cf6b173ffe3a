"""The content guider: decoupled cross-attention wired into the denoising UNet's attn2 (tiny random weights, float64;
sd15 shapes on the meta device)."""

import pytest
import torch

from animate.models.bundle import build_animate_unets, size_config
from animate.models.guider import (ContentGuider, Guide, GuidedCrossAttention, cross_attention_layers, guider_config)
from call_helpers import open_float64_models

SHAPE = dict(num_tokens=4, depth=1, heads=4, head_dim=16)
# float64 rounding through the tiny network: the (1 + s)·to_v identity measured <= 1.6e-14 at ATEN_CPU_CAPABILITY
# default, avx2 and avx512 with 1 and 2 threads; 1e-10 leaves a wide margin, and a wrong mechanism is off by > 1e-3.
TOL = 1e-10


@pytest.fixture(scope="module")
def models():
    return open_float64_models(seed=3).to(dtype=torch.float64)


def inputs(models, videos: int = 2, frames: int = 3, seed: int = 0):
    """Latents, timestep, CLIP context, pose features and reference tokens for `videos` videos of `frames` frames."""
    generator = torch.Generator().manual_seed(seed)
    unet = models.animate_unet
    latents = torch.randn(videos, 4, frames, 8, 8, generator=generator, dtype=torch.float64)
    context = torch.randn(videos, 1, unet.unet.config.cross_attention_dim, generator=generator, dtype=torch.float64)
    pose = models.pose_guider(torch.rand(frames, 3, 64, 64, generator=generator, dtype=torch.float64))
    reference = models.reference_net(torch.randn(1, 4, 8, 8, generator=generator, dtype=torch.float64), context[:1])
    return dict(latents=latents, timestep=torch.tensor(500.0), context=context, pose_features=pose,
                reference=reference, reference_index=[0] * videos)


def guider_for(models, seed: int = 1) -> ContentGuider:
    torch.manual_seed(seed)
    unet = models.denoising_unet
    return ContentGuider(guider_config(unet, models.image_encoder.config.hidden_size, **SHAPE)).to(torch.float64)


@torch.no_grad()
def test_the_guided_attn2_is_installed_on_every_cross_attention(models):
    layers = cross_attention_layers(models.denoising_unet)
    assert len(layers) == 16 and all(isinstance(layer.processor, GuidedCrossAttention) for layer in layers)
    assert [layer.processor.index for layer in layers] == list(range(16))


@torch.no_grad()
@pytest.mark.parametrize("scale", [0.5, 1.5])
def test_face_tokens_equal_to_the_context_scale_attn2_values(models, scale):
    """With face to_k/to_v = attn2's own and face tokens that are copies of the one CLIP context token, each guided
    attn2 adds `scale` times its own output (one key: the softmax is 1): the UNet with attn2.to_v scaled by 1 + s."""
    call = inputs(models, videos=1)
    guider = guider_for(models)
    guider.init_from(models.denoising_unet)
    tokens = call["context"].expand(-1, SHAPE["num_tokens"], -1)
    guide = Guide(face=guider.tokens("face", tokens), face_index=(0,), face_scale=(scale,))
    guided = models.animate_unet(**call, guide=guide)
    originals = [layer.to_v.weight.clone() for layer in cross_attention_layers(models.denoising_unet)]
    try:
        for layer in cross_attention_layers(models.denoising_unet):
            layer.to_v.weight.mul_(1 + scale)
        expected = models.animate_unet(**call)
    finally:
        for layer, weight in zip(cross_attention_layers(models.denoising_unet), originals):
            layer.to_v.weight.copy_(weight)
    base = models.animate_unet(**call)
    assert (guided - base).abs().max() > 1e-3  # the guide changed the output...
    torch.testing.assert_close(guided, expected, rtol=0, atol=TOL)  # ...exactly as the mechanism says (float64)


@torch.no_grad()
def test_text_tokens_reach_every_attn2_through_their_own_projections(models):
    """Text keys/values copied from attn2 and text tokens = the context token: the same identity as the face's."""
    call = inputs(models, videos=1)
    guider = guider_for(models)
    guider.init_from(models.denoising_unet)
    with_text = models.animate_unet(**call, guide=Guide(text=guider.tokens("text", call["context"].expand(-1, 5, -1)),
                                                        text_index=(0,), text_scale=(1.0,)))
    with_face = models.animate_unet(**call, guide=Guide(face=guider.tokens("face", call["context"].expand(-1, 2, -1)),
                                                        face_index=(0,), face_scale=(1.0,)))
    torch.testing.assert_close(with_text, with_face, rtol=0, atol=TOL)
    assert (with_text - models.animate_unet(**call)).abs().max() > 1e-3
    for projection in guider.text_v:  # the text path uses text_v, not face_v or attn2's
        projection.weight.zero_()
    without_values = models.animate_unet(**call, guide=Guide(text=guider.tokens("text", call["context"]),
                                                             text_index=(0,), text_scale=(1.0,)))
    torch.testing.assert_close(without_values, models.animate_unet(**call), rtol=0, atol=TOL)


@torch.no_grad()
def test_the_unconditional_half_equals_no_guider_bit_for_bit(models):
    """CFG's batch [uncond, cond]: the unconditional video reads no tokens and is bit-identical to a run without the
    guider; the conditional one differs."""
    call = inputs(models, videos=2)
    call["reference_index"] = [-1, 0]
    guider = guider_for(models)
    face = guider.face_tokens(torch.randn(1, 50, models.image_encoder.config.hidden_size, dtype=torch.float64))
    text = torch.randn(1, 7, models.denoising_unet.config.cross_attention_dim, dtype=torch.float64)
    guide = Guide(face=guider.tokens("face", face), text=guider.tokens("text", text), face_index=(-1, 0),
                  face_scale=(1.0, 1.0), text_index=(-1, 0), text_scale=(0.7, 0.7))
    guided, plain = models.animate_unet(**call, guide=guide), models.animate_unet(**call)
    assert torch.equal(guided[0], plain[0])
    assert (guided[1] - plain[1]).abs().max() > 1e-3


@torch.no_grad()
def test_zero_scales_equal_the_base_model_bit_for_bit(models):
    call = inputs(models, videos=1)
    guider = guider_for(models)
    face = guider.face_tokens(torch.randn(1, 50, models.image_encoder.config.hidden_size, dtype=torch.float64))
    guide = Guide(face=guider.tokens("face", face), text=guider.tokens("text", face), face_index=(0,),
                  face_scale=(0.0,), text_index=(0,), text_scale=(0.0,))
    assert torch.equal(models.animate_unet(**call, guide=guide), models.animate_unet(**call))


@torch.no_grad()
def test_each_video_reads_its_own_face_at_its_own_scale(models):
    """Two videos with two faces at two scales equal the two videos run one at a time."""
    call = inputs(models, videos=2)
    guider = guider_for(models)
    faces = guider.face_tokens(torch.randn(2, 50, models.image_encoder.config.hidden_size, dtype=torch.float64))
    tokens = guider.tokens("face", faces)
    both = models.animate_unet(**call, guide=Guide(face=tokens, face_index=(1, 0), face_scale=(0.5, 2.0)))
    for video, (face, scale) in enumerate([(1, 0.5), (0, 2.0)]):
        one = {**call, "latents": call["latents"][video:video + 1], "context": call["context"][video:video + 1],
               "reference_index": [0]}
        alone = models.animate_unet(**one, guide=Guide(face=tokens, face_index=(face,), face_scale=(scale,)))
        torch.testing.assert_close(both[video:video + 1], alone, rtol=0, atol=TOL)


def test_a_guide_that_names_no_valid_set_is_refused(models):
    guider = guider_for(models)
    tokens = guider.tokens("face", torch.zeros(1, 4, models.denoising_unet.config.cross_attention_dim,
                                               dtype=torch.float64))
    with pytest.raises(ValueError, match="per video a set"):
        models.animate_unet(**inputs(models, videos=2), guide=Guide(face=tokens, face_index=(0, 1), face_scale=(1, 1)))


def test_sd15_guider_shapes_on_the_meta_device():
    """At SD-1.5: 16 face tokens of 768 from ViT-L/14's 257 penultimate hidden states of 1024; per attn2 layer keys
    and values of its own width (IP-Adapter-Plus's resampler shape: 4 perceiver layers, 12 heads of 64)."""
    config = size_config("sd15")
    with torch.device("meta"):
        _, animate_unet = build_animate_unets(config["unet"], config["pose_guider_channels"], None)
        guider = ContentGuider(guider_config(animate_unet.unet, config["image_encoder"]["hidden_size"]))
        tokens = guider.face_tokens(torch.zeros(2, 257, 1024))
        keys = guider.tokens("text", torch.zeros(3, 77, 768)).keys
    assert tokens.shape == (2, 16, 768)
    widths = [320] * 2 + [640] * 2 + [1280] * 2 + [1280] + [1280] * 3 + [640] * 3 + [320] * 3
    assert [tuple(k.shape) for k in keys] == [(3, 77, width) for width in widths]
    state = {k: tuple(v.shape) for k, v in guider.state_dict().items()}
    assert state["resampler.latents"] == (1, 16, 768) and state["resampler.proj_in.weight"] == (768, 1024)
    assert state["resampler.layers.3.0.to_kv.weight"] == (1536, 768)
    assert state["resampler.layers.3.1.1.weight"] == (3072, 768)
    assert state["face_k.15.weight"] == (320, 768) and state["text_v.6.weight"] == (1280, 768)
    assert not any(k.startswith("resampler.layers.4.") for k in state)


def test_cfg_rows_give_the_face_and_prompt_to_the_conditional_half_and_the_negative_to_the_other():
    from animate.pipeline.animate import Content, content_rows

    both = Content(prompt="a red top", negative_prompt="blurry", face_scale=0.5, text_scale=2.0)
    assert content_rows(both, guided=True, face=True) == {"face_index": (-1, 0), "face_scale": (0.5, 0.5),
                                                          "text_index": (1, 0), "text_scale": (2.0, 2.0)}
    negative_only = Content(negative_prompt="blurry")
    assert content_rows(negative_only, guided=True, face=False)["text_index"] == (0, -1)
    assert content_rows(both, guided=False, face=True) == {"face_index": (0,), "face_scale": (0.5,),
                                                           "text_index": (0,), "text_scale": (2.0,)}


@torch.no_grad()
def test_a_negative_prompt_acts_through_cfg_only():
    """With CFG the negative prompt changes the video (it reaches the unconditional half); without CFG there is no
    unconditional half, and the video is the same bit for bit."""
    import numpy as np
    from PIL import Image

    from animate.models.bundle import build_random_guider, build_random_models
    from animate.pipeline.animate import AnimatePipeline, AnimateSettings, Content

    pipeline = AnimatePipeline.for_inference(build_random_guider(build_random_models("tiny"), "tiny", seed=1))

    class Poses:
        def __len__(self):
            return 2

        def read(self, start, stop):
            return np.zeros((stop - start, 64, 64, 3), np.uint8)

    photo = Image.new("RGB", (64, 64), (180, 90, 40))
    for guidance, changes in ((3.0, True), (1.0, False)):
        settings = AnimateSettings(64, 64, steps=2, guidance=guidance, context_frames=2, context_overlap=1)
        plain = pipeline.denoise(photo, Poses(), settings, progress=False, content=Content(prompt="a red top"))
        negative = pipeline.denoise(photo, Poses(), settings, progress=False,
                                    content=Content(prompt="a red top", negative_prompt="a blue top"))
        assert (not torch.equal(plain, negative)) == changes
