"""Anti-aliased shapes as signed distances over pixel windows, painted in order into an RGB image and a label map.

Pixel (row i, column j) covers [j, j + 1) x [i, i + 1) in continuous image coordinates, so its centre is (j + 0.5,
i + 0.5) and a point (x, y) lies on pixel (floor(y), floor(x)). Every shape's `field(px, py)` gives the signed
distance in pixels (negative inside) and two shape coordinates that colour functions use to texture it.

A canvas may also keep a front buffer: how far in front of a reference plane each painted pixel is (px, larger =
nearer the camera). A part painted with a `Surface` (a base plus a relief over its shape coordinates) writes it exactly
where it takes the label, after lifting its base, if need be, so that it lies in front of everything already painted
under it: painting order and depth order then agree pixel by pixel.
"""

from collections.abc import Callable
from dataclasses import dataclass

import math

import numpy as np

Bounds = tuple[float, float, float, float]  # x0, y0, x1, y1
Field = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]
Colouring = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (u, v) shape coordinates -> RGB, broadcastable


def _clip01(x: np.ndarray) -> np.ndarray:
    """x clipped to [0, 1] (cheaper than np.clip on small arrays)."""
    return np.minimum(np.maximum(x, 0.0), 1.0)


def _segment(px: np.ndarray, py: np.ndarray, a: np.ndarray, b: np.ndarray):
    """Position along a->b (fraction, unclamped), signed distance across it (px, + to the right of the direction) and
    the segment's length."""
    ax, ay = float(a[0]), float(a[1])
    dx, dy = float(b[0]) - ax, float(b[1]) - ay
    length = max(math.hypot(dx, dy), 1e-9)
    rx, ry = px - ax, py - ay
    return (rx * (dx / length**2) + ry * (dy / length**2)), rx * (dy / length) - ry * (dx / length), length


@dataclass(frozen=True)
class Capsule:
    """A stroke from a to b, radius ra at a and rb at b; coordinates: across in [-1, 1] (+ to the right of a->b) and
    t in [0, 1]."""

    a: np.ndarray
    b: np.ndarray
    ra: float
    rb: float

    def bounds(self) -> Bounds:
        r = max(self.ra, self.rb)
        return (min(self.a[0], self.b[0]) - r, min(self.a[1], self.b[1]) - r,
                max(self.a[0], self.b[0]) + r, max(self.a[1], self.b[1]) + r)

    def field(self, px: np.ndarray, py: np.ndarray) -> Field:
        position, across, length = _segment(px, py, self.a, self.b)
        t = _clip01(position)
        radius = self.ra + (self.rb - self.ra) * t
        beyond = (position - t) * length  # past either end, else 0
        return np.sqrt(across**2 + beyond**2) - radius, np.minimum(np.maximum(across / radius, -1.0), 1.0), t


@dataclass(frozen=True)
class Strokes:
    """Round strokes a[i] -> b[i] of one radius, as one shape (a hand's fingers); no coordinates."""

    a: np.ndarray
    b: np.ndarray
    radius: float

    def bounds(self) -> Bounds:
        ends = np.concatenate([self.a, self.b])
        return (*(ends.min(axis=0) - self.radius), *(ends.max(axis=0) + self.radius))

    def field(self, px: np.ndarray, py: np.ndarray) -> Field:
        lead = (-1,) + (1,) * np.broadcast(px, py).ndim  # strokes first, then the pixels' shape
        ax, ay = self.a[:, 0].reshape(lead), self.a[:, 1].reshape(lead)
        dx, dy = (self.b[:, 0] - self.a[:, 0]).reshape(lead), (self.b[:, 1] - self.a[:, 1]).reshape(lead)
        rx, ry = px - ax, py - ay
        t = _clip01((rx * dx + ry * dy) / np.maximum(dx**2 + dy**2, 1e-12))
        distance = np.sqrt(((rx - t * dx) ** 2 + (ry - t * dy) ** 2).min(axis=0))
        return distance - self.radius, None, None


