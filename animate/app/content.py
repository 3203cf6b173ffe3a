"""`animate infer --face/--prompt`: the content guider's inputs of a run (the face crop, the prompts, their scales),
the guider and text encoder of `--guider PATH`, and the photo-free mode's checks."""

from pathlib import Path

from PIL import Image

from ..errors import AnimateError
from ..media.image import load_image
from ..models.bundle import AnimateModels
from ..models.guider_files import load_guider
from ..models.weights import load_text_encoder
from ..pipeline.animate import check_content_scale
from ..pose.face import face_crop
from ..pose.sources import Backend

FACE_MODES = ("auto", "none")  # else a path: another photo of the same person


def check_content_options(face: str, prompt: str, face_scale: float, text_scale: float | None,
                          has_photo: bool) -> None:
    """Every cheap check of the guider options, before any model loads."""
    for name, scale in (("face", face_scale), ("text", text_scale)):
        if scale is not None:
            check_content_scale(name, scale)
    if text_scale is not None and not prompt:
        raise AnimateError("--text-scale scales the prompt's tokens: give a --prompt")
    if face not in FACE_MODES and not Path(face).is_file():
        raise AnimateError(f"--face {face}: not a file (or auto, none)")
    if not has_photo and face in FACE_MODES and not prompt:
        raise AnimateError("without --ref, give --face PHOTO and/or --prompt TEXT (DreamMoving's text + face mode)")


def face_from_file(path: Path, backend: Backend) -> Image.Image:
    """The face crop of `--face PHOTO` (a close-up or any photo of the person); no face found is an error."""
    photo = load_image(path)
    body, _, face = backend.image(photo, need_body=False)
    crop = face_crop(photo, body, face)
    if crop is None:
        raise AnimateError(f"no face found in {path} (--face needs a photo where the eyes and mouth show)")
    return crop


def add_guider(models: AnimateModels, guider: Path | None, weights: str | Path) -> list[str]:
    """Load `--guider PATH` into the models with the text encoder and tokenizer beside it (else the weight set's);
    the notes to print."""
    if guider is None:
        return [] if models.guider is None else ["content guider: the weight set's"]
    models.guider = load_guider(guider)
    encoder, tokenizer = load_text_encoder(guider if guider.is_dir() else guider.parent)
    if encoder is None and models.text_encoder is None and Path(weights).is_dir():
        encoder, tokenizer = load_text_encoder(Path(weights))
    if encoder is not None:
        models.text_encoder, models.tokenizer = encoder, tokenizer
    models.check_guider(str(guider))
    return [f"content guider: {guider}"]
