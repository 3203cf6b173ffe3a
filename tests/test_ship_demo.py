"""scripts/ship_demo.py: a finished demo run's last stage-2 weights (fp16) and one held-out case into a folder."""

import json
import runpy
from pathlib import Path

import pytest
import torch

from animate.models.bundle import build_random_models
from animate.models.weights import load_models, save_weight_set
from animate.paths import REPO_ROOT

ship_demo = runpy.run_path(str(REPO_ROOT / "scripts" / "ship_demo.py"))["main"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A run folder as train_demo.sh leaves it: data/ with a held-out entry, two stage-2 checkpoints."""
    run = tmp_path_factory.mktemp("demo") / "run"
    data = run / "data"
    entry = {"video_path": "videos/test_0000.mp4", "kps_path": "poses/test_0000.mp4",
             "keypoints_path": "keypoints/test_0000.pose.npz", "ref_path": "refs/test_0000.png"}
    for i, relative in enumerate(entry.values()):
        (data / relative).parent.mkdir(parents=True, exist_ok=True)
        (data / relative).write_bytes(bytes([i]) * 8)
    (data / "meta_test.json").write_text(json.dumps([entry]))
    for step, seed in ((200, 1), (300, 2)):
        save_weight_set(build_random_models("demo", seed=seed), run / "stage2" / f"checkpoint-{step:07d}" / "weights",
                        "ours", torch.float32)
    return run


def test_ships_the_last_checkpoint_in_fp16_and_the_case(run, tmp_path):
    out = tmp_path / "examples"
    ship_demo([str(run), "--out", str(out)])
    for i, name in enumerate(("dance_truth.mp4", "dance_pose.mp4", "dance.pose.npz", "ref.png")):
        assert (out / name).read_bytes() == bytes([i]) * 8, name
    shipped, last = load_models(out / "weights"), load_models(run / "stage2" / "checkpoint-0000300" / "weights")
    assert shipped.denoising_unet.conv_in.weight.dtype == torch.float16
    assert torch.equal(shipped.denoising_unet.conv_in.weight, last.denoising_unet.conv_in.weight.half())


def test_an_unknown_case_is_one_line(run, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        ship_demo([str(run), "--case", "test_0009", "--out", str(tmp_path / "x")])
    assert exit_info.value.code == f"error: test_0009 is not in {run / 'data' / 'meta_test.json'} (held-out: test_0000)"
    assert not (tmp_path / "x").exists()


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        ship_demo([str(tmp_path / "nothing"), "--out", str(tmp_path / "x")])
    assert exit_info.value.code == (f"error: {tmp_path / 'nothing' / 'data' / 'meta_test.json'} not found: "
                                    f"is {tmp_path / 'nothing'} a train_demo.sh output folder?")
    assert not (tmp_path / "x").exists()
