"""`--compile`: torch.compile of the models that run every step or every frame (the denoising UNet, the
ControlNets, the decoder), in channels-last memory; not of the ReferenceNet and encoders, which run once a video."""

import torch
from torch import nn

from ..errors import AnimateError, first_line


def compiler_problem(backend: str, device: torch.device | str = "cpu") -> str | None:
    """None when torch can compile and run a small function with `backend` on `device` here (inductor needs a C++
    compiler on a CPU, triton on a GPU), else the first line of why not."""
    try:
        probe = torch.compile(lambda x: torch.nn.functional.silu(x) * 2 + 1, backend=backend, fullgraph=True)
        probe(torch.ones(4, device=device))
    except Exception as err:  # inductor fails in many ways without a C++ compiler or triton
        return first_line(err) or type(err).__name__
    return None


def check_compiler(backend: str, device: torch.device | str, fallback: bool) -> str | None:
    """Refuse --compile where torch cannot compile for `device`, in one line; with `fallback`, a warning line instead
    (the run goes on uncompiled). Returns that warning, or None when compiling works."""
    problem = compiler_problem(backend, device)
    if problem is None:
        return None
    if not fallback:
        raise AnimateError(f"--compile: torch cannot compile here ({problem}); run without --compile, or add "
                           "--compile-fallback to run uncompiled")
    return f"warning: torch cannot compile here ({problem}): running uncompiled"


def compiled_models(models: dict[str, nn.Module], backend: str = "inductor") -> list[str]:
    """Compile each model in place (nn.Module.compile: the object and its weights stay the same) in channels-last
    memory; returns their names."""
    for module in models.values():
        module.to(memory_format=torch.channels_last)
        module.compile(backend=backend)
    return list(models)
