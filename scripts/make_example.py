"""Regenerate the bundled example inputs: examples/ref.png and examples/dance_pose.mp4."""

from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image

from animate.pose.render import draw_pose
from animate.pose.synthetic import draw_person, synthetic_dance, synthetic_hands

WIDTH, HEIGHT = 384, 576
FRAMES, FPS = 48, 24
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def write_reference(path: Path) -> None:
    """A cartoon person in a pose from a different seed than the dance."""
    Image.fromarray(draw_person(synthetic_dance(1, seed=1)[0], WIDTH, HEIGHT, seed=1)).save(path)


def write_pose_video(path: Path) -> None:
    """The synthetic dance drawn DWPose-style, h264 yuv420p."""
    body = synthetic_dance(FRAMES, seed=0, fps=FPS)
    hands = synthetic_hands(body)
    writer = imageio_ffmpeg.write_frames(
        str(path), (WIDTH, HEIGHT), fps=FPS, codec="libx264", pix_fmt_out="yuv420p", macro_block_size=1
    )
    writer.send(None)
    for frame_body, frame_hands in zip(body, hands):
        writer.send(np.ascontiguousarray(draw_pose(frame_body, frame_hands, None, WIDTH, HEIGHT)))
    writer.close()


def main() -> None:
    """Write both example files."""
    EXAMPLES.mkdir(exist_ok=True)
    write_reference(EXAMPLES / "ref.png")
    write_pose_video(EXAMPLES / "dance_pose.mp4")


if __name__ == "__main__":
    main()
