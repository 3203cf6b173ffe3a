"""Benchmark `animate train`: steps/s and peak memory per stage through the real training loop; prints a markdown table.

Each stage runs `stages.stage1.train` / `stages.stage2.train` (data loading, encoding, loss, backward, optimizer step)
on a generated dataset of drawn dancing clips, in a fresh process so that the peak RSS is that stage's own.
`--estimate` prints the static training memory (weights, gradients, optimizer state) counted from the model configs.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from animate.models.bundle import build_random_models
from animate.paths import CONFIG_DIR
from animate.pose.render import draw_pose
from animate.pose.synthetic import draw_person, synthetic_dance
from animate.media.video import VideoWriter
from bench_infer import machine_line
from stages.network import unread_reference_parameters


@dataclass(frozen=True)
class StageSetup:
    """What one stage trains on: crop size, batch, clip length and the clip stride."""

    width: int
    height: int
    batch: int
    frames: int = 1
    sample_rate: int = 1


# tiny: the tiny configs' sizes; demo: scripts/train_demo.sh's; sd15: the release settings (stage 1 768² batch 4; stage 2 512², 24 frames, stride 4).
SETUPS = {
    "tiny": {"stage1": StageSetup(64, 96, 2), "stage2": StageSetup(64, 96, 1, 4, 2)},
    "demo": {"stage1": StageSetup(64, 96, 16), "stage2": StageSetup(64, 96, 1, 8, 1)},
    "sd15": {"stage1": StageSetup(768, 768, 4), "stage2": StageSetup(512, 512, 1, 24, 4)},
}
COLUMNS = ("stage", "size", "crop", "batch × frames", "precision", "steps/s", "s/step", "samples/s", "peak RSS MiB",
           "CUDA peak MiB")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=SETUPS, default="tiny", help="model size of the random weights (default tiny)")
    parser.add_argument("--stages", default="stage1,stage2", help="comma-separated stages (default both)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps after the warm-up (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps (default 2)")
    parser.add_argument("--mixed-precision", choices=("auto", "no", "fp16", "bf16"), default="auto",
                        help="auto: fp16 on a GPU (as released), no on a CPU")
    parser.add_argument("--8bit-adam", dest="adam8", action="store_true", help="stage 2 with bitsandbytes' 8-bit AdamW")
    parser.add_argument("--estimate", action="store_true", help="print the static memory estimate and exit")
    parser.add_argument("--out", type=Path, help="also append the table to this markdown file")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one stage in this process
    args = parser.parse_args(argv)
    args.stage_list = args.stages.split(",")
    if not set(args.stage_list) <= {"stage1", "stage2"}:
        parser.error(f"--stages takes stage1 and/or stage2, got {args.stages!r}")
    if args.steps < 1 or args.warmup < 1:
        parser.error("--steps and --warmup must be at least 1")
    if args.mixed_precision == "auto":
        args.mixed_precision = "fp16" if torch.cuda.is_available() else "no"
    return args


def write_dataset(folder: Path, setup: StageSetup, clip_frames: int) -> Path:
    """`setup.batch` clips of drawn figures dancing with their pose videos, and the meta.json listing them."""
    entries = []
    for clip in range(setup.batch):
        body = synthetic_dance(clip_frames, seed=clip)
        with VideoWriter(folder / f"v{clip}.mp4", 24) as video, VideoWriter(folder / f"p{clip}.mp4", 24) as pose:
            for frame in body:
                video.write(draw_person(frame, setup.width, setup.height, seed=clip))
                pose.write(draw_pose(frame, None, None, setup.width, setup.height))
        entries.append({"video_path": f"v{clip}.mp4", "kps_path": f"p{clip}.mp4"})
    (folder / "meta.json").write_text(json.dumps(entries))
    return folder / "meta.json"


def measure_stage(args: argparse.Namespace, stage: str) -> dict:
    """Train `stage` for warmup + steps on random weights; steps/s from the per-step TensorBoard it/s after warm-up."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from stages import stage1, stage2

    setup = SETUPS[args.size][stage]
    total = args.warmup + args.steps
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        folder = Path(tmp)
        clip_frames = max(40, setup.frames * setup.sample_rate)  # stage 1's release margin is 30 frames
        meta = write_dataset(folder, setup, clip_frames)
        overrides = [f"init.weights=random:{args.size}", f"data.meta=[{meta}]", f"data.width={setup.width}",
                     f"data.height={setup.height}", f"train.batch_size={setup.batch}", f"train.output_dir={folder}/run",
                     f"train.max_steps={total}", "train.log_every=1", f"train.checkpoint_every={10**9}",
                     f"train.validate_every={10**9}", f"train.mixed_precision={args.mixed_precision}",
                     f"data.num_workers={min(4, setup.batch)}"]
        if stage == "stage1":
            overrides.append(f"data.sample_margin={min(30, clip_frames - 2)}")
            trainer = stage1.train
        else:
            overrides += [f"data.n_sample_frames={setup.frames}", f"data.sample_rate={setup.sample_rate}",
                          "init.motion_module=null", f"train.use_8bit_adam={str(args.adam8).lower()}",
                          "train.gradient_checkpointing=true"]
            trainer = stage2.train
        config = CONFIG_DIR / "train" / (f"{stage}.yaml" if args.size == "sd15" else f"{stage}_tiny.yaml")
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        output = trainer(config, overrides)
        rates = [e.value for e in EventAccumulator(str(output / stage)).Reload().Scalars("it_per_s")
                 if e.step > args.warmup]
    steps_per_s = statistics.median(rates)
    return {"stage": stage, "setup": asdict(setup), "precision": args.mixed_precision, "steps_per_s": steps_per_s,
            "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "cuda_mib": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None}


def run_subprocess(argv: list[str], stage: str) -> dict:
    """Measure one stage in a fresh interpreter; its last stdout line is JSON."""
    command = [sys.executable, str(Path(__file__).resolve()), *argv, "--one", stage]
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise SystemExit(f"the {stage} run failed (exit {result.returncode}); its error is above")
    return json.loads(result.stdout.strip().splitlines()[-1])


def table(args: argparse.Namespace, rows: list[dict]) -> str:
    """The results as a markdown table under the machine line."""
    lines = [machine_line(torch.device("cuda" if torch.cuda.is_available() else "cpu")), "",
             f"random {args.size} weights, {args.warmup} warm-up + {args.steps} timed steps per stage, "
             f"stage 2 with gradient checkpointing{' and 8-bit AdamW' if args.adam8 else ''}", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---:|" * len(COLUMNS)]
    for r in rows:
        s = r["setup"]
        cuda = "–" if r["cuda_mib"] is None else f"{r['cuda_mib']:.0f}"
        samples = r["steps_per_s"] * s["batch"] * s["frames"]
        cells = (r["stage"], args.size, f"{s['width']}×{s['height']}", f"{s['batch']} × {s['frames']}", r["precision"],
                 f"{r['steps_per_s']:.3f}", f"{1 / r['steps_per_s']:.2f}", f"{samples:.2f}", f"{r['rss_mib']:.0f}", cuda)
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def static_memory(size: str) -> str:
    """Weights, gradients and AdamW state of each stage in GiB, counted from the parameters of the size's models."""
    with torch.device("meta"):
        models = build_random_models(size, motion=True)
    count = lambda params: sum(p.numel() for p in params)  # noqa: E731
    unread = set(unread_reference_parameters(models.reference_unet))
    motion = count(p for n, p in models.denoising_unet.named_parameters() if ".motion_modules." in n)
    spatial = count(models.denoising_unet.parameters()) - motion
    reference = count(p for n, p in models.reference_unet.named_parameters() if n not in unread)
    frozen_encoders = count(models.vae.parameters()) + count(models.image_encoder.parameters())
    stage1_trained = reference + spatial + count(models.pose_guider.parameters())
    gib = 2**30
    lines = [f"{size}: ReferenceNet (read part) {reference / 1e6:.1f} M, denoising UNet {spatial / 1e6:.1f} M, "
             f"motion modules {motion / 1e6:.1f} M, pose guider {count(models.pose_guider.parameters()) / 1e6:.2f} M, "
             f"VAE + CLIP {frozen_encoders / 1e6:.1f} M parameters"]
    # Stage 1: fp32 master weights + fp32 grads + AdamW m, v (16 B/param) for what trains; fp16 frozen encoders.
    lines.append(f"stage 1 static: {stage1_trained * 16 / gib:.1f} GiB trained (fp32 weights, grads, AdamW m+v) + "
                 f"{frozen_encoders * 2 / gib:.2f} GiB fp16 encoders")
    # Stage 2: the stage-1 UNets and guider stay fp32 (frozen), motion modules train: 16 B/param, 8-bit AdamW 10.
    frozen = (reference + spatial + count(models.pose_guider.parameters())) * 4
    lines.append(f"stage 2 static: {frozen / gib:.1f} GiB frozen fp32 UNets + {motion * 16 / gib:.2f} GiB motion "
                 f"modules (AdamW; {motion * 10 / gib:.2f} GiB with 8-bit AdamW) + {frozen_encoders * 2 / gib:.2f} GiB "
                 f"fp16 encoders")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Measure each stage in its own process and print (and optionally append) the table."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.estimate:
        print(static_memory(args.size), end="")
        return
    if args.one is not None:
        print(json.dumps(measure_stage(args, args.one)))
        return
    rows = []
    for stage in args.stage_list:
        rows.append(run_subprocess(argv, stage))
        print(f"measured {stage}: {rows[-1]['steps_per_s']:.3f} steps/s", file=sys.stderr)
    text = table(args, rows)
    print(text, end="")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
