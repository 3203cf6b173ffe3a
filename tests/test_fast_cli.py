"""The speed options on the command line: --compile where torch cannot compile, --decoder tiny (a tiny random
TAESD of SD's layout), --fast on a student and on a plain weight set, and `download --set taesd`."""

import numpy as np
import pytest
import torch
from diffusers import AutoencoderTiny

from animate.models.bundle import build_random_models
from animate.models.student import StudentSampling
from animate.models.weights import save_weight_set
from animate.pipeline import compile as compile_module
from animate.pipeline.animate import AnimatePipeline
from animate.media.video import read_frames
from test_cli import assert_one_error_line, infer_args, leftovers


def tiny_taesd(levels: int = 4) -> AutoencoderTiny:
    """A small random AutoencoderTiny with TAESD's layout: 4 latent channels, one 2x step between `levels` levels."""
    torch.manual_seed(0)
    width = (8,) * levels
    return AutoencoderTiny(encoder_block_out_channels=width, decoder_block_out_channels=width,
                           num_encoder_blocks=(1,) * levels, num_decoder_blocks=(1,) * levels)


def test_compile_where_torch_cannot_is_one_line_or_a_fallback(run_cli, ref_photo, pose_video, monkeypatch, tmp_path):
    """--compile stops before any model loads with one line saying what to do; --compile-fallback warns once and
    runs uncompiled."""
    monkeypatch.setattr(compile_module, "compiler_problem", lambda backend, device: "no C++ compiler found")
    pose = pose_video(3)
    line = assert_one_error_line(run_cli(infer_args(ref_photo, pose, tmp_path / "no_weights", "--compile")), 2)
    assert "torch cannot compile here (no C++ compiler found)" in line and "--compile-fallback" in line
    assert leftovers(tmp_path) == []
    result = run_cli(infer_args(ref_photo, pose, "random:tiny", "--compile-fallback", "-o", "o.mp4"))
    assert result.code == 0, result.err
    assert result.err.count("warning: torch cannot compile here (no C++ compiler found): running uncompiled") == 1


def test_the_compiler_probe_reports_a_backend_that_fails():
    """The probe runs a real compile: the eager backend works here, an unknown backend is reported, not raised."""
    assert compile_module.compiler_problem("eager") is None
    assert compile_module.compiler_problem("no-such-backend")


def test_the_tiny_decoder_decodes_what_the_pipeline_makes(run_cli, ref_photo, pose_video, tmp_path):
    """--decoder tiny reads TAESD from pretrained_weights/taesd: the frames are its decode of the latents (not the
    VAE's); a TAESD of another scale is refused in one line."""
    taesd = tiny_taesd()
    taesd.save_pretrained(tmp_path / "pretrained_weights" / "taesd")
    result = run_cli(infer_args(ref_photo, pose_video(3), "random:tiny", "--decoder", "tiny", "-o", "tiny.mp4"))
    assert result.code == 0, result.err
    assert "decoder: TAESD (tiny)" in result.err
    vae = run_cli(infer_args(ref_photo, pose_video(3), "random:tiny", "-o", "vae.mp4"))
    assert vae.code == 0, vae.err
    tiny_frames = np.stack(list(read_frames(tmp_path / "tiny.mp4")))
    vae_frames = np.stack(list(read_frames(tmp_path / "vae.mp4")))
    assert tiny_frames.shape == vae_frames.shape and np.abs(tiny_frames.astype(int) - vae_frames).mean() > 5

    latents = torch.randn(1, 4, 2, 12, 8, generator=torch.Generator().manual_seed(0))
    pipeline = AnimatePipeline.for_inference(build_random_models("tiny"), decoder=taesd)
    decoded = np.concatenate(list(pipeline.decode(latents, float_output=True)))
    with torch.no_grad():
        expected = ((taesd.decode(latents[0].transpose(0, 1)).sample + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)
    assert np.abs(decoded - expected.numpy()).max() < 1e-6

    save_weight_set(build_random_models("tiny"), tmp_path / "other" / "set")
    tiny_taesd(levels=3).save_pretrained(tmp_path / "other" / "set" / "taesd")  # beside the weights: found first
    line = assert_one_error_line(run_cli(infer_args(ref_photo, pose_video(3), tmp_path / "other" / "set",
                                                    "--decoder", "tiny")), 2)
    assert "1/4" in line and "1/8" in line and "demo size has no tiny decoder" in line


@pytest.mark.parametrize("student", [True, False], ids=["student", "plain"])
def test_fast_picks_the_measured_preset(student, run_cli, ref_photo, pose_video, monkeypatch, tmp_path):
    """--fast on a student: its steps and no CFG (and the student preset, empty as measured); on a plain set: the
    preset's sampler, CFG share and cache interval. Options given explicitly win (--steps 2, --cache-interval 1);
    without TAESD it decodes with the VAE."""
    from animate.app.infer import FAST_PRESET, FAST_STUDENT_PRESET

    models = build_random_models("tiny")
    models.student = StudentSampling(3, "ddim", 1.0, 12, 3.5) if student else None
    weights = save_weight_set(models, tmp_path / "set")
    seen = []
    original = AnimatePipeline.denoise
    monkeypatch.setattr(AnimatePipeline, "denoise", lambda self, *a, **k: seen.append(a[2]) or original(self, *a, **k))
    for extra in ([], ["--cache-interval", "1"]):
        result = run_cli(["infer", "--ref", ref_photo, "--pose", pose_video(3), "--weights", weights, "-W", "64",
                          "--no-progress", "--force", "-o", "o.mp4", "--fast", *extra] + ([] if student else
                                                                                          ["--steps", "2"]))
        assert result.code == 0, result.err
        assert "note: --fast decodes with the VAE" in result.err
    preset = FAST_STUDENT_PRESET if student else FAST_PRESET
    first, second = seen
    assert (first.steps, first.guidance) == ((3, 1.0) if student else (2, 3.5))
    assert (first.sampler, first.cache_interval, first.cfg_steps) == (
        preset.get("sampler", "ddim"), preset.get("cache_interval", 1), preset.get("cfg_steps", 1.0))
    assert second.cache_interval == 1
