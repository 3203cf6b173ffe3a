"""Weight sets on disk: Moore-AnimateAnyone and MusePose .pth folders, AnimateDiff motion checkpoints, our safetensors.

Big models are built on the meta device and the loaded tensors assigned in place, so loading holds the
weights once. Every problem with a file is one line naming the file and the key.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import CLIPTextModel, CLIPTokenizer, CLIPVisionModelWithProjection

from ..atomic import atomic_path
from ..errors import AnimateError, first_line
from ..paths import model_size_dir
from ..pretrained import load_pretrained, no_progress_bars
from .bundle import AnimateModels, build_animate_unets, build_random_models
from .guider import ContentGuider
from .guider_files import build_guider, guider_tensors_and_metadata
from .controlnet_files import DEFAULT_SCALE, ControlNetState, build, split_keys, state_of, tensors_and_metadata
from .reference import ReferenceNet
from .student import StudentSampling, student_from_metadata
from .text import TEXT_DIR
from ..strict import check_state_dict
from ..torch_files import load_torch_file
from .unet import AnimateUNet

MOORE_FILES = {
    "reference_unet": "reference_unet.pth",
    "denoising_unet": "denoising_unet.pth",
    "pose_guider": "pose_guider.pth",
    "motion_module": "motion_module.pth",
}
OURS_FILE = "animate.safetensors"
FORMAT_VERSION = "1"
UNET_CONFIGS = ("stable-diffusion-v1-5/unet/config.json", "sd-image-variations-diffusers/unet/config.json", "unet/config.json")
VAE_DIRS = ("sd-vae-ft-mse", "vae")
IMAGE_ENCODER_DIR = "image_encoder"
TEXT_FOLDERS = (("text_encoder", "tokenizer"), (TEXT_DIR, TEXT_DIR))  # ours beside a weight file; `download --set text`'s
OUTPUT_HEAD_KEYS = ("conv_norm_out.weight", "conv_norm_out.bias", "conv_out.weight", "conv_out.bias")
MOTION_MARK = ".motion_modules."


@dataclass
class Checkpoint:
    """The three Animate Anyone state dicts of a weight set, what they imply, and where each came from."""

    reference_unet: dict[str, torch.Tensor]
    denoising_unet: dict[str, torch.Tensor]  # 2-D keys (+ motion-module keys for a stage-2 set)
    pose_guider: dict[str, torch.Tensor]
    unet_config: dict
    profile: str
    sources: dict[str, Path]  # reference_unet / denoising_unet / pose_guider / motion_module → file
    controlnets: dict[str, ControlNetState] = field(default_factory=dict)  # by kind (our layout only)
    guider: ContentGuider | None = None  # our layout only
    student: StudentSampling | None = None  # a step-distilled set's sampling (our layout only)

    @property
    def motion_pe(self) -> int | None:
        """Frames the motion modules' position tables cover (None for a stage-1 set)."""
        tables = [v.shape[1] for k, v in self.denoising_unet.items() if k.endswith("pos_encoder.pe")]
        return max(tables) if tables else None


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A flat state dict from .pth/.ckpt/.bin (weights_only, memory-mapped) or .safetensors."""
    path = Path(path)
    if not path.is_file():
        raise AnimateError(f"{path}: weight file not found")
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), "pt") as f:
                state = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as err:
            raise AnimateError(f"{path}: not a readable weight file ({first_line(err)})") from None
    else:
        state = load_torch_file(path)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AnimateError(f"{path}: not a state dict of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def split_motion(state: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """(2-D keys, motion-module keys) of a denoising-UNet state dict."""
    motion = {k: v for k, v in state.items() if MOTION_MARK in k}
    return {k: v for k, v in state.items() if MOTION_MARK not in k}, motion


def _find(root: Path, candidates: tuple[str, ...]) -> Path | None:
    for base in (root, root.parent):
        for name in candidates:
            if (base / name).exists():
                return base / name
    return None


def _unet_config(root: Path) -> dict:
    path = _find(root, UNET_CONFIGS) or model_size_dir("sd15") / "unet" / "config.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise AnimateError(f"{path}: not a readable UNet config.json ({err})") from None


def _read_moore(folder: Path, layout: str) -> Checkpoint:
    files = {name: folder / file for name, file in MOORE_FILES.items()}
    missing = [str(p) for name, p in files.items() if name != "motion_module" and not p.is_file()]
    if missing:
        raise AnimateError(f"incomplete weight set: missing {', '.join(missing)} (see `animate download`)")
    denoising, motion = split_motion(read_state_dict(files["denoising_unet"]))
    sources = {name: p for name, p in files.items() if p.is_file()}
    if files["motion_module"].is_file():
        motion = read_state_dict(files["motion_module"])
    elif motion:
        sources["motion_module"] = files["denoising_unet"]
    reference = read_state_dict(files["reference_unet"])
    for key in OUTPUT_HEAD_KEYS:
        reference.pop(key, None)
    checkpoint = Checkpoint(reference, {**denoising, **motion}, read_state_dict(files["pose_guider"]),
                            _unet_config(folder), layout, sources)
    if checkpoint.motion_pe and checkpoint.motion_pe >= 128:
        checkpoint.profile = "musepose"
    return checkpoint


def _read_ours(path: Path) -> Checkpoint:
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            keys = list(f.keys())
            if meta.get("format") != "animate":
                raise AnimateError(f"{path}: not an animate weight file (no 'format: animate' metadata)")
            parts: dict[str, dict] = {"reference_unet": {}, "denoising_unet": {}, "pose_guider": {}}
            controls, guider = {}, {}
            for key in keys:
                component, _, name = key.partition(".")
                if component in ("controlnet", "guider"):
                    (controls if component == "controlnet" else guider)[key] = f.get_tensor(key)
                    continue
                if component not in parts:
                    raise AnimateError(f"{path}: unexpected key {key!r}")
                parts[component][name] = f.get_tensor(key)
        config = json.loads(meta["unet_config"])
        controlnets = split_keys(controls, meta, path)
        content_guider = build_guider(guider, meta, path)
        student = student_from_metadata(meta, path)
    except AnimateError:
        raise
    except Exception as err:
        raise AnimateError(f"{path}: not a readable animate weight file ({first_line(err)})") from None
    sources = {name: path for name in parts}
    if any(MOTION_MARK in k for k in parts["denoising_unet"]):
        sources["motion_module"] = path
    return Checkpoint(parts["reference_unet"], parts["denoising_unet"], parts["pose_guider"], config,
                      meta.get("profile", "ours"), sources, controlnets, content_guider, student)


def read_checkpoint(path: Path, motion_module: Path | None = None) -> Checkpoint:
    """The state dicts of a weight set: a Moore or MusePose folder, our folder, or our .safetensors file.

    `motion_module` (a Moore motion_module.pth or AnimateDiff mm_sd_v15_v2.ckpt) replaces the set's motion modules.
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".safetensors":
        checkpoint = _read_ours(path)
    elif (path / OURS_FILE).is_file():
        checkpoint = _read_ours(path / OURS_FILE)
    elif (path / "MusePose" / MOORE_FILES["denoising_unet"]).is_file():
        checkpoint = _read_moore(path / "MusePose", "musepose")
    elif (path / MOORE_FILES["denoising_unet"]).is_file():
        checkpoint = _read_moore(path, "moore")
    elif not path.exists():
        raise AnimateError(f"weights not found: {path} (run `animate download --dir {path}`, or pass --weights)")
    else:
        raise AnimateError(
            f"{path}: no weight set here (expected {OURS_FILE}, {MOORE_FILES['denoising_unet']} or MusePose/)"
        )
    if motion_module is not None:
        two_d, _ = split_motion(checkpoint.denoising_unet)
        checkpoint.denoising_unet = {**two_d, **read_state_dict(Path(motion_module))}
        checkpoint.sources["motion_module"] = Path(motion_module)
    return checkpoint


