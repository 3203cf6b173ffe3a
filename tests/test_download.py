"""Weight download: the per-set file table, skip-if-present, and one-line errors (hub mocked or offline)."""

import json
from pathlib import Path

import httpx2
import huggingface_hub.constants
import pytest
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from animate.app import download
from animate.app.download import download_weights, required_files
from animate.errors import AnimateError
from animate.paths import model_size_dir

MOORE = [
    "denoising_unet.pth",
    "reference_unet.pth",
    "pose_guider.pth",
    "motion_module.pth",
    "sd-vae-ft-mse/config.json",
    "sd-vae-ft-mse/diffusion_pytorch_model.safetensors",
    "image_encoder/config.json",
    "image_encoder/pytorch_model.bin",
    "stable-diffusion-v1-5/unet/config.json",
]
MUSEPOSE = [
    "MusePose/denoising_unet.pth",
    "MusePose/reference_unet.pth",
    "MusePose/pose_guider.pth",
    "MusePose/motion_module.pth",
    *MOORE[4:8],
    "sd-image-variations-diffusers/unet/config.json",
]


@pytest.fixture
def calls(monkeypatch) -> list[tuple[str, str]]:
    """Replace hf_hub_download with a fake that writes a small file and records (repo_id, filename)."""
    recorded = []

    def fake(repo_id: str, filename: str, local_dir: Path) -> str:
        recorded.append((repo_id, filename))
        path = Path(local_dir) / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"weights")
        return str(path)

    monkeypatch.setattr(download, "hf_hub_download", fake)
    return recorded


@pytest.mark.parametrize("weight_set, expected", [("moore", MOORE), ("musepose", MUSEPOSE)])
def test_all_files_land_and_second_run_fetches_nothing(tmp_path, calls, weight_set, expected, capsys):
    target = tmp_path / "weights"
    paths = download_weights(target, weight_set)
    assert paths == [target / p for p in expected]
    assert required_files(weight_set) == expected
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert len(calls) == len(expected) - 1
    shipped = json.loads((model_size_dir("sd15") / "unet" / "config.json").read_text())
    assert json.loads(paths[-1].read_text()) == shipped
    assert capsys.readouterr().err.count("fetch ") == len(expected) - 1

    calls.clear()
    assert download_weights(target, weight_set, progress=False) == paths
    assert calls == []
    assert capsys.readouterr().err == ""


def test_the_depth_set_is_depth_anything_v2_small(tmp_path, calls):
    """`animate download --set depth`: the hub repo's two files, into the folder `animate depth` reads by default,
    and no UNet config beside them."""
    from animate.depth.estimate import load_depth_model

    paths = download_weights(tmp_path, "depth", progress=False)
    assert required_files("depth") == ["Depth-Anything-V2-Small-hf/config.json",
                                       "Depth-Anything-V2-Small-hf/model.safetensors"]
    assert calls == [("depth-anything/Depth-Anything-V2-Small-hf", "config.json"),
                     ("depth-anything/Depth-Anything-V2-Small-hf", "model.safetensors")]
    assert paths == [tmp_path / p for p in required_files("depth")]
    with pytest.raises(AnimateError, match="cannot load the depth model"):  # the fake files: found, then refused
        load_depth_model(paths[0].parent)


def test_present_files_are_kept_and_empty_ones_refetched(tmp_path, calls):
    (tmp_path / "sd-vae-ft-mse").mkdir()
    (tmp_path / "sd-vae-ft-mse" / "config.json").write_text("{}")
    (tmp_path / "pose_guider.pth").touch()
    download_weights(tmp_path, progress=False)
    fetched = [filename for _, filename in calls]
    assert "config.json" not in fetched
    assert "pose_guider.pth" in fetched
    assert len(fetched) == len(MOORE) - 2
    assert (tmp_path / "sd-vae-ft-mse" / "config.json").read_text() == "{}"
    assert (tmp_path / "pose_guider.pth").read_bytes() == b"weights"


