"""scripts/eval_guider.py: seven runs per held-out video and their tables (tiny random weights, a tiny close-up
split)."""

import json
import runpy

import numpy as np
import pytest
import torch

from animate.paths import REPO_ROOT

script = runpy.run_path(str(REPO_ROOT / "scripts" / "eval_guider.py"))


@pytest.fixture(scope="module")
def close_split(tmp_path_factory):
    from data_tools.synth import SynthOptions, synthesize

    folder = tmp_path_factory.mktemp("close") / "data"
    synthesize(SynthOptions(folder, train_videos=0, test_videos=2, frames=3, width=64, height=96, fps=12.0, seed=6,
                            workers=1, outfits=2, framing="head"))
    return folder


@pytest.fixture(scope="module")
def guided_weights(tmp_path_factory):
    from animate.models.bundle import build_random_guider, build_random_models
    from animate.models.weights import save_weight_set

    models = build_random_guider(build_random_models("tiny"), "tiny", seed=2)
    return save_weight_set(models, tmp_path_factory.mktemp("guided") / "set", "ours", torch.float32)


def test_the_tables_and_the_runs(close_split, guided_weights, tmp_path, capsys):
    out = tmp_path / "scores.json"
    script["main"](["--data", str(close_split), "--weights", str(guided_weights), "--steps", "1", "--seeds", "3",
                    "--out", str(out)])
    text = capsys.readouterr().out
    assert "| run | psnr | face_psnr | skin | hair | eyes | room | top | bottom |" in text
    assert all(f"| {run} |" in text for run in script["RUNS"])
    assert "| other face vs base |" in text and "| text + face vs face as context |" in text and "/2 |" in text
    scores = json.loads(out.read_text())["3"]
    assert sorted(scores) == ["test_0000", "test_0001"]
    for video in scores.values():
        assert np.isfinite(video["base"]["face_psnr"]) and video["own face"]["face_psnr"] != video["base"]["face_psnr"]
        assert video["text + face"]["room"] != video["face only"]["room"]


def test_a_weight_set_without_a_guider_is_refused(close_split, tiny_ours_weights):
    with pytest.raises(SystemExit, match="holds no content guider"):
        script["main"](["--data", str(close_split), "--weights", str(tiny_ours_weights)])
