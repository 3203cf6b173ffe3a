"""The denoising loop: a reference photo and pose frames to video latents, then streamed decoding."""

from collections.abc import Callable, Iterator, Sequence
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import math

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from ..dtypes import accumulation_dtype
from ..errors import AnimateError
from ..models.bundle import AnimateModels
from ..models.controlnet import VideoControlNet, check_control_scale, sum_residuals
from ..models.guider import Guide
from ..models.text import encode_prompts
from .guidance import check_guidance, classifier_free_guidance
from .schedulers import make_scheduler
from .windows import blend_weights, context_windows


class PoseFrames(Protocol):
    """Pose images at the output size, read a window at a time (uint8 RGB [n, H, W, 3])."""

    def __len__(self) -> int: ...

    def read(self, start: int, stop: int) -> np.ndarray: ...


@dataclass(frozen=True)
class Control:
    """One Video ControlNet of a run: the frames it reads (depth, or pose images, at the output size), its scale, and
    the share of the steps it acts on, [start, end) of the schedule (diffusers' control_guidance_start/end)."""

    net: VideoControlNet
    frames: PoseFrames
    scale: float = 1.0
    start: float = 0.0
    end: float = 1.0

    def acts_at(self, step: int, steps: int) -> bool:
        """Whether the ControlNet runs at step `step` of `steps` (as diffusers keeps it)."""
        return not (step / steps < self.start or (step + 1) / steps > self.end)


def check_control_range(start: float, end: float) -> None:
    """Refuse a share of the steps that is not 0 <= start < end <= 1."""
    if not 0 <= start < end <= 1:
        raise AnimateError(f"--control-start and --control-end need 0 <= start < end <= 1, got {start} and {end}")


def check_controls(controls: Sequence[Control], num_frames: int, context_frames: int) -> None:
    """Refuse a control whose frames do not match the dance's, whose motion table is shorter than a window, or whose
    settings make no sense, in one line."""
    for control in controls:
        if len(control.frames) != num_frames:
            raise AnimateError(f"the control frames number {len(control.frames)}, the pose frames {num_frames}")
        table = control.net.motion_pe_length
        if table is not None and context_frames > table:
            raise AnimateError(f"--context-frames {context_frames} exceeds the ControlNet's motion table ({table})")
        check_control_scale(control.scale)
        check_control_range(control.start, control.end)


@dataclass(frozen=True, kw_only=True)
class Content:
    """The content guider's inputs of one video: a face crop (None: no face tokens), a prompt and a negative prompt
    ("": none) and the scales of the face and text tokens."""

    face: Image.Image | None = None
    prompt: str = ""
    negative_prompt: str = ""
    face_scale: float = 1.0
    text_scale: float = 1.0


def check_content_scale(name: str, scale: float) -> None:
    """Refuse a face or text scale that is not a finite number >= 0."""
    if not (math.isfinite(scale) and scale >= 0):
        raise AnimateError(f"--{name}-scale must be a finite number >= 0, got {scale}")


def content_rows(content: Content, guided: bool, face: bool) -> dict[str, tuple]:
    """Per video of the batch ([uncond, cond] with CFG, else [cond]) the face and text sets it reads (-1: none) and
    their scales: the conditional video reads the face (set 0) and the prompt (text set 0); the unconditional one
    reads no face, and the negative prompt (text set 1, or 0 without a prompt) when there is one."""
    prompt, negative = bool(content.prompt), guided and bool(content.negative_prompt)
    negative_set = int(prompt) if negative else -1
    face_index = ((-1,) if guided else ()) + ((0,) if face else (-1,))
    text_index = ((negative_set,) if guided else ()) + ((0,) if prompt else (-1,))
    videos = len(face_index)
    return {"face_index": face_index, "face_scale": (content.face_scale,) * videos,
            "text_index": text_index, "text_scale": (content.text_scale,) * videos}


