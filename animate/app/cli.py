"""The `animate` command: infer, pose, depth, train, upscale, eval, synth, download, convert, prepare."""

import argparse
import errno
import os
import signal
import sys
import warnings
from dataclasses import fields
from pathlib import Path
from typing import TypeVar

from ..errors import AnimateError, Terminated, error_summary
from ..depth.release import DEFAULT_DEPTH_MODEL, INPUT_SIDE
from ..pipeline.schedulers import SAMPLERS
from .messages import say

T = TypeVar("T")
UPSCALER_CHOICES = ("realesrgan-x4plus", "realesrgan-x2plus", "realesr-general-x4v3", "realesr-animevideov3")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option as one line and exits 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def _add_pose_backend(p) -> None:
    p.add_argument("--pose-backend", choices=("mediapipe", "dwpose"), default="mediapipe",
                   help="keypoint extractor: mediapipe (bundled) or dwpose (Moore's DWPose/ ONNX files; pip install onnxruntime)")
    p.add_argument("--dwpose-dir", type=Path, help="folder holding DWPose/ (default: the weights folder, or pretrained_weights)")


def _add_infer(commands) -> None:
    p = commands.add_parser("infer", help="animate a photo with a pose video", description="Animate a photo with a pose video.")
    p.add_argument("--ref", type=Path, help="the person's photo (any common image format); without it, DreamMoving's "
                   "mode: a video from --prompt and --face PHOTO")
    p.add_argument("--pose", type=Path,
                   help="a dance video, a rendered pose (skeleton) video, or keypoints (.pose.npz, JSON, OpenPose JSON folder)")
    p.add_argument("--pose-type", choices=("auto", "video", "skeleton", "keypoints"), default="auto",
                   help="what --pose is (default: detected)")
    p.add_argument("--no-align", action="store_true", help="keep the dance's own proportions and position (no retargeting)")
    p.add_argument("--weights", default="pretrained_weights",
                   help="weight set: a Moore/MusePose folder, our folder or .safetensors, or random:tiny (default: %(default)s)")
    p.add_argument("-o", "--out", type=Path, help="output .mp4 (default outputs/<ref>_<pose>_<seed>.mp4)")
    p.add_argument("--force", action="store_true", help="overwrite an existing -o file")
    p.add_argument("-W", "--width", type=int, help="output width (multiple of 8; default from the photo's aspect)")
    p.add_argument("-H", "--height", type=int, help="output height (multiple of 8; default from the photo's aspect)")
    p.add_argument("-L", "--max-frames", type=int, help="use at most this many pose frames")
    p.add_argument("--fps", type=float, help="output frame rate (default: the pose video's)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--steps", type=int, help="sampling steps (default: the profile's, or a distilled student's own)")
    p.add_argument("--cfg", type=float, help="classifier-free guidance scale (default 3.5; 1 for a distilled student)")
    p.add_argument("--context-frames", type=int, help="frames per sliding window (default: the profile's, 24)")
    p.add_argument("--context-overlap", type=int, help="frames shared by neighbouring windows (default 4)")
    p.add_argument("--sampler", choices=SAMPLERS, help="ddim (default), dpm++ or unipc; a distilled student's own "
                   "by default")
    speed = p.add_argument_group("speed", "equal output: --window-batch, --compile; fast, approximate modes: "
                                 "--cfg-steps, --cache-interval, --decoder tiny, --fast (measured costs in the README)")
    speed.add_argument("--window-batch", type=int, help="sliding windows per UNet call (same video; default 1)")
    speed.add_argument("--compile", action="store_true", help="torch.compile the UNet, ControlNets and decoder "
                       "(channels-last; the first video pays the compile)")
    speed.add_argument("--compile-fallback", action="store_true",
                       help="with --compile: where torch cannot compile, warn and run uncompiled instead of stopping")
    speed.add_argument("--cfg-steps", type=float, help="CFG for this first share of the steps only, then the "
                       "conditional half alone (0 to 1; default 1: every step)")
    speed.add_argument("--cache-interval", type=int, help="DeepCache: the UNet's deep blocks run every K steps, "
                       "their output reused between (default 1: every step)")
    speed.add_argument("--decoder", choices=("vae", "tiny"), help="tiny: TAESD (`animate download --set taesd`), "
                       "18x fewer FLOPs than the VAE at sd15; its quality is not measured here (default vae)")
    speed.add_argument("--fast", action="store_true", help="the best measured fast combination: a distilled "
                       "student at its own steps without CFG; other weights UniPC 10 steps, --cfg-steps 0.5, "
                       "--cache-interval 2; both with --decoder tiny where TAESD fits. Options given explicitly win")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default="auto", help="auto (fp16 on GPU, fp32 on CPU), fp32, fp16, bf16")
    p.add_argument("--offload", action="store_true", help="keep models on the CPU until used (small GPUs)")
    p.add_argument("--profile", choices=("moore", "musepose", "ours"), help="override the profile the weights imply")
    p.add_argument("--motion-module", type=Path, help="motion modules to use instead of the set's (.pth/.ckpt)")
    p.add_argument("--grid", action="store_true", help="also write <out>_grid.mp4: ref | pose | result (generated size)")
    p.add_argument("--frames-dir", type=Path, help="also write the frames as PNGs into this folder")
    p.add_argument("--crf", type=int, default=18, help="h264 quality, 0 (lossless) to 51 (default %(default)s)")
    _add_upscale_options(p, "--upscale")
    p.add_argument("--no-reference", action="store_true",
                   help="ablation: no reference tokens (the photo reaches the model only through CLIP)")
    p.add_argument("--no-motion", action="store_true",
                   help="ablation: skip the motion modules, every frame on its own (stage-1 behaviour)")
    p.add_argument("--jobs", type=Path, help="a YAML file of many (ref, pose, options) cases run on one model load "
                   "(then --ref/--pose are not needed); see README")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_pose_backend(p)
    g = p.add_argument_group("DreamMoving's content guider (face and text tokens; needs a guider in the weight set, "
                             "or --guider)")
    g.add_argument("--face", default="auto",
                   help="auto (the photo's face, found from its keypoints; none seen: a warning, no face tokens), none, "
                        "or another photo of the same person, e.g. a sharper close-up (default: %(default)s)")
    g.add_argument("--prompt", default="", help="text tokens: what the scene, clothes and look should be")
    g.add_argument("--negative-prompt", default="", help="text for CFG's unconditional half")
    g.add_argument("--face-scale", type=float, default=1.0, help="weight of the face tokens (default %(default)s)")
    g.add_argument("--text-scale", type=float, help="weight of the text tokens (default 1.0; needs --prompt)")
    g.add_argument("--guider", type=Path, help="a content guider file (ours: guider.* tensors) instead of the set's")
    c = p.add_argument_group("DreamMoving's Video ControlNet (the pose guider stays; these add to it)")
    c.add_argument("--control", help="depth, pose or pose,depth: ControlNets that read the dance's depth or pose images")
    c.add_argument("--depth", help="with --control depth: auto (estimated from the dance video and placed like the pose; "
                   "the default) or a depth video / .depth.npz with the dance's frames, drawn on the canvas as it is")
    c.add_argument("--control-scale", help="one scale, or one per --control kind, e.g. 0.7,0.5 (default: the weight "
                   "set's, else depth 0.7, pose 0.5)")
    c.add_argument("--control-start", type=float, default=0.0, help="share of the steps before the ControlNets act "
                   "(default %(default)s)")
    c.add_argument("--control-end", type=float, default=1.0, help="share of the steps after which they stop (default "
                   "%(default)s)")
    c.add_argument("--controlnet", type=Path, action="append", help="a ControlNet per --control kind, in order: our "
                   "weight file or folder, a diffusers ControlNet folder, or an SD-1.5 ControlNet file (default: the "
                   "weight set's)")
    c.add_argument("--depth-model", default=DEFAULT_DEPTH_MODEL, help="Depth Anything V2 folder for --depth auto "
                   "(default: %(default)s)")
    c.add_argument("--depth-size", type=int, default=INPUT_SIDE, help="the short side the depth model sees "
                   "(default %(default)s)")


