"""The DWPose backend's wiring on tiny stand-in ONNX models, not the real networks.

The stand-ins have the real models' input/output names and shapes (yolox_l.onnx: images [1,3,640,640] → output
[1,8400,85]; dw-ll_ucoco_384.onnx: input [1,3,384,288] → simcc_x [1,133,576], simcc_y [1,133,768]) but constant
outputs chosen here: a person box and a decoy at known places (gated off when the frame's channel 0 is dark) and
SimCC peaks at known bins. So these tests check pre/post-processing, coordinate mapping, person choice, the
133 → 18/2x21/68 mapping and sides, and errors; the quality of the real models' keypoints is not tested here.
"""

import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from animate.errors import AnimateError  # noqa: E402
from animate.pose.dwpose import (COCO_TO_OPENPOSE, DWPoseExtractor, crop_person, decode_people,  # noqa: E402
                                 extract_image, extract_video, letterbox, nms, wholebody_to_arrays)
from animate.media.video import VideoWriter  # noqa: E402

# The stand-in detector's person, in the 640x640 letterbox input: centre (280, 240), size 160x320, score 0.9. A 320x240
# frame is letterboxed at scale 2, so the box is (100, 40)-(180, 200) in the frame. A decoy 40x40 box at centre
# (40, 40) scores higher (0.95) but is far less prominent (area x score).
BOX_CENTRE, BOX_SIZE, BOX_SCORE = (280.0, 240.0), (160.0, 320.0), 0.9
DECOY_CENTRE, DECOY_SIZE, DECOY_SCORE = (40.0, 40.0), (40.0, 40.0), 0.95
FRAME_BOX, FRAME_DECOY = np.array([100.0, 40.0, 180.0, 200.0]), np.array([10.0, 10.0, 30.0, 30.0])
# Pose crop of that box: padded 1.25x to 100x200, widened to 288:384 → 150x200 around (140, 120).
CROP_CENTRE, CROP_SIZE = np.array([140.0, 120.0]), np.array([150.0, 200.0])
MISSING_POINT = 3  # COCO left ear: its SimCC maxima are negative → OpenPose point 17 missing


def _expected_points() -> np.ndarray:
    """(133, 3) where the stand-in pose model puts each COCO-WholeBody point in the 320x240 frame, and its score."""
    index = np.arange(133, dtype=np.float32)
    x = 70.0 + index  # 70..202, inside the crop's x range 65..215
    y = 25.0 + 1.4 * index  # 25..211.8, inside 20..220
    score = 0.3 + 0.005 * index
    points = np.stack([x, y, score], axis=1)
    points[MISSING_POINT] = 0.0
    return points


def _pose_outputs() -> tuple[np.ndarray, np.ndarray]:
    """Constant SimCC outputs whose peaks decode to _expected_points; one axis peaks 0.02 higher (score = the min)."""
    points = _expected_points()
    simcc_x, simcc_y = np.zeros((1, 133, 576), np.float32), np.zeros((1, 133, 768), np.float32)
    crop = (points[:, :2] - (CROP_CENTRE - CROP_SIZE / 2)) / CROP_SIZE * (288, 384)  # model input pixels
    bins = np.rint(crop * 2).astype(int)  # split ratio 2
    for k, (bx, by) in enumerate(bins):
        score, higher = points[k, 2], points[k, 2] + 0.02
        simcc_x[0, k, bx], simcc_y[0, k, by] = (score, higher) if k % 2 else (higher, score)
    simcc_x[0, MISSING_POINT], simcc_y[0, MISSING_POINT] = -1.0, -1.0
    simcc_x[0, MISSING_POINT, 100], simcc_y[0, MISSING_POINT, 100] = -0.5, -0.5
    return simcc_x, simcc_y


