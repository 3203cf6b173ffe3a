"""Counted sd15 work per frame of a 120-frame 512x768 video for each sampling mode, beside Moore-AnimateAnyone's
pipeline counted from its released algorithm (torch.utils.flop_counter on the meta device: shapes only).

Moore's pipeline (pipeline_pose2vid_long, as released): 30 DDIM steps at CFG 3.5; 24-frame windows with overlap 4
whose last one wraps around to the first frames (6 windows for 120 frames, as ours); the ReferenceNet run whole on
both CFG rows once; the reference bank repeated per frame and concatenated to each attn1's own tokens (keys and values
projected over both, on both CFG rows); for the unconditional rows attn1 then runs again without the bank and
replaces that result; the pose guider once for all frames; the VAE one frame at a time.

    python scripts/count_modes.py      # the table (also printed by bench_modes.py)
"""

import math
from dataclasses import dataclass

import torch
from diffusers import AutoencoderKL, AutoencoderTiny
from torch.utils.flop_counter import FlopCounterMode
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from animate.models.bundle import build_animate_unets, size_config
from animate.models.unet import build_unet
from animate.pipeline.animate import AnimateSettings
from animate.pipeline.windows import context_windows

FRAMES, WINDOW, OVERLAP = 120, 24, 4
LATENT = (96, 64)  # 512x768 at 1/8


@dataclass(frozen=True)
class Mode:
    """One way of sampling: which weights (the model, or its distilled student), sampler, steps, CFG and the fast
    switches; `reference` marks the row the others are compared with."""

    name: str
    student: bool = False
    sampler: str = "ddim"
    steps: int = 30
    cfg: float = 3.5
    cfg_steps: float = 1.0
    cache_interval: int = 1
    decoder: str = "vae"
    reference: bool = False


MODES = (
    Mode("reference: DDIM 30, CFG 3.5", reference=True),
    Mode("DDIM 30, CFG 1 (no guidance)", cfg=1.0),
    Mode("DDIM 30, --cfg-steps 0.5", cfg_steps=0.5),
    Mode("DDIM 30, --cache-interval 2", cache_interval=2),
    Mode("DDIM 30, --cache-interval 3", cache_interval=3),
    Mode("DDIM 30, --cfg-steps 0.5 --cache-interval 2", cfg_steps=0.5, cache_interval=2),
    Mode("UniPC 10, CFG 3.5", sampler="unipc", steps=10),
    Mode("DPM++ 10, CFG 3.5", sampler="dpm++", steps=10),
    Mode("UniPC 10, --cache-interval 2", sampler="unipc", steps=10, cache_interval=2),
    Mode("UniPC 10, --cfg-steps 0.5 --cache-interval 2", sampler="unipc", steps=10, cfg_steps=0.5, cache_interval=2),
    Mode("DDIM 16, CFG 3.5 (the distillation's teacher)", steps=16),
    Mode("DDIM 4, CFG 3.5 (the model at the student's steps)", steps=4),
    Mode("DDIM 4, CFG 1 (the model at the student's steps)", steps=4, cfg=1.0),
    Mode("student: DDIM 4, no CFG", student=True, steps=4, cfg=1.0),
    Mode("student: DDIM 4, no CFG, --cache-interval 2", student=True, steps=4, cfg=1.0, cache_interval=2),
    Mode("student: DDIM 4, no CFG, --decoder tiny", student=True, steps=4, cfg=1.0, decoder="tiny"),
    Mode("student: DDIM 4, no CFG, --cache-interval 2 --decoder tiny", student=True, steps=4, cfg=1.0,
         cache_interval=2, decoder="tiny"),
)


