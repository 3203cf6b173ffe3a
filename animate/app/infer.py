"""`animate infer`: a photo and a pose video in, an mp4 of that person dancing out."""

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from ..dtypes import resolve_device
from ..errors import AnimateError
from ..media.image import canvas_size, load_image
from ..torch_files import check_torch_file
from ..models.bundle import AnimateModels
from ..models.tiny_decoder import load_tiny_decoder, tiny_decoder_folder
from ..models.weights import describe, load_models
from ..pipeline.animate import AnimatePipeline, AnimateSettings, Content, check_speed_settings
from ..pipeline.compile import check_compiler, compiled_models
from ..pose.face import face_crop
from ..pose.frames import PoseFrames
from ..pose.keypoints import PoseSequence
from ..pose.retarget import Placement
from ..pose.sources import (FOLDER_FPS, POSE_TYPES, Backend, detect_pose_type, driving_keypoints, fit_to_canvas,
                           fit_to_photo, load_keypoints, pose_image_files, renderer)
from ..profiles import Profile, get_profile
from .messages import say
from .content import FACE_MODES, add_guider, check_content_options, face_from_file
from .controls import (ControlOptions, add_controlnets, check_control_options, check_depth_length, depth_frames,
                       run_controls)
from .outputs import FrameFolder, check_output_folder, published_together
from ..pipeline.guidance import check_guidance
from ..media.upscale import UPSCALER_DIR, Upscaler, check_tile, upscaler_weights
from ..media.video import OutputTaken, VideoWriter, audio_codec, probe_video

DEFAULT_UPSCALERS = {2: "realesrgan-x2plus", 4: "realesrgan-x4plus"}
PHOTO_FREE_ASPECT = (512, 768)  # without --ref: DreamMoving's 512x768 at sd15 (the profile's short side elsewhere)


@dataclass
class InferOptions:
    """Everything `animate infer` needs (None = the profile's or the input's default)."""

    ref: Path | None
    pose: Path
    weights: str = "pretrained_weights"
    out: Path | None = None
    force: bool = False
    width: int | None = None
    height: int | None = None
    max_frames: int | None = None
    fps: float | None = None
    seed: int = 42
    steps: int | None = None
    cfg: float | None = None
    context_frames: int | None = None
    context_overlap: int | None = None
    sampler: str | None = None  # None: the student's, else ddim
    device: str = "auto"
    dtype: str = "auto"
    offload: bool = False
    profile: str | None = None
    motion_module: Path | None = None
    grid: bool = False
    crf: int = 18
    frames_dir: Path | None = None
    upscale: int | None = None
    upscaler: str | None = None
    upscale_tile: int = 512
    no_reference: bool = False
    no_motion: bool = False
    progress: bool = True
    pose_type: str = "auto"
    no_align: bool = False
    pose_backend: str = "mediapipe"
    dwpose_dir: Path | None = None
    controls: ControlOptions = ControlOptions()
    face: str = "auto"  # auto (the photo's face), none, or another photo of the person
    prompt: str = ""
    negative_prompt: str = ""
    face_scale: float = 1.0
    text_scale: float | None = None  # None: 1.0 (given without a prompt: refused)
    guider: Path | None = None
    window_batch: int | None = None  # None: 1
    compile: bool = False
    compile_fallback: bool = False
    cfg_steps: float | None = None  # None: 1.0 (CFG on every step)
    cache_interval: int | None = None  # None: 1 (no DeepCache)
    decoder: str | None = None  # vae | tiny; None: vae (tiny under --fast when TAESD fits the weights)
    fast: bool = False


# What --fast sets where the command line leaves an option unset: the fastest measured combination within the
# reference run's quality (README, docs/benchmarks.md); on a distilled student (its own steps, no CFG) and on a plain
# weight set. Both also decode with TAESD when it fits the weights.
# Measured on the demo (docs/benchmarks.md, "Speed modes"): a student is best alone (DeepCache on its 4 steps lost
# 0.07 dB and a per-video tie); a plain set is best at UniPC 10 with CFG on the first half and DeepCache at 2.
FAST_STUDENT_PRESET: dict = {}
FAST_PRESET = {"sampler": "unipc", "steps": 10, "cfg_steps": 0.5, "cache_interval": 2}
SPEED_DEFAULTS = {"cfg_steps": 1.0, "cache_interval": 1, "window_batch": 1}


