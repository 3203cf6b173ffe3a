"""dtype names, and the dtype arithmetic around the models runs in."""

import torch

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}  # the names options and files use


def accumulation_dtype(*dtypes: torch.dtype) -> torch.dtype:
    """float32, or float64 when any input is float64: latents, guidance and losses never run in half precision."""
    widest = torch.float32
    for dtype in dtypes:
        widest = torch.promote_types(widest, dtype)
    return widest
