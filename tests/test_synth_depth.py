"""Exact depth in the synthetic task: the painted part is the nearest where parts overlap, the room's planes, depth
edges at the part labels' edges, the surfaces' shapes, and `animate synth`'s depth files."""

import json
import math

import numpy as np
import pytest

from animate.depth.maps import DepthClip
from animate.media.video import read_frames
from data_tools.backgrounds import floor_line, make_background
from data_tools.dances import make_dance, posed
from data_tools.depth import WALL_CLEARANCE, Room, draw_scene
from data_tools.figures import (PART, PART_NAMES, TURN_BLEND, Figure, draw_figure, figure_fronts, infer_view,
                                part_labels, sole_line)
from data_tools.raster import LAYER_GAP, Capsule, Ellipse, Slab, Union
from data_tools.synth import SynthOptions, synthesize

W, H = 64, 96
YS, XS = np.mgrid[0:H, 0:W] + 0.5  # pixel centres
CROSSED = {"r_shoulder": -0.2, "r_elbow": -1.35, "l_shoulder": -0.2, "l_elbow": -1.45}  # forearms across the chest
YAWS = (0.0, 0.6, -1.2, 1.45, 2.6, math.pi)  # facing, turned both ways, nearly side-on, from behind


@pytest.fixture(scope="module")
def scenes():
    """(figure, scene, room, body keypoints) for dance frames and turned poses with the forearms crossed, six
    figures."""
    found = []
    for seed in range(6):
        figure, room = Figure.from_seed(seed), Room.from_seed(seed, W, H)
        body, hands, _ = make_dance(seed, 20, 12, W, H, figure)
        poses = [(body[f], hands[f]) for f in range(0, 20, 5)]
        poses += [posed(figure, {**CROSSED, "yaw": yaw}, W, H)[:2] for yaw in YAWS]
        found += [(figure, draw_scene(figure, b, h, room), room, b) for b, h in poses]
    return found


def _pairs(a: np.ndarray):
    """Both 4-neighbour pairings of a map's pixels: (first, second) for the vertical then the horizontal one."""
    yield a[:-1, :], a[1:, :]
    yield a[:, :-1], a[:, 1:]


def _step(piece, figure: Figure, scale: float) -> float:
    """The most a piece's front may change between 4-neighbour pixels (px), from its surface: a profile r * sqrt(1 -
    q^2) whose q moves at most 1/w a pixel (w: the narrowest half-width in the image) changes at most r * sqrt(2 / w)
    a pixel; an axis rising by `tilt` over `length` px adds min(tilt, tilt / length) (the whole rise over a
    foreshortened part); a pixel of slack for the tapers."""
    shape, relief = piece.shape, piece.surface.relief
    if isinstance(shape, Ellipse):  # a dome at most as deep as its narrower half-axis
        assert float(relief(0.0, np.float64(0.0), np.float64(0.0))) <= min(shape.rx, shape.ry) + 1e-9
        return math.sqrt(2 * min(shape.rx, shape.ry)) + 1.0
    if isinstance(shape, Capsule):
        rim = [float(relief(0.0, np.float64(1.0), np.float64(t))) for t in (0.0, 1.0)]  # the axis' rise on the rim
        tilt, length = abs(rim[1] - rim[0]), max(float(np.hypot(*(shape.b - shape.a))), 1e-9)
        assert tilt <= max(length / (2 * math.sqrt(TURN_BLEND)), 1.25 * figure.foot_length * scale) + 1e-6
        return math.sqrt(2 * max(shape.ra, shape.rb)) + min(tilt, tilt / length) + 1.0
    if isinstance(shape, Slab):  # the torso's elliptic section, half-width h and depth k h, turned: r^2 / w <= h / k
        k = figure.torso_depth
        return math.sqrt(2 * max(figure.chest_half, figure.waist_half) * scale / k) + (1 - k * k) / (2 * k) + 1.0
    assert isinstance(shape, Union)  # a hand from keypoints: round-edged, its finger radius thick
    return math.sqrt(2 * shape.shapes[1].radius) + 1.0


