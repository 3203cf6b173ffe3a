"""Stage-1 training on the tiny size: steps run, checkpoints resume exactly, the weights load in `animate infer`."""

import json
import math
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file

from animate.errors import AnimateError
from animate.paths import CONFIG_DIR
from stages import stage1, step
from stages.loop import learning_rate_schedule
from stages.training import checkpoints


def run(dataset, output, *extra, resume=None):
    overrides = [f"data.meta=[{dataset}]", f"train.output_dir={output}", "train.seed=0", *extra]
    return stage1.train(CONFIG_DIR / "train" / "stage1_tiny.yaml", overrides, resume_from=resume)


def test_steps_save_checkpoints_and_infer_loads_the_weights(dataset, tmp_path, run_cli, ref_photo, pose_video):
    output = run(dataset, tmp_path / "run", "train.max_steps=4", "train.checkpoint_every=2", "train.keep_checkpoints=1",
                 "train.validate_every=2")
    previews = sorted(p.name for p in (output / "previews").iterdir())
    assert previews == ["step-0000002.png", "step-0000004.png"]
    from PIL import Image

    assert Image.open(output / "previews" / previews[0]).size == (3 * 64, 96)  # ref | pose | result
    saved = checkpoints(output)
    assert [p.name for p in saved] == ["checkpoint-0000004"]  # only the last one kept
    assert (saved[0] / "state").is_dir() and (saved[0] / "weights" / "animate.safetensors").is_file()
    assert not list(output.glob(".*partial*"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(output / "stage1")).Reload()
    assert {"loss", "lr", "it_per_s"} <= set(events.Tags()["scalars"])  # TensorBoard scalars
    assert [e.step for e in events.Scalars("loss")] == [1, 2, 3, 4]
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
    # a decaying learning rate: a resumed run that restarted its schedule would take larger steps than the straight one
    decay = ["train.lr_schedule=cosine", "train.learning_rate=1e-3"]
    straight = run(dataset, tmp_path / "a", "train.max_steps=4", "train.checkpoint_every=4", *decay)
    run(dataset, tmp_path / "b", "train.max_steps=4", "train.checkpoint_every=2", *decay, "train.keep_checkpoints=2")
    shutil.rmtree(tmp_path / "b" / "checkpoint-0000004")  # as if stopped after step 2
    resumed = run(dataset, tmp_path / "b", "train.max_steps=4", "train.checkpoint_every=4", *decay, resume="latest")
    a = load_file(str(checkpoints(straight)[-1] / "weights" / "animate.safetensors"))
    b = load_file(str(checkpoints(resumed)[-1] / "weights" / "animate.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_from_the_middle_of_an_epoch_equals_an_uninterrupted_run(dataset_of, tmp_path):
    """4 videos in batches of 2: two batches an epoch, so the checkpoint of step 3 is mid-epoch. Resuming from it
    must find the epoch's order and its place in it: the same weights, bit for bit, as a run never stopped."""
    meta = dataset_of(4)
    straight = run(meta, tmp_path / "a", "train.max_steps=5", "train.checkpoint_every=5")
    run(meta, tmp_path / "b", "train.max_steps=3", "train.checkpoint_every=3")  # stopped after step 3
    resumed = run(meta, tmp_path / "b", "train.max_steps=5", "train.checkpoint_every=5", resume="latest")
    a = load_file(str(checkpoints(straight)[-1] / "weights" / "animate.safetensors"))
    b = load_file(str(checkpoints(resumed)[-1] / "weights" / "animate.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    position = json.loads((checkpoints(resumed)[0] / "position.json").read_text())
    assert position == {"step": 3, "batches": 3, "batches_per_epoch": 2, "processes": 1}
    with pytest.raises(AnimateError, match="batches_per_epoch 2, processes 1; this run has batches_per_epoch 4"):
        run(meta, tmp_path / "b", "train.max_steps=6", "train.batch_size=1", resume=str(checkpoints(resumed)[0]))


@pytest.mark.parametrize("processes", [1, 2])
def test_learning_rate_schedules(processes):
    from omegaconf import OmegaConf

    def rates(schedule, warmup):
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        run_cfg = OmegaConf.create({"lr_schedule": schedule, "lr_warmup_steps": warmup, "max_steps": 4})
        lr_schedule = learning_rate_schedule(optimizer, run_cfg, processes)
        seen = []
        for _ in range(4):
            for _ in range(processes):  # a prepared schedule steps once per process
                lr_schedule.step()
            seen.append(lr_schedule.get_last_lr()[0])
        return pytest.approx(seen)

    assert rates("constant", 0) == [1, 1, 1, 1]
    assert rates("constant", 2) == [0.5, 1, 1, 1]
    assert rates("linear", 0) == [0.75, 0.5, 0.25, 0]
    assert rates("cosine", 0) == [0.5 + 0.5 * math.cos(math.pi * k / 4) for k in range(1, 5)]
    with pytest.raises(AnimateError, match="train.lr_schedule must be one of constant, cosine, linear, got 'step'"):
        rates("step", 0)
    with pytest.raises(AnimateError, match="train.lr_warmup_steps must be >= 0"):
        rates("linear", -1)


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
                      "train.max_steps=1", "train.mixed_precision=no"])  # a bare `no` is YAML's false
    assert result.code == 0, result.err
    assert (tmp_path / "r" / "checkpoint-0000001" / "weights" / "animate.safetensors").is_file()
    result = run_cli(["train", "stage1", "--config", tmp_path / "missing.yaml"])
    assert result.code == 2 and result.err.strip().splitlines() == [f"error: {tmp_path / 'missing.yaml'}: config not found"]
    result = run_cli(["train", "stage1", "--config", config, "train.lerning_rate=1"])  # a typo is not ignored
    assert result.code == 2 and "lerning_rate" in result.err and len(result.err.strip().splitlines()) == 1
    result = run_cli(["train", "stage1", "--config", config, "train.mixed_precision=fp8"])
    assert result.code == 2 and result.err.strip().splitlines() == [
        "error: train.mixed_precision must be no, fp16 or bf16, got 'fp8'"]


def test_sigterm_saves_a_checkpoint_then_exits_143(dataset, tmp_path, run_cli, monkeypatch):
    """A scheduler's SIGTERM mid-run: the step in progress finishes, a checkpoint is saved, and the exit is 143, not
    the 0 of a finished run."""
    import signal

    from stages import loop

    calls, loss = [], loop.diffusion_loss

    def loss_then_sigterm(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return loss(*args, **kwargs)

    monkeypatch.setattr(loop, "diffusion_loss", loss_then_sigterm)
    previous = signal.signal(signal.SIGTERM, lambda *_: None)  # if the run forgot its own handler: fail, not die
    try:
        result = run_cli(["train", "stage1", "--config", CONFIG_DIR / "train" / "stage1_tiny.yaml",
                          f"data.meta=[{dataset}]", f"train.output_dir={tmp_path}/r", "train.max_steps=10",
                          "train.checkpoint_every=100", "train.validate_every=100"])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert result.code == 143, result.err
    assert result.err.strip().splitlines()[-1] == (
        f"terminated: checkpoint-0000002 saved in {tmp_path}/r; continue with --resume latest")
    assert [p.name for p in checkpoints(tmp_path / "r")] == ["checkpoint-0000002"]
    assert result.out == ""


@pytest.mark.parametrize("stage", ["stage1", "stage2", "control", "guider", "distill"])
def test_release_and_tiny_configs_have_the_same_keys(stage):
    from omegaconf import OmegaConf

    def keys(node, prefix=""):
        return {k for name, value in node.items()
                for k in (keys(value, f"{prefix}{name}.") if isinstance(value, dict) else [prefix + name])}

    release, tiny = (OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "train" / f"{name}.yaml"))
                     for name in (stage, f"{stage}_tiny"))
    assert keys(release) == keys(tiny)


def launch_two(meta, output, *overrides, resume: str | None = None) -> None:
    """`animate train stage1` under `accelerate launch` with 2 CPU processes (gloo DDP via torchrun; accelerate's
    --cpu alone needs mpirun); a hang dumps every process's stacks into the failure."""
    import signal
    import socket
    import subprocess
    import sys

    import psutil

    with socket.socket() as probe:  # a free rendezvous port: a stray run elsewhere cannot block this one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
               str(port), "-m", "animate.app.cli", "train", "stage1", "--config", str(CONFIG_DIR / "train" / "stage1_tiny.yaml"),
               f"data.meta=[{meta}]", f"train.output_dir={output}", "train.seed=0", *overrides,
               *(["--resume", resume] if resume else [])]
    launcher = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = launcher.communicate(timeout=240)
    except subprocess.TimeoutExpired:  # a hang: every process dumps its Python stacks (faulthandler), then dies
        processes = [launcher_process := psutil.Process(launcher.pid), *launcher_process.children(recursive=True)]
        for process in processes:  # torchrun starts each worker in a session of its own: signal them one by one
            process.send_signal(signal.SIGABRT)
        psutil.wait_procs(processes, timeout=30)
        for process in processes:
            if process.is_running():
                process.kill()
        _, stderr = launcher.communicate()
        pytest.fail(f"the 2-process run hung; its stacks:\n{stderr[-6000:]}")
    assert launcher.returncode == 0, stderr[-2000:]


def test_two_processes_end_with_equal_weights(dataset_of, tmp_path):
    launch_two(dataset_of(4), tmp_path / "run", "train.max_steps=2", "train.checkpoint_every=2")
    ranks = json.loads((tmp_path / "run" / "ranks.json").read_text())
    assert ranks["processes"] == 2
    assert ranks["checksums"][0] == ranks["checksums"][1]


def test_two_processes_resume_from_the_middle_of_an_epoch_exactly(dataset_of, tmp_path):
    """8 videos, 2 processes × batches of 2: two steps an epoch, so step 3 is mid-epoch (as for one process)."""
    meta = dataset_of(8)
    launch_two(meta, tmp_path / "a", "train.max_steps=5", "train.checkpoint_every=5")
    launch_two(meta, tmp_path / "b", "train.max_steps=3", "train.checkpoint_every=3")
    launch_two(meta, tmp_path / "b", "train.max_steps=5", "train.checkpoint_every=5", resume="latest")
    a = load_file(str(checkpoints(tmp_path / "a")[-1] / "weights" / "animate.safetensors"))
    b = load_file(str(checkpoints(tmp_path / "b")[-1] / "weights" / "animate.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_loss_falls_when_overfitting_one_batch(dataset):
    from animate.models.bundle import build_random_models
    from stages.datasets import Stage1Dataset
    from stages.network import AnimateNet
    from stages.objective import training_scheduler
    from stages.step import diffusion_loss, encode_batch

    torch.manual_seed(0)
    models = build_random_models("tiny", seed=0, motion=False)
    batch = torch.utils.data.default_collate([Stage1Dataset([dataset], 64, 96, 4, seed=0)[i] for i in range(2)])
    latents, reference, context, pose, dropped = encode_batch(models.vae, models.image_encoder, batch,
                                                             torch.zeros(1, 1, 64), 0.0, torch.float32)
    net = AnimateNet(models.reference_net, models.animate_unet)
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-3)
    schedule, losses = training_scheduler(), []
    for step_number in range(30):
        torch.manual_seed(1)  # the same noise and timesteps every step: one fixed problem to fit
        loss = diffusion_loss(net, schedule, latents, reference, context, pose, dropped, 0.05, 5.0, step_number)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
