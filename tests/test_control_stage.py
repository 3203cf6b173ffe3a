"""The control stage: only the Video ControlNet learns, on clips with their depth; it can overfit one clip; the
weights it saves drive `animate infer --control depth`."""

import json

import torch
from safetensors.torch import load_file

from animate.models.bundle import build_random_models
from animate.models.controlnet import VideoControlNet
from animate.paths import CONFIG_DIR
from stages import control
from stages.network import AnimateNet
from stages.objective import target, training_scheduler
from stages.training import checkpoints
from stage_helpers import overfit, straight_and_resumed


def _with_depth(meta, tmp_path):
    """The dataset's meta with each video standing in as its own depth video (frame-aligned by construction)."""
    entries = json.loads(meta.read_text())
    for entry in entries:
        entry["depth_path"] = str(meta.parent / entry["video_path"])
        entry["video_path"], entry["kps_path"] = (str(meta.parent / entry[k]) for k in ("video_path", "kps_path"))
    path = tmp_path / "meta_depth.json"
    path.write_text(json.dumps(entries))
    return path


def test_only_the_controlnet_learns_and_the_weights_infer(dataset, tmp_path, run_cli, ref_photo, pose_video):
    output = control.train(CONFIG_DIR / "train" / "control_tiny.yaml",
                           [f"data.meta=[{_with_depth(dataset, tmp_path)}]", f"train.output_dir={tmp_path}/run",
                            "train.max_steps=2", "train.checkpoint_every=2", "train.seed=0", "train.validate_every=2",
                            "train.control_dropout=0.0"])
    weights = load_file(str(checkpoints(output)[-1] / "weights" / "animate.safetensors"))
    start = build_random_models("tiny", seed=0)
    fresh = VideoControlNet.from_animate_unet(start.animate_unet, latent_scale=8)
    before = {f"{name}.{k}": v for name in ("reference_unet", "denoising_unet", "pose_guider")
              for k, v in getattr(start, name).state_dict().items()}
    before |= {f"controlnet.depth.{k}": v for k, v in fresh.controlnet.state_dict().items()}
    assert set(weights) == set(before)
    changed = {k for k in before if not torch.equal(weights[k].float(), before[k].half().float())}
    assert changed and all(k.startswith("controlnet.depth.") for k in changed)
    assert any("controlnet_down_blocks" in k for k in changed)  # the zero convolutions opened
    depth_video = json.loads((tmp_path / "meta_depth.json").read_text())[0]["depth_path"]
    result = run_cli(["infer", "--ref", ref_photo, "--pose", pose_video(5), "--weights",
                      checkpoints(output)[-1] / "weights", "-W", "64", "--steps", "1", "--no-progress", "-o", "o.mp4",
                      "--control", "depth", "--depth", depth_video, "-L", "5"])
    assert result.code == 0, result.err
    assert "depth ControlNet: from" in result.err


def test_the_controlnet_overfits_one_clip():
    """On one fixed clip, noise and timestep, the ControlNet alone brings the loss well below the frozen model's."""
    torch.manual_seed(0)
    models = build_random_models("tiny", seed=0)
    net = VideoControlNet.from_animate_unet(models.animate_unet, latent_scale=8)
    model = AnimateNet(models.reference_net, models.animate_unet, net).train()
    model.requires_grad_(False)
    net.requires_grad_(True)
    generator = torch.Generator().manual_seed(1)
    latents = torch.randn(1, 4, 2, 4, 4, generator=generator)
    noise = torch.randn(latents.shape, generator=generator)
    reference = torch.randn(1, 4, 4, 4, generator=generator)
    context = torch.randn(1, 1, models.denoising_unet.config.cross_attention_dim, generator=generator)
    pose = torch.rand(1, 2, 3, 32, 32, generator=generator)
    depth = torch.rand(1, 2, 3, 32, 32, generator=generator)
    schedule, timesteps = training_scheduler(), torch.tensor([600])
    noisy, goal = schedule.add_noise(latents, noise, timesteps), target(schedule, latents, noise, timesteps)
    dropped = torch.tensor([False])

    def loss() -> torch.Tensor:
        return torch.nn.functional.mse_loss(model(noisy, timesteps, reference, context, pose, dropped, depth), goal)

    first, last = overfit(loss, net.parameters(), 80)
    assert last < 0.3 * first, (first, last)


def test_a_resumed_control_run_equals_an_uninterrupted_one(dataset_of, tmp_path):
    """The control stage's extra draw (control dropout) is restored with the rest: resuming mid-epoch from step 3
    gives the same ControlNet, bit for bit, as a run never stopped."""
    meta = _with_depth(dataset_of(4), tmp_path)

    def run(output, *overrides, resume=None):
        return control.train(CONFIG_DIR / "train" / "control_tiny.yaml",
                             [f"data.meta=[{meta}]", f"train.output_dir={output}", "train.batch_size=2",
                              "train.seed=0", "train.validate_every=1000", "train.control_dropout=0.5",
                              "data.n_sample_frames=2", *overrides], resume_from=resume)

    straight, resumed = straight_and_resumed(run, tmp_path)
    a = load_file(str(checkpoints(straight)[-1] / "weights" / "animate.safetensors"))
    b = load_file(str(checkpoints(resumed)[-1] / "weights" / "animate.safetensors"))
    assert a.keys() == b.keys() and any(k.startswith("controlnet.depth.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_control_dropout_blacks_out_whole_samples_of_the_kinds_images():
    """control_images reads depth or pose images by kind; a dropped sample is black in every frame, a kept one as
    it was; the share follows train.control_dropout (0: none, 1: all)."""
    from stages.loop import control_images

    generator = torch.Generator().manual_seed(0)
    batch = {"depth_pixel_values": torch.rand(64, 2, 3, 4, 4, generator=generator) + 0.1,
             "pose_pixel_values": torch.rand(64, 2, 3, 4, 4, generator=generator) + 0.1}
    assert torch.equal(control_images(batch, "depth", 0.0), batch["depth_pixel_values"])
    assert torch.equal(control_images(batch, "pose", 0.0), batch["pose_pixel_values"])
    assert not control_images(batch, "depth", 1.0).any()
    torch.manual_seed(1)
    half = control_images(batch, "depth", 0.5)
    black = (half == 0).flatten(1).all(1)
    kept = torch.tensor([torch.equal(a, b) for a, b in zip(half, batch["depth_pixel_values"])])
    assert torch.equal(black, ~kept) and 16 < int(black.sum()) < 48