def test_the_painted_part_is_the_nearest_where_parts_overlap(scenes):
    overlaps, pairs, lifted = 0, set(), 0
    for figure, scene, room, _ in scenes:
        fronts, on = scene.fronts, scene.fronts.owner >= 0
        np.testing.assert_array_equal(on, scene.labels > 0)  # depth from the figure exactly where it is labelled
        gap = LAYER_GAP * scene.stand / room.focal
        for i, piece in enumerate(fronts.pieces):
            inside, front = piece.front(XS, YS)  # this part's own surface wherever its shape covers a pixel
            depth = scene.stand * (1.0 - front / room.focal)
            own = fronts.owner == i
            assert inside[own].all() and (scene.labels[own] == piece.label).all()
            np.testing.assert_allclose(scene.depth[own], depth[own], rtol=1e-5)
            under = inside & on & ~own  # covered by this part, shown by another: painted later, and nearer
            assert (fronts.owner[under] > i).all()
            assert (scene.depth[under] < depth[under] - 0.99 * gap).all(), (figure.seed, PART_NAMES[piece.label])
            overlaps += int(under.sum())
            pairs |= {(PART_NAMES[piece.label], PART_NAMES[label]) for label in np.unique(scene.labels[under])}
            lifted += piece.lifted > 0
            assert 0.0 <= piece.lifted <= 0.25 * fronts.scale  # lifted a little, if at all, over what it covers
    assert overlaps > 3000 and lifted > 20  # the depth keys alone would have put a hidden surface in front
    assert {("torso", "r_forearm"), ("torso", "l_forearm"), ("l_forearm", "torso"), ("head", "head")} <= pairs


def test_room_planes_are_monotone_and_the_figure_stands_in_front_of_the_wall(scenes):
    assert [floor_line(seed, W, H) for seed in range(6)] == [63, 67, 58, 57, 62, 60]  # make_background's floor rows
    for seed in range(8):
        for width, height in ((W, H), (128, 192), (40, 30)):
            room = Room.from_seed(seed, width, height)
            depth, rows = room.depth(), np.arange(height) + 0.5
            assert depth.shape == (height, width) and depth.dtype == np.float32 and (depth > 0).all()
            assert room.horizon < room.floor_y and (depth[:room.floor_y] == np.float32(room.wall)).all()
            floor = depth[room.floor_y:]
            assert (np.diff(floor, axis=0) < 0).all() and (floor < np.float32(room.wall)).all()
            pinhole = floor[:, 0] * (rows[room.floor_y:] - room.horizon)  # z (y - horizon) = F * camera height
            np.testing.assert_allclose(pinhole, room.focal * room.camera_height, rtol=1e-5)
    on_floor = 0
    for figure, scene, room, _ in scenes:
        on = scene.labels > 0
        assert (scene.depth[on] < room.wall * (1 - WALL_CLEARANCE) * (1 + 1e-6)).all()
        if math.isclose(scene.stand, room.floor(scene.fronts.sole), rel_tol=1e-9):
            on_floor += 1  # standing where the floor is under its soles
    assert on_floor == len(scenes)
    figure = Figure.from_seed(2)  # soles above the floor line: pulled in front of the wall instead
    body, hands, _ = posed(figure, {"yaw": 2.0}, W, H)
    room = Room(W, H, H - 1, H - 3.0)
    scene = draw_scene(figure, body, hands, room)
    assert sole_line(figure, body) < room.floor_y and scene.stand < room.wall
    np.testing.assert_allclose(scene.depth[scene.labels > 0].max(), room.wall * (1 - WALL_CLEARANCE), rtol=1e-5)


