"""Exact depth of the synthetic scenes: a figure's front surfaces (`figures.figure_fronts`) standing in its room.

The camera is a pinhole looking level into the room, with its focal length FOCAL frame heights (F = FOCAL * height
px) and its eye CAMERA_HEIGHT frame heights above the floor. Depth z is the distance along the optical axis, larger =
farther, in pixel-like units: a length of one unit at depth F spans one pixel (a length l at depth z spans l * F / z
px). Pixel (i, j) is the ray through its centre (j + 0.5, i + 0.5), as in `raster`.

- The room (`Room`): a floor plane and a wall plane facing the camera. The horizon is where make_background's floor
  lines meet (`floor_horizon`); a floor row at y (> horizon) lies at z = F * camera height / (y - horizon), so the floor
  comes nearer strictly monotonically down the image, and the wall stands where the floor reaches the floor line
  (`floor_line`): z = the floor's depth at y = floor_y, everywhere above that line.
- The figure is drawn at one distance, `stand`: the floor's depth under its soles (at `figures.sole_line`), or
  nearer where that would not leave its farthest pixel WALL_CLEARANCE of the wall's depth in front of the wall. A
  pixel `front` px in front of the body's centre plane (`figures.Fronts`) lies at z = stand * (1 - front / F): px of
  relief at the figure's distance, in depth units.

Every depth is positive and finite, so nearness 1 / z (what `animate.depth.maps.DepthClip` stores) is too.
"""

from dataclasses import dataclass

import numpy as np

from .backgrounds import floor_horizon, floor_line
from .figures import Figure, Fronts, figure_fronts

FOCAL = 1.0  # frame heights
CAMERA_HEIGHT = 0.5  # frame heights (depth units at depth F are pixels)
WALL_CLEARANCE = 0.05  # the figure's farthest point lies at least this share of the wall's depth in front of it
NEAREST = 0.05  # no figure point comes nearer than this share of its stand depth (never reached by a drawn figure)


@dataclass(frozen=True)
class Room:
    """The depth geometry of make_background(seed, width, height): its floor line, horizon and camera."""

    width: int
    height: int
    floor_y: int  # the first floor row
    horizon: float  # the row (continuous, y down) of the horizon, above floor_y

    @classmethod
    def from_seed(cls, seed: int, width: int, height: int) -> "Room":
        """The room make_background(seed, width, height) paints (no image is drawn)."""
        floor_y = floor_line(seed, width, height)
        return cls(width, height, floor_y, floor_horizon(floor_y, height))

    @property
    def focal(self) -> float:
        """F in px."""
        return FOCAL * self.height

    @property
    def camera_height(self) -> float:
        """The camera's height above the floor, in depth units."""
        return CAMERA_HEIGHT * self.height

    @property
    def wall(self) -> float:
        """The wall plane's depth: the floor's at the floor line."""
        return self.floor(float(self.floor_y))

    def floor(self, y: np.ndarray | float) -> np.ndarray | float:
        """The floor plane's depth at image rows y (continuous, below the horizon)."""
        return self.focal * self.camera_height / (np.asarray(y, np.float64) - self.horizon)

    def depth(self) -> np.ndarray:
        """The room's depth map (height, width) float32: the wall above floor_y, the floor from there down."""
        rows = np.arange(self.height) + 0.5
        column = np.where(rows < self.floor_y, self.wall, self.floor(np.maximum(rows, self.floor_y)))
        return np.broadcast_to(column.astype(np.float32)[:, None], (self.height, self.width)).copy()

    def stand(self, sole: float, farthest: float = 0.0) -> float:
        """Where a figure whose soles are on row `sole` stands (the depth of its centre plane): the floor's depth
        there, or nearer, so that its farthest point (`farthest` px in front of the centre plane; < 0 = behind)
        lies WALL_CLEARANCE in front of the wall."""
        limit = self.wall * (1.0 - WALL_CLEARANCE) / max(1.0 - farthest / self.focal, NEAREST)
        return float(min(self.floor(sole), limit)) if sole > self.floor_y else float(limit)


@dataclass(frozen=True)
class Scene:
    """One frame: `draw_figure`'s rgb (None when drawn without a background) and labels, the depth map (float32 HxW,
    see the module's camera), the figure's depth `stand` and its fronts (`figures.Fronts`)."""

    rgb: np.ndarray | None
    labels: np.ndarray
    depth: np.ndarray
    stand: float
    fronts: Fronts

    @property
    def nearness(self) -> np.ndarray:
        """1 / depth (float32)."""
        return (1.0 / self.depth).astype(np.float32)


def figure_depth(room: Room, fronts: Fronts, stand: float | None = None) -> tuple[np.ndarray, float]:
    """The room's depth with the figure's `fronts` standing in it (at `stand`, or where `Room.stand` puts it):
    (depth HxW float32, stand)."""
    on = fronts.owner >= 0
    if stand is None:
        farthest = float(fronts.front[on].min()) if on.any() else 0.0
        stand = room.stand(fronts.sole, farthest)
    depth = room.depth()
    share = np.maximum(1.0 - fronts.front[on].astype(np.float64) / room.focal, NEAREST)
    depth[on] = stand * share
    return depth, stand


def draw_scene(figure: Figure, body: np.ndarray, hands: np.ndarray | None, room: Room,
               background: np.ndarray | None = None) -> Scene:
    """The figure posed by pixel keypoints standing in `room`: draw_figure's image (over `background`, made with the
    room's seed and size; labels only without one) and the exact depth map."""
    fronts = figure_fronts(figure, body, hands, room.width, room.height, background)
    depth, stand = figure_depth(room, fronts)
    return Scene(fronts.rgb, fronts.labels, depth, stand, fronts)
