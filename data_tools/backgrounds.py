"""Seeded rooms behind the figures: a gradient wall with a few framed shapes, a baseboard and a floor in perspective."""

from dataclasses import dataclass

import cv2
import numpy as np

from .materials import random_colour

BACKGROUND_STREAM = 2  # a seed's background draws apart from its other uses
RAYS = (1 / 24, 1 / 4)  # receding floor lines: their spacing (of the width) at the floor line and at the bottom


@dataclass(frozen=True)
class _Wall:
    """The room's first draws: the wall's two colours, its gradient (0 = down, 1 = across, 2 = round `centre`) and
    the row where the floor starts."""

    colours: tuple
    ramp: int
    centre: tuple[float, float]
    floor_y: int


def _wall(rng: np.random.Generator, height: int) -> _Wall:
    """The draws every room starts with, in make_background's order (shared, so floor_line needs no image)."""
    u = rng.uniform
    colours = random_colour(rng, (0.45, 0.95)), random_colour(rng, (0.45, 0.95))
    centre = u(0, 1), u(0, 0.5)
    ramp = int(rng.integers(3))
    return _Wall(colours, ramp, centre, int(u(0.55, 0.72) * height))


def wall_colour(seed: int) -> tuple[float, float, float]:
    """The main colour of make_background(seed, ...)'s wall (where its gradient starts)."""
    return tuple(float(c) for c in _wall(np.random.default_rng([seed, BACKGROUND_STREAM]), 1).colours[0])


def floor_line(seed: int, width: int, height: int) -> int:
    """The first floor row of make_background(seed, width, height): rows above it are wall (the baseboard's included),
    it and the rows below are floor."""
    return _wall(np.random.default_rng([seed, BACKGROUND_STREAM]), height).floor_y


def floor_horizon(floor_y: int, height: int) -> float:
    """The row (continuous, y down) where make_background's receding floor lines meet, above floor_y: they are spread
    RAYS[0] of the width apart at the floor line and RAYS[1] at the bottom, so they meet (RAYS[1] / RAYS[0] - 1) times
    the floor's height above the floor line."""
    return floor_y - (height - floor_y) / (RAYS[1] / RAYS[0] - 1.0)


def make_background(seed: int, width: int, height: int) -> np.ndarray:
    """A seeded room, HxWx3 uint8: a gradient wall with a few framed shapes, a baseboard and a floor in perspective."""
    rng = np.random.default_rng([seed, BACKGROUND_STREAM])
    u = rng.uniform
    drawn = _wall(rng, height)
    wall, wall2 = drawn.colours
    xs, ys = (np.arange(width) + 0.5) / width, (np.arange(height) + 0.5) / height
    ramp = [np.broadcast_to(ys[:, None], (height, width)), np.broadcast_to(xs[None, :], (height, width)),
            np.hypot(xs[None, :] - drawn.centre[0], ys[:, None] - drawn.centre[1])][drawn.ramp]
    image = np.asarray(wall, np.float32) + np.clip(ramp, 0, 1)[..., None] * np.float32(np.subtract(wall2, wall))
    floor_y = drawn.floor_y
    for _ in range(rng.integers(0, 5)):
        colour = tuple(float(v) for v in random_colour(rng))
        x, y = int(u(0, 0.9) * width), int(u(0.02, 0.45) * height)
        if rng.random() < 0.6:
            w, h = int(u(0.1, 0.35) * width), int(u(0.08, 0.3) * height)
            y1 = min(y + h, floor_y - 2)
            cv2.rectangle(image, (x, y), (x + w, y1), colour, -1, cv2.LINE_AA)
            cv2.rectangle(image, (x, y), (x + w, y1), tuple(0.6 * v for v in colour), max(1, width // 96), cv2.LINE_AA)
        else:
            cv2.circle(image, (x, y), int(u(0.03, 0.12) * width), colour, -1, cv2.LINE_AA)
    floor = np.asarray(random_colour(rng, (0.25, 0.75)), np.float32)
    image[floor_y:] = floor
    depth = ((np.arange(floor_y, height) - floor_y + 0.5) / (height - floor_y))[:, None, None]
    image[floor_y:] *= 0.8 + 0.25 * depth  # nearer floor a little lighter
    if rng.random() < 0.6:  # planks or tiles: lines closer together towards the wall
        line = tuple(float(v) for v in 0.75 * floor)
        for k in range(1, 8):
            y = int(floor_y + (height - floor_y) * (k / 8) ** 1.6)
            cv2.line(image, (0, y), (width, y), line, 1, cv2.LINE_AA)
        if rng.random() < 0.5:
            vanish = u(0.2, 0.8) * width  # receding lines, RAYS apart (floor_horizon is where they meet)
            for k in range(-6, 7):
                cv2.line(image, (int(vanish + k * width / 24), floor_y), (int(vanish + k * width / 4), height), line, 1,
                         cv2.LINE_AA)
    band = max(1, height // 60)
    image[floor_y - band:floor_y] = np.asarray(random_colour(rng, (0.3, 0.95)), np.float32)
    image += rng.normal(0.0, 2.5, size=(height, width, 1)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(image, (0, 0), 0.6), 0, 255).astype(np.uint8)