def case_name(options: InferOptions) -> str:
    """What names a case's output: the photo's stem, else the face photo's, else "text"."""
    if options.ref is not None:
        return Path(options.ref).stem
    return "text" if options.face in FACE_MODES else Path(options.face).stem


def output_path(name: str, pose: Path, seed: int, out: Path | None, force: bool) -> Path:
    """-o as given (refused if it exists, unless forced), else outputs/<name>_<pose>_<seed>.mp4, numbered if taken."""
    if out is not None:
        if out.suffix.lower() != ".mp4":
            raise AnimateError(f"-o/--out must end in .mp4, got {out}")
        if out.is_dir():
            raise AnimateError(f"-o/--out {out} is a folder")
        if out.exists() and not force:
            raise AnimateError(f"{out} already exists (use --force to overwrite)")
        return out
    base = Path("outputs") / f"{name}_{pose.stem}_{seed}"
    candidate, n = Path(f"{base}.mp4"), 1  # not with_suffix: a dotted stem (dance.pose.npz) would lose its seed
    while candidate.exists() or grid_path(candidate).exists():
        candidate, n = Path(f"{base}_{n}.mp4"), n + 1
    return candidate


def grid_path(out: Path) -> Path:
    """Where --grid writes its side-by-side video."""
    return out.with_name(f"{out.stem}_grid.mp4")


@dataclass
class InferSession:
    """What stays loaded across cases: the models and pipeline on their device, and upscalers by (name, scale)."""

    options: InferOptions
    pipeline: AnimatePipeline
    profile: Profile
    upscalers: dict[tuple[str, int], Upscaler]
    notes: list[str]  # said once, when the first case has passed its checks


@dataclass(frozen=True)
class CaseInputs:
    """A case's inputs once checked: the photo (None: DreamMoving's text + face mode), what the pose input is, where
    the result goes, the ControlNet kinds, and the face crop of an explicit --face photo."""

    reference: Image.Image | None
    pose_type: str
    out: Path
    control_kinds: tuple[str, ...] = ()
    face: Image.Image | None = None


def check_case(options: InferOptions) -> CaseInputs:
    """Every cheap check of a case's options and inputs, before any model work."""
    if options.max_frames is not None and options.max_frames < 1:
        raise AnimateError(f"-L must be at least 1, got {options.max_frames}")
    if options.fps is not None and options.fps <= 0:
        raise AnimateError(f"--fps must be positive, got {options.fps}")
    if options.pose_type not in POSE_TYPES:
        raise AnimateError(f"unknown --pose-type {options.pose_type!r} (choose from {', '.join(POSE_TYPES)})")
    if not 0 <= options.crf <= 51:
        raise AnimateError(f"--crf must be between 0 and 51, got {options.crf}")
    if options.upscale not in (None, 2, 4):
        raise AnimateError(f"--upscale must be 2 or 4, got {options.upscale}")
    if options.upscaler is not None and options.upscale is None:
        raise AnimateError("--upscaler goes with --upscale 2 or 4")
    if options.cfg is not None:
        check_guidance(options.cfg)
    check_speed_settings(*(SPEED_DEFAULTS[name] if getattr(options, name) is None else getattr(options, name)
                           for name in SPEED_DEFAULTS))
    check_tile(options.upscale_tile)
    check_content_options(options.face, options.prompt, options.face_scale, options.text_scale, options.ref is not None)
    reference = None if options.ref is None else load_image(options.ref)
    pose_type = detect_pose_type(Path(options.pose)) if options.pose_type == "auto" else options.pose_type
    if pose_type == "video" and Path(options.pose).is_dir():
        raise AnimateError(f"{options.pose}: a folder is read as rendered pose frames (--pose-type skeleton) or "
                           "OpenPose JSON files (keypoints), not as a real video's frames: make a video of those")
    if pose_type == "skeleton" and Path(options.pose).is_dir():
        if not pose_image_files(Path(options.pose)):
            raise AnimateError(f"{options.pose}: a folder of rendered pose frames needs PNG/JPEG/WebP/BMP images, "
                               "and this one holds none")
    elif pose_type in ("video", "skeleton"):
        probe_video(options.pose)
    out = output_path(case_name(options), Path(options.pose), options.seed, options.out, options.force)
    check_output_folder(out)
    if options.grid and grid_path(out).exists() and not options.force:
        raise AnimateError(f"{grid_path(out)} already exists (use --force to overwrite)")
    if options.frames_dir is not None:
        FrameFolder(options.frames_dir, overwrite=options.force)  # refuses an existing folder up front
        check_output_folder(options.frames_dir)
    if options.upscale is not None:  # missing or unreadable upscaler weights are found before any model loads
        weights = upscaler_weights(upscaler_name(options), upscaler_dir(options.weights))
        if weights is not None:
            check_torch_file(weights)
    if pose_type == "keypoints":  # a bad keypoint file too (read again, cheaply, when the case runs)
        load_keypoints(Path(options.pose))
    kinds = check_control_options(options.controls, pose_type)
    if "depth" in kinds:  # a given depth too short for the dance, before any model loads
        check_depth_length(options.controls, dance_length(options, pose_type))
    face = None if options.face in FACE_MODES else face_from_file(Path(options.face), pose_backend(options))
    return CaseInputs(reference, pose_type, out, tuple(kinds), face)