def flops(function, *args, **kwargs) -> float:
    """TFLOP of one call (a multiply-add is 2 FLOP)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        function(*args, **kwargs)
    return counter.get_total_flops() / 1e12


def attention_rows(unet) -> list[tuple[int, int]]:
    """(tokens N, width C) of every attn1 of a UNet row at the counted size, read from a meta call."""
    shapes = []
    hooks = [module.register_forward_pre_hook(lambda m, args, kw: shapes.append(tuple(args[0].shape[1:])),
                                              with_kwargs=True)
             for name, module in unet.named_modules() if name.endswith("attn1")]
    with torch.no_grad():
        unet(torch.randn(1, 4, *LATENT), 500, torch.randn(1, 1, 768), return_dict=False)
    for hook in hooks:
        hook.remove()
    return shapes


def costs() -> dict[str, float]:
    """TFLOP of each piece at sd15, 512x768, counted on the meta device."""
    config = size_config("sd15")
    with torch.device("meta"):
        reference_net, unet = build_animate_unets(config["unet"], config["pose_guider_channels"],
                                                  config["motion_pe_length"])
        plain_unet = build_unet(config["unet"])
        vae = AutoencoderKL.from_config({k: v for k, v in config["vae"].items() if not k.startswith("_")})
        taesd = AutoencoderTiny()
        encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**config["image_encoder"]))
        poses = torch.randn(WINDOW, 3, LATENT[0] * 8, LATENT[1] * 8)
        pose = unet.pose_guider(poses)
        context = torch.randn(2, 1, 768)
        latents = torch.randn(2, 4, WINDOW, *LATENT)
        tokens = reference_net(torch.randn(1, 4, *LATENT), context[:1])
        _, deep = unet(latents, 500, context, pose, reference=tokens, reference_index=[-1, 0], keep_deep=True)
        c = {
            "full, CFG": flops(unet, latents, 500, context, pose, reference=tokens, reference_index=[-1, 0]),
            "full": flops(unet, latents[1:], 500, context[1:], pose, reference=tokens, reference_index=[0]),
            "outer, CFG": flops(unet, latents, 500, context, pose, reference=tokens, reference_index=[-1, 0],
                                deep=deep),
            "outer": flops(unet, latents[1:], 500, context[1:], pose, reference=tokens, reference_index=[0],
                           deep=deep[len(deep) // 2 :]),
            "full, CFG, reference on both rows": flops(unet, latents, 500, context, pose, reference=tokens,
                                                       reference_index=[0, 0]),
            "pose guider": flops(unet.pose_guider, poses),
            "ReferenceNet to its last write": flops(reference_net, torch.randn(1, 4, *LATENT), context[:1]),
            "ReferenceNet whole, 2 rows": flops(plain_unet, torch.randn(2, 4, *LATENT), 0, context,
                                                return_dict=False),
            "VAE decode": flops(vae.decode, torch.randn(1, 4, *LATENT)),
            "TAESD decode": flops(taesd.decode, torch.randn(1, 4, *LATENT)),
            "VAE encode + CLIP": flops(vae.encode, torch.randn(1, 3, LATENT[0] * 8, LATENT[1] * 8))
            + flops(encoder, torch.randn(1, 3, 224, 224)),
        }
        rows = attention_rows(plain_unet)
    # Moore's extra attn1 work per frame-row beyond ours: the bank's keys and values projected on every row
    # (2 x 2·M·C² per layer, M = N), and the unconditional row's attn1 run again without the bank (q, k, v, out
    # projections 4 x 2·N·C², scores and weighted sum 2 x 2·N²·C).
    c["Moore: bank K/V per row"] = sum(2 * 2 * n * ch * ch for n, ch in rows) / 1e12
    c["Moore: uncond attn1 again per row"] = sum(4 * 2 * n * ch * ch + 2 * 2 * n * n * ch for n, ch in rows) / 1e12
    return c


def windows_per_frame() -> tuple[float, float]:
    """Frame-rows a step per frame of the 120-frame video: ours (last window ends at the last frame) and Moore's
    (the last window wraps around)."""
    ours = sum(len(w) for w in context_windows(FRAMES, WINDOW, OVERLAP)) / FRAMES
    moore = math.ceil(FRAMES / (WINDOW - OVERLAP)) * WINDOW / FRAMES
    return ours, moore


def mode_tflop(mode: Mode, c: dict[str, float]) -> float:
    """TFLOP per frame of a 120-frame video in a mode: every step's window calls (full or outer level, CFG or not,
    the pose guider again), the decode, and the per-video encoders and ReferenceNet shared over the frames."""
    ours, _ = windows_per_frame()
    guided = AnimateSettings(512, 768, steps=mode.steps, guidance=mode.cfg, cfg_steps=mode.cfg_steps).guided_steps(
        mode.steps)
    per_step = []
    for step in range(mode.steps):
        level = "full" if mode.cache_interval == 1 or step % mode.cache_interval == 0 else "outer"
        per_step.append(c[f"{level}, CFG" if step < guided else level] + c["pose guider"])
    decode = c["TAESD decode" if mode.decoder == "tiny" else "VAE decode"]
    video = c["ReferenceNet to its last write"] + c["VAE encode + CLIP"]
    return ours * sum(per_step) / WINDOW + decode + video / FRAMES


MOORE = "Moore-AnimateAnyone's pipeline: DDIM 30, CFG 3.5"


def moore_tflop(c: dict[str, float]) -> float:
    """TFLOP per frame of Moore's released pipeline on the same 120-frame video."""
    _, moore = windows_per_frame()
    rows = 2 * WINDOW  # both CFG rows of a window
    step = (c["full, CFG, reference on both rows"]
            + rows * (c["Moore: bank K/V per row"] + c["Moore: uncond attn1 again per row"] / 2))
    return moore * 30 * step / WINDOW + c["pose guider"] / WINDOW + c["VAE decode"] \
        + (c["ReferenceNet whole, 2 rows"] + c["VAE encode + CLIP"]) / FRAMES


def counted_table() -> str:
    """The markdown table of counted TFLOP per frame and the factor against Moore's pipeline."""
    c = costs()
    moore = moore_tflop(c)
    lines = ["Counted sd15 TFLOP per frame of a 120-frame 512x768 video (meta device; multiply-add = 2 FLOP):", "",
             "| mode | TFLOP per frame | fewer than Moore's |", "|---|---:|---:|",
             f"| {MOORE} | {moore:.2f} | 1.0x |"]
    for mode in MODES:
        tflop = mode_tflop(mode, c)
        lines.append(f"| {mode.name} | {tflop:.2f} | {moore / tflop:.1f}x |")
    lines += ["", "Pieces (TFLOP): " + "; ".join(f"{k} {v:.3f}" for k, v in c.items())]
    return "\n".join(lines)


if __name__ == "__main__":
    print(counted_table())