def _pose_guider_channels(state: dict[str, torch.Tensor], source: Path) -> list[int]:
    """conv_in's width, then each stride-2 block's (blocks 1, 3, ...: three in the released guider)."""
    if "conv_in.weight" not in state:
        raise AnimateError(f"{source}: missing key 'conv_in.weight' for the pose guider")
    strided = sorted(int(k.split(".")[1]) for k in state if k.startswith("blocks.") and k.endswith(".weight"))[1::2]
    if not strided:
        raise AnimateError(f"{source}: the pose guider has no blocks")
    return [state["conv_in.weight"].shape[0]] + [state[f"blocks.{i}.weight"].shape[0] for i in strided]


def build_from_checkpoint(checkpoint: Checkpoint) -> tuple[ReferenceNet, AnimateUNet]:
    """ReferenceNet and AnimateUNet built on the meta device and loaded strictly (assign, no copy)."""
    src = checkpoint.sources
    pe_lengths = {v.shape[1] for k, v in checkpoint.denoising_unet.items() if k.endswith("pos_encoder.pe")}
    if len(pe_lengths) > 1:
        raise AnimateError(f"{src['motion_module']}: motion modules disagree on the position-table length {sorted(pe_lengths)}")
    channels = _pose_guider_channels(checkpoint.pose_guider, src["pose_guider"])
    try:
        with torch.device("meta"):
            reference_net, animate_unet = build_animate_unets(checkpoint.unet_config, channels, checkpoint.motion_pe)
    except (TypeError, ValueError, KeyError) as err:
        raise AnimateError(f"UNet config cannot be built: {err}") from None
    reference, denoising, pose_guider = reference_net.unet, animate_unet.unet, animate_unet.pose_guider
    config_note = "UNet built from its config.json"
    check_state_dict(reference, checkpoint.reference_unet, src["reference_unet"], f"ReferenceNet ({config_note})")
    two_d, motion = split_motion(checkpoint.denoising_unet)
    model_keys = set(denoising.state_dict())
    check_state_dict(denoising, two_d, src["denoising_unet"], f"denoising UNet ({config_note})",
                     {k for k in model_keys if MOTION_MARK not in k})
    if motion:
        check_state_dict(denoising, motion, src["motion_module"], "motion modules (AnimateDiff v2 layout: 21 modules)",
                         {k for k in model_keys if MOTION_MARK in k})
    check_state_dict(pose_guider, checkpoint.pose_guider, src["pose_guider"], "pose guider")
    reference.load_state_dict(checkpoint.reference_unet, strict=True, assign=True)
    denoising.load_state_dict(checkpoint.denoising_unet, strict=True, assign=True)
    pose_guider.load_state_dict(checkpoint.pose_guider, strict=True, assign=True)
    return reference_net, animate_unet


