"""Regenerate tests/data/golden_pose/: fixed keypoints drawn by the reference DWPose drawing code (the test oracle).

The oracles are loaded as standalone modules from the given paths and never become part of `animate`:
  --oracle           controlnet_aux 0.0.10's controlnet_aux/dwpose/util.py (Moore-AnimateAnyone's drawing)
  --musepose-oracle  MusePose's pose/script/util.py
Each case's inputs go to NAME.npz (our normalised arrays plus width, height, style) and the oracle's image to NAME.png.
"""

import argparse
import hashlib
import importlib.util
import math
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "golden_pose"
F32_BELOW_03 = np.nextafter(np.float32(0.3), np.float32(0))  # the largest float32 below float32(0.3)


def load_oracle(path: Path, name: str) -> ModuleType:
    """Import one reference util.py from its file, outside any package."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def frontal_body() -> np.ndarray:
    """A person facing the camera, every keypoint confident; x, y slightly off any pixel grid."""
    xy = [
        (0.50, 0.15), (0.50, 0.25), (0.38, 0.25), (0.33, 0.40), (0.30, 0.53), (0.62, 0.25), (0.67, 0.40),
        (0.70, 0.53), (0.44, 0.55), (0.43, 0.72), (0.42, 0.90), (0.56, 0.55), (0.57, 0.72), (0.58, 0.90),
        (0.48, 0.135), (0.52, 0.135), (0.46, 0.145), (0.54, 0.145),
    ]
    jitter = 0.0013 * np.sin(np.arange(36) * 1.7).reshape(18, 2)
    scores = 0.6 + 0.39 * np.abs(np.cos(np.arange(18) * 0.9))
    body = np.column_stack([np.array(xy) + jitter, scores])
    # Nose and left eye: at height 768 their limb's centre y is 112.0 in float32 (DWPose's arithmetic for float32
    # keypoints) but 111.99999 in float64, so the two truncate to different pixels.
    body[[0, 15], :2] = (0.50323945, np.float32(0.16789313)), (0.5112999, np.float32(0.12377352))
    return body


def hand(wrist: tuple[float, float], angle: float, size: float, scores: np.ndarray) -> np.ndarray:
    """21 OpenPose hand points: five fingers fanned around `angle` (radians, 0 = down) from the wrist."""
    points = [wrist]
    for finger, spread in enumerate((0.9, 0.35, 0.1, -0.12, -0.35)):
        for joint in range(1, 5):
            reach = size * (0.45 + 0.2 * joint) * (0.8 if finger == 0 else 1.0)
            a = angle + spread * (1.0 + 0.1 * joint)
            points.append((wrist[0] + reach * math.sin(a), wrist[1] + reach * math.cos(a)))
    return np.column_stack([np.array(points), scores])


def face(nose: tuple[float, float], size: float) -> np.ndarray:
    """68 iBUG-style points: jaw, brows, nose, eyes and mouth around `nose`, every score 0.9."""
    cx, cy = nose
    jaw = [(cx + size * math.cos(t), cy + 0.2 * size + 1.1 * size * math.sin(t))
           for t in np.linspace(math.pi, 0, 17)[::-1]]
    brows = [(cx + side * size * (0.15 + 0.15 * i), cy - 0.55 * size - 0.05 * size * math.sin(i)) for side in (-1, 1)
             for i in range(5)]
    bridge = [(cx, cy - 0.4 * size + 0.13 * size * i) for i in range(4)]
    nostrils = [(cx + 0.1 * size * (i - 2), cy + 0.15 * size) for i in range(5)]
    eyes = [(cx + side * 0.35 * size + 0.12 * size * math.cos(t), cy - 0.3 * size + 0.06 * size * math.sin(t))
            for side in (-1, 1) for t in np.linspace(0, 2 * math.pi, 6, endpoint=False)]
    mouth = [(cx + 0.3 * size * math.cos(t), cy + 0.45 * size + 0.12 * size * math.sin(t))
             for t in np.linspace(0, 2 * math.pi, 12, endpoint=False)]
    lips = [(cx + 0.2 * size * math.cos(t), cy + 0.45 * size + 0.05 * size * math.sin(t))
            for t in np.linspace(0, 2 * math.pi, 8, endpoint=False)]
    points = np.array(jaw + brows + bridge + nostrils + eyes + mouth + lips)
    return np.column_stack([points, np.full(68, 0.9)])


def frontal(dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The frontal person with both hands and a face."""
    body = frontal_body()
    scores = 0.5 + 0.45 * np.abs(np.sin(np.arange(21)))
    hands = np.stack([hand(tuple(body[4, :2]), 0.3, 0.06, scores), hand(tuple(body[7, :2]), -0.3, 0.06, scores[::-1])])
    return body.astype(dtype), hands.astype(dtype), face(tuple(body[0, :2]), 0.035).astype(dtype)


