"""Profiles: what a weight set implies for pose rendering and sampling defaults."""

from dataclasses import dataclass

from .errors import AnimateError


@dataclass(frozen=True)
class Profile:
    """Defaults that follow from the weights a user loads."""

    name: str
    short_side: int  # output size on the photo's short side
    context_frames: int
    context_overlap: int
    steps: int
    guidance: float
    pose_canvas: int  # short side of the canvas the pose images are drawn on
    pose_style: str  # how they are drawn: moore (DWPose) or musepose


PROFILES = {
    "moore": Profile("moore", short_side=512, context_frames=24, context_overlap=4, steps=30, guidance=3.5, pose_canvas=512,
                     pose_style="moore"),
    "musepose": Profile("musepose", short_side=768, context_frames=48, context_overlap=4, steps=20, guidance=3.5, pose_canvas=1024,
                        pose_style="musepose"),
    "ours": Profile("ours", short_side=512, context_frames=24, context_overlap=4, steps=30, guidance=3.5, pose_canvas=512,
                    pose_style="moore"),
}


def get_profile(name: str) -> Profile:
    """The profile called `name`, or a one-line error listing the known ones."""
    if name not in PROFILES:
        raise AnimateError(f"unknown profile {name!r} (choose from {', '.join(PROFILES)})")
    return PROFILES[name]
