"""Where the repository's shipped files live (configs/, examples/)."""

from pathlib import Path

from .errors import AnimateError

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "configs"


def model_size_dir(size: str) -> Path:
    """configs/models/<size>: the UNet, VAE and image-encoder configs of a model size (sd15, tiny)."""
    path = CONFIG_DIR / "models" / size
    if not path.is_dir():
        known = sorted(p.name for p in (CONFIG_DIR / "models").iterdir()) if (CONFIG_DIR / "models").is_dir() else []
        raise AnimateError(f"unknown model size {size!r} (known: {', '.join(known) or 'none — is this a source checkout?'})")
    return path
