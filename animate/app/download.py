"""Fetch the pretrained weights inference needs (the Hugging Face Hub) and the Real-ESRGAN upscalers (their releases)."""

import hashlib
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from httpx2 import TransportError  # huggingface_hub 2.x's HTTP client; re-raises these after its own retries
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import (
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
)

from ..atomic import atomic_path
from ..errors import AnimateError, first_line
from ..models.text import TEXT_DIR, TEXT_FILES, TEXT_REPO
from ..depth.release import DEPTH_DIR, DEPTH_FILES, DEPTH_REPO
from ..models.tiny_decoder import TAESD_DIR, TAESD_FILES, TAESD_REPO
from ..paths import model_size_dir
from .messages import say


@dataclass(frozen=True)
class HubFile:
    """A hub file that hf_hub_download(repo_id, filename, local_dir=target/local_dir) puts at target/relpath."""

    repo_id: str
    filename: str
    local_dir: str

    @property
    def relpath(self) -> str:
        """Where the file lands, relative to the download target."""
        return (Path(self.local_dir) / self.filename).as_posix()


_NETS = ("denoising_unet.pth", "reference_unet.pth", "pose_guider.pth", "motion_module.pth")
_VAE = tuple(HubFile("stabilityai/sd-vae-ft-mse", f, "sd-vae-ft-mse") for f in ("config.json", "diffusion_pytorch_model.safetensors"))
_IMAGE_ENCODER = tuple(
    HubFile("lambdalabs/sd-image-variations-diffusers", f"image_encoder/{f}", ".") for f in ("config.json", "pytorch_model.bin")
)

WEIGHT_SETS: dict[str, tuple[HubFile, ...]] = {
    "moore": tuple(HubFile("patrolli/AnimateAnyone", n, ".") for n in _NETS) + _VAE + _IMAGE_ENCODER,
    "musepose": tuple(HubFile("TMElyralab/MusePose", f"MusePose/{n}", ".") for n in _NETS) + _VAE + _IMAGE_ENCODER,
    "depth": tuple(HubFile(DEPTH_REPO, f, DEPTH_DIR) for f in DEPTH_FILES),  # Depth Anything V2 Small, Apache-2.0
    "text": tuple(HubFile(TEXT_REPO, f, TEXT_DIR) for f in TEXT_FILES),  # the guider's prompts at sd15
    "taesd": tuple(HubFile(TAESD_REPO, f, TAESD_DIR) for f in TAESD_FILES),  # --decoder tiny (MIT)
}

# The UNet config's hub repo is gone, so the repo's shipped sd15 config is copied here instead.
UNET_CONFIGS: dict[str, str] = {
    "moore": "stable-diffusion-v1-5/unet/config.json",
    "musepose": "sd-image-variations-diffusers/unet/config.json",
}


def required_files(weight_set: str) -> list[str]:
    """Paths, relative to the weights dir, that inference reads for weight_set."""
    return [f.relpath for f in _hub_files(weight_set)] + [UNET_CONFIGS[s] for s in (weight_set,) if s in UNET_CONFIGS]


def download_weights(target: Path, weight_set: str = "moore", progress: bool = True) -> list[Path]:
    """Fetch weight_set's missing files into target and return the final path of every required file."""
    files = _hub_files(weight_set)
    target.mkdir(parents=True, exist_ok=True)
    paths = [_fetch(f, target, progress) for f in files]
    if weight_set not in UNET_CONFIGS:
        return paths
    return paths + [_copy_unet_config(target / UNET_CONFIGS[weight_set], progress)]


def _hub_files(weight_set: str) -> tuple[HubFile, ...]:
    """The hub files of weight_set, or an AnimateError naming the choices."""
    if weight_set not in WEIGHT_SETS:
        raise AnimateError(f"unknown weight set {weight_set!r} (choices: {', '.join(WEIGHT_SETS)})")
    return WEIGHT_SETS[weight_set]


