"""Regenerate tests/data/golden_call/: float64 outputs of the denoising call (the test oracle of its refactors).

    python scripts/make_call_golden.py

The numbers must not depend on the CPU, so everything that enters the call is drawn or computed in float64 and
the models run in float64: every parameter of the tiny models is redrawn from a float64 generator seeded by its
name (torch's float32 uniform_/randn and linspace round differently in the scalar and the vectorised kernels, so
the models' own initialisation and diffusers' float32 noise-schedule tables differ by an ulp between CPUs), the
noise-schedule betas come from a float64 linspace, and the latents are 16x16 so that the bottom level is 2x2:
at 1x1 a GroupNorm group holds 2 values and its output is a sign, which turns rounding into O(1) differences.
- pipeline_{full,no_reference,no_motion}.safetensors: the tiny pipeline's denoised latents, 6 frames in 2 windows
  of 4 × 2 DDIM steps with CFG 3.5 (and the two ablations);
- stage{1,2}.safetensors: one training step's loss and, per parameter, its gradient's sum, L2 norm and dot product
  with a probe tensor seeded by the parameter's name (`names` in the metadata).
"""

import json
import zlib
from contextlib import contextmanager
from unittest import mock

import torch
from diffusers import DDIMScheduler, DDPMScheduler
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from animate.models.bundle import AnimateModels, build_random_models
from animate.paths import REPO_ROOT
from animate.pipeline.animate import AnimatePipeline, AnimateSettings
from animate.pipeline.schedulers import NOISE_SCHEDULE
from animate.pose.frames import PoseArray
from stages.network import AnimateNet
from stages.step import diffusion_loss

OUT = REPO_ROOT / "tests" / "data" / "golden_call"
PIPELINE_CASES = {"full": {}, "no_reference": {"reference": False}, "no_motion": {"motion": False}}
SIZE = 128  # pixels: 16x16 latents
TRAINED = ("reference_unet", "denoising_unet", "pose_guider")  # the weight files' names of the trained models


def seeded(name: str, shape, offset: int = 0) -> torch.Tensor:
    """Standard normal float64 draws from a generator seeded by a name (the same on every CPU)."""
    generator = torch.Generator().manual_seed(zlib.crc32(name.encode()) + offset)
    return torch.randn(shape, generator=generator, dtype=torch.float64)


def golden_models(motion: bool) -> AnimateModels:
    """Tiny models in float64, every parameter redrawn by name: matrices N(0, 1/fan_in), norm scales 1 + N(0, 0.01),
    other vectors N(0, 0.01); the zero-initialised pose-guider output and motion projections are opened with them."""
    models = build_random_models("tiny", seed=5, motion=motion).to(dtype=torch.float64)
    with torch.no_grad():
        for part in ("vae", "image_encoder", *TRAINED):
            for name, param in getattr(models, part).named_parameters():
                draw = seeded(f"{part}.{name}", param.shape)
                if param.dim() >= 2:
                    param.copy_(draw / param[0].numel() ** 0.5)
                else:
                    param.copy_(0.1 * draw + (1.0 if bool((param == 1).all()) else 0.0))
    return models


def golden_betas() -> torch.Tensor:
    """The training noise schedule's scaled-linear betas from a float64 linspace, rounded to float32 once."""
    start, end = NOISE_SCHEDULE["beta_start"] ** 0.5, NOISE_SCHEDULE["beta_end"] ** 0.5
    return (torch.linspace(start, end, NOISE_SCHEDULE["num_train_timesteps"], dtype=torch.float64) ** 2).float()


def golden_ddim(sampler: str) -> DDIMScheduler:
    """The pipeline's DDIM sampler on golden_betas()."""
    assert sampler == "ddim"
    return DDIMScheduler(**NOISE_SCHEDULE, clip_sample=False, trained_betas=golden_betas().numpy())


@contextmanager
def golden_sampler():
    """The pipeline samples with golden_ddim for the block."""
    with mock.patch("animate.pipeline.animate.make_scheduler", golden_ddim):
        yield


