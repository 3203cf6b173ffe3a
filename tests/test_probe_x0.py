"""scripts/probe_x0.py: the one-step x0 of a v-prediction, and the probe's table on a tiny synthetic split."""

import math
import runpy

import pytest
import torch

from animate.paths import REPO_ROOT
from stages.objective import training_scheduler

script = runpy.run_path(str(REPO_ROOT / "scripts" / "probe_x0.py"))


@pytest.mark.parametrize("t", [0, 500, 999])
def test_the_true_velocity_gives_back_the_clean_latents(t):
    schedule, latents, noise = training_scheduler(), torch.randn(1, 4, 2, 6, 4), torch.randn(1, 4, 2, 6, 4)
    step = torch.tensor([t])
    noisy = schedule.add_noise(latents, noise, step)
    velocity = schedule.get_velocity(latents, noise, step)
    # float32 rounding of two products: measured <= 2.4e-7 at every capability and thread count
    assert torch.allclose(script["x0_from_velocity"](schedule, noisy, velocity, t), latents, atol=1e-4)


@pytest.fixture(scope="module")
def synth_split(tmp_path_factory):
    from animate.app.cli import main

    folder = tmp_path_factory.mktemp("synth") / "data"
    main(["synth", "-o", str(folder), "--train", "1", "--test", "2", "--frames", "4", "-W", "64", "-H", "96",
          "--workers", "1"])
    return folder


def test_the_table_has_a_score_per_timestep_and_the_photo_baseline(synth_split, tiny_ours_weights, capsys):
    script["main"](["--data", str(synth_split), "--weights", str(tiny_ours_weights), "--frames", "2",
                    "--timesteps", "999,0"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("2 held-out videos of") and "2 frames each" in lines[0]
    assert lines[2] == "| t | 999 | 0 | photo baseline |"
    scores = [float(cell) for cell in lines[4].strip("|").split("|")[1:]]
    assert len(scores) == 3 and all(math.isfinite(s) and s > 0 for s in scores)


@pytest.mark.parametrize("option, value, message", [
    ("--timesteps", "999,x", "--timesteps must be comma-separated integers, got '999,x'"),
    ("--timesteps", "1000", "--timesteps must lie in 0..999, got 1000"),
    ("--frames", "0", "--frames must be at least 1, got 0")])
def test_bad_options_are_one_line(tmp_path, option, value, message):
    with pytest.raises(SystemExit) as exit_info:
        script["main"](["--data", str(tmp_path), "--weights", "random:tiny", option, value])
    assert exit_info.value.code == f"error: {message}"


def test_a_missing_reference_photo_is_one_line(synth_split, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(synth_split, data)
    (data / "refs" / "test_0000.png").unlink()
    with pytest.raises(SystemExit) as exit_info:
        script["main"](["--data", str(data), "--weights", "random:tiny"])
    assert exit_info.value.code == f"error: reference photo not found: {data / 'refs' / 'test_0000.png'}"


def test_a_folder_without_a_test_split_is_one_line(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        script["main"](["--data", str(tmp_path), "--weights", "random:tiny"])
    meta = tmp_path / "meta_test.json"
    assert exit_info.value.code == f"error: {meta} not found (give a folder `animate synth` wrote)"