@dataclass
class AnimateSettings:
    """Sampling options of one video."""

    width: int
    height: int
    steps: int = 30
    guidance: float = 3.5
    context_frames: int = 24
    context_overlap: int = 4
    sampler: str = "ddim"
    seed: int = 0
    reference: bool = True  # False (ablation): no reference tokens, only the CLIP context of the photo
    motion: bool = True  # False (ablation): motion modules skipped, every frame denoised on its own
    cfg_steps: float = 1.0  # fast mode: CFG for this first share of the steps, then the conditional half alone
    cache_interval: int = 1  # fast mode (DeepCache): the deep blocks run every K steps, their output reused between
    window_batch: int = 1  # windows per UNet call (the same video; more memory, fewer calls)

    def guided_steps(self, steps: int) -> int:
        """How many of the first steps run CFG (0 at guidance 1)."""
        return 0 if self.guidance == 1.0 else math.ceil(round(self.cfg_steps * steps, 6))


def check_speed_settings(cfg_steps: float, cache_interval: int, window_batch: int) -> None:
    """Refuse a CFG share outside [0, 1] (NaN too), a cache interval or a window batch below 1, in one line."""
    if not 0 <= cfg_steps <= 1:
        raise AnimateError(f"--cfg-steps must be a share of the steps in [0, 1], got {cfg_steps}")
    if cache_interval < 1:
        raise AnimateError(f"--cache-interval must be at least 1 (1: no caching), got {cache_interval}")
    if window_batch < 1:
        raise AnimateError(f"--window-batch must be at least 1, got {window_batch}")


def clip_pixels(image: Image.Image) -> torch.Tensor:
    """The reference as CLIP input: 224×224 bicubic (aspect ignored), OpenAI mean/std; [1, 3, 224, 224]."""
    pixels = np.asarray(image.convert("RGB").resize((224, 224), Image.BICUBIC), dtype=np.float32) / 255.0
    pixels = (pixels - np.array(OPENAI_CLIP_MEAN, dtype=np.float32)) / np.array(OPENAI_CLIP_STD, dtype=np.float32)
    return torch.from_numpy(pixels).permute(2, 0, 1)[None]


def vae_pixels(image: Image.Image, width: int, height: int) -> torch.Tensor:
    """The reference resized to (width, height), scaled to [-1, 1]; [1, 3, H, W]."""
    pixels = np.asarray(image.convert("RGB").resize((width, height), Image.BILINEAR), dtype=np.float32)
    return torch.from_numpy(pixels / 127.5 - 1.0).permute(2, 0, 1)[None]


def pose_pixels(frames: np.ndarray) -> torch.Tensor:
    """uint8 pose images [n, H, W, 3] → float [n, 3, H, W] in [0, 1] (the pose guider's input, not normalised)."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0


class WindowBatch:
    """One video's per-call inputs for a UNet call over several windows at once: the latents of each window stacked
    as videos ([uncond windows, cond windows] with CFG), their pose features, contexts, reference rows, guide and
    control images."""

    def __init__(self, pipeline: "AnimatePipeline", poses: PoseFrames, clip_context: torch.Tensor,
                 reference: list[torch.Tensor] | None, guides: dict[bool, "Guide | None"], motion: bool):
        self.pipeline, self.poses, self.clip_context = pipeline, poses, clip_context
        self.reference, self.guides, self.motion = reference, guides, motion

    def frames(self, source: PoseFrames, windows: list[range]) -> torch.Tensor:
        """The windows' frames of `source` as [n, F, 3, H, W] in [0, 1] on the pipeline's device."""
        pipeline = self.pipeline
        return torch.stack([pose_pixels(source.read(w.start, w.stop)) for w in windows]).to(pipeline.device,
                                                                                           pipeline.dtype)

    def predict(self, x: torch.Tensor, t: torch.Tensor, windows: list[range], guided: bool,
                controls: Sequence[Control], deep: torch.Tensor | None,
                keep_deep: bool) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The UNet's output on the windows' latents x [n, C, F, h, w] (both CFG halves when guided), with every
        acting ControlNet's residuals; (output, deep blocks' output) when `keep_deep`."""
        models, n = self.pipeline.models, len(windows)
        pose_features = models.pose_guider(self.frames(self.poses, windows).flatten(0, 1))
        context = self.clip_context.expand(n, -1, -1)
        reference_index = [0] * n
        if guided:
            x = torch.cat([x, x])
            context = torch.cat([torch.zeros_like(context), context])
            reference_index = [-1] * n + reference_index  # CFG's unconditional half reads no reference
        down, mid = sum_residuals([
            control.net(x, t, context, self.frames(control.frames, windows).transpose(1, 2), control.scale,
                        self.motion)
            for control in controls])
        guide = self.guides[guided]
        return models.animate_unet(x, t, context, pose_features, reference=self.reference,
                                   reference_index=reference_index, motion=self.motion, down_residuals=down,
                                   mid_residual=mid, guide=guide.repeat(n) if guide is not None else None,
                                   deep=deep, keep_deep=keep_deep)


