"""dtype names, the device and dtype an option names, and the dtype arithmetic around the models runs in."""

import torch

from .errors import AnimateError

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}  # the names options and files use


def accumulation_dtype(*dtypes: torch.dtype) -> torch.dtype:
    """float32, or float64 when any input is float64: latents, guidance and losses never run in half precision."""
    widest = torch.float32
    for dtype in dtypes:
        widest = torch.promote_types(widest, dtype)
    return widest


def resolve_device(device: str, dtype: str) -> tuple[torch.device, torch.dtype]:
    """auto → CUDA when present; auto dtype → fp16 on GPU, fp32 on CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise AnimateError(f"unknown --device {device!r}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise AnimateError("--device cuda asked for, but no CUDA GPU is available")
    if dtype == "auto":
        return resolved, torch.float16 if resolved.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise AnimateError(f"unknown --dtype {dtype!r} (choose from auto, {', '.join(DTYPES)})")
    return resolved, DTYPES[dtype]
