"""`animate infer --jobs FILE`: many (photo, pose, options) cases on one model load; a failed case never stops the rest.

The file is YAML. Its top level may set any per-case option (they override the command line's), and lists the
cases as Moore-AnimateAnyone's `test_cases` (photo → list of pose videos) and/or `cases` (one mapping per case
with `ref`, `pose` and any per-case option). Relative input paths are looked up beside the file, then in the
current folder. Under `accelerate launch` the cases are split across the processes, one device each.
"""

import dataclasses
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import AnimateError, error_summary, first_line
from .messages import say
from .content import FACE_MODES
from .infer import InferOptions, case_name, check_case, open_session, run_case

# Options that choose or place the models: the same for every case, so only the command line sets them.
MODEL_OPTIONS = {"weights", "profile", "motion_module", "device", "dtype", "offload", "pose_backend", "dwpose_dir",
                 "progress", "controls", "guider", "decoder", "compile", "compile_fallback", "fast"}
# controls: the ControlNets are loaded once, with the models; decoder, compile and fast choose and ready models too
CASE_OPTIONS = {f.name for f in dataclasses.fields(InferOptions)} - MODEL_OPTIONS
PATH_OPTIONS = {"ref", "pose", "out", "frames_dir"}
# Keys of Moore's configs/prompts/animation.yaml that name model files: ignored, the models come from --weights.
MOORE_MODEL_KEYS = {"pretrained_base_model_path", "pretrained_vae_path", "image_encoder_path", "denoising_unet_path",
                    "reference_unet_path", "pose_guider_path", "motion_module_path", "inference_config", "weight_dtype"}


@dataclass(frozen=True)
class CaseResult:
    """How one case ended: its output, or the one-line error."""

    label: str
    out: Path | None
    error: str | None
    seconds: float


def load_cases(path: Path, base: InferOptions) -> list[InferOptions]:
    """The file's cases as full option sets (case > file top level > command line), or a one-line error."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise AnimateError(f"{path}: cannot read the jobs file ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise AnimateError(f"{path}: not valid YAML ({first_line(err)})") from None
    if not isinstance(data, dict):
        raise AnimateError(f"{path}: a jobs file is a mapping with `test_cases` and/or `cases`")
    ignored = sorted(MOORE_MODEL_KEYS & data.keys())
    if ignored:
        say(f"note: {path}: ignoring {', '.join(ignored)} (the models come from --weights)")
    defaults = {k: v for k, v in data.items() if k not in MOORE_MODEL_KEYS | {"test_cases", "cases"}}
    _check_keys(defaults, path, "top level")
    entries = [{"ref": ref, "pose": pose} for ref, poses in _mapping(data.get("test_cases") or {}, path).items()
               for pose in (poses if isinstance(poses, list) else [poses])]
    cases = data.get("cases") or []
    if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
        raise AnimateError(f"{path}: `cases` must be a list of mappings (ref, pose, options)")
    for number, case in enumerate(cases, 1):
        _check_keys(case, path, f"case {number}")
        merged = {**defaults, **case}
        photo_free = merged.get("prompt") or merged.get("face") not in (None, *FACE_MODES)
        if "pose" not in case or ("ref" not in case and not photo_free):
            raise AnimateError(f"{path}: case {number} needs ref and pose (or prompt/face and pose)")
    entries += cases
    if not entries:
        raise AnimateError(f"{path}: no cases (give `test_cases` or `cases`)")
    options = []
    for entry in entries:
        values = {**defaults, **entry}
        values = {k: _resolve(v, path.parent, output=k in ("out", "frames_dir")) if k in PATH_OPTIONS and v is not None
                  else v for k, v in values.items()}
        if values.get("face") not in (None, *FACE_MODES):  # a face photo: found like the other inputs
            values["face"] = str(_resolve(values["face"], path.parent, output=False))
        try:
            options.append(dataclasses.replace(base, **values))
        except TypeError as err:
            raise AnimateError(f"{path}: {err}") from None
    return options


def _mapping(value, path: Path) -> dict:
    """`test_cases` as a mapping, or a one-line error."""
    if not isinstance(value, dict):
        raise AnimateError(f"{path}: `test_cases` maps each photo to a list of pose videos")
    return value


def _check_keys(values: dict, path: Path, where: str) -> None:
    """Refuse model-level and unknown option names."""
    for key in values:
        if key in MODEL_OPTIONS:
            raise AnimateError(f"{path}: {where}: `{key}` applies to every case: give it on the command line")
        if key not in CASE_OPTIONS:
            raise AnimateError(f"{path}: {where}: unknown option `{key}` (options: {', '.join(sorted(CASE_OPTIONS))})")


def _resolve(value, folder: Path, output: bool) -> Path:
    """An input path beside the jobs file if it is there, else as given; outputs as given (current folder)."""
    candidate = Path(str(value))
    if output or candidate.is_absolute() or not (folder / candidate).exists():
        return candidate
    return folder / candidate


def split_cases(cases: list, process_index: int, num_processes: int) -> list:
    """This process's share of the cases (round robin, so long and short ones mix)."""
    return cases[process_index::num_processes]


def run_jobs(path: Path, base: InferOptions) -> int:
    """Run this process's cases of the jobs file on one model load; returns how many failed (all are reported)."""
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    cases = load_cases(path, base)
    state = PartialState(cpu=base.device == "cpu" or parse_flag_from_env("ACCELERATE_USE_CPU"))
    mine = split_cases(cases, state.process_index, state.num_processes)
    if state.num_processes > 1 and base.device == "auto":
        base = dataclasses.replace(base, device=str(state.device))
    session = open_session(base)
    results = []
    for number, options in enumerate(mine, 1):
        options = dataclasses.replace(options, device=base.device)
        label = f"{options.ref or case_name(options)} + {options.pose}"
        say(f"[{number}/{len(mine)}] {label}")
        start = time.perf_counter()
        try:
            out = run_case(session, options, check_case(options))
            results.append(CaseResult(label, out, None, time.perf_counter() - start))
            say(out, sys.stdout)
        except AnimateError as err:
            results.append(CaseResult(label, None, str(err), time.perf_counter() - start))
            say(f"error: {label}: {err}")
        except Exception as err:  # a bug in one case must not lose the others; the traceback on request
            results.append(CaseResult(label, None, error_summary(err), time.perf_counter() - start))
            say(f"error: {label}: {error_summary(err)}")
            if os.environ.get("ANIMATE_DEBUG"):
                traceback.print_exc()
    say(summary(results, state.process_index, state.num_processes))
    if state.num_processes > 1:
        state.wait_for_everyone()
        state.destroy_process_group()
    return sum(r.error is not None for r in results)


def summary(results: list[CaseResult], process_index: int = 0, num_processes: int = 1) -> str:
    """Done and failed counts, then one line per failed case."""
    failed = [r for r in results if r.error is not None]
    who = f"process {process_index + 1}/{num_processes}: " if num_processes > 1 else ""
    lines = [f"{who}{len(results) - len(failed)} of {len(results)} cases done, {len(failed)} failed "
             f"({sum(r.seconds for r in results):.1f} s)"]
    lines += [f"  failed: {r.label}: {r.error}" for r in failed]
    return "\n".join(lines)