class AnimatePipeline:
    """Animate Anyone inference: ReferenceNet once per video, windowed denoising with CFG, chunked decoding.

    It runs the models as they are (a training run previews its own); `for_inference` readies loaded ones first.
    """

    def __init__(self, models: AnimateModels, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 offload: bool = False, decoder: torch.nn.Module | None = None):
        self.models = models
        self.device = torch.device(device)
        self.dtype = dtype
        self.offload = offload
        self.decoder = decoder if decoder is not None else models.vae  # the VAE, or a tiny decoder of its latents

    @classmethod
    def for_inference(cls, models: AnimateModels, device: str | torch.device = "cpu",
                      dtype: torch.dtype = torch.float32, offload: bool = False,
                      decoder: torch.nn.Module | None = None) -> "AnimatePipeline":
        """A pipeline over `models` (and a `decoder` to use instead of the VAE's) put in eval mode, frozen and cast to
        `dtype`, on `device` (the CPU when offloading: each model then visits the device while it runs)."""
        pipeline = cls(models, device, dtype, offload, decoder)
        for module in [*models.modules().values(), *([decoder] if decoder is not None else [])]:
            pipeline.ready(module)
        return pipeline

    def per_step_models(self) -> dict[str, torch.nn.Module]:
        """The models that run every step or every frame (what --compile compiles): the denoising UNet, the
        ControlNets and the decoder's decoding network."""
        controls = {f"{kind} ControlNet": net for kind, net in self.models.controlnets.items()}
        return {"denoising UNet": self.models.animate_unet, **controls, "decoder": self.decoder.decoder}

    def ready(self, module: torch.nn.Module) -> torch.nn.Module:
        """A model for this pipeline to run (a ControlNet): eval mode, frozen, in its precision, on its device (the
        CPU when offloading)."""
        module.eval().requires_grad_(False)
        torch.nn.Module.to(module, device="cpu" if self.offload else self.device, dtype=self.dtype)
        return module

    @contextmanager
    def _using(self, *modules: torch.nn.Module):
        """Have the modules on the compute device for the block (moved back afterwards when offloading)."""
        if self.offload:
            for module in modules:
                module.to(self.device)
        try:
            yield
        finally:
            if self.offload:
                for module in modules:
                    module.to("cpu")

    @property
    def max_context_frames(self) -> int | None:
        """The longest window the motion modules' position table allows (None: no motion modules)."""
        return self.models.animate_unet.motion_pe_length

    def encode_reference(self, image: Image.Image, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference latents [1, 4, H/s, W/s] (posterior mean, scaled; s = the VAE's scale), CLIP context [1, 1, D]."""
        vae, encoder = self.models.vae, self.models.image_encoder
        with self._using(vae, encoder):
            pixels = vae_pixels(image, width, height).to(self.device, self.dtype)
            latents = vae.encode(pixels).latent_dist.mean * vae.config.scaling_factor
            embeds = encoder(clip_pixels(image).to(self.device, self.dtype)).image_embeds
        return latents, embeds[:, None]

    def encode_face(self, face: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
        """A face crop's CLIP image embedding [1, 1, D] (the context of a video without a photo) and the image
        encoder's penultimate hidden states [1, M, H] (the guider's input)."""
        encoder = self.models.image_encoder
        with self._using(encoder):
            out = encoder(clip_pixels(face).to(self.device, self.dtype), output_hidden_states=True)
        return out.image_embeds[:, None], out.hidden_states[-2]

    def content_guide(self, content: Content, guided: bool, face_features: torch.Tensor | None) -> Guide | None:
        """The UNet calls' Guide for a video's content (None when it asks for nothing): face tokens from the face
        crop's features, text tokens from the prompts, keys and values computed once for the whole video."""
        models = self.models
        prompts = [p for p in (content.prompt, content.negative_prompt if guided else "") if p]
        if face_features is None and not prompts:
            return None
        guider = models.guider
        if guider is None:
            raise AnimateError("--face and --prompt need a content guider (a weight set with one, or --guider PATH)")
        with self._using(guider):
            face = None if face_features is None else guider.tokens("face", guider.face_tokens(face_features))
            text = None
            if prompts:
                if models.text_encoder is None:
                    raise AnimateError("--prompt needs a text encoder: run `animate download --set text`")
                with self._using(models.text_encoder):
                    encoded = encode_prompts(models.tokenizer, models.text_encoder, prompts)
                for prompt, cut in zip(prompts, encoded.truncated):
                    if cut:
                        warnings.warn(f"the prompt {prompt[:40]!r}... is longer than "
                                      f"{models.tokenizer.model_max_length} tokens: the rest is ignored")
                text = guider.tokens("text", encoded.tokens.to(self.dtype))
        return Guide(face=face, text=text, **content_rows(content, guided, face is not None))

    def check(self, settings: AnimateSettings) -> None:
        """Reject settings the loaded models cannot run, with one clear line."""
        scale = self.models.latent_scale
        if settings.width % scale or settings.height % scale or settings.width < scale or settings.height < scale:
            raise AnimateError(f"width and height must be positive multiples of {scale} (the VAE's scale), "
                               f"got {settings.width}x{settings.height}")
        if settings.context_frames < 1:
            raise AnimateError(f"--context-frames must be at least 1, got {settings.context_frames}")
        limit = self.max_context_frames
        if limit is not None and settings.context_frames > limit:
            raise AnimateError(
                f"--context-frames {settings.context_frames} exceeds the motion modules' position table ({limit} frames)"
            )
        if not 0 <= settings.context_overlap < settings.context_frames:
            raise AnimateError(f"--context-overlap must be in [0, {settings.context_frames - 1}], got {settings.context_overlap}")
        if settings.steps < 1:
            raise AnimateError(f"--steps must be at least 1, got {settings.steps}")
        check_guidance(settings.guidance)
        check_speed_settings(settings.cfg_steps, settings.cache_interval, settings.window_batch)

    def initial_latents(self, num_frames: int, settings: AnimateSettings) -> torch.Tensor:
        """Seeded Gaussian noise [1, 4, F, H/s, W/s], drawn on the CPU so a seed gives the same video on any device."""
        generator = torch.Generator().manual_seed(settings.seed)
        scale = self.models.latent_scale
        channels = self.models.denoising_unet.config.in_channels
        shape = (1, channels, num_frames, settings.height // scale, settings.width // scale)
        return torch.randn(shape, generator=generator, dtype=torch.float32)

    @torch.no_grad()
    def denoise(self, image: Image.Image | None, poses: PoseFrames, settings: AnimateSettings,
                latents: torch.Tensor | None = None, progress: bool = True,
                controls: Sequence[Control] = (), content: Content | None = None,
                on_step: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
        """Denoised latents [1, 4, F, H/s, W/s] for every pose frame: float32, or float64 when the models run in
        float64. `controls`: Video ControlNets whose residuals join every window's call (both CFG halves).
        `content`: the guider's face and prompts (the conditional half only, a negative prompt the unconditional).
        Without a photo (`image` None) there are no reference tokens and the CLIP context is the face crop's.
        `on_step(step, latents)` sees the latents after each step."""
        self.check(settings)
        num_frames = len(poses)
        if num_frames < 1:
            raise AnimateError("the pose input has no frames")
        check_controls(controls, num_frames, settings.context_frames)
        content = content or Content()
        check_content_scale("face", content.face_scale)
        check_content_scale("text", content.text_scale)
        models = self.models
        face_context, face_features = self.encode_face(content.face) if content.face is not None else (None, None)
        reference = None
        if image is not None:
            reference_latents, clip_context = self.encode_reference(image, settings.width, settings.height)
            if settings.reference:
                with self._using(models.reference_net):
                    reference = models.reference_net(reference_latents, clip_context)
        elif face_context is not None:
            clip_context = face_context
        else:
            clip_context = torch.zeros(1, 1, models.image_encoder.config.projection_dim, device=self.device,
                                       dtype=self.dtype)
        scheduler = make_scheduler(settings.sampler)
        scheduler.set_timesteps(settings.steps, device=self.device)
        if latents is None:
            latents = self.initial_latents(num_frames, settings)
        latents = latents.to(self.device, accumulation_dtype(self.dtype)) * scheduler.init_noise_sigma

        motion = settings.motion and self.max_context_frames is not None
        overlap = settings.context_overlap if motion else 0
        windows = context_windows(num_frames, settings.context_frames, overlap)
        weights = [w.to(self.device) for w in blend_weights(windows, num_frames, overlap)]
        steps = len(scheduler.timesteps)
        guided_steps = settings.guided_steps(steps)
        guides = {guided: self.content_guide(content, guided, face_features)
                  for guided in {step < guided_steps for step in range(steps)}}
        batch = WindowBatch(self, poses, clip_context, reference, guides, motion)
        groups = [range(start, min(start + settings.window_batch, len(windows)))
                  for start in range(0, len(windows), settings.window_batch)]
        caches: dict[int, torch.Tensor] = {}  # per window group, the deep blocks' output (DeepCache)
        cache_device = torch.device("cpu") if self.device.type == "cuda" else self.device  # device memory stays flat
        with self._using(models.animate_unet, *(control.net for control in controls)):
            for step, t in enumerate(tqdm(scheduler.timesteps, desc="denoising", disable=not progress)):
                guided = step < guided_steps
                acting = [control for control in controls if control.acts_at(step, steps)]
                refresh = settings.cache_interval > 1 and step % settings.cache_interval == 0
                prediction = torch.zeros_like(latents)
                for group_index, group in enumerate(groups):
                    group_windows = [windows[i] for i in group]
                    x = torch.cat([scheduler.scale_model_input(latents[:, :, w.start : w.stop], t)
                                   for w in group_windows]).to(self.dtype)
                    deep = None
                    if settings.cache_interval > 1 and not refresh:
                        deep = caches[group_index].to(self.device)
                        if not guided and len(deep) == 2 * len(x) * x.shape[2]:  # CFG stopped: the conditional rows
                            deep = deep[len(deep) // 2 :]
                    out = batch.predict(x, t, group_windows, guided, acting, deep, keep_deep=refresh)
                    if refresh:
                        out, kept = out
                        caches[group_index] = kept.to(cache_device)
                    out = out.to(latents.dtype)
                    if guided:
                        out = classifier_free_guidance(out, settings.guidance)
                    for i, window in zip(group, group_windows):
                        part = out[i - group.start : i - group.start + 1]
                        prediction[:, :, window.start : window.stop] += part * weights[i][None, None, :, None, None]
                latents = scheduler.step(prediction, t, latents).prev_sample
                if on_step is not None:
                    on_step(step, latents)
        return latents

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, chunk: int = 8, float_output: bool = False,
               frames_per_call: int | None = None) -> Iterator[np.ndarray]:
        """Decode [1, 4, F, h, w] latents into RGB frames [n, H, W, 3], yielded `chunk` frames at a time: uint8, or
        with `float_output` float32 in [0, 1], not rounded to 8 bits (for comparisons). The decoder sees
        `frames_per_call` frames at a time (default: 8 on a GPU, where a batch fills it; 1 elsewhere, and when
        offloading for a small GPU: flat memory)."""
        vae = self.decoder
        if frames_per_call is None:
            frames_per_call = 8 if self.device.type == "cuda" and not self.offload else 1
        if frames_per_call < 1:
            raise AnimateError(f"frames_per_call must be at least 1, got {frames_per_call}")
        with self._using(vae):
            for start in range(0, latents.shape[2], chunk):
                z = latents[0, :, start : start + chunk].transpose(0, 1).to(self.device, self.dtype)
                z = z / vae.config.scaling_factor
                images = torch.cat([vae.decode(frames).sample for frames in z.split(frames_per_call)]).float()
                if float_output:
                    images = ((images + 1) / 2).clamp(0, 1)
                else:
                    images = ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
                yield images.permute(0, 2, 3, 1).cpu().numpy()