def _add_upscale_options(p, scale_flag: str) -> None:
    if scale_flag == "--upscale":
        p.add_argument("--upscale", type=int, choices=(2, 4), help="super-resolve the result 2x or 4x")
    else:
        p.add_argument("--scale", type=int, choices=(2, 4), required=True, help="2x or 4x")
    p.add_argument("--upscaler", help=f"{' | '.join(UPSCALER_CHOICES)} | lanczos, or a Real-ESRGAN .pth file "
                   "(default: realesrgan-x2plus for 2x, realesrgan-x4plus for 4x)")
    p.add_argument("--upscale-tile", type=int, default=512,
                   help="tile size in input pixels; smaller uses less memory (default %(default)s, 0: whole frames)")


def _add_upscale(commands) -> None:
    p = commands.add_parser("upscale", help="super-resolve a video", description="Super-resolve a video 2x or 4x "
                            "(Real-ESRGAN, tiled), keeping its audio.")
    p.add_argument("video", type=Path, help="the video to upscale")
    p.add_argument("-o", "--out", type=Path, required=True, help="the .mp4 to write")
    _add_upscale_options(p, "--scale")
    p.add_argument("--weights-dir", type=Path, default=Path("pretrained_weights") / "Real-ESRGAN",
                   help="where the Real-ESRGAN files are (default: %(default)s)")
    p.add_argument("--crf", type=int, default=18, help="h264 quality, 0 to 51 (default %(default)s)")
    p.add_argument("--force", action="store_true", help="overwrite an existing -o file")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default="auto", help="auto (fp16 on GPU, fp32 on CPU), fp32, fp16, bf16")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_pose(commands) -> None:
    p = commands.add_parser("pose", help="extract and draw the pose of a dance video",
                            description="A dance video (or a keypoint file) to a rendered DWPose-style pose video.")
    p.add_argument("source", type=Path, help="a dance video, or keypoints (.pose.npz, JSON, OpenPose JSON folder)")
    p.add_argument("-o", "--out", type=Path, required=True, help="the pose video to write (.mp4)")
    p.add_argument("--keypoints", type=Path, help="also save the keypoints (.pose.npz, or .json)")
    p.add_argument("--ref", type=Path, help="retarget the dance to the person in this photo (size, proportions, place)")
    p.add_argument("--no-align", action="store_true", help="with --ref: map into the photo's frame without retargeting")
    p.add_argument("-W", "--width", type=int, help="output width (multiple of 8)")
    p.add_argument("-H", "--height", type=int, help="output height (multiple of 8)")
    p.add_argument("-L", "--max-frames", type=int, help="use at most this many frames")
    p.add_argument("--profile", choices=("moore", "musepose", "ours"), default="moore",
                   help="drawing style and canvas of the weights you will use (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_pose_backend(p)


def _add_depth(commands) -> None:
    p = commands.add_parser(
        "depth", help="the depth video of a dance video (DreamMoving's 3-D signal)",
        description="A dance video to its depth video: Depth Anything V2 per frame, steadied over time on the scene "
                    "around the dancer, near bright (3 channels, 8-bit, as SD-1.5 depth ControlNets expect), and the "
                    "lossless maps beside it as <out>.depth.npz. With --ref the depth gets the pose's placement on the "
                    "photo (the first-frame alignment's scale and offset, the same canvas); the body in the depth is "
                    "not retargeted bone by bone, only moved and scaled as a whole.")
    p.add_argument("video", type=Path, help="the dance video")
    p.add_argument("-o", "--out", type=Path, required=True, help="the depth video to write (.mp4)")
    p.add_argument("--keypoints", type=Path,
                   help="the dance's own keypoints in the video's pixels (.pose.npz or JSON, as `animate pose VIDEO "
                        "--keypoints` writes without --ref) instead of "
                        "extracting them")
    p.add_argument("--ref", type=Path, help="place the depth as the pose is placed on the person in this photo")
    p.add_argument("--no-align", action="store_true",
                   help="no dancer needed: without --keypoints the scene is steadied on every pixel, and with --ref "
                        "the frame is only fitted into the photo's")
    p.add_argument("-W", "--width", type=int, help="output width (multiple of 8)")
    p.add_argument("-H", "--height", type=int, help="output height (multiple of 8)")
    p.add_argument("-L", "--max-frames", type=int, help="use at most this many frames")
    p.add_argument("--profile", choices=("moore", "musepose", "ours"), default="moore",
                   help="the canvas of the weights you will use (default: %(default)s)")
    p.add_argument("--depth-model", default=DEFAULT_DEPTH_MODEL,
                   help="Depth Anything V2 folder (`animate download --set depth`), or random:tiny (default: %(default)s)")
    p.add_argument("--depth-size", type=int, default=INPUT_SIDE,
                   help="the short side the model sees, a multiple of 14 (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=8, help="frames per model call (default %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default="auto", help="auto (fp16 on GPU, fp32 on CPU), fp32, fp16, bf16")
    p.add_argument("--crf", type=int, default=18, help="h264 quality, 0 to 51 (default %(default)s)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_pose_backend(p)


def _add_train(commands) -> None:
    p = commands.add_parser("train", help="train a stage", description="Train a stage (accelerate: `accelerate launch -m "
                            "animate train ...` for several GPUs).")
    p.add_argument("stage", choices=("stage1", "stage2", "control", "guider", "distill", "autoencoder"),
                   help="stage1: ReferenceNet + pose guider + UNet on image pairs; stage2: motion modules on clips; "
                        "control: a Video ControlNet (control.kind=depth|pose) on clips with their depth or pose; "
                        "guider: the content guider (face and text tokens) on image pairs with faces and captions; "
                        "distill: a student UNet that samples in distill.steps steps without CFG what its teacher "
                        "samples in twice as many with CFG (one progressive-distillation round); "
                        "autoencoder: a small size's VAE on frames")
    p.add_argument("--config", type=Path, help="YAML config (default configs/train/<stage>.yaml)")
    p.add_argument("--resume", help="latest, or a checkpoint folder")
    p.epilog = "Any key=value arguments override the config, e.g. train.max_steps=1000 data.width=256."


def _add_synth(commands) -> None:
    p = commands.add_parser("synth", help="make a synthetic dancing-figure dataset",
                            description="Procedural figures dancing procedural dances, with exact keypoints and exact "
                            "depth (depth/<name>.mp4 and .depth.npz, as `animate prepare --depth` writes), in the "
                            "dataset layout of `animate prepare`: a train split and a test split of unseen figures "
                            "and dances, deterministic from the seed.")
    p.add_argument("-o", "--out", type=Path, required=True, help="the dataset folder to write")
    p.add_argument("--train", type=int, default=32, help="training videos (default %(default)s)")
    p.add_argument("--test", type=int, default=8, help="held-out videos (default %(default)s)")
    p.add_argument("--frames", type=int, default=48, help="frames per video (default %(default)s)")
    p.add_argument("-W", "--width", type=int, default=128, help="frame width (default %(default)s)")
    p.add_argument("-H", "--height", type=int, default=192, help="frame height (default %(default)s)")
    p.add_argument("--fps", type=float, default=24.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", choices=("moore", "musepose", "ours"), default="moore",
                   help="pose drawing style (default: %(default)s)")
    p.add_argument("--workers", type=int, help="videos rendered at once (default: one per core)")
    p.add_argument("--outfits", type=int, default=1, help="videos per person: the same identity in other clothes, "
                   "rooms and dances (default %(default)s)")
    p.add_argument("--framing", choices=("full", "half", "head", "mixed"), default="full",
                   help="the camera: full body, half body or head and shoulders (a camera that follows the neck; "
                        "the head a quarter or 40%% of the frame), or mixed (one of them per video) "
                        "(default: %(default)s)")
    p.add_argument("--force", action="store_true", help="replace a non-empty --out folder")


def _add_eval(commands) -> None:
    p = commands.add_parser("eval", help="score generated videos against the truth",
                            description="PSNR (float images), SSIM, L1 and flicker of predicted videos against ground "
                            "truth: two videos or PNG-frame folders, or two folders of them matched by name.")
    p.add_argument("--pred", type=Path, required=True, help="a video, a PNG-frame folder, or a folder of them")
    p.add_argument("--gt", type=Path, required=True, help="the same for the ground truth")
    p.add_argument("--json", type=Path, help="also write the scores as JSON")
    p.add_argument("--face", action="store_true", help="also score the face: PSNR in the truth's face crop, and the "
                   "colour error of skin, hair and irises (the truth's keypoints and regions beside it: "
                   "<data>/keypoints, <data>/regions, as `animate synth` writes them)")
    p.add_argument("--arcface", type=Path, help="insightface's w600k_r50.onnx (non-commercial): also the ArcFace "
                   "cosine similarity of the faces (implies --face; needs onnxruntime)")


def _add_download(commands) -> None:
    p = commands.add_parser("download", help="fetch the released weights", description="Fetch the files inference needs.")
    p.add_argument("--dir", type=Path, default=Path("pretrained_weights"), help="target folder (default: %(default)s)")
    p.add_argument("--set", dest="weight_set", choices=("moore", "musepose", "depth", "text", "taesd"), default="moore",
                   help="moore or musepose: a weight set; depth: Depth Anything V2 Small for `animate depth`; text: "
                        "SD-1.5's CLIP text encoder for --prompt at full size; taesd: the tiny decoder for "
                        "--decoder tiny (default: %(default)s)")
    p.add_argument("--upscaler", action="append", choices=UPSCALER_CHOICES,
                   help="fetch this Real-ESRGAN file into <dir>/Real-ESRGAN/ instead (official release, SHA-256 checked; repeatable)")
    p.add_argument("--hub-mirror", metavar="REPO", help="with --upscaler: fetch from this Hugging Face repo instead (same checksum)")


def _add_convert(commands) -> None:
    p = commands.add_parser("convert", help="rewrite a weight set", description="Rewrite a weight set in another layout or precision.")
    p.add_argument("src", help="a weight set (folder, .safetensors, or random:SIZE)")
    p.add_argument("-o", "--out", type=Path, required=True, help="new folder to write")
    p.add_argument("--layout", choices=("ours", "moore"), default="ours", help="ours: one safetensors; moore: four .pth")
    p.add_argument("--dtype", choices=("fp16", "bf16", "fp32"), default="fp16")
    p.add_argument("--motion-module", type=Path, help="motion modules to merge in (.pth/.ckpt)")


def _add_prepare(commands) -> None:
    p = commands.add_parser("prepare", help="turn dance videos into a training set",
                            description="Dance videos to frame-aligned pose videos, keypoints and meta.json for training.")
    p.add_argument("videos", type=Path, help="folder of dance videos (searched recursively: .mp4 .mov .mkv .webm .avi)")
    p.add_argument("-o", "--out", type=Path, required=True, help="dataset folder (meta.json, poses/, keypoints/, prepare.log)")
    p.add_argument("--profile", choices=("moore", "musepose"), default="moore",
                   help="drawing style of the pose videos (default: %(default)s)")
    p.add_argument("--workers", type=int, help="videos prepared at once, each in its own process (default: one per 2 cores)")
    p.add_argument("--val-fraction", type=float, default=0.05, help="share of videos in meta_val.json (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/val split (default: %(default)s)")
    p.add_argument("--min-frames", type=int, default=24, help="leave out shorter videos (default: %(default)s)")
    p.add_argument("--max-missing", type=float, default=0.2,
                   help="leave out videos with nobody found in more than this share of frames (default: %(default)s)")
    p.add_argument("--min-person-height", type=float, default=0.2,
                   help="leave out videos whose person is smaller than this share of the frame height (default: %(default)s)")
    p.add_argument("--depth", action="store_true",
                   help="also write each video's depth (depth/<name>.mp4 and .depth.npz, meta depth_path; see `animate depth`)")
    p.add_argument("--depth-model", default=DEFAULT_DEPTH_MODEL,
                   help="with --depth: Depth Anything V2 folder, or random:tiny (default: %(default)s)")
    p.add_argument("--depth-size", type=int, default=INPUT_SIDE, help="with --depth: the short side the model sees (default %(default)s)")
    p.add_argument("--device", default="auto", help="with --depth: auto, cpu, cuda, ...")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_pose_backend(p)


def build_parser() -> argparse.ArgumentParser:
    """The full command-line parser."""
    parser = _Parser(prog="animate", description="Pose-driven human video diffusion.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_infer(commands)
    _add_pose(commands)
    _add_train(commands)
    _add_upscale(commands)
    _add_depth(commands)
    _add_eval(commands)
    _add_synth(commands)
    _add_download(commands)
    _add_convert(commands)
    _add_prepare(commands)
    return parser


def _options(cls: type[T], args: argparse.Namespace, **given) -> T:
    """Options dataclass `cls` from the parsed arguments of the same names, `given` for the fields named otherwise
    (a field with neither is a bug and fails loudly)."""
    return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if f.name not in given}, **given)


def _infer(args) -> None:
    from .infer import InferOptions, run_infer

    from .content import FACE_MODES

    if args.jobs is None and (args.pose is None or (args.ref is None and args.face in FACE_MODES and not args.prompt)):
        raise AnimateError("infer needs --ref and --pose (or --prompt/--face PHOTO and --pose, or --jobs FILE)")
    if args.jobs is not None and (args.ref is not None or args.pose is not None or args.out is not None):
        raise AnimateError("--jobs takes the photos, poses and outputs from its file: drop --ref/--pose/-o")
    if args.jobs is not None and args.depth not in (None, "auto"):
        raise AnimateError("--depth PATH is one dance's depth: with --jobs, use --depth auto")
    from .controls import ControlOptions

    controls = _options(ControlOptions, args, controlnet=tuple(args.controlnet or ()))
    options = _options(InferOptions, args, progress=not args.no_progress, controls=controls)
    if args.jobs is None:
        say(run_infer(options), sys.stdout)
        return
    from .jobs import run_jobs

    if run_jobs(args.jobs, options) > 0:
        raise JobsFailed()


def _synth(args) -> None:
    from data_tools.synth import SynthOptions, synthesize

    say(synthesize(SynthOptions(
        out=args.out, train_videos=args.train, test_videos=args.test, frames=args.frames, width=args.width,
        height=args.height, fps=args.fps, seed=args.seed, profile=args.profile, force=args.force, workers=args.workers,
        outfits=args.outfits, framing=args.framing,
    )), sys.stdout)


def _eval(args) -> None:
    from .evaluation import run_eval

    say(run_eval(args.pred, args.gt, args.json, args.face, args.arcface), sys.stdout)


def _upscale(args) -> None:
    from .upscale_job import UpscaleOptions, run_upscale

    say(run_upscale(_options(UpscaleOptions, args, tile=args.upscale_tile, progress=not args.no_progress)), sys.stdout)


def _pose(args) -> None:
    from .pose_job import PoseOptions, run_pose

    say(run_pose(_options(PoseOptions, args, progress=not args.no_progress,
                            dwpose_dir=args.dwpose_dir or Path("pretrained_weights"))), sys.stdout)


def _depth(args) -> None:
    from .depth_job import DepthOptions, run_depth

    say(run_depth(_options(DepthOptions, args, progress=not args.no_progress,
                             dwpose_dir=args.dwpose_dir or Path("pretrained_weights"))), sys.stdout)


def _train(args) -> None:
    from ..paths import CONFIG_DIR
    from stages import autoencoder, control, distill, guider, stage1, stage2

    default = "autoencoder_tiny" if args.stage == "autoencoder" else args.stage
    config = args.config or CONFIG_DIR / "train" / f"{default}.yaml"
    train = {"stage1": stage1.train, "stage2": stage2.train, "control": control.train, "guider": guider.train,
             "distill": distill.train, "autoencoder": autoencoder.train}[args.stage]
    say(train(config, args.overrides, resume_from=args.resume), sys.stdout)



def _download(args) -> None:
    from .download import download_upscaler, download_weights

    if args.hub_mirror and not args.upscaler:
        raise AnimateError("--hub-mirror goes with --upscaler")
    if args.upscaler:
        for name in args.upscaler:
            say(download_upscaler(name, args.dir, args.hub_mirror), sys.stdout)
        return
    download_weights(args.dir, args.weight_set)
    say(args.dir, sys.stdout)


def _convert(args) -> None:
    from ..dtypes import DTYPES
    from ..models.weights import load_models, save_weight_set

    models = load_models(args.src, motion_module=args.motion_module)
    say(save_weight_set(models, args.out, args.layout, DTYPES[args.dtype]), sys.stdout)


def _prepare(args) -> None:
    from data_tools.prepare import PrepareOptions, prepare_dataset

    say(prepare_dataset(PrepareOptions(
        videos_dir=args.videos, data_dir=args.out, profile=args.profile, workers=args.workers,
        val_fraction=args.val_fraction, seed=args.seed, min_frames=args.min_frames, max_missing=args.max_missing,
        min_person_height=args.min_person_height, pose_backend=args.pose_backend,
        dwpose_dir=args.dwpose_dir or Path("pretrained_weights"), depth=args.depth, depth_model=args.depth_model,
        depth_size=args.depth_size, device=args.device, progress=not args.no_progress,
    )), sys.stdout)


class JobsFailed(Exception):
    """Some cases of a jobs file failed (each was reported, and so was the summary)."""


def _terminate(_signum, _frame) -> None:
    raise Terminated


def _quiet_libraries() -> None:
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A library warning as one `warning:` line on stderr (no file, line or source)."""
    say(f"warning: {message}")


def _run(args: argparse.Namespace) -> None:
    """Run the chosen command."""
    _quiet_libraries()
    if args.command != "train":  # training saves on SIGTERM itself; everything else stops cleanly, leaving nothing
        signal.signal(signal.SIGTERM, _terminate)
    {"infer": _infer, "pose": _pose, "train": _train, "download": _download, "convert": _convert,
     "prepare": _prepare, "upscale": _upscale, "eval": _eval, "depth": _depth,
     "synth": _synth}[args.command](args)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a sub-command; any failure is one line on stderr and a non-zero exit."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    stray = [a for a in extra if args.command != "train" or "=" not in a or a.startswith("-")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    args.overrides = extra
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            _run(args)
    except JobsFailed:
        return 1
    except AnimateError as err:
        say(f"error: {err}")
        return 2
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except Terminated as stop:
        say(f"terminated{f': {stop}' if str(stop) else ''}")
        return 143
    except Exception as err:  # a bug or an environment problem: still one line, traceback on request
        if os.environ.get("ANIMATE_DEBUG"):
            raise
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            say(f"error: no space left on device{f' (writing {err.filename})' if err.filename else ''}")
            return 2  # as when ffmpeg reports it: something the user can fix
        say(f"error: {error_summary(err)} (set ANIMATE_DEBUG=1 for the traceback)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
