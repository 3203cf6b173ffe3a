"""ONNX models on onnxruntime (the optional `dwpose` extra): one way to open a session, for every ONNX model we run."""

import os
from pathlib import Path

from .errors import AnimateError, first_line


def onnx_session(path: Path, what: str) -> object:
    """An onnxruntime session of `path` on the GPU when onnxruntime has CUDA, else the CPU; `what` needs it (errors)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise AnimateError(f"{what} needs onnxruntime: pip install onnxruntime") from None
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    available = ort.get_available_providers()
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    try:
        return ort.InferenceSession(os.fspath(path), options, providers=providers)
    except Exception as err:  # onnxruntime raises its own exception types for unreadable models
        raise AnimateError(f"cannot load {path}: {first_line(err)}") from None
