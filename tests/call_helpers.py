"""Helpers of the denoising-call tests: tiny float64 models with every layer open, and tensors left on modules."""

import dataclasses
import types

import torch
from torch import nn

from animate.models.bundle import AnimateModels, build_random_models

SKIPPED = ("_parameters", "_buffers", "_modules", "_non_persistent_buffers_set")


def open_float64_models(seed: int, motion: bool = True, dtype: torch.dtype = torch.float64) -> AnimateModels:
    """Tiny random models (float64 unless asked), the zero-initialised pose-guider output and motion projections
    opened (N(0, 0.2²)) so that poses and the other frames reach the output."""
    models = build_random_models("tiny", seed=seed, motion=motion).to(dtype=dtype)
    with torch.no_grad():
        for name, param in [*models.denoising_unet.named_parameters(), *models.pose_guider.named_parameters()]:
            if name.startswith("conv_out.") or "temporal_transformer.proj_out." in name:
                param.normal_(std=0.2)
    return models


def stray_tensors(*roots: object) -> list[str]:
    """Paths of every tensor reachable from the roots' plain attributes (every submodule's too, their attention
    processors, hook closures and containers included), except the modules' registered parameters and buffers."""
    found: list[str] = []
    seen: set[int] = set()

    def walk(value: object, path: str, depth: int) -> None:
        if id(value) in seen or depth > 8 or isinstance(value, (type, types.ModuleType, str, bytes, int, float)):
            return
        seen.add(id(value))
        if isinstance(value, torch.Tensor):
            found.append(path)
        elif isinstance(value, nn.Module):
            for name, module in value.named_modules(remove_duplicate=False):
                for key, attribute in vars(module).items():
                    if key not in SKIPPED:
                        walk(attribute, f"{path}.{name}.{key}" if name else f"{path}.{key}", depth + 1)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}[{key!r}]", depth + 1)
        elif isinstance(value, (list, tuple, set, frozenset)):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]", depth + 1)
        elif isinstance(value, types.MethodType):
            walk(value.__self__, f"{path}.__self__", depth + 1)
        elif isinstance(value, types.FunctionType):
            for index, cell in enumerate(value.__closure__ or ()):
                walk(cell.cell_contents, f"{path}.<closure {index}>", depth + 1)
        elif dataclasses.is_dataclass(value) or hasattr(value, "__dict__"):
            for key, attribute in vars(value).items():
                walk(attribute, f"{path}.{key}", depth + 1)

    for index, root in enumerate(roots):
        walk(root, f"root{index}", 0)
    return found