def with_preset(options: InferOptions, student: bool) -> InferOptions:
    """The options with --fast's values (a student's preset or the plain one) where they are unset, then every unset
    speed option at its default."""
    preset = (FAST_STUDENT_PRESET if student else FAST_PRESET) if options.fast else {}
    chosen = {name: value for name, value in preset.items() if getattr(options, name) is None}
    chosen |= {name: default for name, default in SPEED_DEFAULTS.items()
               if getattr(options, name) is None and name not in chosen}
    return replace(options, **chosen)


def session_decoder(options: InferOptions, models: AnimateModels) -> tuple[torch.nn.Module | None, list[str]]:
    """The tiny decoder when --decoder tiny asks for it (one line when it is missing or does not fit), or under
    --fast when TAESD is there and fits these weights; None for the VAE. Also the notes to say."""
    if options.decoder == "vae" or (options.decoder is None and not options.fast):
        return None, []
    channels = models.vae.config.latent_channels
    if options.decoder == "tiny":
        return load_tiny_decoder(options.weights, models.latent_scale, channels), ["decoder: TAESD (tiny)"]
    try:
        return load_tiny_decoder(options.weights, models.latent_scale, channels), ["--fast: decoder TAESD (tiny)"]
    except AnimateError as err:
        return None, [f"note: --fast decodes with the VAE ({err})"]


def dance_length(options: InferOptions, pose_type: str) -> int:
    """How many of the dance's frames the run uses (-L included)."""
    if pose_type == "keypoints":
        count = len(load_keypoints(Path(options.pose)))
    elif Path(options.pose).is_dir():
        count = len(pose_image_files(Path(options.pose)))
    else:
        count = probe_video(options.pose).num_frames
    return min(count, options.max_frames or count)


def open_session(options: InferOptions) -> InferSession:
    """Load the weight set once onto the device (the model-level options: weights, profile, device, dtype, offload)."""
    device, dtype = resolve_device(options.device, options.dtype)
    if options.decoder == "tiny":
        tiny_decoder_folder(options.weights)  # missing: its one line, before the models load
    compile_models = options.compile or options.compile_fallback  # --compile-fallback alone means --compile too
    compile_warning = check_compiler("inductor", device, options.compile_fallback) if compile_models else None
    models = load_models(options.weights, profile=options.profile, motion_module=options.motion_module)
    control_notes = add_controlnets(models, options.controls, str(options.weights))
    guider_notes = add_guider(models, options.guider, options.weights)
    decoder, decoder_notes = session_decoder(options, models)
    pipeline = AnimatePipeline.for_inference(models, device, dtype, offload=options.offload, decoder=decoder)
    notes = [f"loaded {options.weights}: {describe(models)}", *control_notes, *guider_notes, *decoder_notes]
    if compile_warning is not None:
        notes.append(compile_warning)
    elif compile_models:
        notes.append(f"compiled (inductor, channels-last): {', '.join(compiled_models(pipeline.per_step_models()))}")
    if str(options.weights).startswith("random:"):
        notes.insert(0, "note: random weights — the video shows structure only, not a person (demo until a trained "
                        "model ships)")
    return InferSession(options, pipeline, get_profile(models.profile), {}, notes)


def run_infer(options: InferOptions) -> Path:
    """Run the whole job and return the written mp4's path."""
    inputs = check_case(options)
    return run_case(open_session(options), options, inputs)