@dataclass(frozen=True)
class Slab:
    """A trapezoid from a to b, half-widths ha at a and hb at b, corners rounded; coordinates: across in px and t in
    [0, 1]."""

    a: np.ndarray
    b: np.ndarray
    ha: float
    hb: float
    corner: float

    def bounds(self) -> Bounds:
        d = self.b - self.a
        n = np.array([d[1], -d[0]]) / max(float(np.hypot(*d)), 1e-9)
        corners = np.array([self.a + n * self.ha, self.a - n * self.ha, self.b + n * self.hb, self.b - n * self.hb])
        return (*corners.min(axis=0), *corners.max(axis=0))

    def field(self, px: np.ndarray, py: np.ndarray) -> Field:
        t, across, length = _segment(px, py, self.a, self.b)
        half = self.ha + (self.hb - self.ha) * _clip01(t)
        qx = np.abs(across) - half + self.corner
        qy = np.maximum(-t, t - 1.0) * length + self.corner
        outside = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
        return outside + np.minimum(np.maximum(qx, qy), 0.0) - self.corner, across, _clip01(t)


@dataclass(frozen=True)
class Ellipse:
    """Half-axes rx along the unit vector `axis` and ry across it (rotated +90 degrees); coordinates: the point in
    units of the half-axes (x along `axis`, y along the rotated one)."""

    centre: np.ndarray
    rx: float
    ry: float
    axis: np.ndarray

    def bounds(self) -> Bounds:
        r = max(self.rx, self.ry)
        return self.centre[0] - r, self.centre[1] - r, self.centre[0] + r, self.centre[1] + r

    def field(self, px: np.ndarray, py: np.ndarray) -> Field:
        dx, dy = px - self.centre[0], py - self.centre[1]
        qx = (dx * self.axis[0] + dy * self.axis[1]) / self.rx
        qy = (dy * self.axis[0] - dx * self.axis[1]) / self.ry
        return (np.hypot(qx, qy) - 1.0) * min(self.rx, self.ry), qx, qy


@dataclass(frozen=True)
class Polygon:
    """A convex polygon grown by `pad` px (rounded corners); no coordinates."""

    points: np.ndarray
    pad: float

    def bounds(self) -> Bounds:
        return (*(self.points.min(axis=0) - self.pad), *(self.points.max(axis=0) + self.pad))

    def field(self, px: np.ndarray, py: np.ndarray) -> Field:
        p, q = self.points, np.roll(self.points, -1, axis=0)
        area = float(np.sum(p[:, 0] * q[:, 1] - q[:, 0] * p[:, 1]))
        edges = q - p
        normals = np.stack([edges[:, 1], -edges[:, 0]], axis=1) * (1.0 if area >= 0 else -1.0)
        normals /= np.maximum(np.hypot(normals[:, 0], normals[:, 1]), 1e-9)[:, None]
        lead = (-1,) + (1,) * np.broadcast(px, py).ndim  # edges first, then the pixels' shape
        nx, ny = normals[:, 0].reshape(lead), normals[:, 1].reshape(lead)
        offset = (p[:, 0] * normals[:, 0] + p[:, 1] * normals[:, 1]).reshape(lead)
        return (px * nx + py * ny - offset).max(axis=0) - self.pad, None, None


@dataclass(frozen=True)
class Union:
    """Several shapes as one; no coordinates."""

    shapes: tuple

    def bounds(self) -> Bounds:
        boxes = np.array([shape.bounds() for shape in self.shapes])
        return (*boxes[:, :2].min(axis=0), *boxes[:, 2:].max(axis=0))

    def field(self, px: np.ndarray, py: np.ndarray) -> Field:
        distance = self.shapes[0].field(px, py)[0]
        for shape in self.shapes[1:]:
            distance = np.minimum(distance, shape.field(px, py)[0])
        return distance, None, None


Relief = Callable[[np.ndarray, np.ndarray | None, np.ndarray | None], np.ndarray]  # (distance, u, v) -> px in front
LAYER_GAP = 0.25  # px: how far a part painted over another lies at least in front of it there


