"""Tensors that objects keep outside parameters and buffers: per-call state left on modules between calls."""

import dataclasses
import types

import torch
from torch import nn

SKIPPED = ("_parameters", "_buffers", "_modules", "_non_persistent_buffers_set")


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