def load_models(spec: str | Path, profile: str | None = None, motion_module: Path | None = None,
                motion: bool = True) -> AnimateModels:
    """All five models of a weight set, on the CPU in the files' precision (the pipeline casts once, when moving them).

    `random:SIZE` builds random weights of that size; `motion=False` leaves the motion modules out (stage 1).
    """
    spec_text = str(spec)
    if spec_text.startswith("random:"):
        models = build_random_models(spec_text.split(":", 1)[1], motion=motion)
    else:
        root = Path(spec)
        checkpoint = read_checkpoint(root, motion_module)
        if not motion:
            checkpoint.denoising_unet = split_motion(checkpoint.denoising_unet)[0]
        unets = build_from_checkpoint(checkpoint)
        folder = root.parent if root.is_file() else root
        vae = load_pretrained(AutoencoderKL, _find(folder, VAE_DIRS), "VAE", folder)
        encoder = load_pretrained(CLIPVisionModelWithProjection, _find(folder, (IMAGE_ENCODER_DIR,)), "image encoder", folder)
        models = AnimateModels(vae, encoder, *unets, profile=checkpoint.profile, guider=checkpoint.guider,
                               student=checkpoint.student)
        source = checkpoint.sources["denoising_unet"]
        for kind, state in checkpoint.controlnets.items():
            models.controlnets[kind] = build(state, source, kind)
            models.control_scales[kind] = state.scale
        if models.guider is not None:  # a text encoder serves the guider only
            models.text_encoder, models.tokenizer = load_text_encoder(folder)
        models.check_guider(str(source))
    models.check_scales()
    if profile is not None:
        models.profile = profile
    return models


def load_text_encoder(folder: Path) -> tuple[CLIPTextModel | None, CLIPTokenizer | None]:
    """The text encoder and tokenizer of a weight folder, found together: ours beside the weight file, else the
    downloaded CLIP-L, in the folder or the one above it; (None, None) when there is neither."""
    for base in (folder, folder.parent):
        for encoder_name, tokenizer_name in TEXT_FOLDERS:
            encoder_dir, tokenizer_dir = base / encoder_name, base / tokenizer_name
            if not (encoder_dir.is_dir() or tokenizer_dir.is_dir()):
                continue
            if not (encoder_dir.is_dir() and tokenizer_dir.is_dir()):
                missing = encoder_dir if not encoder_dir.is_dir() else tokenizer_dir
                raise AnimateError(f"{base}: a text {'encoder' if missing == encoder_dir else 'tokenizer'} folder is "
                                   f"missing: {missing} (run `animate download --set text`)")
            encoder = load_pretrained(CLIPTextModel, encoder_dir, "text encoder", folder)
            return encoder, load_pretrained(CLIPTokenizer, tokenizer_dir, "tokenizer", folder, "tokenizer_config.json")
    return None, None