def test_offline_is_one_line_error_and_writes_nothing_final(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(AnimateError) as info:
        download_weights(tmp_path, progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert "offline" in message and "denoising_unet.pth" in message and "patrolli/AnimateAnyone" in message
    assert not any((tmp_path / p).exists() for p in MOORE)


RESPONSE = httpx2.Response(500, request=httpx2.Request("HEAD", "https://huggingface.co/x"))


@pytest.mark.parametrize(
    "error, reason",
    [
        (httpx2.ReadError("connection reset"), "cannot reach the Hub"),
        (RepositoryNotFoundError("401 Client Error.\n\nRepository Not Found", response=RESPONSE), "repository not found"),
        (HfHubHTTPError("500 Server Error: boom\ndetails", response=RESPONSE), "500 Server Error: boom"),
        (OSError(28, "No space left on device"), "No space left on device"),
    ],
)
def test_hub_errors_become_one_line(tmp_path, monkeypatch, error, reason):
    def fail(**_) -> str:
        raise error

    monkeypatch.setattr(download, "hf_hub_download", fail)
    with pytest.raises(AnimateError, match=reason) as info:
        download_weights(tmp_path, "musepose", progress=False)
    assert "\n" not in str(info.value)
    assert "MusePose/denoising_unet.pth from TMElyralab/MusePose" in str(info.value)


def test_unknown_weight_set(tmp_path):
    with pytest.raises(AnimateError, match="moore, musepose"):
        download_weights(tmp_path, "animatediff")
    with pytest.raises(AnimateError, match="unknown weight set"):
        required_files("nope")


@pytest.fixture
def served(monkeypatch):
    """The x4plus spec pointed at a checksum of known bytes, and urlopen serving those bytes (URLs recorded)."""
    import dataclasses
    import hashlib
    import io
    import types

    from animate.media import upscale

    payload = b"\x80 real-esrgan weights" * 1000
    spec = dataclasses.replace(upscale.UPSCALERS["realesrgan-x4plus"], sha256=hashlib.sha256(payload).hexdigest())
    monkeypatch.setitem(upscale.UPSCALERS, spec.name, spec)
    server = types.SimpleNamespace(payload=payload, urls=[])

    def urlopen(url, timeout):
        server.urls.append(url)
        return io.BytesIO(server.payload)

    monkeypatch.setattr(download.urllib.request, "urlopen", urlopen)
    return server


def test_upscaler_download_checks_the_checksum_and_skips_a_good_copy(tmp_path, served):
    path = download.download_upscaler("realesrgan-x4plus", tmp_path, progress=False)
    assert path == tmp_path / "Real-ESRGAN" / "RealESRGAN_x4plus.pth" and path.read_bytes() == served.payload
    assert served.urls == ["https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth"]
    download.download_upscaler("realesrgan-x4plus", tmp_path, progress=False)
    assert len(served.urls) == 1  # the good copy is kept
    path.write_bytes(b"truncated")
    download.download_upscaler("realesrgan-x4plus", tmp_path, progress=False)
    assert len(served.urls) == 2 and path.read_bytes() == served.payload  # a bad copy is fetched again


def test_upscaler_checksum_mismatch_keeps_nothing(tmp_path, served):
    served.payload = b"something else"
    with pytest.raises(AnimateError, match="checksum mismatch") as err:
        download.download_upscaler("realesrgan-x4plus", tmp_path, progress=False)
    assert "\n" not in str(err.value)
    assert list((tmp_path / "Real-ESRGAN").iterdir()) == []


def test_upscaler_from_a_hub_mirror(tmp_path, served, monkeypatch):
    cache = tmp_path / "cache.pth"
    cache.write_bytes(served.payload)
    asked = []
    monkeypatch.setattr(download, "hf_hub_download", lambda repo_id, filename: asked.append((repo_id, filename)) or str(cache))
    path = download.download_upscaler("realesrgan-x4plus", tmp_path / "w", hub_repo="someone/mirror", progress=False)
    assert asked == [("someone/mirror", "RealESRGAN_x4plus.pth")] and served.urls == [] and path.read_bytes() == served.payload


def test_upscaler_unreachable_is_one_line(tmp_path, monkeypatch, run_cli):
    import urllib.error

    def offline(url, timeout):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(download.urllib.request, "urlopen", offline)
    result = run_cli(["download", "--upscaler", "realesr-animevideov3", "--dir", tmp_path])
    lines = result.err.strip().splitlines()
    assert result.code == 2 and lines[0].startswith("fetch https://") and len(lines) == 2  # progress, then one error
    assert lines[1].startswith("error: ") and "cannot reach the server" in lines[1] and "animevideov3.pth" in lines[1]
    assert list((tmp_path / "Real-ESRGAN").iterdir()) == []


def test_cli_upscaler_choices_are_the_registry():
    from animate.app.cli import UPSCALER_CHOICES
    from animate.media.upscale import UPSCALERS

    assert UPSCALER_CHOICES == tuple(UPSCALERS)


def test_the_text_set_is_sd15s_clip_text_encoder(tmp_path, calls):
    """`animate download --set text`: openai/clip-vit-large-patch14's model and tokenizer files, into the folder the
    weight loader looks in."""
    from animate.models.weights import load_text_encoder

    paths = download_weights(tmp_path, "text", progress=False)
    assert [name for _, name in calls] == ["config.json", "model.safetensors", "vocab.json", "merges.txt",
                                           "tokenizer_config.json", "special_tokens_map.json"]
    assert {repo for repo, _ in calls} == {"openai/clip-vit-large-patch14"}
    assert {p.parent for p in paths} == {tmp_path / "clip-vit-large-patch14"}
    with pytest.raises(AnimateError, match="cannot load the text encoder"):  # the fake files: found, then refused
        load_text_encoder(tmp_path)


def test_the_taesd_set_is_madebyollins_diffusers_folder(tmp_path, calls):
    """`animate download --set taesd`: the diffusers-format files of madebyollin/taesd into pretrained_weights/taesd
    (the folder --decoder tiny reads)."""
    paths = download_weights(tmp_path, "taesd", progress=False)
    assert required_files("taesd") == ["taesd/config.json", "taesd/diffusion_pytorch_model.safetensors"]
    assert calls == [("madebyollin/taesd", "config.json"), ("madebyollin/taesd", "diffusion_pytorch_model.safetensors")]
    assert paths == [tmp_path / p for p in required_files("taesd")]
