"""Weight sets: Moore / MusePose / AnimateDiff / our safetensors, saved from tiny models and loaded back."""

import os
import shutil

import pytest
import torch

from animate.errors import AnimateError
from animate.models.bundle import build_random_models
from animate.models.weights import (
    build_from_checkpoint,
    load_models,
    read_checkpoint,
    read_state_dict,
    save_weight_set,
)


@pytest.fixture(scope="module")
def tiny():
    models = build_random_models("tiny", seed=3)
    for name, param in models.denoising_unet.named_parameters():
        if name.endswith("proj_out.weight"):  # make zero-initialised layers non-trivial
            param.data.normal_(std=0.1)
    models.pose_guider.conv_out.weight.data.normal_(std=0.1)
    return models


@pytest.fixture(scope="module")
def moore_dir(tiny, tmp_path_factory):
    return save_weight_set(tiny, tmp_path_factory.mktemp("w") / "moore", "moore", torch.float32)


def assert_same(a, b):
    for name, module in a.modules().items():
        sa, sb = module.state_dict(), b.modules()[name].state_dict()
        assert sa.keys() == sb.keys(), name
        for key in sa:
            assert torch.equal(sa[key], sb[key].to(sa[key].dtype)), f"{name}.{key}"


def test_moore_layout_files(moore_dir):
    names = {p.relative_to(moore_dir).as_posix() for p in moore_dir.rglob("*") if p.is_file()}
    assert {"reference_unet.pth", "denoising_unet.pth", "pose_guider.pth", "motion_module.pth",
            "stable-diffusion-v1-5/unet/config.json", "sd-vae-ft-mse/config.json", "image_encoder/config.json"} <= names
    two_d = read_state_dict(moore_dir / "denoising_unet.pth")
    motion = read_state_dict(moore_dir / "motion_module.pth")
    assert not any(".motion_modules." in k for k in two_d) and len(motion) == 588
    assert sum(k.endswith("pos_encoder.pe") for k in motion) == 42
    assert "conv_out.weight" in two_d and "conv_out.weight" not in read_state_dict(moore_dir / "reference_unet.pth")


def test_moore_layout_loads_back_identically(tiny, moore_dir):
    loaded = load_models(moore_dir)
    assert loaded.profile == "moore"
    assert_same(tiny, loaded)


def test_loading_assigns_the_file_tensors_without_copying(moore_dir):
    checkpoint = read_checkpoint(moore_dir)
    reference_net, animate_unet = build_from_checkpoint(checkpoint)
    assert reference_net.unet.conv_in.weight.data_ptr() == checkpoint.reference_unet["conv_in.weight"].data_ptr()
    assert animate_unet.pose_guider.conv_in.weight.data_ptr() == checkpoint.pose_guider["conv_in.weight"].data_ptr()
    assert not any(t.is_meta for t in animate_unet.state_dict().values())


def test_our_safetensors_round_trip_in_fp16(tiny, tmp_path):
    folder = save_weight_set(tiny, tmp_path / "ours", "ours", torch.float16)
    assert (folder / "animate.safetensors").is_file()
    loaded = load_models(folder)
    assert loaded.profile == "ours"
    assert loaded.denoising_unet.conv_in.weight.dtype == torch.float16
    for name, module in tiny.modules().items():
        ours = module.state_dict()
        for key, value in loaded.modules()[name].state_dict().items():
            assert torch.equal(value, ours[key].to(torch.float16).to(value.dtype)), f"{name}.{key}"
    single_file = load_models(folder / "animate.safetensors")
    assert_same(loaded, single_file)


def test_musepose_layout_and_profile(tiny, moore_dir, tmp_path):
    root = tmp_path / "pretrained_weights"
    shutil.copytree(moore_dir, root / "MusePose", ignore=shutil.ignore_patterns("sd-vae-ft-mse", "image_encoder"))
    for sub in ("sd-vae-ft-mse", "image_encoder"):
        shutil.copytree(moore_dir / sub, root / sub)
    assert load_models(root).profile == "musepose"
    assert load_models(root, profile="moore").profile == "moore"


def test_pe_128_motion_modules_imply_musepose(tiny, moore_dir, tmp_path):
    folder = tmp_path / "w"
    shutil.copytree(moore_dir, folder)
    motion = read_state_dict(folder / "motion_module.pth")
    longer = {k: (torch.cat([v, torch.zeros(1, 96, v.shape[2])], 1) if k.endswith(".pe") else v) for k, v in motion.items()}
    replace_file(longer, folder / "motion_module.pth")
    models = load_models(folder)
    assert models.profile == "musepose"
    assert models.denoising_unet.down_blocks[0].motion_modules[0].pe_length == 128


def test_animatediff_checkpoint_replaces_the_motion_modules(tiny, moore_dir, tmp_path):
    motion = read_state_dict(moore_dir / "motion_module.pth")
    fresh = {k: torch.randn_like(v) for k, v in motion.items()}
    torch.save({"state_dict": fresh}, tmp_path / "mm_sd_v15_v2.ckpt")  # wrapped like some AnimateDiff releases
    models = load_models(moore_dir, motion_module=tmp_path / "mm_sd_v15_v2.ckpt")
    key = next(iter(fresh))
    assert torch.equal(models.denoising_unet.state_dict()[key], fresh[key])


