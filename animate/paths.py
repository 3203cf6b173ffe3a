"""Where the shipped files live: configs/ (in a checkout at the top, in an installed wheel inside the package)."""

from importlib.resources import files
from pathlib import Path

from .errors import AnimateError

REPO_ROOT = Path(__file__).resolve().parent.parent


def _config_dir() -> Path:
    """animate/configs where a wheel put it, else the checkout's configs/ (a source tree or an editable install)."""
    packaged = files("animate") / "configs"
    return Path(str(packaged)) if packaged.is_dir() else REPO_ROOT / "configs"


CONFIG_DIR = _config_dir()


def model_size_dir(size: str) -> Path:
    """configs/models/<size>: the UNet, VAE and image-encoder configs of a model size (sd15, tiny)."""
    path = CONFIG_DIR / "models" / size
    if not path.is_dir():
        known = sorted(p.name for p in (CONFIG_DIR / "models").iterdir()) if (CONFIG_DIR / "models").is_dir() else []
        raise AnimateError(f"unknown model size {size!r} (known: {', '.join(known) or 'none — configs/ is missing from this install'})")
    return path