@dataclass(frozen=True)
class Surface:
    """A part's front: `base` px in front of the reference plane plus `relief(distance, u, v)` over its shape."""

    base: float
    relief: Relief

    def front(self, shape, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(whether a canvas painting the shape gives each point's pixel its label, the front there) at points
        (px, py): at least half covered and within the pixels the canvas evaluates (those of the shape's bounds)."""
        distance, u, v = shape.field(px, py)
        x0, y0, x1, y1 = shape.bounds()
        column, row = np.floor(px), np.floor(py)
        near = ((column >= math.floor(x0)) & (column <= math.ceil(x1))
                & (row >= math.floor(y0)) & (row <= math.ceil(y1)))
        front = self.base + np.broadcast_to(self.relief(distance, u, v), distance.shape)
        return (coverage(distance) >= 0.5) & near, front


def coverage(distance: np.ndarray) -> np.ndarray:
    """How much of a pixel a shape covers, from the signed distance at its centre; at least 0.5 = the shape's pixel."""
    return _clip01(0.5 - distance)


class Canvas:
    """An RGB image (float, or none when only labels are wanted) and a label map, painted shape by shape; with `fronts`
    (every shape then painted with a Surface) also a front buffer (float32, -inf where nothing was painted), which
    painted shape owns each pixel (`owner`, int16, the paint order; -1 = none) and each shape's lifted base
    (`bases`)."""

    def __init__(self, width: int, height: int, background: np.ndarray | None, fronts: bool = False):
        self.rgb = None if background is None else background.astype(np.float32)
        self.labels = np.zeros((height, width), np.uint8)
        self.front = np.full((height, width), -np.inf, np.float32) if fronts else None
        self.owner = np.full((height, width), -1, np.int16) if fronts else None
        self.bases: list[float] = []
        self._xs = np.arange(width) + 0.5
        self._ys = np.arange(height) + 0.5

    def _window(self, bounds: Bounds) -> tuple[slice, slice] | None:
        """Rows and columns whose pixel centres may lie within bounds, or None when none are in the image."""
        height, width = self.labels.shape
        x0, y0 = max(int(np.floor(bounds[0])), 0), max(int(np.floor(bounds[1])), 0)
        x1, y1 = min(int(np.ceil(bounds[2])) + 1, width), min(int(np.ceil(bounds[3])) + 1, height)
        return (slice(y0, y1), slice(x0, x1)) if x0 < x1 and y0 < y1 else None

    def paint(self, shape, label: int, colouring: Colouring, surface: Surface | None = None) -> None:
        """Cover the shape (coverage = 0.5 - signed distance, clipped) with its colours; pixels at least half covered
        take its label and, on a canvas with fronts, its surface's front (the base lifted to LAYER_GAP in front of
        the fronts already there, wherever that is higher)."""
        if self.front is not None and surface is None:
            raise ValueError("a canvas with fronts paints shapes with a surface only")
        window = self._window(shape.bounds())
        if window is None:
            if self.front is not None:
                self.bases.append(surface.base)
            return
        distance, u, v = shape.field(self._xs[window[1]][None, :], self._ys[window[0]][:, None])
        alpha = coverage(distance)
        inside = alpha >= 0.5
        self.labels[window][inside] = label
        if self.front is not None:
            self._lay(window, inside, distance, u, v, surface)
        if self.rgb is not None:
            region = self.rgb[window]
            region += alpha[..., None] * (colouring(u, v) - region)

    def _lay(self, window: tuple[slice, slice], inside: np.ndarray, distance: np.ndarray, u, v,
             surface: Surface) -> None:
        """Write the surface's front where the shape takes the label (the base lifted over what is there); record
        the base and the owner."""
        relief = np.broadcast_to(np.asarray(surface.relief(distance, u, v), np.float64), distance.shape)[inside]
        front = self.front[window]
        highest = np.max(front[inside] - relief, initial=-np.inf)  # -inf where nothing is under it
        base = surface.base if highest == -np.inf else max(surface.base, float(highest) + LAYER_GAP)
        front[inside] = base + relief
        self.owner[window][inside] = len(self.bases)
        self.bases.append(base)

    def darken(self, shape: Ellipse, strength: float) -> None:
        """A soft shadow: darker by up to `strength` at the ellipse's centre, fading out at its edge; labels kept."""
        window = self._window(shape.bounds())
        if window is None or self.rgb is None:
            return
        _, qx, qy = shape.field(self._xs[window[1]][None, :], self._ys[window[0]][:, None])
        self.rgb[window] *= (1.0 - strength * np.clip(1.0 - np.hypot(qx, qy), 0.0, 1.0) ** 0.7)[..., None]

    def image(self) -> np.ndarray:
        """The painted RGB image as uint8."""
        return np.clip(np.rint(self.rgb), 0, 255).astype(np.uint8)
