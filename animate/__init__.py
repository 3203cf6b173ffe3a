"""animate: pose-driven human video diffusion (Animate Anyone family)."""

__version__ = "0.1.0"
