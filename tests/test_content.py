"""The content guider end to end: face crops from keypoints, the guider's weights on disk, prompts, and `animate
infer --face/--prompt` with and without a photo (tiny random weights)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from animate.media.video import probe_video
from animate.pose.face import crop_face, face_box

ASTRONAUT_SIZE = (512, 512)


@pytest.fixture(scope="module")
def real_photos():
    """name → (rgb, body, face) of the two real photos the pose tests use."""
    from matplotlib.cbook import get_sample_data
    from skimage.data import astronaut

    from animate.pose.extract import HolisticExtractor

    with Image.open(get_sample_data("grace_hopper.jpg")) as img:
        hopper = np.asarray(img.convert("RGB"))
    out = {}
    with HolisticExtractor(video=False) as extractor:
        for name, rgb in (("astronaut", astronaut()), ("grace_hopper", hopper)):
            body, _, face = extractor.extract_frame(rgb)
            out[name] = (rgb, body, face)
    return out


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_the_face_crop_holds_every_face_landmark(real_photos, name):
    rgb, body, face = real_photos[name]
    box = face_box(body, face)
    left, top, right, bottom = box.box
    assert (face[:, 2] > 0).all()
    assert (face[:, 0] > left).all() and (face[:, 0] < right).all()
    assert (face[:, 1] > top).all() and (face[:, 1] < bottom).all()
    jaw = face[:17, :2]  # the face takes a real share of the crop, not a speck in a big square
    assert (jaw[:, 0].max() - jaw[:, 0].min()) > 0.5 * box.side
    crop = crop_face(Image.fromarray(rgb), box)
    assert crop.size == (round(right) - round(left), round(bottom) - round(top))


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_without_face_points_the_body_eyes_and_nose_place_the_crop(real_photos, name):
    rgb, body, face = real_photos[name]
    box = face_box(body, np.zeros_like(face))
    left, top, right, bottom = box.box
    assert left < face[36:48, 0].min() and face[36:48, 0].max() < right  # the eyes
    assert top < face[36:48, 1].min() and face[48:68, 1].max() < bottom  # eyes to mouth


def test_no_face_when_eyes_are_missing_or_the_face_is_tiny(real_photos):
    _, body, face = real_photos["astronaut"]
    back = body.copy()
    back[[0, 14, 15], 2] = 0  # a back view: no nose, no eyes
    assert face_box(back, np.zeros_like(face)) is None
    tiny = np.concatenate([face[:, :2] * 0.02, face[:, 2:]], axis=1)
    assert face_box(np.zeros_like(body), tiny) is None


# --- weights --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guided_models():
    from animate.models.bundle import build_random_guider, build_random_models

    return build_random_guider(build_random_models("tiny"), "tiny", seed=5)


@pytest.fixture(scope="module")
def guided_weights(tmp_path_factory, guided_models):
    from animate.models.weights import save_weight_set

    return save_weight_set(guided_models, tmp_path_factory.mktemp("guided") / "set", "ours", torch.float32)


def test_the_guider_text_encoder_and_tokenizer_round_trip(guided_models, guided_weights):
    from animate.models.guider_files import load_guider
    from animate.models.weights import load_models

    loaded = load_models(guided_weights)
    for mine, theirs in ((guided_models.guider, loaded.guider), (guided_models.text_encoder, loaded.text_encoder)):
        saved = theirs.state_dict()
        assert all(torch.equal(value, saved[key]) for key, value in mine.state_dict().items())
    assert loaded.guider.config == guided_models.guider.config
    assert loaded.tokenizer("a red top").input_ids == guided_models.tokenizer("a red top").input_ids
    alone = load_guider(guided_weights / "animate.safetensors")
    assert all(torch.equal(value, alone.state_dict()[key]) for key, value in loaded.guider.state_dict().items())


def test_a_set_without_a_guider_loads_none(tiny_ours_weights):
    from animate.models.weights import load_models

    models = load_models(tiny_ours_weights)
    assert models.guider is None and models.text_encoder is None and models.tokenizer is None


def _guider_file(path, guided_models, change):
    """Our guider file of the tiny guider, its state dict changed by `change`."""
    from animate.models.guider_files import guider_tensors_and_metadata

    tensors, metadata = guider_tensors_and_metadata(guided_models.guider, lambda state: dict(state))
    tensors = change({k: v.contiguous() for k, v in tensors.items()})
    save_file(tensors, str(path), metadata={"format": "animate", **metadata})
    return path


@pytest.mark.parametrize("change, message", [
    (lambda t: {k: v for k, v in t.items() if k != "guider.face_k.3.weight"}, "missing key 'face_k.3.weight'"),
    (lambda t: {**t, "guider.extra.weight": torch.zeros(1)}, "unexpected key 'extra.weight'"),
    (lambda t: {**t, "guider.resampler.proj_in.weight": torch.zeros(64, 63)}, "'resampler.proj_in.weight' has shape"),
], ids=["missing", "unexpected", "shape"])
def test_a_broken_guider_file_is_one_line(tmp_path, guided_models, change, message):
    from animate.errors import AnimateError
    from animate.models.guider_files import load_guider

    path = _guider_file(tmp_path / "guider.safetensors", guided_models, change)
    with pytest.raises(AnimateError, match=message):
        load_guider(path)


# --- prompts --------------------------------------------------------------------------------------------------------


def test_the_tiny_tokenizer_keeps_caption_words_whole_and_round_trips(guided_models):
    from data_tools.captions import CAPTION_WORDS

    tokenizer = guided_models.tokenizer
    caption = "a figure with a striped green top and blue shorts in a purple room"
    ids = tokenizer(caption).input_ids
    assert len(ids) == len(caption.split()) + 2  # one token per word, plus start and end
    assert tokenizer.decode(ids, skip_special_tokens=True) == caption
    assert all(len(tokenizer(word).input_ids) == 3 for word in CAPTION_WORDS)
    assert tokenizer.decode(tokenizer("a zebra").input_ids, skip_special_tokens=True) == "a zebra"  # any text


def test_the_shipped_tokenizer_is_the_one_the_builder_writes():
    from animate.paths import model_size_dir
    from data_tools.captions import CAPTION_WORDS
    from data_tools.tokenizer import text_encoder_config, tokenizer_files

    for size in ("tiny", "demo"):
        folder = model_size_dir(size) / "tokenizer"
        for name, text in tokenizer_files(list(CAPTION_WORDS)).items():
            assert (folder / name).read_text(encoding="utf-8") == text, (size, name)
        config = json.loads((model_size_dir(size) / "text_encoder" / "config.json").read_text())
        assert config == text_encoder_config(folder)


# --- animate infer --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def face_photo(tmp_path_factory):
    from skimage.data import astronaut

    path = tmp_path_factory.mktemp("face") / "astronaut.png"
    Image.fromarray(astronaut()).save(path)
    return path


def test_text_and_face_without_a_photo_end_to_end(run_cli, guided_weights, face_photo, pose_video, tmp_path):
    """DreamMoving's own mode: no --ref; the grid's first column is the face crop."""
    result = run_cli(["infer", "--prompt", "a figure with a red top", "--face", face_photo, "--pose", pose_video(3),
                      "--weights", guided_weights, "-W", "64", "-H", "96", "--steps", "2", "--grid", "--no-progress",
                      "-o", "out.mp4"])
    assert result.code == 0, result.err
    assert result.out.strip() == "out.mp4" and "Traceback" not in result.err
    info = probe_video(tmp_path / "out.mp4")
    assert (info.width, info.height, info.num_frames) == (64, 96, 3)
    assert probe_video(tmp_path / "out_grid.mp4").width == 3 * 64


def test_the_guider_changes_the_video_and_zero_scales_do_not(run_cli, guided_weights, tiny_ours_weights, ref_photo,
                                                              face_photo, pose_video, tmp_path):
    from animate.media.video import read_frames

    def frames(name, *extra, weights=guided_weights):
        result = run_cli(["infer", "--ref", ref_photo, "--pose", pose_video(3), "--weights", weights, "--steps", "2",
                          "-W", "64", "--no-progress", "--crf", "0", "-o", name, *extra])
        assert result.code == 0, result.err
        return np.stack(list(read_frames(tmp_path / name))).astype(np.int16), result.err

    guided, _ = frames("guided.mp4", "--face", face_photo, "--prompt", "a red top", "--text-scale", "2")
    zero, _ = frames("zero.mp4", "--face", face_photo, "--prompt", "a red top", "--face-scale", "0",
                     "--text-scale", "0")
    plain, err = frames("plain.mp4")  # --face auto: the drawn figure's face is too small to find
    assert "warning: no face found in the photo" in err
    assert np.abs(guided - plain).max() > 8
    assert np.array_equal(zero, plain)


@pytest.mark.parametrize("extra, message", [
    (["--face", "BLANK"], "no face found in"),
    (["--text-scale", "0.5"], "--text-scale scales the prompt's tokens: give a --prompt"),
    (["--face-scale", "-1"], "--face-scale must be a finite number >= 0"),
    (["--face", "missing.png"], "--face missing.png: not a file"),
], ids=["no-face", "text-scale-without-prompt", "negative-scale", "missing-face"])
def test_bad_content_options_are_one_line(run_cli, guided_weights, ref_photo, pose_video, tmp_path, extra, message):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (128, 128), (90, 90, 90)).save(blank)
    extra = [str(blank) if value == "BLANK" else value for value in extra]
    result = run_cli(["infer", "--ref", ref_photo, "--pose", pose_video(3), "--weights", guided_weights, *extra])
    lines = result.err.strip().splitlines()
    assert result.code == 2 and len(lines) == 1 and message in lines[0], result.err
    assert lines[0].startswith("error: ")


def test_a_guider_that_does_not_fit_the_unet_is_one_line(run_cli, tiny_ours_weights, ref_photo, pose_video, tmp_path):
    from animate.models.guider import ContentGuider, GuiderConfig
    from animate.models.guider_files import guider_tensors_and_metadata

    other = ContentGuider(GuiderConfig(image_dim=64, context_dim=64, layers=15, attention_dims=(64,) * 15,
                                       num_tokens=4, depth=1, heads=4, head_dim=16))
    tensors, metadata = guider_tensors_and_metadata(other, lambda state: dict(state))
    path = tmp_path / "other.safetensors"
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata={"format": "animate", **metadata})
    result = run_cli(["infer", "--ref", ref_photo, "--pose", pose_video(3), "--weights", tiny_ours_weights,
                      "--guider", path, "--prompt", "a red top", "--no-progress"])
    assert result.code == 2 and "the guider's layers 15 does not fit the denoising UNet's 16" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_prompt_without_a_guider_is_one_line(run_cli, tiny_ours_weights, ref_photo, pose_video):
    result = run_cli(["infer", "--ref", ref_photo, "--pose", pose_video(3), "--weights", tiny_ours_weights,
                      "--prompt", "a red top", "--steps", "1", "--no-progress"])
    assert result.code == 2 and "need a content guider" in result.err, result.err


def test_a_long_prompt_is_cut_with_a_warning(run_cli, guided_weights, ref_photo, pose_video):
    result = run_cli(["infer", "--ref", ref_photo, "--pose", pose_video(3), "--weights", guided_weights, "-W", "64",
                      "--steps", "1", "--no-progress", "--prompt", " ".join(["red"] * 90)])
    assert result.code == 0, result.err
    assert "longer than 77 tokens" in result.err


def test_text_only_with_a_keypoint_dance_fits_the_dance_into_the_canvas(run_cli, guided_weights, tmp_path):
    """No photo and no face: the prompt alone, the dance's keypoints fitted whole into -W x -H."""
    from animate.pose.keypoints import PoseSequence
    from animate.pose.synthetic import synthetic_dance

    body = synthetic_dance(4, seed=2)
    PoseSequence(body, np.zeros((4, 2, 21, 3)), np.zeros((4, 68, 3)), 128, 192, 12).save(tmp_path / "d.pose.npz")
    result = run_cli(["infer", "--prompt", "a figure with a blue top", "--pose", tmp_path / "d.pose.npz", "--weights",
                      guided_weights, "-W", "64", "-H", "64", "--steps", "1", "--no-progress", "--grid"])
    assert result.code == 0, result.err
    out = result.out.strip()
    assert out == "outputs/text_d.pose_42.mp4"
    info = probe_video(tmp_path / out)
    assert (info.width, info.height, info.num_frames) == (64, 64, 4)


