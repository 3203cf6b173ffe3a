"""The guider stage: its data (a face of the same person from elsewhere, the caption), only the guider and the small
text encoder learn, it can overfit one batch, a resumed run equals an uninterrupted one, and its weights drive
`animate infer --prompt/--face`."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from animate.models.bundle import build_random_guider, build_random_models
from animate.models.text import token_ids
from animate.paths import CONFIG_DIR
from data_tools.synth import SynthOptions, synthesize
from stages import guider
from stages.content import ContentBatch
from stages.datasets import GuiderDataset
from stages.network import AnimateNet
from stages.objective import target, training_scheduler
from stages.training import checkpoints
from stage_helpers import overfit, straight_and_resumed


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    """Four close-up train videos of two people (two outfits each), 6 frames at 64x96; a lone full-body video."""
    root = tmp_path_factory.mktemp("guider_data")
    synthesize(SynthOptions(root / "close", train_videos=4, test_videos=0, frames=6, width=64, height=96, fps=12.0,
                            seed=4, workers=1, outfits=2, framing="head"))
    synthesize(SynthOptions(root / "far", train_videos=1, test_videos=0, frames=6, width=64, height=96, fps=12.0,
                            seed=4, workers=1))
    return root / "close" / "meta_train.json", root / "far" / "meta_train.json"


def test_the_face_comes_from_another_video_of_the_person(people):
    close, _ = people
    dataset = GuiderDataset(close, 64, 96, sample_margin=2, seed=0)
    entries = json.loads(close.read_text())
    for index in range(len(dataset)):
        source, _ = dataset.face_source(np.random.default_rng(index), index, 0)
        assert source is not dataset.entries[index] and source.identity == dataset.entries[index].identity
    item = dataset[1]
    assert item["face_seen"] and item["caption"] == entries[1]["caption"]
    assert item["face_clip_pixel_values"].shape == (3, 224, 224)


def test_a_lone_video_gives_another_frame_and_small_faces_are_not_seen(people):
    _, far = people
    dataset = GuiderDataset(far, 64, 96, sample_margin=2, seed=0)
    for frame_index in range(6):
        source, frame = dataset.face_source(np.random.default_rng(frame_index), 0, frame_index)
        assert source is dataset.entries[0] and frame != frame_index
    assert not dataset[0]["face_seen"]  # a full-body face at 64x96 is under 16 px


def test_only_the_guider_and_text_encoder_learn_and_the_weights_infer(people, tmp_path, run_cli, pose_video):
    """Against the same run at learning rate 0 (the same start, never moved): the guider and the text encoder
    changed, everything else is what it was."""
    close, _ = people

    def run(name, *overrides):
        output = guider.train(CONFIG_DIR / "train" / "guider_tiny.yaml",
                              [f"data.meta=[{close}]", f"train.output_dir={tmp_path}/{name}", "train.max_steps=2",
                               "train.checkpoint_every=2", "train.seed=0", "train.validate_every=2",
                               "train.face_dropout=0.0", "train.text_dropout=0.0", "train.condition_dropout=0.5",
                               *overrides])
        folder = checkpoints(output)[-1] / "weights"
        return (output, folder, load_file(str(folder / "animate.safetensors")),
                load_file(str(folder / "text_encoder" / "model.safetensors")))

    output, folder, weights, text = run("run")
    _, _, still, still_text = run("still", "train.learning_rate=0.0")
    start = build_random_models("tiny", seed=0)
    frozen = {f"{name}.{k}" for name in ("reference_unet", "denoising_unet", "pose_guider")
              for k in getattr(start, name).state_dict()}
    assert set(weights) == set(still) and frozen < set(weights)
    assert all(k in frozen or k.startswith("guider.") for k in weights)
    assert all(torch.equal(weights[k], still[k]) for k in frozen)
    assert any(not torch.equal(weights[k], still[k]) for k in weights if k.startswith("guider."))
    assert any(not torch.equal(text[k], still_text[k]) for k in text)
    assert (output / "previews" / "step-0000002.png").is_file()
    face = json.loads(close.read_text())[0]
    result = run_cli(["infer", "--prompt", face["caption"], "--pose", pose_video(3), "--weights", folder, "-W", "64",
                      "-H", "96", "--steps", "1", "--no-progress", "-o", "o.mp4"])
    assert result.code == 0, result.err


def test_the_guider_overfits_one_batch():
    """On one fixed image, noise and timestep, the guider alone (face and text tokens) brings the loss well below
    the frozen model's."""
    torch.manual_seed(0)
    models = build_random_guider(build_random_models("tiny", seed=0, motion=False), "tiny", seed=0)
    model = AnimateNet(models.reference_net, models.animate_unet, guider=models.guider,
                       text_encoder=models.text_encoder, motion=False).train()
    model.requires_grad_(False)
    models.guider.requires_grad_(True)
    generator = torch.Generator().manual_seed(1)
    latents = torch.randn(1, 4, 1, 4, 4, generator=generator)
    noise = torch.randn(latents.shape, generator=generator)
    reference = torch.randn(1, 4, 4, 4, generator=generator)
    context = torch.randn(1, 1, models.denoising_unet.config.cross_attention_dim, generator=generator)
    pose = torch.rand(1, 1, 3, 32, 32, generator=generator)
    content = ContentBatch(torch.randn(1, 50, 64, generator=generator),
                           token_ids(models.tokenizer, ["a figure with a red top"]), torch.tensor([True]),
                           torch.tensor([True]))
    schedule, timesteps = training_scheduler(), torch.tensor([600])
    noisy, goal = schedule.add_noise(latents, noise, timesteps), target(schedule, latents, noise, timesteps)
    dropped = torch.tensor([False])

    def loss() -> torch.Tensor:
        prediction = model(noisy, timesteps, reference, context, pose, dropped, content=content)
        return torch.nn.functional.mse_loss(prediction, goal)

    first, last = overfit(loss, models.guider.parameters(), 60)
    assert last < 0.3 * first, (first, last)


def test_a_resumed_guider_run_equals_an_uninterrupted_one(people, tmp_path):
    """The guider stage's extra draws (face, text and reference dropout) are restored with the rest: resuming
    mid-epoch from step 3 gives the same guider, bit for bit, as a run never stopped."""
    close, _ = people

    def run(output, *overrides, resume=None):
        return guider.train(CONFIG_DIR / "train" / "guider_tiny.yaml",
                            [f"data.meta=[{close}]", f"train.output_dir={output}", "train.batch_size=2",
                             "train.seed=0", "train.validate_every=1000", "train.face_dropout=0.5",
                             "train.text_dropout=0.5", *overrides], resume_from=resume)

    straight, resumed = straight_and_resumed(run, tmp_path)
    a = load_file(str(checkpoints(straight)[-1] / "weights" / "animate.safetensors"))
    b = load_file(str(checkpoints(resumed)[-1] / "weights" / "animate.safetensors"))
    assert a.keys() == b.keys() and any(k.startswith("guider.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
    text_a, text_b = (load_file(str(checkpoints(r)[-1] / "weights" / "text_encoder" / "model.safetensors"))
                      for r in (straight, resumed))
    assert all(torch.equal(text_a[k], text_b[k]) for k in text_a)
