"""Stage-2 training on the tiny size: only the motion modules learn; the result animates."""

import torch
from safetensors.torch import load_file

from animate.models.bundle import build_random_models
from animate.paths import CONFIG_DIR
from stages import stage2
from stages.training import checkpoints


def test_only_motion_modules_change_and_the_weights_infer(dataset, tmp_path, run_cli, ref_photo, pose_video):
    output = stage2.train(CONFIG_DIR / "train" / "stage2_tiny.yaml",
                          [f"data.meta=[{dataset}]", f"train.output_dir={tmp_path}/run", "train.max_steps=2",
                           "train.checkpoint_every=2", "train.seed=0", "train.validate_every=2"])
    from animate.media.video import probe_video

    preview = probe_video(output / "previews" / "step-0000002.mp4")
    assert (preview.num_frames, preview.width, preview.height) == (4, 3 * 64, 96)  # a clip: ref | pose | result
    weights = load_file(str(checkpoints(output)[-1] / "weights" / "animate.safetensors"))
    torch.manual_seed(0)
    start = build_random_models("tiny", seed=0)
    before = {f"{name}.{k}": v for name in ("reference_unet", "denoising_unet", "pose_guider")
              for k, v in getattr(start, name).state_dict().items()}
    changed = {k for k in before if not torch.equal(weights[k].float(), before[k].half().float())}
    assert changed and all(".motion_modules." in k for k in changed)
    assert any(k.endswith("temporal_transformer.proj_out.weight") for k in changed)  # zero-init output opened
    result = run_cli(["infer", "--ref", ref_photo, "--pose", pose_video(5), "--weights",
                      checkpoints(output)[-1] / "weights", "-W", "64", "--steps", "1", "--no-progress", "-o", "o.mp4"])
    assert result.code == 0, result.err
    assert "motion modules (position table 32 frames)" in result.err
