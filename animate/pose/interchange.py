"""Keypoints as JSON: our own export/import of a `PoseSequence`, and import of OpenPose/DWPose per-frame JSON."""

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..atomic import write_text
from ..errors import AnimateError, first_line
from .keypoints import BODY_POINTS, FACE_POINTS, HAND_POINTS, PoseSequence

JSON_FORMAT, JSON_VERSION = "animate-pose", 1

# Our 18 body points taken from OpenPose BODY_25 (which adds 8 mid-hip and 19-24 feet).
BODY_25_TO_18 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
OPENPOSE_FACE_POINTS = 70  # iBUG-68 plus the two pupils, which are dropped
CONFIDENT = 0.3  # body points scoring at least this span a person's bounding box when choosing the main person
# Coordinates of a whole sequence all within this are taken as normalised to [0, 1]: normalised points just outside
# the frame go a little past 1, and a person in pixel coordinates never fits within 2 px.
NORMALISED_LIMIT = 2.0


def save_json(seq: PoseSequence, path: str | Path) -> Path:
    """Write `seq` as versioned JSON (float32 values written exactly), temp file + rename."""
    frames = [{"body": seq.body[i].tolist(), "hands": seq.hands[i].tolist(), "face": seq.face[i].tolist()}
              for i in range(len(seq))]
    data = {"format": JSON_FORMAT, "version": JSON_VERSION, "width": seq.width, "height": seq.height,
            "fps": seq.fps, "frames": frames}
    return write_text(path, json.dumps(data, separators=(",", ":")))


def _read_json(path: Path) -> object:
    """The parsed content of a JSON file; missing or unparsable is one clear error."""
    if not path.is_file():
        raise AnimateError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise AnimateError(f"{path}: not readable JSON ({first_line(err)})") from None


def _stack(frames: list, key: str, shape: tuple[int, ...]) -> np.ndarray:
    """One field of every frame as a float32 array of (F, *shape); an empty sequence gets the right shape."""
    return np.asarray([frame[key] for frame in frames], dtype=np.float32) if frames else np.zeros((0, *shape))


def load_json(path: str | Path) -> PoseSequence:
    """Read a file written by `save_json`; anything else, a malformed or newer-version file is one clear error."""
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict) or data.get("format") != JSON_FORMAT:
        raise AnimateError(f"{path}: not an {JSON_FORMAT} JSON file")
    try:
        version = int(data["version"])
        if version > JSON_VERSION:
            raise AnimateError(f"{path}: keypoint JSON version {version} is newer than this animate ({JSON_VERSION})")
        frames = data["frames"]
        return PoseSequence(_stack(frames, "body", (BODY_POINTS, 3)), _stack(frames, "hands", (2, HAND_POINTS, 3)),
                            _stack(frames, "face", (FACE_POINTS, 3)), int(data["width"]), int(data["height"]),
                            float(data["fps"]))
    except AnimateError:
        raise
    except (KeyError, TypeError, ValueError) as err:
        raise AnimateError(f"{path}: malformed keypoint JSON ({first_line(err)})") from None


def _openpose_files(paths_or_dir: str | Path | Sequence[str | Path]) -> list[Path]:
    """The JSON files to read: a folder's `*_keypoints.json` sorted by name, one file, or the given files in order."""
    if isinstance(paths_or_dir, (str, Path)):
        path = Path(paths_or_dir)
        if not path.is_dir():
            return [path]
        files = sorted(path.glob("*_keypoints.json"))
        if not files:
            raise AnimateError(f"{path}: no *_keypoints.json files in this folder")
        return files
    return [Path(p) for p in paths_or_dir]


def _keypoints(values: list | None, counts: tuple[int, ...], what: str) -> np.ndarray:
    """A flat [x, y, c, ...] list of one of `counts` points as (n, 3), missing ones zeroed; None or [] = all missing."""
    if not values:
        return np.zeros((counts[0], 3), dtype=np.float32)
    points = np.asarray(values, dtype=np.float32)
    if points.ndim != 1 or len(points) not in [3 * n for n in counts]:
        raise ValueError(f"{what} has {points.size} values, expected {' or '.join(str(3 * n) for n in counts)}")
    points = points.reshape(-1, 3)
    points[:, 2] = np.clip(points[:, 2], 0.0, 1.0)
    points[points[:, 2] <= 0] = 0.0
    return points


