"""Depth: DreamMoving's 3-D signal. Relative depth of real videos (Depth Anything V2), steadied over time, placed like
the pose, and the clip files (`.depth.npz` beside an 8-bit video, near bright) shared with the synthetic task."""
