"""Face-region scores: the synthetic truth's skin, hair and iris regions, `animate eval --face`, and ArcFace's
alignment and embedding (a tiny stand-in ONNX graph with w600k_r50's input and output)."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from animate.media.video import VideoWriter, read_frames
from data_tools.backgrounds import make_background
from data_tools.dances import neutral_pose
from data_tools.figures import PART, Figure, draw_figure, face_regions
from data_tools.synth import SynthOptions, synthesize


def test_regions_are_the_heads_skin_hair_and_irises():
    figure = Figure.from_seed(21)
    body, hands, _ = neutral_pose(figure, 160, 240, 1)
    background = make_background(1, 160, 240)
    image, labels = draw_figure(figure, body, hands, 160, 240, background)
    regions = face_regions(figure, body, hands, 160, 240, background)
    assert (labels[regions > 0] == PART["head"]).all()
    assert all((regions == label).sum() > 0 for label in (1, 2, 3))
    for label, colour in ((1, figure.skin), (2, figure.hair), (3, figure.eyes)):
        pixels = image[regions == label].astype(float)
        ratio = pixels.mean(0) / np.maximum(colour, 1)  # shaded versions of the figure's own colour
        assert np.ptp(ratio) < 0.25, (label, ratio)


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """Two close-up held-out videos (with regions/), 4 frames at 64x96."""
    out = tmp_path_factory.mktemp("faces") / "data"
    synthesize(SynthOptions(out, train_videos=0, test_videos=2, frames=4, width=64, height=96, fps=12.0, seed=2,
                            workers=1, framing="head"))
    return out


def _copy_with(held_out, folder, change):
    """The held-out videos written into `folder`, each frame changed by change(frame, regions of that frame)."""
    folder.mkdir()
    for video in sorted((held_out / "videos").glob("*.mp4")):
        regions = np.load(held_out / "regions" / f"{video.stem}.npz")["regions"]
        frames = [change(frame.copy(), regions[f]) for f, frame in enumerate(read_frames(video))]
        with VideoWriter(folder / video.name, 12.0, crf=0) as writer:
            writer.write(np.stack(frames))
    return folder


def test_the_truth_scores_perfectly(held_out, run_cli, tmp_path):
    result = run_cli(["eval", "--pred", held_out / "videos", "--gt", held_out / "videos", "--face", "--json",
                      tmp_path / "s.json"])
    assert result.code == 0, result.err
    assert "face PSNR (dB)" in result.out and "skin Δ" in result.out
    mean = json.loads((tmp_path / "s.json").read_text())["mean"]
    assert mean["face_psnr"] == "inf" and mean["skin"] == mean["hair"] == mean["eyes"] == 0.0
    assert mean["arcface"] is None  # no --arcface: n/a


def test_wrong_hair_shows_in_the_hair_score_only(held_out, tmp_path):
    """Hair painted another colour: a hair error of about that change, the skin and iris scores untouched."""
    from animate.app.evaluation import evaluate

    def repaint(frame, regions):
        frame[regions == 2] = (250, 20, 20)
        return frame

    rows = evaluate(_copy_with(held_out, tmp_path / "pred", repaint), held_out / "videos", face=True)
    for row in rows:
        # measured: re-encoding alone gives up to 0.02, and the red's chroma bleeds into the skin at 4:2:0 (0.03)
        assert row["hair"] > 0.5 and row["skin"] < 0.06 and row["eyes"] < 0.06
        assert math.isfinite(row["face_psnr"]) and row["face_psnr"] < row["psnr"]  # the damage is in the face


def test_face_scores_need_the_truths_keypoints(run_cli, tmp_path):
    video = tmp_path / "clips" / "a.mp4"
    video.parent.mkdir()
    with VideoWriter(video, 12.0) as writer:
        writer.write(np.zeros((2, 32, 32, 3), np.uint8))
    result = run_cli(["eval", "--pred", video, "--gt", video, "--face"])
    assert result.code == 2 and "--face needs the truth's keypoints at" in result.err
    assert len(result.err.strip().splitlines()) == 1


# --- ArcFace --------------------------------------------------------------------------------------------------------


def _write_arcface(path):
    """A stand-in w600k_r50.onnx: input.1 [N, 3, 112, 112] → 683 [N, 512], the per-channel means times a matrix."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(0).normal(size=(3, 512)).astype(np.float32)
    nodes = [helper.make_node("ReduceMean", ["input.1"], ["means"], axes=[2, 3], keepdims=0),
             helper.make_node("MatMul", ["means", "weights"], ["683"])]
    graph = helper.make_graph(nodes, "arcface_standin",
                              [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, 112, 112])],
                              [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["N", 512])],
                              initializer=[numpy_helper.from_array(weights, "weights")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def test_alignment_puts_the_five_points_on_the_template():
    import cv2

    from animate.pose.arcface import TEMPLATE, align

    points = TEMPLATE * 1.7 + np.float32([40, 25])  # the same face, larger and elsewhere
    image = np.zeros((300, 300, 3), np.uint8)
    for x, y in points:
        cv2.circle(image, (int(round(x)), int(round(y))), 2, (255, 255, 255), -1)
    aligned = align(image, points)
    assert aligned.shape == (112, 112, 3)
    for x, y in TEMPLATE:
        assert aligned[int(round(y)), int(round(x))].max() > 100


def test_arcface_scores_the_same_face_one_and_others_less(held_out, tmp_path):
    from animate.app.evaluation import evaluate

    model = _write_arcface(tmp_path / "w600k_r50.onnx")
    same = evaluate(held_out / "videos", held_out / "videos", arcface=model)
    assert all(row["arcface"] == pytest.approx(1.0, abs=1e-6) for row in same)

    def tint(frame, regions):
        return (frame * np.float32([0.3, 1.0, 0.3])).astype(np.uint8)

    other = evaluate(_copy_with(held_out, tmp_path / "tinted", tint), held_out / "videos", arcface=model)
    assert all(row["arcface"] < 0.99 for row in other)


def test_a_broken_arcface_file_is_one_line(run_cli, held_out, tmp_path):
    pytest.importorskip("onnxruntime")
    bad = tmp_path / "w600k_r50.onnx"
    bad.write_bytes(b"not onnx")
    result = run_cli(["eval", "--pred", held_out / "videos", "--gt", held_out / "videos", "--arcface", bad])
    assert result.code == 2 and "cannot load" in result.err and len(result.err.strip().splitlines()) == 1


def test_a_crop_past_the_edge_stays_square_and_black_beyond_it():
    """A face at the image's edge: the crop keeps its square (CLIP's 224×224 resize then keeps the face's aspect) and
    what lies past the edge is black."""
    from animate.pose.face import FaceBox, crop_face

    crop = np.asarray(crop_face(Image.new("RGB", (100, 100), (200, 200, 200)), FaceBox(-10.0, 20.0, 40.0)))
    assert crop.shape == (40, 40, 3)
    assert (crop[:, :10] == 0).all() and (crop[:, 10:] == 200).all()