def run_case(session: InferSession, options: InferOptions, inputs: CaseInputs) -> Path:
    """One (photo, pose) case on the session's models: settings, keypoints, denoising, the finished files."""
    options = with_preset(options, session.pipeline.models.student is not None)
    profile, pipeline, reference = session.profile, session.pipeline, inputs.reference
    width, height = canvas_size(*(PHOTO_FREE_ASPECT if reference is None else reference.size), options.width,
                                options.height, profile.short_side)
    student = pipeline.models.student  # a distilled student: its own steps and sampler, CFG in its weights
    settings = AnimateSettings(
        width=width, height=height, seed=options.seed,
        sampler=options.sampler or (student.sampler if student else "ddim"),
        steps=options.steps if options.steps is not None else student.steps if student else profile.steps,
        guidance=options.cfg if options.cfg is not None else student.guidance if student else profile.guidance,
        context_frames=options.context_frames if options.context_frames is not None else profile.context_frames,
        context_overlap=options.context_overlap if options.context_overlap is not None else profile.context_overlap,
        reference=not options.no_reference, motion=not options.no_motion,
        cfg_steps=options.cfg_steps, cache_interval=options.cache_interval, window_batch=options.window_batch,
    )
    pipeline.check(settings)
    upscaler = session_upscaler(session, options)
    auto_face = options.face == "auto" and reference is not None and pipeline.models.guider is not None
    align = reference is not None and not options.no_align and inputs.pose_type != "skeleton"
    photo_keypoints = pose_backend(options).image(reference, need_body=align) if auto_face or align else None
    dance = None if inputs.pose_type == "skeleton" else fitted_keypoints(options, inputs.pose_type, reference,
                                                                          photo_keypoints, (width, height))
    keypoints = None if dance is None else dance.fitted
    face = inputs.face
    if auto_face:
        face = face_crop(reference, photo_keypoints[0], photo_keypoints[2])
    # Only once every option and input has been accepted: a rejected run's stderr is its one error line.
    for note in session.notes:
        say(note)
    session.notes.clear()
    if auto_face and face is None:
        say("warning: no face found in the photo (a back view, or too small): running without face tokens")
    content = Content(face=face, prompt=options.prompt, negative_prompt=options.negative_prompt,
                      face_scale=options.face_scale, text_scale=1.0 if options.text_scale is None else options.text_scale)
    poses, pose_fps = pose_frames(options, keypoints, profile, width, height)
    fps = options.fps or pose_fps
    audio = Path(options.pose) if inputs.pose_type in ("video", "skeleton") and Path(options.pose).is_file() else None
    if audio is not None and options.fps and abs(options.fps - pose_fps) > 1e-3 and audio_codec(audio):
        say(f"note: --fps {options.fps:g} differs from the dance's {pose_fps:g} fps: its audio will not line up")
    depth = None
    try:
        if "depth" in inputs.control_kinds:
            depth = depth_frames(options.controls, Path(options.pose), dance and dance.driving,
                                 dance and dance.placement, (width, height) if reference is None else reference.size,
                                 (width, height), len(poses),
                                 options.progress)
        controls = run_controls(pipeline.models, options.controls, poses, depth)
        latents = pipeline.denoise(reference, poses, settings, progress=options.progress, controls=controls,
                                   content=content)
        shown = reference if reference is not None else face if face is not None else Image.new("RGB", (width, height))
        outputs = ResultFiles(inputs.out, fps, options, audio, poses if options.grid else None, shown, upscaler)
        return outputs.write(pipeline.decode(latents))
    finally:
        poses.close()
        if depth is not None:
            depth.close()


def session_upscaler(session: InferSession, options: InferOptions) -> Upscaler | None:
    """The case's upscaler (loaded once per name and scale), or None without --upscale."""
    if options.upscale is None:
        return None
    key = (upscaler_name(options), options.upscale)
    if key not in session.upscalers:
        pipeline = session.pipeline
        session.upscalers[key] = Upscaler(*key, upscaler_dir(session.options.weights), device=pipeline.device,
                                          dtype=pipeline.dtype, tile=options.upscale_tile)
        session.notes.append(session.upscalers[key].describe())
    return session.upscalers[key]


@dataclass(frozen=True)
class Dance:
    """The dance's keypoints as extracted or read, retargeted to the photo, and the placement of the whole."""

    driving: PoseSequence
    fitted: PoseSequence
    placement: Placement


def pose_backend(options: InferOptions) -> Backend:
    """The keypoint extractor of a case (DWPose files looked for in the weights folder unless --dwpose-dir)."""
    weights = Path(options.weights)
    return Backend(options.pose_backend,
                   options.dwpose_dir or (weights if weights.is_dir() else Path("pretrained_weights")))


