"""Stage-1 training on the tiny size: steps run, checkpoints resume exactly, the weights load in `animate infer`."""

import pytest
import torch
from safetensors.torch import load_file

from animate.errors import AnimateError
from animate.paths import CONFIG_DIR
from stages import stage1, step
from stages.training import checkpoints


def run(dataset, output, *extra, resume=None):
    overrides = [f"data.meta=[{dataset}]", f"train.output_dir={output}", "train.seed=0", *extra]
    return stage1.train(CONFIG_DIR / "train" / "stage1_tiny.yaml", overrides, resume_from=resume)


def test_steps_save_checkpoints_and_infer_loads_the_weights(dataset, tmp_path, run_cli, ref_photo, pose_video):
    output = run(dataset, tmp_path / "run", "train.max_steps=4", "train.checkpoint_every=2", "train.keep_checkpoints=1")
    saved = checkpoints(output)
    assert [p.name for p in saved] == ["checkpoint-0000004"]  # only the last one kept
    assert (saved[0] / "state").is_dir() and (saved[0] / "weights" / "animate.safetensors").is_file()
    assert not list(output.glob(".*partial*"))
    assert list((output / "stage1").glob("events.out.tfevents.*"))  # TensorBoard scalars
    result = run_cli(["infer", "--ref", ref_photo, "--pose", pose_video(3), "--weights", saved[0] / "weights",
                      "-W", "64", "--steps", "1", "--no-progress", "-o", "out.mp4"])
    assert result.code == 0, result.err


def test_only_trained_parts_change(dataset, tmp_path):
    output = run(dataset, tmp_path / "run", "train.max_steps=2", "train.checkpoint_every=2")
    weights = load_file(str(checkpoints(output)[-1] / "weights" / "animate.safetensors"))
    from animate.models.bundle import build_random_models

    torch.manual_seed(0)
    start = build_random_models("tiny", seed=0, motion=False)
    before = {f"reference_unet.{k}": v for k, v in start.reference_unet.state_dict().items()}
    unread = "reference_unet.up_blocks.3.attentions.2.transformer_blocks.0.ff.net.2.weight"
    changed = "reference_unet.conv_in.weight"
    assert torch.equal(weights[unread].float(), before[unread].half().float())  # never read, frozen
    assert not torch.equal(weights[changed].float(), before[changed].half().float())


def test_resume_equals_an_uninterrupted_run(dataset, tmp_path):
    straight = run(dataset, tmp_path / "a", "train.max_steps=4", "train.checkpoint_every=4")
    run(dataset, tmp_path / "b", "train.max_steps=2", "train.checkpoint_every=2")
    resumed = run(dataset, tmp_path / "b", "train.max_steps=4", "train.checkpoint_every=4", resume="latest")
    a = load_file(str(checkpoints(straight)[-1] / "weights" / "animate.safetensors"))
    b = load_file(str(checkpoints(resumed)[-1] / "weights" / "animate.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_nan_loss_stops_before_anything_is_overwritten(dataset, tmp_path, monkeypatch):
    output = run(dataset, tmp_path / "run", "train.max_steps=2", "train.checkpoint_every=2")
    snapshot = lambda: {p: p.read_bytes() for p in output.glob("checkpoint-*/**/*") if p.is_file()}  # noqa: E731
    before = snapshot()
    monkeypatch.setattr(step, "weighted_mse", lambda *a: torch.tensor(float("nan"), requires_grad=True))
    with pytest.raises(AnimateError, match="loss is nan at step 3"):
        run(dataset, output, "train.max_steps=4", "train.checkpoint_every=1", resume="latest")
    assert snapshot() == before  # the last good checkpoint untouched, no new one
    assert not list(output.glob(".*partial*"))


def test_train_command(dataset, tmp_path, run_cli):
    config = CONFIG_DIR / "train" / "stage1_tiny.yaml"
    result = run_cli(["train", "stage1", "--config", config, f"data.meta=[{dataset}]", f"train.output_dir={tmp_path}/r",
                      "train.max_steps=1"])
    assert result.code == 0, result.err
    assert (tmp_path / "r" / "checkpoint-0000001" / "weights" / "animate.safetensors").is_file()
    result = run_cli(["train", "stage1", "--config", tmp_path / "missing.yaml"])
    assert result.code == 2 and result.err.strip().splitlines() == [f"error: {tmp_path / 'missing.yaml'}: config not found"]