def _detector_output() -> np.ndarray:
    """[1, 8400, 85]: all zero but two stride-8 rows (cells at the boxes' centres) holding the person and the decoy."""
    output = np.zeros((1, 8400, 85), np.float32)
    for (cx, cy), (w, h), score in ((BOX_CENTRE, BOX_SIZE, BOX_SCORE), (DECOY_CENTRE, DECOY_SIZE, DECOY_SCORE)):
        row = int(cy // 8) * 80 + int(cx // 8)
        output[0, row, :4] = (cx / 8 - cx // 8, cy / 8 - cy // 8, np.log(w / 8), np.log(h / 8))
        output[0, row, 4], output[0, row, 5] = score, 1.0
    return output


def _save(graph, path) -> None:
    """Write a graph as an opset-17 model that any recent onnxruntime reads."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def _write_detector(path) -> None:
    """Stand-in yolox_l.onnx: output = the constant × clip(min(channel 0) - 100, 0, 1): no one on dark frames.

    The letterbox pads with 114, so a frame bright in channel 0 gives min 114 (gate 1) and a black one min ~0 (gate
    0). Channel 0 is blue when frames go in as BGR, as DWPose feeds them.
    """
    constant = numpy_helper.from_array(_detector_output(), "boxes")
    hundred = numpy_helper.from_array(np.array(100.0, np.float32), "hundred")
    zero = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    nodes = [
        helper.make_node("Slice", ["images", "first", "second", "channels"], ["blue"]),
        helper.make_node("ReduceMin", ["blue"], ["darkest"], keepdims=0),
        helper.make_node("Sub", ["darkest", "hundred"], ["shifted"]),
        helper.make_node("Max", ["shifted", "zero"], ["floored"]),
        helper.make_node("Min", ["floored", "one"], ["gate"]),
        helper.make_node("Mul", ["boxes", "gate"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "yolox_standin", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 8400, 85])],
        initializer=[constant, hundred, zero, one] + [numpy_helper.from_array(np.array([v], np.int64), name)
                                                      for name, v in (("first", 0), ("second", 1), ("channels", 1))])
    _save(graph, path)


def _write_pose(path) -> None:
    """Stand-in dw-ll_ucoco_384.onnx: constant simcc_x, simcc_y (the input is read and multiplied by zero)."""
    simcc_x, simcc_y = _pose_outputs()
    zero = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    nodes = [
        helper.make_node("ReduceMax", ["input"], ["peak"], keepdims=0),
        helper.make_node("Mul", ["peak", "zero"], ["nothing"]),
        helper.make_node("Add", ["x_const", "nothing"], ["simcc_x"]),
        helper.make_node("Add", ["y_const", "nothing"], ["simcc_y"]),
    ]
    graph = helper.make_graph(
        nodes, "rtmpose_standin", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 384, 288])],
        [helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, [1, 133, 576]),
         helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, [1, 133, 768])],
        initializer=[numpy_helper.from_array(simcc_x, "x_const"), numpy_helper.from_array(simcc_y, "y_const"), zero])
    _save(graph, path)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Moore's layout: pretrained_weights/DWPose/{yolox_l.onnx, dw-ll_ucoco_384.onnx} with the stand-ins."""
    root = tmp_path_factory.mktemp("weights") / "pretrained_weights"
    (root / "DWPose").mkdir(parents=True)
    _write_detector(root / "DWPose" / "yolox_l.onnx")
    _write_pose(root / "DWPose" / "dw-ll_ucoco_384.onnx")
    return root


@pytest.fixture(scope="module")
def extractor(weights):
    """One extractor on the stand-ins, found through the DWPose/ subfolder."""
    return DWPoseExtractor(weights)


def _white(width: int, height: int) -> np.ndarray:
    """A bright frame: the stand-in detector sees its person."""
    return np.full((height, width, 3), 255, np.uint8)


def test_detector_boxes_land_in_frame_pixels(extractor):
    """The letterbox scale (2 for a 320x240 frame) is undone; boxes best score first, objectness x class score."""
    people = extractor.detect(_white(320, 240))
    assert people.shape == (2, 5)
    np.testing.assert_allclose(people[:, :4], [FRAME_DECOY, FRAME_BOX], atol=1e-3)
    np.testing.assert_allclose(people[:, 4], [DECOY_SCORE, BOX_SCORE], rtol=1e-6)


def test_frames_go_in_as_bgr(extractor):
    """The stand-in detector looks at channel 0 only: a blue RGB frame is seen, a red one is not."""
    blue, red = np.zeros((240, 320, 3), np.uint8), np.zeros((240, 320, 3), np.uint8)
    blue[..., 2], red[..., 0] = 255, 255
    assert extractor.extract_frame(blue)[0][:, 2].any()
    assert not extractor.extract_frame(red)[0].any()


def test_keypoints_land_at_the_expected_pixels_and_map_to_ours(extractor):
    """The most prominent box is posed; SimCC peaks → frame pixels within 1 px; OpenPose order, neck, face 23..90,
    subject-right hand = 112..132."""
    body, hands, face = extractor.extract_frame(_white(320, 240))
    points = _expected_points()
    assert body.shape == (18, 3) and hands.shape == (2, 21, 3) and face.shape == (68, 3)
    assert body.dtype == hands.dtype == face.dtype == np.float32
    # OpenPose 2 = COCO 6 (right shoulder), 5 = COCO 5 (left shoulder), 14/15 = COCO 2/1 (right/left eye) ...
    for ours, coco in enumerate(COCO_TO_OPENPOSE):
        if coco >= 0:
            np.testing.assert_allclose(body[ours], points[coco], atol=1.0, err_msg=f"body {ours} ← coco {coco}")
    np.testing.assert_allclose(body[1, :2], points[[5, 6], :2].mean(axis=0), atol=1.0)
    assert body[1, 2] == pytest.approx(points[[5, 6], 2].min())
    assert (body[17] == 0).all()  # COCO left ear: SimCC maxima <= 0 → missing
    np.testing.assert_allclose(face, points[23:91], atol=1.0)
    np.testing.assert_allclose(hands[0], points[112:133], atol=1.0)  # COCO-WholeBody right_hand_*: subject's right
    np.testing.assert_allclose(hands[1], points[91:112], atol=1.0)


def test_large_frames_are_shrunk_for_detection_and_mapped_back(extractor):
    """A 1280x960 frame is 4x the 320x240 one: detected at 512 px short side, keypoints come back at 4x."""
    body, hands, face = extractor.extract_frame(_white(1280, 960))
    small = _expected_points()
    for ours, coco in enumerate(COCO_TO_OPENPOSE):
        if coco >= 0:
            np.testing.assert_allclose(body[ours, :2], small[coco, :2] * 4, atol=2.0)
    np.testing.assert_allclose(hands[0, :, :2], small[112:133, :2] * 4, atol=2.0)
    np.testing.assert_allclose(face[:, :2], small[23:91, :2] * 4, atol=2.0)


def test_no_detection_gives_zeros_and_a_clear_error_for_photos(extractor, weights):
    """A black frame: the stand-in detector reports no one → all zeros; extract_image says no person found."""
    black = np.zeros((240, 320, 3), np.uint8)
    assert all(not part.any() for part in extractor.extract_frame(black))
    with pytest.raises(AnimateError, match="no person found in the photo"):
        extract_image(black, weights)
    body, _, _ = extract_image(_white(320, 240), weights)
    assert body[:, 2].any()


def test_extract_video_keeps_frames_and_zeros_where_no_one(tmp_path, weights):
    """Bright frames get the person, dark frames zeros; size and fps from the video; an all-dark video is an error."""
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, fps=8) as writer:
        for i in range(4):
            writer.write(_white(320, 240) if i % 2 == 0 else np.zeros((240, 320, 3), np.uint8))
    poses = extract_video(path, weights, progress=False)
    assert (len(poses), poses.width, poses.height, poses.fps) == (4, 320, 240, 8.0)
    assert poses.body[[0, 2], :, 2].any(axis=1).all() and not poses.body[[1, 3]].any()
    np.testing.assert_allclose(poses.hands[0, 0], _expected_points()[112:133], atol=1.5)  # h264 does not move a box
    assert len(extract_video(path, weights, max_frames=2, progress=False)) == 2
    dark = tmp_path / "dark.mp4"
    with VideoWriter(dark, fps=8) as writer:
        writer.write(np.zeros((2, 240, 320, 3), np.uint8))
    with pytest.raises(AnimateError, match="no person found in .*dark.mp4"):
        extract_video(dark, weights, progress=False)


def test_wholebody_mapping_neck_and_scores():
    """Neck = shoulders' midpoint with the smaller score, missing with a missing shoulder; scores clipped to [0, 1]."""
    points = np.zeros((133, 3), np.float32)
    points[:, 0], points[:, 1], points[:, 2] = np.arange(133), 1000 + np.arange(133), 0.5
    points[5], points[6] = (10, 20, 0.8), (30, 40, 0.6)  # left, right shoulder
    points[0, 2], points[7, 2] = 1.7, -0.2  # over 1; negative = missing
    body, hands, face = wholebody_to_arrays(points)
    np.testing.assert_allclose(body[1], (20, 30, 0.6))
    np.testing.assert_allclose(body[2], (30, 40, 0.6))  # OpenPose right shoulder = COCO 6
    np.testing.assert_allclose(body[5], (10, 20, 0.8))
    assert body[0, 2] == 1.0 and (body[6] == 0).all()  # COCO 7 = left elbow = OpenPose 6
    assert hands[0, 0, 0] == 112 and hands[1, 0, 0] == 91 and face[0, 0] == 23 and face[-1, 0] == 90
    points[6, 2] = 0.0
    body, _, _ = wholebody_to_arrays(points)
    assert (body[1] == 0).all()


def test_letterbox_crop_and_nms():
    """Letterbox: top-left, grey 114 pad, BGR kept; crop: normalised channels and the box centre at the crop centre."""
    image = np.zeros((100, 200, 3), np.uint8)
    image[..., 2] = 255  # channel 2 (red in BGR)
    tensor, ratio = letterbox(image, (640, 640))
    assert ratio == 3.2 and tensor.shape == (1, 3, 640, 640) and tensor.dtype == np.float32
    assert tensor[0, 2, 0, 0] == 255 and tensor[0, 0, 0, 0] == 0 and (tensor[0, :, 330:] == 114).all()

    image[50, 100] = (255, 255, 255)  # a marker at (x 100, y 50), the box centre
    crop, matrix = crop_person(image, np.array([80.0, 20.0, 120.0, 80.0]), (384, 288))
    assert crop.shape == (1, 3, 384, 288)
    assert crop[0, 0, 0, 0] == pytest.approx((0 - 123.675) / 58.395, abs=1e-4)
    assert crop[0, 2, 0, 0] == pytest.approx((255 - 103.53) / 57.375, abs=1e-4)
    y, x = np.unravel_index(crop[0, 0].argmax(), crop[0, 0].shape)
    assert abs(x - 144) <= 3 and abs(y - 192) <= 3
    np.testing.assert_allclose(matrix[:, :2], np.eye(2) * 384 / 75)  # 60 px tall box padded to 75 → 384 rows
    _, matrix = crop_person(image, np.array([0.0, 40.0, 160.0, 60.0]), (384, 288))
    np.testing.assert_allclose(matrix, [[288 / 200, 0, 144 - 80 * 288 / 200], [0, 288 / 200, 192 - 50 * 288 / 200]])

    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float32)
    assert nms(boxes, np.array([0.5, 0.9, 0.4]), 0.45).tolist() == [1, 2]
    assert not len(decode_people(np.zeros((8400, 85), np.float32), 1.0, (640, 640)))