def test_stage1_set_without_motion_modules_loads(moore_dir, tmp_path):
    folder = tmp_path / "w"
    shutil.copytree(moore_dir, folder)
    (folder / "motion_module.pth").unlink()
    models = load_models(folder)
    assert not hasattr(models.denoising_unet.down_blocks[0], "motion_modules")


def replace_file(state, path):
    """torch.save beside and rename: the old file may still be memory-mapped (truncating it would crash)."""
    torch.save(state, path.with_suffix(".new"))
    os.replace(path.with_suffix(".new"), path)


def corrupt(moore_dir, tmp_path, file, edit):
    folder = tmp_path / "w"
    shutil.copytree(moore_dir, folder)
    state = read_state_dict(folder / file)
    edit(state)
    replace_file(state, folder / file)
    return folder


def test_motion_modules_load_strictly(moore_dir, tmp_path):
    key = "mid_block.motion_modules.0.temporal_transformer.proj_in.weight"
    folder = corrupt(moore_dir, tmp_path, "motion_module.pth", lambda s: s.pop(key))
    with pytest.raises(AnimateError, match=r"motion_module\.pth: missing key 'mid_block\.motion_modules\.0.*proj_in\.weight'"):
        load_models(folder)


def test_shape_mismatch_names_file_key_and_shapes(moore_dir, tmp_path):
    folder = corrupt(moore_dir, tmp_path, "reference_unet.pth",
                     lambda s: s.__setitem__("conv_in.weight", torch.zeros(7, 4, 3, 3)))
    with pytest.raises(AnimateError, match=r"reference_unet\.pth: 'conv_in\.weight' has shape \[7, 4, 3, 3\]"):
        load_models(folder)


def test_unexpected_key_is_an_error(moore_dir, tmp_path):
    folder = corrupt(moore_dir, tmp_path, "pose_guider.pth", lambda s: s.__setitem__("extra.weight", torch.zeros(1)))
    with pytest.raises(AnimateError, match=r"pose_guider\.pth: unexpected key 'extra\.weight'"):
        load_models(folder)


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", b"PK\x03\x04 truncated zip"])
def test_unreadable_file_is_one_line_naming_it(moore_dir, tmp_path, content):
    folder = tmp_path / "w"
    shutil.copytree(moore_dir, folder)
    (folder / "denoising_unet.pth").write_bytes(content)
    with pytest.raises(AnimateError) as err:
        load_models(folder)
    assert "denoising_unet.pth" in str(err.value) and "\n" not in str(err.value)


def test_missing_files_are_listed(moore_dir, tmp_path):
    folder = tmp_path / "w"
    shutil.copytree(moore_dir, folder)
    (folder / "pose_guider.pth").unlink()
    with pytest.raises(AnimateError, match=r"missing .*pose_guider\.pth"):
        load_models(folder)
    shutil.rmtree(folder / "sd-vae-ft-mse")
    shutil.copy(moore_dir / "pose_guider.pth", folder / "pose_guider.pth")
    with pytest.raises(AnimateError, match="no VAE folder"):
        load_models(folder)
    with pytest.raises(AnimateError, match="weights not found"):
        load_models(tmp_path / "nowhere")


def test_pickles_are_loaded_weights_only(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    torch.save({"a": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(AnimateError, match="evil.pth"):
        read_state_dict(tmp_path / "evil.pth")


def test_save_refuses_a_non_empty_folder(tiny, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("keep")
    with pytest.raises(AnimateError, match="not empty"):
        save_weight_set(tiny, tmp_path / "taken")
    assert (tmp_path / "taken" / "x").read_text() == "keep"
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]  # no staging folder left


def test_pose_guider_depth_comes_from_the_file_and_must_match_the_vae(tmp_path):
    demo = build_random_models("demo", seed=1)
    assert demo.pose_guider.channels == [16, 32, 64]
    loaded = load_models(save_weight_set(demo, tmp_path / "demo", "ours", torch.float32))
    assert loaded.pose_guider.channels == [16, 32, 64] and loaded.latent_scale == 4
    mixed = build_random_models("tiny", seed=1)
    mixed.vae = demo.vae
    save_weight_set(mixed, tmp_path / "mixed", "ours", torch.float32)
    with pytest.raises(AnimateError, match="pose guider downsamples by 8 but the VAE by 4"):
        load_models(tmp_path / "mixed")


def test_library_use_is_as_quiet_as_the_cli(tiny, tmp_path):
    """Saving, loading and readying a weight set print nothing, with diffusers and transformers at their defaults.
    In a fresh process: the CLI turns them down for a whole process, and pytest captures loggers bound earlier."""
    import subprocess
    import sys

    code = ("import sys, torch\n"
            "from animate.models.bundle import build_random_models\n"
            "from animate.models.weights import load_models, save_weight_set\n"
            "from animate.pipeline.animate import AnimatePipeline\n"
            "folder = save_weight_set(build_random_models('tiny'), sys.argv[1], 'ours', torch.float32)\n"
            "AnimatePipeline.for_inference(load_models(folder), dtype=torch.float32)\n"
            "import transformers\n"
            "assert transformers.utils.logging.is_progress_bar_enabled()  # off only while loading\n")
    result = subprocess.run([sys.executable, "-c", code, tmp_path / "set"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr == ""