def test_a_jobs_file_runs_photo_free_cases(run_cli, guided_weights, face_photo, pose_video, tmp_path):
    """A case with a prompt and a face photo (found beside the jobs file) needs no ref."""
    cases = tmp_path / "cases"
    cases.mkdir()
    Image.open(face_photo).save(cases / "me.png")
    jobs = cases / "jobs.yaml"
    jobs.write_text(f"steps: 1\nwidth: 64\nheight: 96\ncases:\n"
                    f"  - {{face: me.png, prompt: a figure with a red top, pose: {pose_video(3)}}}\n"
                    f"  - {{prompt: a figure with a blue top, face: none, pose: {pose_video(3)}}}\n")
    result = run_cli(["infer", "--jobs", jobs, "--weights", guided_weights, "--no-progress"])
    assert result.code == 0, result.err
    stem = pose_video(3).stem
    assert result.out.split() == [f"outputs/me_{stem}_42.mp4", f"outputs/text_{stem}_42.mp4"]


def test_a_whole_clip_in_openais_layout_gives_its_text_half(tmp_path, tiny_ours_weights):
    """The layout of openai/clip-vit-large-patch14 (a CLIPModel: vision and text, tokenizer files) beside a weight set:
    the text encoder loads with the checkpoint's text weights (a tiny CLIPModel saved here; the real file unverified)."""
    import shutil

    from transformers import CLIPConfig, CLIPModel

    from animate.models.weights import load_text_encoder
    from animate.paths import model_size_dir

    folder = tmp_path / "set"
    shutil.copytree(tiny_ours_weights, folder)
    text = json.loads((model_size_dir("tiny") / "text_encoder" / "config.json").read_text())
    clip = CLIPModel(CLIPConfig(text_config={k: v for k, v in text.items() if k != "architectures"},
                                vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                                   num_attention_heads=2, patch_size=16, image_size=32),
                                projection_dim=16))
    clip.save_pretrained(folder / "clip-vit-large-patch14")
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        shutil.copy(model_size_dir("tiny") / "tokenizer" / name, folder / "clip-vit-large-patch14" / name)
    encoder, tokenizer = load_text_encoder(folder)
    theirs = clip.state_dict()
    assert all(torch.equal(value, theirs[f"text_model.{key}"]) for key, value in encoder.state_dict().items())
    assert tokenizer("a red top").input_ids[1:-1] == [tokenizer.convert_tokens_to_ids(w + "</w>")
                                                      for w in ("a", "red", "top")]


def test_a_text_encoder_without_its_tokenizer_or_of_another_width_is_one_line(guided_weights, guided_models, tmp_path):
    """Encoder and tokenizer are found together (never one from here and one from the folder above), and a text
    encoder whose tokens the guider cannot read is refused."""
    import shutil

    from transformers import CLIPTextConfig, CLIPTextModel

    from animate.errors import AnimateError
    from animate.models.weights import load_models

    lone = tmp_path / "lone" / "set"
    shutil.copytree(guided_weights, lone)
    shutil.rmtree(lone / "tokenizer")
    with pytest.raises(AnimateError, match="a text tokenizer folder is missing"):
        load_models(lone)
    wide = tmp_path / "wide" / "set"
    shutil.copytree(guided_weights, wide)
    config = {**guided_models.text_encoder.config.to_dict(), "hidden_size": 32, "intermediate_size": 64}
    CLIPTextModel(CLIPTextConfig(**config)).save_pretrained(wide / "text_encoder")
    with pytest.raises(AnimateError, match="the text encoder gives tokens of 32, the guider reads 64"):
        load_models(wide)