def test_depth_edges_are_the_label_edges(scenes):
    inner = jumps = contact = 0
    tightest = 0.0
    for figure, scene, room, body in scenes:
        fronts, depth = scene.fronts, scene.depth.astype(np.float64)
        to_depth = scene.stand / room.focal  # depth units a front px
        bounds = np.array([_step(piece, figure, fronts.scale) * to_depth for piece in fronts.pieces] + [0.0])
        legs = YS >= max(body[[9, 12], 1].min(), room.floor_y)  # the floor from the knees down: the legs stand on it
        for (owner_a, owner_b), (za, zb), (la, lb), (near_a, near_b) in zip(
                _pairs(fronts.owner), _pairs(depth), _pairs(scene.labels), _pairs(legs)):
            step = np.abs(za - zb)
            same = (owner_a == owner_b) & (owner_a >= 0)  # inside one part: smooth
            assert (step[same] <= bounds[owner_a[same]]).all(), figure.seed
            tightest = max(tightest, float((step[same] / bounds[owner_a[same]]).max()))
            inner += int(same.sum())
            pieces = (owner_a != owner_b) & (la == lb) & (la > 0)  # one label, two pieces: the head's ears, bun, hair
            assert (la[pieces] == PART["head"]).all()
            edge = (owner_a >= 0) != (owner_b >= 0)  # the figure against the room
            part = np.where(owner_a >= 0, owner_a, owner_b)
            standing = np.where(owner_a >= 0, near_b, near_a)  # the room side is the floor by the legs
            assert (step[edge & ~standing] > bounds[part[edge & ~standing]]).all(), figure.seed
            jumps += int((edge & ~standing).sum())
            contact += int((edge & standing).sum())
    assert inner > 50000 and jumps > 5000 and contact < 0.6 * jumps
    assert tightest > 0.5  # the bound is near what the surfaces do


def test_surfaces_are_the_solids_that_paint_the_parts():
    figure, width, height = Figure.from_seed(4), 256, 384
    room = Room.from_seed(4, width, height)
    body, hands, _ = posed(figure, {"yaw": 0.0}, width, height)
    scene = draw_scene(figure, body, hands, room)
    view, to_depth = infer_view(figure, body), scene.stand / room.focal
    centre = view.head_centre
    row, column = int(centre[1]), int(centre[0])
    a, b = figure.head_half_width * view.scale, figure.head_half_height * view.scale
    assert scene.labels[row, column] == PART["head"]
    tip = math.sqrt(1 - ((column + 0.5 - centre[0]) / a) ** 2 - ((row + 0.5 - centre[1]) / b) ** 2)
    for q in (0.5, 0.8):  # an ellipsoid as deep as it is wide: a sqrt(1 - q^2) in front of its rim
        x = int(centre[0] + q * a)
        assert scene.labels[row, x] == PART["head"]
        rim = math.sqrt(1 - ((x + 0.5 - centre[0]) / a) ** 2 - ((row + 0.5 - centre[1]) / b) ** 2)
        np.testing.assert_allclose(scene.depth[row, x] - scene.depth[row, column], a * (tip - rim) * to_depth,
                                   rtol=1e-3)
    top, bottom = body[1, 1] - figure.torso_top * view.scale, body[8, 1] + figure.hem * view.scale
    row = int((top + bottom) / 2)
    share = (row + 0.5 - top) / (bottom - top)  # down the torso
    half = (figure.chest_half + (figure.waist_half - figure.chest_half) * share) * view.scale
    torso = np.flatnonzero(scene.labels[row] == PART["torso"])
    x = (torso + 0.5 - body[1, 0]) / half  # facing us: an ellipse half wide and torso_depth * half deep
    assert len(torso) > half and np.abs(x).max() < 1
    bulge = figure.torso_depth * half * np.sqrt(1 - x**2)
    np.testing.assert_allclose(scene.depth[row, torso] - scene.depth[row, torso].min(),
                               (bulge.max() - bulge) * to_depth, rtol=1e-3, atol=1e-3)
    # turned, the left arm held out sideways: it points towards the camera, its axis rising from the shoulder's
    # depth key to the elbow's (across the body unsqueezed, times sin(yaw))
    yaw = 0.8
    body, hands, _ = posed(figure, {"yaw": yaw, "l_shoulder": math.pi / 2, "l_elbow": 0.0}, width, height)
    scene = draw_scene(figure, body, hands, room)
    view, to_depth = infer_view(figure, body), scene.stand / room.focal
    c, s = math.cos(yaw), math.sin(yaw)
    rise = (body[6, 0] - body[5, 0]) * c * s / (c * c + TURN_BLEND)  # px in front, shoulder to elbow
    ra, rb = figure.upper_arm.radius_top * view.scale, figure.upper_arm.radius_bottom * view.scale
    points = [body[5, :2] + t * (body[6, :2] - body[5, :2]) for t in (0.3, 0.7)]
    assert all(scene.labels[int(y), int(x)] == PART["l_upper_arm"] for x, y in points)
    nearer = scene.depth[int(points[0][1]), int(points[0][0])] - scene.depth[int(points[1][1]), int(points[1][0])]
    np.testing.assert_allclose(nearer, 0.4 * (rise + rb - ra) * to_depth, rtol=0.05)
    assert rise > 10 * (ra - rb)
    # turned: the subject's left side nearer, the left arm in front of the right one
    body, hands, _ = posed(figure, {"yaw": 1.0, "r_shoulder": 0.9, "l_shoulder": 0.9}, width, height)
    scene = draw_scene(figure, body, hands, room)
    elbows = [scene.depth[int(body[j, 1]), int(body[j, 0])] for j in (3, 6)]
    assert scene.labels[int(body[3, 1]), int(body[3, 0])] in (PART["r_upper_arm"], PART["r_forearm"])
    assert scene.labels[int(body[6, 1]), int(body[6, 0])] in (PART["l_upper_arm"], PART["l_forearm"])
    assert elbows[1] < scene.stand < elbows[0]


