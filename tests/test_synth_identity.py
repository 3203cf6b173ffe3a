"""The synthetic task for the content guider: one person in several outfits, rooms and dances, and captions."""

import json
from dataclasses import fields, replace

import numpy as np
import pytest

from data_tools.backgrounds import make_background, wall_colour
from data_tools.captions import CAPTION_WORDS, caption, colour_name
from data_tools.figures import OUTFIT, Figure
from data_tools.materials import Material
from data_tools.synth import SynthOptions, synthesize


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    """Four train videos of two people (two outfits each) and two test videos of one, 6 frames at 48x64."""
    out = tmp_path_factory.mktemp("people") / "data"
    synthesize(SynthOptions(out, train_videos=4, test_videos=2, frames=6, width=48, height=64, fps=12.0, seed=3,
                            workers=1, outfits=2))
    return out, json.loads((out / "meta.json").read_text())


def test_one_seed_for_both_is_the_figure_of_that_seed():
    assert Figure.from_seeds(11, 11) == Figure.from_seed(11)


def test_dressing_changes_the_clothes_and_nothing_else():
    person, other, dressed = Figure.from_seed(11), Figure.from_seed(12), Figure.from_seeds(11, 12)
    for field in fields(Figure):
        expected = other if field.name in OUTFIT else person
        assert getattr(dressed, field.name) == getattr(expected, field.name), field.name
    assert dressed.top != person.top


def test_videos_of_one_person_share_the_identity_not_the_outfit_room_or_dance(people):
    _, entries = people
    train = [e for e in entries if e["split"] == "train"]
    test = [e for e in entries if e["split"] == "test"]
    assert train[0]["identity"] == train[1]["identity"] != train[2]["identity"] == train[3]["identity"]
    assert test[0]["identity"] == test[1]["identity"]
    assert not {e["identity"] for e in train} & {e["identity"] for e in test}
    for first, second in ((train[0], train[1]), (train[2], train[3]), (test[0], test[1])):
        assert first["figure_seed"] != second["figure_seed"] and first["dance_seed"] != second["dance_seed"]
        a, b = (Figure.from_seeds(e["identity"], e["figure_seed"]) for e in (first, second))
        assert (a.skin, a.hair, a.eyes, a.hair_style, a.head_half_width) == (b.skin, b.hair, b.eyes, b.hair_style,
                                                                            b.head_half_width)


def test_every_video_has_a_caption_of_its_own_clothes_and_room(people):
    _, entries = people
    for entry in entries:
        figure = Figure.from_seeds(entry["identity"], entry["figure_seed"])
        words = entry["caption"].split()
        assert set(words) <= set(CAPTION_WORDS), entry["caption"]
        assert colour_name(figure.top.colour) in words and colour_name(wall_colour(entry["dance_seed"])) in words
        assert words[-1] == "room" and ("shorts" in words) == (figure.cover["shin"] == 0.0)


def test_the_wall_colour_is_the_backgrounds():
    image = make_background(7, 64, 96).astype(float)
    colour = np.array(wall_colour(7))
    assert np.abs(image[:40] - colour).sum(-1).min() < 20  # the gradient starts at it somewhere on the wall


@pytest.mark.parametrize("rgb, name", [((230, 30, 30), "red"), ((30, 160, 40), "green"), ((40, 60, 220), "blue"),
                                       ((128, 128, 128), "grey"), ((10, 10, 10), "black"), ((250, 250, 250), "white"),
                                       ((120, 70, 20), "brown"), ((240, 150, 20), "orange"), ((150, 40, 200), "purple")])
def test_colour_names(rgb, name):
    assert colour_name(rgb) == name


def test_caption_grammar():
    striped = Material("stripes", (30, 160, 40), (0, 0, 0), 0.1, 0.0)
    plain = Material("solid", (240, 150, 20), (0, 0, 0), 0.1, 0.0)
    assert caption(striped, plain, True, (150, 40, 200)) == ("a figure with a striped green top and orange shorts in a "
                                                             "purple room")
    assert caption(plain, striped, False, (240, 150, 20)) == ("a figure with an orange top and striped green trousers "
                                                              "in an orange room")


def test_outfits_must_be_positive(tmp_path):
    from animate.errors import AnimateError

    with pytest.raises(AnimateError, match="--outfits must be at least 1"):
        synthesize(replace(SynthOptions(tmp_path / "x", train_videos=1, test_videos=0), outfits=0))


@pytest.fixture(scope="module")
def framed(tmp_path_factory):
    """Two videos per close framing, 4 frames at 64x96 (with their meta)."""
    out = {}
    for framing in ("half", "head"):
        folder = tmp_path_factory.mktemp(framing) / "data"
        synthesize(SynthOptions(folder, train_videos=2, test_videos=0, frames=4, width=64, height=96, fps=12.0,
                                seed=8, workers=1, framing=framing))
        out[framing] = folder
    return out


@pytest.mark.parametrize("framing, head_px", [("half", 24), ("head", 38)])
def test_close_framings_show_big_faces_with_the_neck_where_the_camera_keeps_it(framed, framing, head_px):
    """The head is HEAD_SHARE of the frame (at least 24 px at the demo's 64x96), the neck at NECK_AT, and the face
    points give a face crop of at least the guider's 16 px in every frame."""
    from animate.pose.face import face_box
    from animate.pose.keypoints import PoseSequence
    from data_tools.framing import HEAD_SHARE, NECK_AT, zoom_of

    folder = framed[framing]
    for entry in json.loads((folder / "meta.json").read_text()):
        figure = Figure.from_seeds(entry["identity"], entry["figure_seed"])
        zoom = zoom_of(figure, framing)
        head = 2 * figure.head_half_height / figure.standing_height * figure.size * zoom * 96
        assert zoom > 1 and head == pytest.approx(HEAD_SHARE[framing] * 96) and head >= head_px
        keypoints = PoseSequence.load(folder / entry["keypoints_path"])
        neck = keypoints.body[:, 1]
        assert np.all(np.abs(neck[:, 1] - NECK_AT[framing] * 96) <= 1) and np.all(np.abs(neck[:, 0] - 32) <= 1)
        assert all(face_box(keypoints.body[f], keypoints.face[f]).side >= 16 for f in range(len(keypoints)))
        for points in (keypoints.body, keypoints.hands, keypoints.face):
            outside = (points[..., 0] < 0) | (points[..., 0] >= 64) | (points[..., 1] < 0) | (points[..., 1] >= 96)
            assert np.all(points[outside][:, 2] == 0)  # what the camera does not see is missing
        if framing == "head":
            assert (keypoints.body[:, 9:14, 1] >= 96).all()  # knees and ankles: below the frame