def trainable_parameters(models: AnimateModels) -> list[tuple[str, torch.nn.Parameter]]:
    """The three trained models' parameters under their weight-file names, sorted."""
    named = [(f"{part}.{name}", param) for part in TRAINED for name, param in getattr(models, part).named_parameters()]
    return sorted(named, key=lambda item: item[0])


def pipeline_latents(reference: bool = True, motion: bool = True) -> torch.Tensor:
    """The tiny pipeline's float64 latents [1, 4, 6, 16, 16] for a seeded photo, pose images and noise."""
    pipeline = AnimatePipeline.for_inference(golden_models(motion=True), "cpu", torch.float64)
    generator = torch.Generator().manual_seed(7)
    photo = Image.fromarray(torch.randint(0, 256, (SIZE, SIZE, 3), generator=generator, dtype=torch.uint8).numpy())
    poses = PoseArray(torch.randint(0, 256, (6, SIZE, SIZE, 3), generator=generator, dtype=torch.uint8).numpy())
    settings = AnimateSettings(SIZE, SIZE, steps=2, guidance=3.5, context_frames=4, context_overlap=2,
                               reference=reference, motion=motion)
    with golden_sampler():
        return pipeline.denoise(photo, poses, settings, seeded("noise", (1, 4, 6, 16, 16)), progress=False)


def gradient_statistics(models: AnimateModels) -> dict[str, torch.Tensor]:
    """Per parameter with a gradient: (sum, L2 norm, dot product with a probe seeded by its name)."""
    stats = {}
    for name, param in trainable_parameters(models):
        if param.grad is not None:
            probe = seeded(name, param.shape, offset=1)
            grad = param.grad.double()
            stats[name] = torch.stack([grad.sum(), grad.norm(), (grad * probe).sum()])
    return stats


def training_step(stage: int, checkpointing: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One float64 training forward and backward of stage 1 (frames 1) or stage 2 (frames 3, motion modules): the
    loss and the gradient statistics. Sample 1 of 2 is dropped (trained without reference)."""
    models = golden_models(motion=stage == 2)
    net = AnimateNet(models.reference_net, models.animate_unet).train()
    if checkpointing:
        models.animate_unet.enable_gradient_checkpointing()
    frames = 1 if stage == 1 else 3
    latents = seeded("latents", (2, 4, frames, 16, 16))
    reference = seeded("reference", (2, 4, 16, 16))
    context = seeded("context", (2, 1, 64))
    pose = seeded("pose", (2, frames, 3, SIZE, SIZE)).sigmoid()
    schedule = DDPMScheduler(**NOISE_SCHEDULE, trained_betas=golden_betas().numpy())
    torch.manual_seed(9)  # the loss draws its noise (float64: the same on every CPU) and timesteps globally
    loss = diffusion_loss(net, schedule, latents, reference, context, pose, torch.tensor([False, True]),
                          noise_offset=0.05, snr_gamma=5.0, step=1)
    loss.backward()
    return loss.detach(), gradient_statistics(models)


def save_training_step(path, loss: torch.Tensor, stats: dict[str, torch.Tensor]) -> None:
    """loss, stats [P, 3] and the parameter names in the metadata."""
    names = list(stats)
    save_file({"loss": loss, "stats": torch.stack([stats[n] for n in names])}, str(path),
              metadata={"names": json.dumps(names)})


def load_training_step(path) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """What save_training_step wrote."""
    tensors = load_file(str(path))
    with safe_open(str(path), "pt") as f:
        names = json.loads(f.metadata()["names"])
    return tensors["loss"], dict(zip(names, tensors["stats"]))


def main() -> None:
    """Write every golden file."""
    OUT.mkdir(parents=True, exist_ok=True)
    for case, options in PIPELINE_CASES.items():
        save_file({"latents": pipeline_latents(**options).contiguous()}, str(OUT / f"pipeline_{case}.safetensors"))
    for stage in (1, 2):
        save_training_step(OUT / f"stage{stage}.safetensors", *training_step(stage))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