def fitted_keypoints(options: InferOptions, pose_type: str, reference: Image.Image | None,
                     photo_keypoints: tuple | None, canvas: tuple[int, int]) -> Dance:
    """The dance's keypoints (extracted or read), retargeted to the photo's body unless --no-align; without a
    photo, fitted into the canvas whole."""
    backend = pose_backend(options)
    driving = driving_keypoints(Path(options.pose), pose_type, options.max_frames, options.progress, backend)
    if reference is None:
        return Dance(driving, *fit_to_canvas(driving, canvas))
    return Dance(driving, *fit_to_photo(driving, reference, align=not options.no_align, backend=backend,
                                        photo_keypoints=photo_keypoints))


def pose_frames(options: InferOptions, keypoints: PoseSequence | None, profile: Profile,
                width: int, height: int) -> tuple[PoseFrames, float]:
    """Pose images at the output size and their frame rate: keypoints drawn in the profile's style, or a skeleton
    video or folder of its frames as is (a folder at FOLDER_FPS unless --fps says otherwise)."""
    if keypoints is not None:
        return PoseFrames.from_keypoints(keypoints, width, height, renderer(profile)), keypoints.fps
    say("note: --pose is a rendered skeleton: used as is (it cannot be retargeted to the photo's body)")
    if Path(options.pose).is_dir():
        files = pose_image_files(Path(options.pose))[: options.max_frames]
        return PoseFrames.from_images(files, width, height), FOLDER_FPS
    info = probe_video(options.pose)
    num_frames = min(info.num_frames, options.max_frames or info.num_frames)
    return PoseFrames.from_video(options.pose, width, height, num_frames), info.fps


def upscaler_name(options: InferOptions) -> str:
    """--upscaler, else the released network made for the --upscale factor."""
    return options.upscaler or DEFAULT_UPSCALERS[options.upscale]


def upscaler_dir(weights: str | Path) -> Path:
    """Where the Real-ESRGAN files are: <weights folder>/Real-ESRGAN, or pretrained_weights/Real-ESRGAN."""
    return Path(weights) / "Real-ESRGAN" if Path(weights).is_dir() else UPSCALER_DIR


class ResultFiles:
    """The finished files of a case: the mp4 (upscaled, with the dance's audio), the grid and the PNG frames."""

    def __init__(self, out: Path, fps: float, options: InferOptions, audio: Path | None,
                 grid_poses: PoseFrames | None, reference: Image.Image, upscaler: Upscaler | None):
        self.video = VideoWriter(out, fps, crf=options.crf, audio_from=audio, overwrite=options.force)
        self.grid = None if grid_poses is None else VideoWriter(grid_path(out), fps, crf=options.crf,
                                                                  overwrite=options.force)
        self.frames = None if options.frames_dir is None else FrameFolder(options.frames_dir, options.force)
        self.grid_poses, self.reference, self.upscaler, self.options = grid_poses, reference, upscaler, options

    def write(self, chunks: Iterator[np.ndarray]) -> Path:
        """Stream decoded chunks through the upscaler into every file; all of them appear at the end, or none.
        Returns where the video went."""
        staged = [w for w in (self.video, self.grid, self.frames) if w is not None]
        start, ref_frame = 0, None
        with published_together(staged, self._publish_video):
            for frames in chunks:
                final = frames if self.upscaler is None else self.upscaler(frames)
                self.video.write(final)
                if self.frames is not None:
                    self.frames.write(final)
                if self.grid is not None:  # at the generated size: a quick side-by-side look
                    if ref_frame is None:
                        ref_frame = np.asarray(self.reference.resize(frames.shape[2:0:-1], Image.BICUBIC))
                    poses = self.grid_poses.read(start, start + len(frames))
                    self.grid.write(np.concatenate([np.broadcast_to(ref_frame, frames.shape), poses, frames], axis=2))
                start += len(frames)
        return self.video.path

    def _publish_video(self) -> None:
        """Publish the video first; an auto-named one whose name another run took meanwhile takes the next free one."""
        while True:
            try:
                self.video.publish()
                return
            except OutputTaken:
                if self.options.out is not None:
                    raise
                self.video.path = output_path(case_name(self.options), Path(self.options.pose), self.options.seed,
                                              None, False)
                if self.grid is not None:
                    self.grid.path = grid_path(self.video.path)