def _fetch(file: HubFile, target: Path, progress: bool) -> Path:
    """Download file into target unless a non-empty copy is already there."""
    path = target / file.relpath
    if path.is_file() and path.stat().st_size > 0:
        _say(f"have {path}", progress)
        return path
    path.unlink(missing_ok=True)  # hf_hub_download would trust an empty leftover whose metadata matches
    _say(f"fetch {file.repo_id}/{file.filename}", progress)
    try:
        hf_hub_download(repo_id=file.repo_id, filename=file.filename, local_dir=target / file.local_dir)
    except (OSError, TransportError) as error:
        raise AnimateError(
            f"cannot download {file.filename} from {file.repo_id}: {_reason(error)}"
            f" — copy the files into {target} by hand, see README 'Weights'"
        ) from error
    return path


def _copy_unet_config(path: Path, progress: bool) -> Path:
    """Put the shipped sd15 UNet config at path unless it is already there."""
    if path.is_file() and path.stat().st_size > 0:
        _say(f"have {path}", progress)
        return path
    with atomic_path(path) as staged:
        shutil.copyfile(model_size_dir("sd15") / "unet" / "config.json", staged)
    _say(f"copy {path}", progress)
    return path


def _reason(error: BaseException) -> str:
    """A one-line cause for a failed hub download."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OfflineModeIsEnabled):
            return "offline (HF_HUB_OFFLINE is set)"
        cause = cause.__cause__ or cause.__context__
    if isinstance(error, RepositoryNotFoundError):
        return "repository not found, private or gated"
    if isinstance(error, RemoteEntryNotFoundError):
        return "file not found in the repository"
    if isinstance(error, (LocalEntryNotFoundError, TransportError)):
        return "cannot reach the Hub (check the network, proxy or HF_ENDPOINT)"
    return first_line(error)


def _say(message: str, progress: bool) -> None:
    """Print a progress line to stderr when progress is on."""
    if progress:
        say(message)


def download_upscaler(name: str, target: Path, hub_repo: str | None = None, progress: bool = True) -> Path:
    """Fetch a Real-ESRGAN release file into target/Real-ESRGAN/ (its official URL, or a hub mirror), SHA-256 checked."""
    from ..media.upscale import UPSCALERS

    if name not in UPSCALERS:
        raise AnimateError(f"unknown upscaler {name!r} (choices: {', '.join(UPSCALERS)})")
    spec = UPSCALERS[name]
    path = target / "Real-ESRGAN" / spec.filename
    if path.is_file() and _sha256(path) == spec.sha256:
        _say(f"have {path}", progress)
        return path
    source = f"{hub_repo}/{spec.filename}" if hub_repo else spec.url
    _say(f"fetch {source}", progress)
    with atomic_path(path) as partial:
        if hub_repo:
            _fetch_from_hub(hub_repo, spec.filename, partial)
        else:
            _fetch_url(spec.url, partial)
        got = _sha256(partial)
        if got != spec.sha256:
            raise AnimateError(f"{source}: checksum mismatch (SHA-256 {got}, expected {spec.sha256}); nothing kept")
    return path


def _fetch_url(url: str, path: Path) -> None:
    """Stream url into path (proxies from the environment), or a one-line AnimateError."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(path, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except (OSError, ValueError) as error:  # URLError and HTTPError are OSErrors
        raise AnimateError(f"cannot download {url}: {_url_reason(error)} — or use --hub-mirror REPO, or copy the "
                           f"file into {path.parent} by hand") from None


def _fetch_from_hub(repo_id: str, filename: str, path: Path) -> None:
    """Copy filename of a hub repo into path, or a one-line AnimateError."""
    try:
        cached = hf_hub_download(repo_id=repo_id, filename=filename)
    except (OSError, TransportError) as error:
        raise AnimateError(f"cannot download {filename} from {repo_id}: {_reason(error)}") from None
    shutil.copyfile(cached, path)


def _url_reason(error: BaseException) -> str:
    """A one-line cause for a failed URL download."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}"
    if isinstance(error, urllib.error.URLError):
        return f"cannot reach the server ({error.reason})"
    return first_line(error)


def _sha256(path: Path) -> str:
    """The file's SHA-256, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