def test_the_depth_path_keeps_the_drawing():
    figure, room = Figure.from_seed(3), Room.from_seed(3, W, H)
    background = make_background(3, W, H)
    body, hands, _ = make_dance(3, 8, 12, W, H, figure)
    for f in range(8):
        scene = draw_scene(figure, body[f], hands[f], room, background)
        rgb, labels = draw_figure(figure, body[f], hands[f], W, H, background)
        np.testing.assert_array_equal(scene.rgb, rgb)
        np.testing.assert_array_equal(scene.labels, labels)
        np.testing.assert_array_equal(figure_fronts(figure, body[f], None, W, H).labels,
                                      part_labels(figure, body[f], None, W, H))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth_depth") / "data"
    synthesize(SynthOptions(out, train_videos=1, test_videos=1, frames=6, width=W, height=H, fps=12.0, seed=3,
                            workers=1))
    return out


def test_synth_writes_exact_depth(dataset):
    entries = json.loads(dataset.joinpath("meta.json").read_text())
    assert [e["depth_path"] for e in entries] == ["depth/train_0000.mp4", "depth/test_0000.mp4"]
    for entry in entries:
        clip = DepthClip.load(dataset / entry["depth_path"].replace(".mp4", ".depth.npz"))
        assert clip.levels.shape == (6, H, W) and clip.fps == 12.0
        video = np.stack(list(read_frames(dataset / entry["depth_path"])))
        assert video.shape == (6, H, W, 3)
        difference = np.abs(video.astype(int) - clip.frames().astype(int))
        assert difference.mean() < 1.5 and np.percentile(difference, 99) <= 8  # h264 noise only
        figure, seed = Figure.from_seed(entry["figure_seed"]), entry["dance_seed"]
        room = Room.from_seed(seed, W, H)
        body, hands, _ = make_dance(seed, 6, 12.0, W, H, figure)
        nearness = np.stack([1.0 / draw_scene(figure, body[f], hands[f], room).depth for f in range(6)])
        step = (clip.hi - clip.lo) / 65535
        np.testing.assert_allclose(clip.nearness(), nearness, atol=0.51 * step + 1e-7 * clip.hi)
        assert clip.hi == pytest.approx(nearness.max()) and clip.lo == pytest.approx(nearness.min())
        labels = part_labels(figure, body[0], hands[0], W, H)
        near = clip.nearness()[0]
        wall = (labels == 0) & (YS < room.floor_y)
        assert near[labels > 0].min() > 4 * near[wall].max()  # the figure well in front of the wall, in the file