def checkpoint_from_models(models: AnimateModels) -> Checkpoint:
    """The state dicts of loaded models (for saving)."""
    config = {k: v for k, v in dict(models.reference_unet.config).items() if not k.startswith("_")}
    controlnets = {kind: state_of(net, models.control_scales.get(kind, DEFAULT_SCALE[kind]))
                   for kind, net in models.controlnets.items()}
    return Checkpoint(models.reference_unet.state_dict(), models.denoising_unet.state_dict(),
                      models.pose_guider.state_dict(), config, models.profile, {}, controlnets, models.guider,
                      models.student)


def _cast(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in state.items()}


def _write_ours(checkpoint: Checkpoint, folder: Path, dtype: torch.dtype) -> None:
    tensors = {}
    for component in ("reference_unet", "denoising_unet", "pose_guider"):
        tensors.update({f"{component}.{k}": v for k, v in _cast(getattr(checkpoint, component), dtype).items()})
    controls, control_metadata = tensors_and_metadata(checkpoint.controlnets, lambda state: _cast(state, dtype))
    guider, guider_metadata = guider_tensors_and_metadata(checkpoint.guider, lambda state: _cast(state, dtype))
    metadata = {"format": "animate", "version": FORMAT_VERSION, "profile": checkpoint.profile,
                "unet_config": json.dumps(checkpoint.unet_config), "motion_pe": str(checkpoint.motion_pe or ""),
                **control_metadata, **guider_metadata,
                **(checkpoint.student.metadata() if checkpoint.student else {})}
    save_file({**tensors, **controls, **guider}, str(folder / OURS_FILE), metadata=metadata)


def _write_moore(checkpoint: Checkpoint, folder: Path, dtype: torch.dtype) -> None:
    extra = ("ControlNets" if checkpoint.controlnets else "a guider" if checkpoint.guider is not None
             else "a student's step count" if checkpoint.student else None)
    if extra:
        raise AnimateError(f"Moore's layout has no place for {extra}: convert with --layout ours")
    two_d, motion = split_motion(_cast(checkpoint.denoising_unet, dtype))
    torch.save(_cast(checkpoint.reference_unet, dtype), folder / MOORE_FILES["reference_unet"])
    torch.save(two_d, folder / MOORE_FILES["denoising_unet"])
    torch.save(_cast(checkpoint.pose_guider, dtype), folder / MOORE_FILES["pose_guider"])
    if motion:
        torch.save(motion, folder / MOORE_FILES["motion_module"])
    config_path = folder / UNET_CONFIGS[0]
    config_path.parent.mkdir(parents=True)
    config_path.write_text(json.dumps({"_class_name": "UNet2DConditionModel", **checkpoint.unet_config}, indent=2))


LAYOUTS = ("ours", "moore")


def save_weight_set(models: AnimateModels, folder: Path, layout: str = "ours", dtype: torch.dtype = torch.float16) -> Path:
    """Write a complete weight set (UNets, pose guider, VAE, image encoder; ControlNets, guider, text encoder and
    tokenizer when the models have them) into a new folder, atomically."""
    if layout not in LAYOUTS:
        raise AnimateError(f"unknown layout {layout!r} (choose from {', '.join(LAYOUTS)})")
    folder = Path(folder)
    if folder.is_file() or (folder.is_dir() and any(folder.iterdir())):
        raise AnimateError(f"{folder}: already exists and is not empty")
    with atomic_path(folder) as staging:
        staging.mkdir()
        checkpoint = checkpoint_from_models(models)
        (_write_ours if layout == "ours" else _write_moore)(checkpoint, staging, dtype)
        models.vae.save_config(staging / VAE_DIRS[0])
        save_file(_cast(models.vae.state_dict(), dtype), str(staging / VAE_DIRS[0] / "diffusion_pytorch_model.safetensors"))
        with no_progress_bars():
            models.image_encoder.save_pretrained(staging / IMAGE_ENCODER_DIR,
                                                 state_dict=_cast(models.image_encoder.state_dict(), dtype))
            if models.text_encoder is not None:
                encoder_dir, tokenizer_dir = TEXT_FOLDERS[0]
                models.text_encoder.save_pretrained(staging / encoder_dir,
                                                    state_dict=_cast(models.text_encoder.state_dict(), dtype))
                models.tokenizer.save_pretrained(staging / tokenizer_dir)
    return folder


def describe(models: AnimateModels) -> str:
    """One line on what was loaded: profile and whether there are motion modules."""
    pe = models.animate_unet.motion_pe_length
    motion = f"motion modules (position table {pe} frames)" if pe else "no motion modules (stage-1: frames independent)"
    return f"profile {models.profile}, {motion}"
