"""scripts/train_demo.sh refuses bad inputs with one line and exit 2, before it makes anything."""

import os
import subprocess

import pytest

from animate.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "train_demo.sh"


def train_demo(out, **env):
    return subprocess.run(["bash", str(SCRIPT), str(out)], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=30)


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "meta_train.json").write_text("[]")
    return folder


def test_an_existing_output_folder_is_refused(tmp_path):
    result = train_demo(tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: {tmp_path} already exists (remove it or name another folder)"]


def test_a_data_folder_without_meta_is_refused(tmp_path):
    result = train_demo(tmp_path / "run", DATA=str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: DATA={tmp_path} has no meta_train.json (give a folder `animate synth` wrote)"]
    assert not (tmp_path / "run").exists()


def test_an_autoencoder_folder_without_weights_is_refused(tmp_path, data):
    result = train_demo(tmp_path / "run", DATA=str(data), AUTOENCODER=str(data))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: AUTOENCODER={data} has no sd-vae-ft-mse/config.json "
                                          "(give the weights folder the autoencoder stage wrote)"]
    assert not (tmp_path / "run").exists()


def test_the_guider_demo_refuses_an_existing_output_folder(tmp_path):
    result = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "train_guider_demo.sh"), str(tmp_path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: {tmp_path} already exists (remove it or name another folder)"]
