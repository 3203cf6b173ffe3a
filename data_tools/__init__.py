"""Dataset tools: dance videos to pose videos, keypoints and a meta file."""
