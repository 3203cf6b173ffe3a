"""`animate synth`: determinism, keypoints against drawn parts, occlusion order, moving textures, splits, files."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from animate.depth.maps import DepthClip
from animate.errors import AnimateError
from animate.pose.keypoints import PoseSequence
from animate.media.video import read_frames
from data_tools.backgrounds import make_background
from data_tools.dances import make_dance, posed
from data_tools.figures import HAND_PARTS, HEAD_POINTS, JOINT_PARTS, PART, Figure, draw_figure, infer_view, part_labels
from data_tools.materials import Material
from data_tools.synth import SPLITS, SynthOptions, synthesize, video_seeds

W, H = 64, 96
CROSSED = {"r_shoulder": -0.2, "r_elbow": -1.35, "l_shoulder": -0.2, "l_elbow": -1.45}  # forearms across the chest


def _options(out, **changes) -> SynthOptions:
    return replace(SynthOptions(out, train_videos=2, test_videos=1, frames=12, width=W, height=H, fps=12.0, seed=5,
                                workers=1), **changes)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Two train videos and one test video of 12 frames at 64x96 (and the summary line)."""
    out = tmp_path_factory.mktemp("synth") / "data"
    return out, synthesize(_options(out))


def _label(labels: np.ndarray, point: np.ndarray) -> int:
    return int(labels[int(math.floor(point[1])), int(math.floor(point[0]))])


def _videos(folder, kind: str) -> dict[str, np.ndarray]:
    return {p.name: np.stack(list(read_frames(p))) for p in sorted((folder / kind).glob("*.mp4"))}


def test_same_seed_same_files_any_worker_count_other_seed_differs(data, tmp_path):
    out, summary = data
    assert "3 videos (2 train, 1 test" in summary and str(out / "meta.json") in summary
    again = tmp_path / "again"
    synthesize(_options(again, workers=2))
    assert (again / "meta.json").read_text() == (out / "meta.json").read_text()
    for name in ("train_0000", "train_0001", "test_0000"):
        first, second = (PoseSequence.load(d / "keypoints" / f"{name}.pose.npz") for d in (out, again))
        for field in ("body", "hands", "face"):
            np.testing.assert_array_equal(getattr(first, field), getattr(second, field))
        assert (out / "refs" / f"{name}.png").read_bytes() == (again / "refs" / f"{name}.png").read_bytes()
        first_depth, second_depth = (DepthClip.load(d / "depth" / f"{name}.depth.npz") for d in (out, again))
        assert np.array_equal(first_depth.levels, second_depth.levels)
        assert (first_depth.lo, first_depth.hi) == (second_depth.lo, second_depth.hi)
    for kind in ("videos", "poses", "depth"):
        ours, theirs = _videos(out, kind), _videos(again, kind)
        assert ours.keys() == theirs.keys() and all(np.array_equal(ours[k], theirs[k]) for k in ours)
    other = tmp_path / "other"
    synthesize(_options(other, seed=6, test_videos=0))
    differs = PoseSequence.load(other / "keypoints/train_0000.pose.npz").body
    assert differs.shape == first.body.shape and not np.allclose(differs, first.body)


def test_visible_keypoints_lie_on_their_parts_hidden_ones_are_covered():
    shown = hidden = turned_away = 0
    for seed in range(5):
        figure = Figure.from_seed(seed)
        body, hands, face = make_dance(seed, 36, 12, W, H, figure)
        points = np.concatenate([body, hands.reshape(-1, 42, 3), face], axis=1)
        assert (points[..., :2] >= 0).all() and (points[..., 0] < W).all() and (points[..., 1] < H).all()
        assert set(np.unique(points[..., 2])) <= {0.0, 1.0}
        for f in range(0, 36, 2):
            rgb, labels = draw_figure(figure, body[f], hands[f], W, H, make_background(seed, W, H))
            assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
            assert not (labels[[0, -1]].any() or labels[:, [0, -1]].any()), "the figure touches the frame's edge"
            view = infer_view(figure, body[f])
            for j, (x, y, score) in enumerate(body[f]):
                on_own_part = _label(labels, (x, y)) in JOINT_PARTS[j]
                if score:
                    assert on_own_part, (seed, f, j)
                    shown += 1
                else:
                    hidden += 1
                    if on_own_part:  # only the head's points hide on their own part: turned away from the camera
                        assert j in HEAD_POINTS and (abs(view.sin_yaw) > 0.1 or view.cos_yaw < 0.2), (seed, f, j)
                        turned_away += 1
            for h, part in enumerate(HAND_PARTS):
                on = [_label(labels, p) for p in hands[f, h]]
                own = [label == part or (k == 0 and label == part - 1) for k, label in enumerate(on)]
                np.testing.assert_array_equal(hands[f, h, :, 2], own)
            on_head = np.array([_label(labels, p) == PART["head"] for p in face[f]])
            assert on_head[face[f, :, 2] == 1].all()
            assert not (on_head & (face[f, :, 2] == 0)).any() or view.cos_yaw < 0.99  # hidden on the head: turned
    assert shown > 0.85 * (shown + hidden) and hidden > 0 and turned_away > 0