def side(dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A person in profile: the far side scores below 0.3, scores at the threshold, one hand partly unsure."""
    body = frontal_body()
    body[:, 0] = 0.5 + 0.4 * (body[:, 0] - 0.5)
    body[[2, 3, 4, 8, 9, 10, 14, 16], 2] = (0.1, 0.29, 0.2, 0.05, 0.299, 0.0, 0.25, 0.12)
    body[5, 2], body[12, 2] = 0.3, F32_BELOW_03  # float32(0.3) is above 0.3 as a float64 scalar: drawn if float32
    scores = np.full(21, 0.8)
    scores[[3, 7, 11, 15]] = (0.3, F32_BELOW_03, 0.1, 0.0)
    hands = np.stack([np.zeros((21, 3)), hand(tuple(body[7, :2]), -0.6, 0.07, scores)])
    return body.astype(dtype), hands.astype(dtype), np.zeros((68, 3), dtype)


def border(dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keypoints on and beyond the edges, hand points within a pixel or two of them, missing (0, 0, 0) points."""
    body, hands, face_points = frontal(dtype)
    body[0, :2] = (0.0, 0.1)
    body[4, :2] = (-0.02, 0.5)
    body[10, :2] = (0.999, 1.0)
    body[13, :2] = (1.05, 0.98)
    body[17] = 0
    hands[0, :, 0] -= hands[0, 0, 0] - 0.004  # the right hand's wrist 2 px from the left edge, fingers spread out
    hands[0, 1, :2] = (0.005, 0.3)  # 2.56 px at 512: drawn, though 0.005 is below 0.01 normalised
    hands[0, 2, :2] = (0.001, 0.3)  # 0.5 px: truncates to 0, missing
    hands[0, 3, :2] = (1 / 512 + 1e-6, 0.31)  # just above 1 px: drawn
    hands[0, 4, :2] = (0.2, -0.001)
    hands[1, 5:9] = 0
    hands[1, 20, :2] = (1.0, 0.0019)  # y truncates to 1 px at 768: drawn
    face_points[:10, 0] = np.linspace(-0.01, 0.012, 10)
    return body, hands, face_points


# name: (keypoints, style, width, height); the moore widths and heights are what DWPose's resize_image yields.
CASES = {
    "moore_frontal_512x768": (frontal, "moore", 512, 768),
    "moore_frontal_768x512": (frontal, "moore", 768, 512),
    "moore_frontal_float64_512x512": (lambda: frontal(np.float64), "moore", 512, 512),
    "moore_side_512x768": (side, "moore", 512, 768),
    "moore_side_float64_512x768": (lambda: side(np.float64), "moore", 512, 768),
    "moore_border_512x768": (border, "moore", 512, 768),
    "moore_frontal_256x384": (frontal, "moore", 256, 384),
    "moore_frontal_384x576": (frontal, "moore", 384, 576),
    "moore_side_768x1152": (side, "moore", 768, 1152),
    "musepose_frontal_768x768": (frontal, "musepose", 768, 768),
    "musepose_side_768x1024": (side, "musepose", 768, 1024),
    "musepose_border_1152x768": (border, "musepose", 1152, 768),
}


def oracle_inputs(body: np.ndarray, hands: np.ndarray, face_points: np.ndarray) -> tuple[np.ndarray, ...]:
    """Our arrays as DWposeDetector.__call__ passes them to the drawing (both projects do the same)."""
    candidate = body[:, :2].copy()
    score = body[None, :, 2].copy()
    for i in range(len(score)):
        for j in range(len(score[i])):
            score[i][j] = int(18 * i + j) if score[i][j] > 0.3 else -1
    hand_peaks, lmks = hands[..., :2].copy(), face_points[None, :, :2].copy()
    hand_peaks[hands[..., 2] < 0.3] = -1
    lmks[face_points[None, :, 2] < 0.3] = -1
    return candidate, score, hand_peaks, lmks


def resize_image_size(width: int, height: int, resolution: int) -> tuple[int, int]:
    """The (width, height) controlnet_aux's resize_image gives an image of this size."""
    k = float(resolution) / min(height, width)
    return int(np.round(width * k / 64.0)) * 64, int(np.round(height * k / 64.0)) * 64


def draw_moore(util: ModuleType, keypoints: tuple[np.ndarray, ...], width: int, height: int) -> np.ndarray:
    """DWposeDetector.__call__ with detect_resolution 512 and image_resolution = the target's short side."""
    assert resize_image_size(width, height, min(width, height)) == (width, height)
    candidate, subset, hands, faces = oracle_inputs(*keypoints)
    cw, ch = resize_image_size(width, height, 512)
    canvas = np.zeros((ch, cw, 3), dtype=np.uint8)
    canvas = util.draw_bodypose(canvas, candidate, subset)
    canvas = util.draw_handpose(canvas, hands)
    canvas = util.draw_facepose(canvas, faces)
    return cv2.resize(canvas, (width, height), interpolation=cv2.INTER_LINEAR)


def draw_musepose(util: ModuleType, keypoints: tuple[np.ndarray, ...], width: int, height: int) -> np.ndarray:
    """MusePose's draw_dwpose.py for a video of the target's size: drawn at 1024, no face, saved at 768, BGR2RGB."""
    candidate, subset, hands, _ = oracle_inputs(*keypoints)
    k = float(1024) / min(width, height)
    h_render, w_render = int(k * height // 2 * 2), int(k * width // 2 * 2)
    k = float(768) / min(width, height)
    assert (int(k * width // 2 * 2), int(k * height // 2 * 2)) == (width, height)
    canvas = np.zeros((h_render, w_render, 3), dtype=np.uint8)
    canvas = util.draw_bodypose(canvas, candidate[:18], subset[:1])
    canvas = util.draw_handpose(canvas, hands[:2])
    canvas = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB)


README = """# Golden pose images

Pixel-exact references for `animate.pose.render.draw_pose` (checked by `tests/test_render.py`). Each `NAME.npz`
holds our inputs (normalised `body` (18,3), `hands` (2,21,3), `face` (68,3); `width`, `height`, `style`) and
`NAME.png` the RGB image the reference drawing code made from them. Do not edit the PNGs: if a test fails, the
renderer is wrong (or the reference was misread; then fix the script and regenerate).

Oracles (loaded from their files by the script, never installed into `animate`):
- moore: `controlnet_aux/dwpose/util.py` from the controlnet_aux {cna_version} wheel
  (`pip download --no-deps controlnet_aux=={cna_version}`), sha256 `{cna_sha}`; Moore-AnimateAnyone's
  `src/dwpose/util.py` has the same drawing functions. Driven as `DWposeDetector.__call__` does: canvas =
  `resize_image` to 512, draw body, hands, face, then `cv2.resize(..., INTER_LINEAR)` to `resize_image` at the
  target's short side.
- musepose: `pose/script/util.py` of github.com/TMElyralab/MusePose (commit {muse_commit}), sha256 `{muse_sha}`
  (copied from a code-search snapshot of that commit, as GitHub was unreachable; not checked against GitHub).
  Driven as its `draw_dwpose.py` does for a video of the target's size: canvas short side 1024 (long side truncated
  to even), no face, `cv2.resize(..., INTER_AREA)` to 768 on the short side, then `cv2.cvtColor(BGR2RGB)`.

Rendered with numpy {numpy_version} and OpenCV {cv2_version}. Regenerate with

    python scripts/make_pose_golden.py --oracle PATH/TO/controlnet_aux/dwpose/util.py \\
        --musepose-oracle PATH/TO/MusePose/pose/script/util.py
"""


def main() -> None:
    """Render every case with its oracle and write the npz/png pairs and the README."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--oracle", type=Path, required=True, help="controlnet_aux 0.0.10's dwpose/util.py")
    parser.add_argument("--musepose-oracle", type=Path, required=True, help="MusePose pose/script/util.py")
    parser.add_argument("--musepose-commit", default="51d7686a3759c38afc79e93e2712f6533c1c1cb6")
    args = parser.parse_args()
    oracles = {"moore": (load_oracle(args.oracle, "dwpose_util_oracle"), draw_moore),
               "musepose": (load_oracle(args.musepose_oracle, "musepose_util_oracle"), draw_musepose)}
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (make, style, width, height) in CASES.items():
        keypoints = make()
        util, draw = oracles[style]
        image = draw(util, keypoints, width, height)
        body, hands, face_points = keypoints
        np.savez_compressed(OUT / f"{name}.npz", body=body, hands=hands, face=face_points, width=width, height=height,
                            style=style)
        Image.fromarray(image).save(OUT / f"{name}.png", optimize=True)
    sha = {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in (args.oracle, args.musepose_oracle)}
    (OUT / "README.md").write_text(README.format(
        cna_version="0.0.10", cna_sha=sha[args.oracle], muse_commit=args.musepose_commit,
        muse_sha=sha[args.musepose_oracle], numpy_version=np.__version__, cv2_version=cv2.__version__))


if __name__ == "__main__":
    main()
