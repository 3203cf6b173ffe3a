"""Video ControlNets on disk: inside our weight file (keys `controlnet.<kind>.*`, the kind's ControlNetModel config,
motion-table length and default scale in the metadata), a diffusers ControlNetModel folder, or an SD-1.5 ControlNet
in its released single-file format (e.g. control_v11f1p_sd15_depth; config shipped in configs/models/sd15/controlnet;
unverified against the real files)."""

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import ControlNetModel
from safetensors import safe_open
from safetensors.torch import load_file

from ..errors import AnimateError, first_line
from ..paths import model_size_dir
from ..pretrained import no_progress_bars
from ..strict import check_state_dict
from ..torch_files import load_torch_file
from .controlnet import KINDS, VideoControlNet, check_control_scale
from .parts import read_part

PREFIX = "controlnet"
METADATA_KEY = "controlnets"  # JSON: {kind: {"config": ControlNetModel config, "motion_pe": int | null, "scale": float}}
DEFAULT_SCALE = {"depth": 0.7, "pose": 0.5}  # DreamMoving's hosted demo: depth 0.7 beside pose 0.5


@dataclass
class ControlNetState:
    """One ControlNet as stored: its state dict, ControlNetModel config, motion-table length and default scale."""

    state: dict[str, torch.Tensor]
    config: dict
    motion_pe: int | None
    scale: float


def state_of(net: VideoControlNet, scale: float) -> ControlNetState:
    """What is stored of a loaded ControlNet."""
    config = {k: v for k, v in dict(net.controlnet.config).items() if not k.startswith("_")}
    return ControlNetState(net.controlnet.state_dict(), config, net.motion_pe_length, scale)


def check_kind(kind: str) -> str:
    """A ControlNet kind, or one clear error."""
    if kind not in KINDS:
        raise AnimateError(f"unknown control {kind!r} (choose from {', '.join(KINDS)})")
    return kind


def split_keys(tensors: dict[str, torch.Tensor], metadata: dict[str, str], source: Path) -> dict[str, ControlNetState]:
    """The ControlNets among a weight file's `controlnet.<kind>.<key>` tensors, with their metadata; anything
    malformed is one line naming the file."""
    try:
        info = json.loads(metadata.get(METADATA_KEY) or "{}")
        found: dict[str, dict[str, torch.Tensor]] = {}
        for key, tensor in tensors.items():
            _, kind, name = key.split(".", 2)
            found.setdefault(kind, {})[name] = tensor
        if set(found) != set(info):
            odd = sorted(set(found) ^ set(info))[0]
            raise AnimateError(f"{source}: ControlNet {odd!r} has tensors or metadata but not both")
        states = {kind: ControlNetState(state, dict(info[kind]["config"]),
                                        None if info[kind]["motion_pe"] is None else int(info[kind]["motion_pe"]),
                                        float(info[kind]["scale"])) for kind, state in found.items()}
    except (ValueError, KeyError, TypeError) as err:
        raise AnimateError(f"{source}: unreadable ControlNet entry ({first_line(err)})") from None
    for kind, state in states.items():
        check_kind(kind)
        check_control_scale(state.scale)
    return states


def tensors_and_metadata(states: dict[str, ControlNetState], cast) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The weight file's tensors and metadata entry for these ControlNets (`cast`: the file's dtype conversion)."""
    tensors = {f"{PREFIX}.{kind}.{k}": v for kind, s in states.items() for k, v in cast(s.state).items()}
    info = {kind: {"config": s.config, "motion_pe": s.motion_pe, "scale": s.scale} for kind, s in states.items()}
    return tensors, ({METADATA_KEY: json.dumps(info)} if states else {})


def build(state: ControlNetState, source: Path, kind: str) -> VideoControlNet:
    """A VideoControlNet built on the meta device and loaded strictly (assign, no copy)."""
    try:
        with torch.device("meta"):
            net = VideoControlNet(ControlNetModel.from_config(state.config), state.motion_pe)
    except (TypeError, ValueError, KeyError) as err:
        raise AnimateError(f"{source}: the {kind} ControlNet's config cannot be built ({first_line(err)})") from None
    check_state_dict(net.controlnet, state.state, source, f"{kind} ControlNet")
    net.controlnet.load_state_dict(state.state, strict=True, assign=True)
    return net


def _ours(path: Path, kind: str) -> tuple[VideoControlNet, float]:
    """The `kind` ControlNet of one of our weight files."""
    states = split_keys(*read_part(path, PREFIX), path)
    if kind not in states:
        raise AnimateError(f"{path}: holds no {kind} ControlNet")
    return build(states[kind], path, kind), states[kind].scale


def _diffusers_folder(path: Path, kind: str) -> VideoControlNet:
    """A diffusers ControlNetModel folder: an image ControlNet, or a Video ControlNet when its weights hold motion
    modules (as `save_pretrained` of ours writes them)."""
    try:
        config = {k: v for k, v in ControlNetModel.load_config(str(path)).items() if not k.startswith("_")}
    except (OSError, ValueError) as err:
        raise AnimateError(f"{path}: not a diffusers ControlNet folder ({first_line(err)})") from None
    files = [path / name for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")]
    weights = next((file for file in files if file.is_file()), None)
    if weights is None:
        raise AnimateError(f"{path}: no diffusion_pytorch_model.safetensors or .bin")
    state = load_file(str(weights)) if weights.suffix == ".safetensors" else load_torch_file(weights)
    tables = {v.shape[1] for k, v in state.items() if k.endswith("pos_encoder.pe")}
    return build(ControlNetState(state, config, max(tables) if tables else None, DEFAULT_SCALE[kind]), path, kind)


def _is_ours(path: Path) -> bool:
    """A safetensors file with our metadata."""
    try:
        with safe_open(str(path), "pt") as f:
            return (f.metadata() or {}).get("format") == "animate"
    except Exception:
        return False


def load_controlnet(path: str | Path, kind: str) -> tuple[VideoControlNet, float]:
    """The `kind` ControlNet of `--controlnet PATH` and its default scale: our weight file or folder, a diffusers
    ControlNetModel folder (an image ControlNet: no motion modules), or an SD-1.5 single file."""
    path, kind = Path(path), check_kind(kind)
    ours = path / "animate.safetensors" if path.is_dir() else path
    if ours.is_file() and ours.suffix == ".safetensors" and _is_ours(ours):
        return _ours(ours, kind)
    if path.is_dir():
        return _diffusers_folder(path, kind), DEFAULT_SCALE[kind]
    if not path.is_file():
        raise AnimateError(f"--controlnet {path}: not found")
    config = model_size_dir("sd15") / "controlnet"
    try:
        with no_progress_bars():
            net = ControlNetModel.from_single_file(str(path), config=str(config), local_files_only=True)
    except Exception as err:
        raise AnimateError(f"{path}: not a ControlNet file this animate reads ({first_line(err)})") from None
    return VideoControlNet(net), DEFAULT_SCALE[kind]
