"""Reporting an error never raises one of its own."""

import numpy as np
import pytest

from animate.errors import AnimateError, error_summary, first_line
from animate.pose.keypoints import PoseSequence


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


@pytest.mark.parametrize("err, expected", [
    (ValueError("bad thing\nmore detail"), "bad thing"),
    (ValueError("\n\n  second line first  \n"), "second line first"),
    (ValueError(""), "ValueError"),
    (KeyError(), "KeyError"),
    (Unprintable(), "Unprintable"),
    (ValueError("x" * 500), "x" * 200),
])
def test_first_line(err, expected):
    assert first_line(err) == expected


def test_error_summary_names_the_type_once():
    assert error_summary(OSError("disk on fire")) == "OSError: disk on fire"
    assert error_summary(OSError()) == "OSError"


def test_an_error_without_a_message_is_reported_not_hidden(tmp_path, monkeypatch):
    """A bare ValueError() while reading used to become an IndexError from splitlines()[0]."""
    path = tmp_path / "dance.pose.npz"
    path.write_bytes(b"anything")

    def bare_error(*_args, **_kwargs):
        raise ValueError()

    monkeypatch.setattr(np, "load", bare_error)
    with pytest.raises(AnimateError, match=r"not a readable keypoint file \(ValueError\)"):
        PoseSequence.load(path)
