"""A non-editable install (a wheel) carries what a checkout has: the configs, the random sizes, the training configs."""

import shutil
import site
import subprocess
import sys
import tomllib
from pathlib import Path

from animate.paths import REPO_ROOT

SOURCES = ("pyproject.toml", "README.md", "animate", "stages", "data_tools", "configs")


def test_the_package_list_names_every_package_of_the_tree():
    listed = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = {".".join(init.parent.relative_to(REPO_ROOT).parts)
             for top in ("animate", "stages", "data_tools") for init in (REPO_ROOT / top).rglob("__init__.py")}
    assert set(listed) == found | {"animate.configs"}


def test_a_wheel_install_runs_infer_and_training_from_another_folder(tmp_path, ref_photo, pose_video, dataset):
    """`pip install --no-deps --no-build-isolation .` into a venv that sees this environment's packages, then
    `animate infer --weights random:tiny` and `animate train stage1 --config <the packaged tiny config>`, run from a
    folder that is not the checkout."""
    source = tmp_path / "source"  # a copy: pip builds in the tree it is given and leaves build/ behind
    source.mkdir()
    for name in SOURCES:
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(REPO_ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO_ROOT / name, source / name)
    # A venv that sees this environment's packages (torch, pip, setuptools...) through a .pth file, whether this
    # environment is itself a venv or not (--system-site-packages would see the base interpreter's instead).
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp_path / "venv"], check=True)
    python, animate = tmp_path / "venv" / "bin" / "python", tmp_path / "venv" / "bin" / "animate"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "parent_environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    install = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", source],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([python, "-c", "import animate, animate.paths as p; print(animate.__file__); "
                            "print(p.CONFIG_DIR)"], capture_output=True, text=True, cwd=elsewhere, check=True)
    module, configs = map(Path, where.stdout.split())
    assert tmp_path / "venv" in module.parents and configs == module.parent / "configs"  # the wheel's own

    infer = subprocess.run([animate, "infer", "--ref", ref_photo, "--pose", pose_video(3), "--weights", "random:tiny",
                            "-W", "64", "--steps", "1", "--no-progress", "-o", "out.mp4"],
                           capture_output=True, text=True, cwd=elsewhere, timeout=300)
    assert infer.returncode == 0, infer.stderr[-2000:]
    assert (elsewhere / "out.mp4").is_file()
    train = subprocess.run([animate, "train", "stage1", "--config", configs / "train" / "stage1_tiny.yaml",
                            f"data.meta=[{dataset}]", "train.output_dir=run", "train.max_steps=1"],
                           capture_output=True, text=True, cwd=elsewhere, timeout=300)
    assert train.returncode == 0, train.stderr[-2000:]
    assert (elsewhere / "run" / "checkpoint-0000001" / "weights" / "animate.safetensors").is_file()
