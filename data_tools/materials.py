"""Cloth and skin: seeded colours and two-colour patterns evaluated in a part's own surface coordinates."""

import colorsys
import math
from dataclasses import dataclass

import numpy as np

Colour = tuple[float, float, float]

PATTERNS = ("solid", "stripes", "checks", "dots")
PATTERN_ODDS = (0.3, 0.35, 0.15, 0.2)
DOT_RADIUS = 0.28  # of a cell


def hsv(hue: float, saturation: float, value: float) -> Colour:
    """An RGB colour in 0..255 from HSV in 0..1."""
    return tuple(255.0 * c for c in colorsys.hsv_to_rgb(hue % 1.0, saturation, value))


@dataclass(frozen=True)
class Material:
    """A two-colour pattern on a part's surface; `period` in figure units; `angle` turns stripes from rings (0) to
    lengthwise (pi/2)."""

    pattern: str
    colour: Colour
    colour2: Colour
    period: float
    angle: float

    def colours(self, around: np.ndarray, along: np.ndarray, circumference: float, pixel: float) -> np.ndarray:
        """RGB (..., 3) at surface points: `around` in turns (period 1) about the part's axis, `along` in figure units;
        `pixel` is a pixel's size in figure units (pattern edges are a pixel soft, finer patterns fade to grey)."""
        first, second = np.asarray(self.colour, np.float32), np.asarray(self.colour2, np.float32)
        if self.pattern == "solid":
            return np.broadcast_to(first, np.broadcast(around, along).shape + (3,))
        return first + self.mix(around, along, circumference, pixel)[..., None] * (second - first)

    def mix(self, around: np.ndarray, along: np.ndarray, circumference: float, pixel: float) -> np.ndarray:
        """How much of the second colour (0..1) each point shows; the pattern closes up seamlessly around the part."""
        repeats = max(1, round(circumference / self.period))  # whole pattern periods around the part
        cells = self.period / pixel  # pixels per pattern period
        if self.pattern == "dots":
            rows = along / self.period
            across = around * repeats + 0.5 * np.floor(rows)  # every other row shifted by half a cell
            distance = np.hypot(across - np.floor(across) - 0.5, rows - np.floor(rows) - 0.5)
            return np.clip((DOT_RADIUS - distance) * cells + 0.5, 0.0, 1.0)
        if self.pattern == "stripes":
            turns = round(repeats * math.sin(self.angle))
            wave = np.sin(2 * math.pi * (along * math.cos(self.angle) / self.period + turns * around))
        else:
            wave = np.sin(2 * math.pi * along / self.period) * np.sin(2 * math.pi * max(1, repeats // 2) * around)
        return np.clip(0.5 + wave * cells / (2 * math.pi), 0.0, 1.0)  # about a pixel from an edge to full colour


def random_colour(rng: np.random.Generator, value: tuple[float, float] = (0.2, 0.95)) -> Colour:
    """A cloth colour: any hue, often muted, brightness in `value`."""
    return hsv(rng.random(), rng.choice([rng.uniform(0.05, 0.3), rng.uniform(0.35, 0.9)]), rng.uniform(*value))


def contrasting(rng: np.random.Generator, colour: Colour) -> Colour:
    """A second colour that stands out from `colour`: another hue, or the same hue much lighter or darker."""
    hue, saturation, value = colorsys.rgb_to_hsv(*(c / 255.0 for c in colour))
    if rng.random() < 0.5:
        return hsv(hue + rng.uniform(0.25, 0.75), rng.uniform(0.3, 0.9), rng.uniform(0.3, 0.95))
    return hsv(hue, saturation, value - 0.45 if value > 0.55 else value + 0.45)


def random_material(rng: np.random.Generator, value: tuple[float, float] = (0.2, 0.95)) -> Material:
    """A seeded cloth: pattern, two colours, a period of 0.02-0.07 figure units and a stripe angle."""
    colour = random_colour(rng, value)
    angle = float(rng.choice([0.0, math.pi / 2, math.pi / 4, -math.pi / 4, rng.uniform(-1.2, 1.2)]))
    return Material(str(rng.choice(PATTERNS, p=PATTERN_ODDS)), colour, contrasting(rng, colour),
                    float(rng.uniform(0.02, 0.07)), angle)


def solid(colour: Colour) -> Material:
    """One plain colour."""
    return Material("solid", colour, colour, 1.0, 0.0)