def test_view_recovered_from_keypoints():
    figure = Figure.from_seed(3)
    for yaw in (0.0, 0.7, -1.4, 2.5, math.pi):
        body, _, _ = posed(figure, {"yaw": yaw, "lean": 0.2, "head_tilt": -0.3}, W * 2, H * 2)
        view = infer_view(figure, body)
        assert math.isclose(math.cos(view.yaw - yaw), 1.0, abs_tol=1e-6)
        assert math.isclose(math.atan2(view.up[0], -view.up[1]), 0.2, abs_tol=1e-6)


def test_hands_without_keypoints_are_drawn_at_the_wrists():
    figure = Figure.from_seed(4)
    body, _, _ = posed(figure, {}, W * 2, H * 2)
    labels = part_labels(figure, body, None, W * 2, H * 2)
    for wrist, part in zip((4, 7), HAND_PARTS):
        assert (labels == part).any() and _label(labels, body[wrist]) in (part, part - 1)


def test_turning_changes_which_arm_covers_the_torso():
    figure = Figure.from_seed(1)
    torso = PART["torso"]

    def arms(angles: dict) -> dict[int, tuple[float, int]]:
        """(score, label under it) of the elbows and wrists."""
        body, hands, _ = posed(figure, angles, W * 2, H * 2)
        labels = part_labels(figure, body, hands, W * 2, H * 2)
        return {j: (body[j, 2], _label(labels, body[j])) for j in (3, 4, 6, 7)}

    front, back = arms({**CROSSED, "yaw": 0.0}), arms({**CROSSED, "yaw": math.pi})
    assert all(front[j][0] == 1 and front[j][1] != torso for j in (4, 7))  # wrists crossed in front of the chest
    assert all(seen == (0, torso) for seen in back.values())  # the same arms seen from behind
    for yaw, near, far_elbow in ((1.3, (6, 7), 3), (-1.3, (3, 4), 6)):  # side-on: the far arm goes behind the torso
        seen = arms({"yaw": yaw})
        assert all(seen[j][0] == 1 for j in near) and seen[far_elbow] == (0, torso)


def _inside(point: np.ndarray, quad: np.ndarray) -> bool:
    """Whether point lies inside the convex quadrilateral."""
    sides = [np.cross(quad[(i + 1) % 4] - quad[i], point - quad[i]) for i in range(4)]
    return all(s > 0 for s in sides) or all(s < 0 for s in sides)


def test_dances_put_an_arm_over_the_torso_and_later_behind_it():
    torso = PART["torso"]
    for seed in range(6):
        figure = Figure.from_seed(seed)
        body, hands, _ = make_dance(seed, 48, 12, W, H, figure)
        over, behind = set(), set()  # arms seen in front of the torso, and hidden behind it
        for f in range(48):
            labels, chest = part_labels(figure, body[f], hands[f], W, H), body[f, [2, 5, 11, 8], :2]
            for arm, joints in (("right", (3, 4)), ("left", (6, 7))):
                for x, y, score in body[f, list(joints)]:
                    on = _label(labels, (x, y))
                    if score and on != torso and _inside(np.array([x, y]), chest):
                        over.add(arm)
                    if not score and on == torso:
                        behind.add(arm)
        if over & behind:
            return
    pytest.fail("no dance of seeds 0-5 moved an arm from in front of the torso to behind it")


def _sample(image: np.ndarray, point: np.ndarray) -> np.ndarray:
    """The image bilinearly interpolated at a continuous point (pixel centres at +0.5)."""
    x, y = point[0] - 0.5, point[1] - 0.5
    x0, y0 = int(math.floor(x)), int(math.floor(y))
    fx, fy = x - x0, y - y0
    patch = image[y0:y0 + 2, x0:x0 + 2].astype(float)
    return (patch[0, 0] * (1 - fx) * (1 - fy) + patch[0, 1] * fx * (1 - fy) + patch[1, 0] * (1 - fx) * fy
            + patch[1, 1] * fx * fy)