def test_missing_models_broken_models_and_missing_onnxruntime(tmp_path, weights, monkeypatch):
    """Each missing file is named; files are found directly in the folder too; an unreadable model is one line."""
    with pytest.raises(AnimateError, match="yolox_l.onnx not found"):
        DWPoseExtractor(tmp_path)
    (tmp_path / "yolox_l.onnx").write_bytes((weights / "DWPose" / "yolox_l.onnx").read_bytes())
    with pytest.raises(AnimateError, match="dw-ll_ucoco_384.onnx not found"):
        DWPoseExtractor(tmp_path)
    (tmp_path / "dw-ll_ucoco_384.onnx").write_bytes(b"not a model")
    with pytest.raises(AnimateError, match="cannot load .*dw-ll_ucoco_384.onnx"):
        DWPoseExtractor(tmp_path)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(AnimateError, match="pip install onnxruntime"):
        DWPoseExtractor(weights)


def test_pose_command_runs_the_dwpose_backend(weights, run_cli, tmp_path):
    from animate.pose.keypoints import PoseSequence
    from animate.media.video import VideoWriter, probe_video

    with VideoWriter(tmp_path / "dance.mp4", 8) as writer:
        writer.write(np.stack([_white(320, 240)] * 3))
    result = run_cli(["pose", "dance.mp4", "-o", "p.mp4", "--keypoints", "k.pose.npz", "--pose-backend", "dwpose",
                      "--dwpose-dir", weights, "--no-progress"])
    assert result.code == 0, result.err
    assert probe_video(tmp_path / "p.mp4").num_frames == 3
    seq = PoseSequence.load(tmp_path / "k.pose.npz")
    assert (seq.body[:, 1, 2] > 0).all()
    result = run_cli(["pose", "dance.mp4", "-o", "q.mp4", "--pose-backend", "dwpose", "--dwpose-dir", tmp_path / "none"])
    assert result.code == 2 and "yolox_l.onnx not found" in result.err and not (tmp_path / "q.mp4").exists()