def _person(person: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(body (18, 3), hands (2, 21, 3), face (68, 3)) of one OpenPose person; BODY_25 is mapped to our 18 points."""
    body = _keypoints(person.get("pose_keypoints_2d"), (BODY_POINTS, 25), "pose_keypoints_2d")
    if len(body) == 25:
        body = body[list(BODY_25_TO_18)]
    hands = np.stack([_keypoints(person.get(key), (HAND_POINTS,), key)
                      for key in ("hand_right_keypoints_2d", "hand_left_keypoints_2d")])
    face = _keypoints(person.get("face_keypoints_2d"), (FACE_POINTS, OPENPOSE_FACE_POINTS), "face_keypoints_2d")
    return body, hands, face[:FACE_POINTS]


def _prominence(body: np.ndarray) -> tuple[float, float]:
    """(bounding-box area of the confident body points, total body score): the larger person wins."""
    confident = body[body[:, 2] >= CONFIDENT, :2]
    area = float(np.prod(np.ptp(confident, axis=0))) if len(confident) else 0.0
    return area, float(body[:, 2].sum())


def _main_person(frame: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The most prominent person of one OpenPose frame; no people gives all points missing."""
    if not isinstance(frame, dict) or not isinstance(frame.get("people"), list):
        raise ValueError("a frame is not an OpenPose object with a 'people' list")
    people = [_person(person) for person in frame["people"]]
    if not people:
        return _person({})
    return max(people, key=lambda p: _prominence(p[0]))


def _canvas(frames: list, width: int | None, height: int | None) -> tuple[int | None, int | None]:
    """(width, height): the given values, else the first frame's canvas_width / canvas_height."""
    sized = next((f for f in frames if isinstance(f, dict) and "canvas_width" in f and "canvas_height" in f), {})
    return (width or sized.get("canvas_width")), (height or sized.get("canvas_height"))


def load_openpose_json(paths_or_dir: str | Path | Sequence[str | Path], width: int | None = None,
                       height: int | None = None, fps: float = 30.0) -> PoseSequence:
    """Import OpenPose (BODY_18 or BODY_25) or DWPose-style JSON: one frame per file or a list of frames per file.

    Per frame the person with the largest box of confident body points is kept; OpenPose's right hand is our hand 0.
    Coordinates may be pixels or normalised to [0, 1]; the frame size comes from width/height or the files' canvas
    size, and is required. OpenPose stores no frame rate: pass `fps`.
    """
    files = _openpose_files(paths_or_dir)
    name = Path(paths_or_dir) if isinstance(paths_or_dir, (str, Path)) else files[0]
    frames, people = [], []
    for path in files:
        data = _read_json(path)
        file_frames = data if isinstance(data, list) else [data]
        try:
            people += [_main_person(frame) for frame in file_frames]
        except (ValueError, TypeError, AttributeError) as err:
            raise AnimateError(f"{path}: not OpenPose keypoint JSON ({first_line(err)})") from None
        frames += file_frames
    if not frames:
        raise AnimateError(f"{name}: no frames in the OpenPose JSON")
    body, hands, face = (np.stack(part) for part in zip(*people))
    width, height = _canvas(frames, width, height)
    points = np.concatenate([part.reshape(-1, 3) for part in (body, hands, face)])
    xy = points[points[:, 2] > 0, :2]
    normalised = bool(len(xy)) and np.abs(xy).max() <= NORMALISED_LIMIT
    if not (width and height):
        kind = "coordinates are normalised to [0, 1]" if normalised else "no canvas size in the JSON"
        raise AnimateError(f"{name}: {kind}; pass the frame width and height")
    if normalised:
        scale = np.array([width, height, 1.0], dtype=np.float32)
        body, hands, face = body * scale, hands * scale, face * scale
    return PoseSequence(body, hands, face, int(width), int(height), fps)