def test_textures_move_with_their_parts():
    stripes = Material("stripes", (230.0, 60.0, 40.0), (30.0, 40.0, 200.0), 0.08, 0.6)
    figure = replace(Figure.from_seed(2), top=stripes, sleeve=stripes, bottom=replace(stripes, angle=0.0),
                     cover={"upper_arm": 1.0, "forearm": 1.0, "thigh": 1.0, "shin": 1.0}, emblem=None, tucked=False)
    poses = [({}, 240, 360), ({"lean": 0.25, "l_shoulder": 2.2, "l_elbow": 0.8, "r_shoulder": 1.2, "r_elbow": -0.9,
                               "l_hip": 0.4, "l_knee": 0.5, "r_hip": -0.1}, 320, 480)]  # another pose, nearer
    limbs = {"torso": (1, None), "l_upper_arm": (5, 6), "l_forearm": (6, 7), "r_upper_arm": (2, 3),
             "r_forearm": (3, 4), "l_thigh": (11, 12), "l_shin": (12, 13), "r_thigh": (8, 9), "r_shin": (9, 10)}
    samples = []
    for angles, width, height in poses:
        body, hands, _ = posed(figure, angles, width, height)
        rgb, labels = draw_figure(figure, body, hands, width, height, np.zeros((height, width, 3), np.uint8))
        body, colours = body[:, :2], []
        for name, (a, b) in limbs.items():
            end = (body[8] + body[11]) / 2 if b is None else body[b]
            for t in np.linspace(0.2, 0.8, 7):
                point = body[a] + t * (end - body[a])
                colours.append(_sample(rgb, point) if _label(labels, point) == PART[name] else np.full(3, np.nan))
        samples.append(np.array(colours))
    both = ~np.isnan(samples[0]).any(axis=1) & ~np.isnan(samples[1]).any(axis=1)
    assert both.sum() >= 40
    first, second = samples[0][both], samples[1][both]
    assert first.std(axis=0).max() > 30  # the spots cross stripes
    assert np.abs(first - second).mean() < 8


def test_splits_share_no_figure_or_dance(data):
    out, _ = data
    train, test = (set(video_seeds(5, split, 300)) for split in SPLITS)
    assert len(train) == len(test) == 300
    assert not {f for f, _ in train} & {f for f, _ in test} and not {d for _, d in train} & {d for _, d in test}
    entries = json.loads((out / "meta.json").read_text())
    by_split = {split: [e for e in entries if e["split"] == split] for split in SPLITS}
    assert [len(by_split[s]) for s in SPLITS] == [2, 1]
    for split in SPLITS:
        assert json.loads((out / f"meta_{split}.json").read_text()) == by_split[split]
    assert not {e["figure_seed"] for e in by_split["train"]} & {e["figure_seed"] for e in by_split["test"]}


def test_dataset_loads_for_training(data):
    from PIL import Image

    from stages.datasets import Stage1Dataset, Stage2Dataset, load_meta

    out, _ = data
    entries = json.loads((out / "meta.json").read_text())
    assert list(entries[0])[:2] == ["video_path", "kps_path"]
    assert [e.num_frames for e in load_meta(out / "meta.json")] == [12, 12, 12]
    for entry in entries:
        seq = PoseSequence.load(out / entry["keypoints_path"])
        assert (len(seq), seq.width, seq.height, seq.fps) == (12, W, H, 12.0)
        assert Image.open(out / entry["ref_path"]).size == (W, H)
    item = Stage1Dataset(out / "meta_train.json", 32, 48, sample_margin=4, seed=0)[1]
    assert item["pixel_values"].shape == item["pose_pixel_values"].shape == (3, 48, 32)
    item = Stage2Dataset(out / "meta.json", 32, 48, n_sample_frames=4, sample_rate=2, seed=0)[2]
    assert item["pixel_values"].shape == item["pose_pixel_values"].shape == (4, 3, 48, 32)
    assert item["pose_pixel_values"].max() > 0.5  # the skeleton is there
    assert [e.num_frames for e in load_meta(out / "meta.json", depth=True)] == [12, 12, 12]
    item = Stage2Dataset(out / "meta.json", 32, 48, n_sample_frames=4, sample_rate=2, seed=0, depth=True)[2]
    assert item["depth_pixel_values"].shape == (4, 3, 48, 32) and item["depth_pixel_values"].max() > 0.5


def test_refuses_a_non_empty_folder_unless_forced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    small = _options(out, train_videos=1, test_videos=0, frames=3, width=32, height=48)
    with pytest.raises(AnimateError, match="not empty; pass --force"):
        synthesize(small)
    assert (out / "keep.txt").read_text() == "mine"
    with pytest.raises(AnimateError, match="even"):
        synthesize(replace(small, width=33, force=True))
    synthesize(replace(small, force=True))
    assert not (out / "keep.txt").exists() and (out / "meta.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folder left beside it


def test_a_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = []

    def dance_then_fail(*args):
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return make_dance(*args)

    monkeypatch.setattr("data_tools.synth.make_dance", dance_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        synthesize(_options(tmp_path / "out", frames=3, width=32, height=48))
    assert list(tmp_path.iterdir()) == []


def test_synth_command(run_cli, tmp_path):
    args = ["synth", "-o", "data", "--train", "1", "--test", "1", "--frames", "4", "-W", "32", "-H", "48", "--workers", "1"]
    result = run_cli(args)
    assert result.code == 0, result.err
    assert result.out.startswith("synthesized 2 videos") and (tmp_path / "data" / "meta_test.json").is_file()
    again = run_cli(args)
    assert again.code == 2 and len(again.err.strip().splitlines()) == 1 and "--force" in again.err
