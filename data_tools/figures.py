"""Procedural 2-D figures on the OpenPose-18 skeleton: a seeded identity, drawn from keypoints alone.

A figure is a paper doll turning about its vertical axis: torso, head and limbs lie in the body's frontal plane, so a
turn by `yaw` only squeezes left-right offsets by cos(yaw), while the head (an ellipsoid with a face) and the feet
(pointing forward) show which way it turns. `draw_figure` recovers scale, lean, yaw and head tilt from the keypoints
(`infer_view`), so the image is a function of (figure, keypoints, background): no hidden state. Parts are painted
far to near by a depth key that follows the yaw (the far arm goes behind the torso in a turn, the near one in front),
and every pixel at least half covered takes its part's label. Textures are evaluated in each part's own surface
coordinates (turns about the part's axis and figure units along it), so they move, stretch and turn with the part.

Every part also has a front surface over the same shape coordinates (`figure_fronts`): px in front of the body's centre
plane (larger = nearer the camera), the depth key times the scale plus a relief: an ellipsoid head, an elliptic
cylinder for the torso (its cross-section turned by the yaw), capsules for the limbs and neck whose axes run between
their joints' depth keys, round-edged hands and feet that tilt with the yaw. A part painted over another is lifted to
lie in front of it wherever they overlap (raster.Canvas), so the nearest surface is always the one painted.
`data_tools.depth` turns fronts into depth in the room.
"""

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .materials import Colour, Material, contrasting, hsv, random_colour, random_material, solid
from .raster import Canvas, Capsule, Ellipse, Polygon, Relief, Slab, Strokes, Surface, Union, coverage

PART_NAMES = (
    "background", "torso", "neck", "head",
    "r_upper_arm", "r_forearm", "r_hand", "l_upper_arm", "l_forearm", "l_hand",
    "r_thigh", "r_shin", "r_foot", "l_thigh", "l_shin", "l_foot",
)
PART = {name: label for label, name in enumerate(PART_NAMES)}

# Body keypoint i -> the parts that meet there: a visible keypoint lies on a pixel of one of them.
JOINT_PARTS = tuple(tuple(PART[name] for name in names) for names in (
    ("head",), ("torso", "neck"),
    ("torso", "r_upper_arm"), ("r_upper_arm", "r_forearm"), ("r_forearm", "r_hand"),
    ("torso", "l_upper_arm"), ("l_upper_arm", "l_forearm"), ("l_forearm", "l_hand"),
    ("torso", "r_thigh"), ("r_thigh", "r_shin"), ("r_shin", "r_foot"),
    ("torso", "l_thigh"), ("l_thigh", "l_shin"), ("l_shin", "l_foot"),
    ("head",), ("head",), ("head",), ("head",),
))
HEAD_POINTS = (0, 14, 15, 16, 17)  # nose, eyes, ears: also hidden when they face away from the camera
HAND_PARTS = (PART["r_hand"], PART["l_hand"])  # hand 0 is the subject's right

# Sides as (sign, prefix, shoulder, elbow, wrist, hip, knee, ankle); sign -1 = subject's right (image left, facing us).
SIDES = ((-1.0, "r", 2, 3, 4, 8, 9, 10), (1.0, "l", 5, 6, 7, 11, 12, 13))

# The face on the head ellipsoid, in units of its half-axes: x towards the subject's left, y down, z forwards.
EYE = (0.36, -0.08)  # the subject's left eye; the right one mirrors it
NOSE_TIP = (0.0, 0.2)
MOUTH = (0.0, 0.52)
EAR_X = 1.0  # ears on the sides at the head's centre height (y = 0, z = 0)
BROW_Y = -0.3

ARM_FORWARD = 0.08  # depth keys: arms sit this far in front of the body's centre plane (figure units)
LEG_BACK = 0.03  # and legs this far behind it, so a top's hem covers the thighs
TURN_BLEND = 0.02  # side-on (cos(yaw) near 0) a limb's distance across the body blends into its joint's at rest
MIN_RADIUS = 0.8  # px: thinner strokes would leave gaps between pixel centres
SHADOW = 0.35

SKIN_TONES = ((255, 224, 189), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 58, 30),
              (255, 205, 178), (232, 190, 172))
HAIR_COLOURS = ((25, 20, 18), (60, 40, 25), (110, 70, 40), (150, 80, 40), (220, 190, 120), (180, 180, 175),
                (235, 230, 215), (40, 60, 140), (190, 60, 120))
HAIR_ODDS = (0.22, 0.2, 0.15, 0.1, 0.12, 0.07, 0.04, 0.05, 0.05)
HAIR_STYLES = ("short", "long", "bun", "buzz")
HAIR_STYLE_ODDS = (0.35, 0.3, 0.15, 0.2)
HAIRLINES = {"short": (-0.45, 0.45), "long": (-0.5, 0.75), "bun": (-0.45, 0.45), "buzz": (-0.6, 0.5)}  # front, slope
FIGURE_STREAM = 1  # a seed's figure draws apart from its other uses
OUTFIT = ("top", "sleeve", "bottom", "shoe", "gloves", "cover", "emblem", "tucked")  # what dressing changes


def _sphere(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Points (..., 3) on the front of the unit sphere above (x, y)."""
    x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
    return np.stack([x, y, np.sqrt(np.clip(1.0 - x**2 - y**2, 0.0, 1.0))], axis=-1)


def _ring(centre: tuple[float, float], rx: float, ry: float, count: int) -> np.ndarray:
    """`count` points round an ellipse from its image-left end, over the top first (iBUG-68 order)."""
    angles = math.pi - 2 * math.pi * np.arange(count) / count
    return np.stack([centre[0] + rx * np.cos(angles), centre[1] - ry * np.sin(angles)], axis=1)


def _face_template() -> np.ndarray:
    """The 68 iBUG face points (68, 3) on the head's unit sphere."""
    jaw = np.pi * np.arange(17) / 16
    brow_x = np.linspace(0.14, 0.62, 5)
    brow_y = BROW_Y - 0.06 * np.sin(np.pi * np.linspace(0, 1, 5))
    xy = np.concatenate([
        np.stack([-0.9 * np.cos(jaw), 0.08 + 0.8 * np.sin(jaw)], axis=1),
        np.stack([-brow_x[::-1], brow_y], axis=1), np.stack([brow_x, brow_y], axis=1),
        np.stack([np.zeros(4), np.linspace(-0.18, NOSE_TIP[1], 4)], axis=1),
        np.stack([np.linspace(-0.17, 0.17, 5), np.full(5, 0.29)], axis=1),
        _ring((-EYE[0], EYE[1]), 0.15, 0.065, 6), _ring(EYE, 0.15, 0.065, 6),
        _ring(MOUTH, 0.3, 0.11, 12), _ring(MOUTH, 0.2, 0.04, 8),
    ])
    return _sphere(xy[:, 0], xy[:, 1])


FACE_TEMPLATE = _face_template()
# Body head points (nose, right eye, left eye, right ear, left ear) on the unit sphere.
HEAD_TEMPLATE = np.concatenate([_sphere([NOSE_TIP[0], -EYE[0], EYE[0]], [NOSE_TIP[1], EYE[1], EYE[1]]),
                                [[-EAR_X, 0.0, 0.0], [EAR_X, 0.0, 0.0]]])
NOSE_DEPTH = float(HEAD_TEMPLATE[0, 2])


@dataclass(frozen=True)
class Limb:
    """One limb segment: its length and its radius at the joint nearer the body and at the far one (figure units)."""

    length: float
    radius_top: float
    radius_bottom: float


@dataclass(frozen=True)
class Figure:
    """A person's build and looks; lengths in figure units (a standing figure is about 1 tall)."""

    seed: int
    size: float  # standing height as a share of the frame height, before the dance moves or fits it
    torso_length: float  # neck (between the shoulders) to mid-hip
    shoulder_half: float
    hip_half: float
    chest_half: float  # the torso's half-width at the shoulders and at its bottom
    waist_half: float
    torso_depth: float  # half-depth over half-width
    torso_top: float  # how far the torso reaches above the shoulder line, and below the hips
    hem: float
    neck_length: float  # neck keypoint to the head's bottom
    neck_radius: float
    head_half_width: float
    head_half_height: float
    upper_arm: Limb
    forearm: Limb
    thigh: Limb
    shin: Limb
    palm_length: float
    palm_width: float
    finger_length: float  # one finger segment
    finger_radius: float
    foot_length: float
    foot_drop: float  # ankle to the foot's axis at the toe
    foot_radius: float
    foot_turnout: float  # radians
    skin: Colour
    hair: Colour
    eyes: Colour
    lips: Colour
    hair_style: str
    hair_length: float  # long hair: how far down the back, as a share of the torso
    beard: bool
    glasses: bool
    tucked: bool  # the top tucked in: the trousers show on the torso's bottom
    top: Material
    sleeve: Material
    bottom: Material
    shoe: Material
    gloves: Material | None
    cover: dict[str, float]  # share of upper_arm, forearm, thigh, shin covered by clothes, from the body out
    emblem: Colour | None  # a round print on the chest

    @property
    def standing_height(self) -> float:
        """Head top to sole with straight legs."""
        return (2 * self.head_half_height + self.neck_length + self.torso_length + self.thigh.length
                + self.shin.length + self.foot_drop + self.foot_radius)

    @property
    def sole(self) -> float:
        """How far below the ankle keypoint the sole is."""
        return self.foot_drop + self.foot_radius

    @classmethod
    def from_seeds(cls, identity_seed: int, outfit_seed: int) -> "Figure":
        """A person (build, skin, face, hair: `identity_seed`'s) in another figure's clothes (`outfit_seed`'s);
        from_seed(s) when both seeds are s."""
        outfit = cls.from_seed(outfit_seed)
        return dataclasses.replace(cls.from_seed(identity_seed), **{name: getattr(outfit, name) for name in OUTFIT})

    @classmethod
    def from_seed(cls, seed: int) -> "Figure":
        """A random figure, the same for the same seed."""
        rng = np.random.default_rng([seed, FIGURE_STREAM])
        u = rng.uniform
        b = u(0.055, 0.078)
        a = b * u(0.72, 0.9)
        upper_r, thigh_r = u(0.02, 0.032), u(0.035, 0.055)
        upper = Limb(u(0.13, 0.17), upper_r, upper_r * u(0.7, 0.9))
        fore_r = upper.radius_bottom * u(0.85, 1.0)
        thigh = Limb(u(0.19, 0.24), thigh_r, thigh_r * u(0.65, 0.8))
        shin_r = thigh.radius_bottom * u(0.85, 1.0)
        shoulder_half, hip_half = u(0.07, 0.1), u(0.045, 0.07)
        skin = tuple(float(np.clip(c + u(-8, 8), 0, 255)) for c in SKIN_TONES[rng.integers(len(SKIN_TONES))])
        hair = HAIR_COLOURS[rng.choice(len(HAIR_COLOURS), p=HAIR_ODDS)]
        top = random_material(rng)
        sleeve = top if rng.random() < 0.7 else random_material(rng)
        sleeves = [(0.0, 0.0), (u(0.4, 0.8), 0.0), (1.0, u(0.85, 1.0)), (1.0, u(0.4, 0.6))][
            rng.choice(4, p=(0.2, 0.35, 0.35, 0.1))]
        legs = [(u(0.4, 0.7), 0.0), (1.0, u(0.4, 0.6)), (1.0, u(0.88, 1.0))][rng.choice(3, p=(0.25, 0.15, 0.6))]
        return cls(
            seed=seed, size=u(0.6, 0.82), torso_length=u(0.26, 0.32), shoulder_half=shoulder_half,
            hip_half=hip_half, chest_half=shoulder_half + upper.radius_top * u(0.3, 0.7),
            waist_half=hip_half + thigh.radius_top * u(0.95, 1.2), torso_depth=u(0.45, 0.65),
            torso_top=u(0.01, 0.025), hem=u(0.0, 0.06), neck_length=u(0.015, 0.035), neck_radius=a * u(0.35, 0.5),
            head_half_width=a, head_half_height=b,
            upper_arm=upper, forearm=Limb(u(0.12, 0.15), fore_r, fore_r * u(0.65, 0.85)),
            thigh=thigh, shin=Limb(u(0.19, 0.24), shin_r, shin_r * u(0.55, 0.75)),
            palm_length=u(0.035, 0.045), palm_width=u(0.03, 0.04), finger_length=u(0.011, 0.015),
            finger_radius=u(0.005, 0.008), foot_length=u(0.06, 0.085), foot_drop=u(0.025, 0.035),
            foot_radius=u(0.018, 0.026), foot_turnout=u(0.1, 0.4),
            skin=skin, hair=hair, eyes=hsv(u(0.0, 0.6), u(0.3, 0.7), u(0.15, 0.4)),
            lips=tuple(0.8 * c + 0.2 * r for c, r in zip(skin, (170.0, 60.0, 70.0))),
            hair_style=str(rng.choice(HAIR_STYLES, p=HAIR_STYLE_ODDS)), hair_length=u(0.15, 0.5),
            beard=bool(rng.random() < 0.15), glasses=bool(rng.random() < 0.2), tucked=bool(rng.random() < 0.3),
            top=top, sleeve=sleeve, bottom=random_material(rng, value=(0.15, 0.75)),
            shoe=solid(random_colour(rng, (0.1, 0.9))) if rng.random() < 0.6 else random_material(rng),
            gloves=random_material(rng) if rng.random() < 0.1 else None,
            cover={"upper_arm": sleeves[0], "forearm": sleeves[1], "thigh": legs[0], "shin": legs[1]},
            emblem=contrasting(rng, top.colour) if rng.random() < 0.4 else None,
        )


@dataclass(frozen=True)
class View:
    """How a figure is seen in one frame, recovered from its keypoints."""

    scale: float  # pixels per figure unit
    up: np.ndarray  # the torso's up direction in the image (unit)
    cos_yaw: float  # 1 = facing the camera, -1 = back to it
    sin_yaw: float  # > 0: the subject's left side is nearer
    head_centre: np.ndarray
    head_up: np.ndarray

    @property
    def yaw(self) -> float:
        """The turn in radians, (-pi, pi]."""
        return math.atan2(self.sin_yaw, self.cos_yaw)


def _unit(v: np.ndarray) -> np.ndarray:
    """v scaled to length 1."""
    return v / max(float(np.hypot(*v)), 1e-9)


def _right_of(up: np.ndarray) -> np.ndarray:
    """The image direction 90 degrees clockwise from `up` (image right for up = (0, -1))."""
    return np.array([-up[1], up[0]])


def infer_view(figure: Figure, body: np.ndarray) -> View:
    """Scale, lean, yaw and head tilt from pixel keypoints (scores ignored) of a figure posed by `data_tools.dances`."""
    p = np.asarray(body, float)[:, :2]
    spine = p[1] - (p[8] + p[11]) / 2
    scale = float(np.hypot(*spine)) / figure.torso_length
    up = _unit(spine)
    cos_yaw = float((p[5] - p[2]) @ _right_of(up)) / (2 * figure.shoulder_half * scale)
    head_up = _unit((p[16] + p[17]) / 2 - p[1])
    centre = p[1] + head_up * (figure.neck_length + figure.head_half_height) * scale
    sin_yaw = -float((p[0] - centre) @ _right_of(head_up)) / (NOSE_DEPTH * figure.head_half_width * scale)
    norm = max(math.hypot(cos_yaw, sin_yaw), 1e-9)
    return View(scale, up, cos_yaw / norm, sin_yaw / norm, centre, head_up)


def _shade(rgb: np.ndarray, light: np.ndarray) -> np.ndarray:
    """Colours times a per-pixel brightness."""
    return rgb * light[..., None]


def _limb_colouring(figure: Figure, limb: Limb, cloth: Material, cover: float, view: View) -> Callable:
    """Colours of a limb: cloth from its body end up to `cover` of its length, skin beyond; turns with the yaw."""
    skin = np.asarray(figure.skin, np.float32)
    circumference = math.pi * (limb.radius_top + limb.radius_bottom)
    pixel = 1.0 / view.scale
    soft = pixel / limb.length  # one pixel, as a share of the length
    yaw = view.yaw

    def colour(across: np.ndarray, t: np.ndarray) -> np.ndarray:
        light = 0.72 + 0.28 * np.sqrt(1.0 - across**2)
        if cover <= 0:
            return _shade(np.broadcast_to(skin, light.shape + (3,)), light)
        rgb = cloth.colours((np.arcsin(across) + yaw) / (2 * math.pi), t * limb.length, circumference, pixel)
        if cover < 1:
            rgb = skin + np.clip((cover - t) / soft + 0.5, 0.0, 1.0)[..., None] * (rgb - skin)
        return _shade(rgb, light)

    return colour


def _torso_colouring(figure: Figure, view: View) -> Callable:
    """Colours of the torso, an elliptic cylinder: the top's pattern wraps round it and turns with the yaw."""
    c, s = view.cos_yaw, view.sin_yaw
    length = figure.torso_top + figure.torso_length + figure.hem
    mean_half = (figure.chest_half + figure.waist_half) / 2
    circumference = 2 * math.pi * mean_half * math.sqrt((1 + figure.torso_depth**2) / 2)
    waist = figure.torso_top + figure.torso_length - 0.04  # a tucked top shows the trousers' waistband from here
    chest = np.array([0.0, figure.torso_top + 0.35 * figure.torso_length])

    def colour(across: np.ndarray, t: np.ndarray) -> np.ndarray:
        half = figure.chest_half + (figure.waist_half - figure.chest_half) * t
        depth = figure.torso_depth * half
        radius = np.hypot(half * c, depth * s)
        x = np.clip(across / (view.scale * radius), -1.0, 1.0)
        turn = np.arctan2(depth * s, half * c) + np.arcsin(x)  # 0 = chest centre, pi = the middle of the back
        along = t * length
        rgb = figure.top.colours(turn / (2 * math.pi), along, circumference, 1.0 / view.scale)
        if figure.tucked:
            below = np.clip((along - waist) * view.scale + 0.5, 0.0, 1.0)[..., None]
            rgb = rgb + below * (figure.bottom.colours(turn / (2 * math.pi), along, circumference, 1.0 / view.scale)
                                 - rgb)
        if figure.emblem is not None:
            wrapped = (np.remainder(turn + math.pi, 2 * math.pi) - math.pi) * mean_half  # across the chest
            inside = np.clip((0.3 * mean_half - np.hypot(wrapped - chest[0], along - chest[1])) * view.scale + 0.5,
                             0.0, 1.0)[..., None]
            rgb = rgb + inside * (np.asarray(figure.emblem, np.float32) - rgb)
        return _shade(rgb, 0.7 + 0.3 * np.sqrt(1.0 - x**2))

    return colour


def _head_colouring(figure: Figure, view: View) -> Callable:
    """Colours of the head ellipsoid: skin, hair above a hairline that drops towards the back, and a face in front."""
    c, s = view.cos_yaw, view.sin_yaw
    skin, hair = np.asarray(figure.skin, np.float32), np.asarray(figure.hair, np.float32)
    front, slope = HAIRLINES[figure.hair_style]
    hair_tone = hair if figure.hair_style != "buzz" else 0.6 * hair + 0.4 * skin
    marks = (  # (mask, colour) over the face, later ones on top
        (lambda x, y: np.hypot(x, (y - NOSE_TIP[1]) * 1.4) < 0.09, 0.85 * skin),
        (lambda x, y: (x / 0.22) ** 2 + ((y - MOUTH[1]) / 0.08) ** 2 < 1, np.asarray(figure.lips, np.float32)),
        (lambda x, y: np.hypot(np.abs(x) - EYE[0], (y - EYE[1]) * 1.6) < 0.14, np.float32([245, 245, 240])),
        (lambda x, y: np.hypot(np.abs(x) - EYE[0], (y - EYE[1]) * 1.2) < 0.075, np.asarray(figure.eyes, np.float32)),
        (lambda x, y: (np.abs(y - BROW_Y + 0.04) < 0.045) & (np.abs(np.abs(x) - 0.38) < 0.22), 0.8 * hair),
    )

    def colour(qx: np.ndarray, qy: np.ndarray) -> np.ndarray:
        qz = np.sqrt(np.clip(1.0 - qx**2 - qy**2, 0.0, 1.0))
        x, z = qx * c + qz * s, qz * c - qx * s  # back to the head's own frame
        rgb = np.broadcast_to(skin, qx.shape + (3,)).copy()
        on_face = z > 0.05
        for mask, tone in marks:
            rgb[on_face & mask(x, qy)] = tone
        if figure.beard:
            beard = on_face & (qy > 0.32) & ((x / 0.22) ** 2 + ((qy - MOUTH[1]) / 0.08) ** 2 >= 1)
            rgb[beard] = 0.9 * hair
        rgb[qy < front + slope * (1.0 - z)] = hair_tone
        if figure.glasses:
            ring = np.abs(np.hypot(np.abs(x) - EYE[0], qy - EYE[1]) - 0.2) < 0.045
            bridge = (np.abs(x) < EYE[0] - 0.2) & (np.abs(qy - EYE[1]) < 0.03)
            rgb[(z > 0.1) & (ring | bridge)] = (30, 30, 35)
        return _shade(rgb, 0.75 + 0.25 * qz - 0.05 * qy)

    return colour


def _flat(colour: np.ndarray, light: float = 1.0) -> Callable:
    """One colour everywhere."""
    tone = np.asarray(colour, np.float32) * light
    return lambda u, v: tone


def _radius(value: float) -> float:
    """A stroke radius in px, at least MIN_RADIUS."""
    return max(value, MIN_RADIUS)


def _hand_shape(figure: Figure, points: np.ndarray, scale: float) -> Union:
    """A hand from its 21 keypoints: a rounded palm through the wrist and finger bases, and three strokes a finger."""
    r = _radius(figure.finger_radius * scale)
    starts = np.array([4 * finger + k for finger in range(5) for k in (1, 2, 3)])
    return Union((Polygon(points[[0, 1, 5, 9, 13, 17]], r), Strokes(points[starts], points[starts + 1], r)))


def _dome(depth: float) -> Relief:
    """An ellipsoid's front over an Ellipse's coordinates (in half-axes): `depth` px at the centre, 0 at the rim."""
    return lambda distance, qx, qy: depth * np.sqrt(np.maximum(1.0 - qx**2 - qy**2, 0.0))


def _tube(capsule: Capsule, tilt: float = 0.0, pivot: float = 0.5) -> Relief:
    """A capsule's front over its coordinates (across, t): round across it (its radius at the axis, 0 at the outline)
    and its axis rising by `tilt` px from t = 0 to 1 (0 at t = `pivot`)."""
    ra, rb = capsule.ra, capsule.rb
    return lambda distance, across, t: (tilt * (t - pivot)
                                        + (ra + (rb - ra) * t) * np.sqrt(np.maximum(1.0 - across**2, 0.0)))


def _rounded(radius: float) -> Relief:
    """A flat part with round edges over its signed distance: 0 at the outline, `radius` from `radius` inside."""
    return lambda distance, u, v: np.sqrt(np.maximum(radius**2 - np.clip(radius + distance, 0.0, radius) ** 2, 0.0))


def _torso_relief(figure: Figure, view: View) -> Relief:
    """The torso's front over its Slab coordinates (across in px, t): the near side of an elliptic cylinder (half-width
    and half-depth along the body, turned by the yaw), whose outline is the slab's."""
    c, s, scale = view.cos_yaw, view.sin_yaw, view.scale
    squeeze = math.hypot(c, figure.torso_depth * s)  # the outline's half-width over the half-width

    def relief(distance: np.ndarray, across: np.ndarray, t: np.ndarray) -> np.ndarray:
        half = (figure.chest_half + (figure.waist_half - figure.chest_half) * t) * scale
        depth, outline = figure.torso_depth * half, squeeze * half
        x = np.clip(across / outline, -1.0, 1.0)
        shear = c * s * (half**2 - depth**2) / outline  # the cross-section's centre line, px in front per unit x
        return shear * x + half * depth / outline * np.sqrt(1.0 - x**2)

    return relief


def _sheet(slab: Slab, thickness: float) -> Relief:
    """A Slab's front over its coordinates (across in px, t): round across it, `thickness` of its local half-width
    at the middle (long hair: a thin sheet)."""
    def relief(distance: np.ndarray, across: np.ndarray, t: np.ndarray) -> np.ndarray:
        half = slab.ha + (slab.hb - slab.ha) * t
        return thickness * half * np.sqrt(np.maximum(1.0 - (across / half) ** 2, 0.0))

    return relief


Part = tuple[float, int, int, object, Callable, Surface]  # depth key, tie-break order, label, shape, colouring, front


def _layout(figure: Figure, p: np.ndarray, hands: np.ndarray | None, view: View) -> list[Part]:
    """Every part's shape, colouring and front surface in one frame, sorted far to near."""
    s, c, sn = view.scale, view.cos_yaw, view.sin_yaw
    skin = np.asarray(figure.skin, np.float32)
    parts: list[Part] = []

    def add(key: float, name: str, shape, colouring: Callable, relief: Relief) -> None:
        parts.append((key, len(parts), PART[name.split(":")[0]], shape, colouring, Surface(key * s, relief)))

    mid_hip = (p[8] + p[11]) / 2
    top, bottom = p[1] + view.up * figure.torso_top * s, mid_hip - view.up * figure.hem * s
    widths = [math.hypot(w * c, figure.torso_depth * w * sn) * s for w in (figure.chest_half, figure.waist_half)]
    add(0.0, "torso", Slab(top, bottom, *widths, 0.4 * min(widths)), _torso_colouring(figure, view),
        _torso_relief(figure, view))
    neck = _radius(figure.neck_radius * s)
    neck_shape = Capsule(p[1], view.head_centre, neck, neck)
    add(-0.02, "neck", neck_shape, _flat(skin, 0.85), _tube(neck_shape))
    head_right = _right_of(view.head_up)
    a, b = figure.head_half_width * s, figure.head_half_height * s
    for side in (-1.0, 1.0):
        if side * sn > -0.5:  # an ear turned well behind the head is hidden anyway
            ear = view.head_centre + head_right * side * EAR_X * c * a
            add(0.049, "head:ear", Ellipse(ear, _radius(0.2 * a), _radius(0.28 * a), head_right), _flat(skin, 0.88),
                _dome(0.1 * a))
    if figure.hair_style == "bun":
        bun = view.head_centre + view.head_up * 0.9 * b + head_right * 0.35 * sn * a
        add(0.049, "head:bun", Ellipse(bun, 0.4 * a, 0.4 * a, head_right), _flat(figure.hair, 0.9), _dome(0.4 * a))
    if figure.hair_style == "long":
        end = p[1] + (mid_hip - p[1]) * figure.hair_length
        hair = Slab(view.head_centre + view.head_up * 0.3 * b, end, 1.05 * a, 1.25 * a, 0.5 * a)
        add(-0.045 - 0.035 * c, "head:hair", hair, _flat(figure.hair, 0.85),  # over the nape, under the torso
            _sheet(hair, 0.2))
    add(0.05, "head", Ellipse(view.head_centre, a, b, head_right), _head_colouring(figure, view),
        _dome(a))  # the head turns about its vertical axis: as deep as it is wide
    right = _right_of(view.up)
    across = ((p - mid_hip) @ right / s).tolist()  # image offsets across the body, figure units
    hand_across = [across[4], across[7]] if hands is None else ((hands.mean(axis=1) - mid_hip) @ right / s).tolist()

    def depth(offset: float, rest: float, forward: float) -> float:
        """Depth key of a limb part `offset` across the body in the image: its distance across the body unsqueezed
        (leaning on `rest` when the figure is side-on), turned by the yaw, `forward` of the centre plane."""
        return (offset * c + rest * TURN_BLEND) / (c * c + TURN_BLEND) * sn + forward

    def limb(name: str, side: str, j: int, k: int, i: int, forward: float, rest: float, cloth: Material) -> None:
        """A limb segment from joint j to k: its axis runs between the joints' depth keys (their mean orders it)."""
        bone = getattr(figure, name)
        shape = Capsule(p[j], p[k], _radius(bone.radius_top * s), _radius(bone.radius_bottom * s))
        near, far = depth(across[j], rest, forward), depth(across[k], rest, forward)
        add(depth((across[j] + across[k]) / 2, rest, forward) + 0.001 * i, f"{side}_{name}", shape,
            _limb_colouring(figure, bone, cloth, figure.cover[name], view), _tube(shape, (far - near) * s))

    for sign, side, shoulder, elbow, wrist, hip, knee, ankle in SIDES:
        forward, rest = ARM_FORWARD * c, sign * figure.shoulder_half
        for i, (name, j, k) in enumerate((("upper_arm", shoulder, elbow), ("forearm", elbow, wrist))):
            limb(name, side, j, k, i, forward, rest, figure.sleeve)
        key = depth(hand_across[0 if side == "r" else 1], rest, forward) + 0.002
        if hands is None:
            reach = _unit(p[wrist] - p[elbow]) * (figure.palm_length + 2.5 * figure.finger_length) * s
            hand = Capsule(p[wrist], p[wrist] + reach, _radius(figure.palm_width * s / 2),
                           _radius(figure.palm_width * s / 2.5))
            slope = (depth(across[wrist], rest, forward) - depth(across[elbow], rest, forward)) * s / max(
                float(np.hypot(*(p[wrist] - p[elbow]))), 1e-9)  # the forearm's rise per px, carried on
            relief = _tube(hand, slope * float(np.hypot(*reach)), 0.0)
        else:
            hand = _hand_shape(figure, hands[0 if side == "r" else 1], s)
            relief = _rounded(hand.shapes[1].radius)
        glove = figure.gloves.colour if figure.gloves is not None else skin
        add(key, f"{side}_hand", hand, _flat(glove, 0.9), relief)
        forward, rest = -LEG_BACK * abs(c), sign * figure.hip_half
        for i, (name, j, k) in enumerate((("thigh", hip, knee), ("shin", knee, ankle))):
            limb(name, side, j, k, i, forward, rest, figure.bottom)
        toward = figure.foot_length * np.array([sign * math.sin(figure.foot_turnout) * c
                                                - math.cos(figure.foot_turnout) * sn, 0.0])
        toe = p[ankle] + (toward + [0.0, figure.foot_drop]) * s
        heel = p[ankle] + (-0.25 * toward + [0.0, 0.6 * figure.foot_drop]) * s
        foot = Limb(figure.foot_length, figure.foot_radius, figure.foot_radius)
        shape = Capsule(heel, toe, _radius(0.9 * figure.foot_radius * s), _radius(figure.foot_radius * s))
        ahead = figure.foot_length * (sign * math.sin(figure.foot_turnout) * sn + math.cos(figure.foot_turnout) * c)
        add(depth(across[ankle], rest, forward) + 0.002, f"{side}_foot", shape,
            _limb_colouring(figure, foot, figure.shoe, 1.0, view),
            _tube(shape, 1.25 * ahead * s, 0.2))  # the toe `ahead` in front of the ankle, the heel a quarter behind
    return sorted(parts, key=lambda part: part[:2])


def _sole(figure: Figure, p: np.ndarray, view: View) -> float:
    """The image row the soles stand on (the dance puts it on its floor)."""
    return p[[10, 13], 1].max() + figure.sole * view.scale


def sole_line(figure: Figure, body: np.ndarray) -> float:
    """The image row (continuous, y down) that the posed figure's soles stand on: the lower ankle plus the sole."""
    return float(_sole(figure, np.asarray(body, float)[:, :2], infer_view(figure, body)))


def _paint(canvas: Canvas, figure: Figure, body: np.ndarray, hands: np.ndarray | None) -> tuple[list[Part], View]:
    """The figure's shadow and parts, far to near; the parts and the view."""
    p = np.asarray(body, float)[:, :2]
    view = infer_view(figure, body)
    feet = p[[10, 13]]
    spread = abs(feet[0, 0] - feet[1, 0]) / 2 + 0.12 * view.scale
    floor = _sole(figure, p, view)
    canvas.darken(Ellipse(np.array([feet[:, 0].mean(), floor]), spread, max(0.025 * view.scale, 1.5),
                          np.array([1.0, 0.0])), SHADOW)
    hand_points = None if hands is None else np.asarray(hands, float)[..., :2]
    parts = _layout(figure, p, hand_points, view)
    for _, _, label, shape, colouring, surface in parts:
        canvas.paint(shape, label, colouring, surface)
    return parts, view


def draw_figure(figure: Figure, body: np.ndarray, hands: np.ndarray | None, width: int, height: int,
                background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The figure posed by pixel keypoints body (18, 3) and hands (2, 21, 3) (scores ignored) over `background`:
    (RGB uint8 HxWx3, part labels uint8 HxW with 0 = background, see PART_NAMES)."""
    canvas = Canvas(width, height, background)
    _paint(canvas, figure, body, hands)
    return canvas.image(), canvas.labels


def part_labels(figure: Figure, body: np.ndarray, hands: np.ndarray | None, width: int, height: int) -> np.ndarray:
    """Only the part label map of `draw_figure` (no colours: faster)."""
    canvas = Canvas(width, height, None)
    _paint(canvas, figure, body, hands)
    return canvas.labels


FACE_REGIONS = ("none", "skin", "hair", "eyes")  # face_regions' labels
_REGION_PROBES = (("skin", (255.0, 0.0, 255.0)), ("hair", (0.0, 255.0, 0.0)), ("eyes", (255.0, 255.0, 0.0)))


def face_regions(figure: Figure, body: np.ndarray, hands: np.ndarray | None, width: int, height: int,
                 background: np.ndarray) -> np.ndarray:
    """Which head pixels of `draw_figure` show the figure's skin, hair or irises (FACE_REGIONS labels, uint8 HxW):
    the pixels that change when that colour alone is changed, on the head only."""
    image, labels = draw_figure(figure, body, hands, width, height, background)
    regions = np.zeros((height, width), np.uint8)
    head = labels == PART["head"]
    for label, (name, probe) in enumerate(_REGION_PROBES, 1):
        changed = draw_figure(dataclasses.replace(figure, **{name: probe}), body, hands, width, height, background)[0]
        regions[head & (changed != image).any(-1) & (regions == 0)] = label
    return regions


@dataclass(frozen=True)
class Piece:
    """One painted part of a frame: its label, shape and front surface, with the base it was painted at (its depth
    key's, or higher where the canvas lifted it over a part it covers)."""

    label: int
    shape: object
    surface: Surface
    lifted: float  # px the canvas lifted the base by (0 = its depth key's)

    def front(self, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(whether each point (px, py) takes this piece's label when painted, its front there in px)."""
        return self.surface.front(self.shape, px, py)


@dataclass(frozen=True)
class Fronts:
    """A frame of `draw_figure` with its front surfaces: `front` (float32 HxW) px in front of the body's centre plane
    (larger = nearer the camera; -inf off the figure), exactly where `labels` is non-zero; `owner` (int16 HxW) the
    index into `pieces` (paint order) of the part each pixel shows, -1 off the figure; `scale` px per figure unit and
    `sole` the row the soles stand on. `rgb` is None when drawn without a background."""

    rgb: np.ndarray | None
    labels: np.ndarray
    front: np.ndarray
    owner: np.ndarray
    pieces: tuple[Piece, ...]
    scale: float
    sole: float


def figure_fronts(figure: Figure, body: np.ndarray, hands: np.ndarray | None, width: int, height: int,
                  background: np.ndarray | None = None) -> Fronts:
    """`draw_figure` (the same RGB and labels; labels only without a background) plus every pixel's front."""
    canvas = Canvas(width, height, background, fronts=True)
    parts, view = _paint(canvas, figure, body, hands)
    pieces = tuple(Piece(label, shape, Surface(base, surface.relief), base - surface.base)
                   for (_, _, label, shape, _, surface), base in zip(parts, canvas.bases))
    return Fronts(None if background is None else canvas.image(), canvas.labels, canvas.front, canvas.owner, pieces,
                  view.scale, float(_sole(figure, np.asarray(body, float)[:, :2], view)))


def labels_at(figure: Figure, body: np.ndarray, hands: np.ndarray | None, points: np.ndarray, width: int,
              height: int) -> np.ndarray:
    """The labels `draw_figure` gives the pixels holding these pixel points (N, 2+), 0 outside the frame; the same
    shapes evaluated at those pixels' centres only (faster than `part_labels`)."""
    pixels = np.floor(np.asarray(points, float)[:, :2])
    labels = np.zeros(len(pixels), np.uint8)
    inside = (pixels >= 0).all(axis=1) & (pixels[:, 0] < width) & (pixels[:, 1] < height)
    centres = pixels[inside] + 0.5
    found = np.zeros(len(centres), np.uint8)
    hand_points = None if hands is None else np.asarray(hands, float)[..., :2]
    for _, _, label, shape, *_ in _layout(figure, np.asarray(body, float)[:, :2], hand_points,
                                          infer_view(figure, body)):
        found[coverage(shape.field(centres[:, 0], centres[:, 1])[0]) >= 0.5] = label
    labels[inside] = found
    return labels


def figure_bounds(figure: Figure, body: np.ndarray, hands: np.ndarray | None) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) in pixels enclosing every painted part of the posed figure."""
    p = np.asarray(body, float)[:, :2]
    hand_points = None if hands is None else np.asarray(hands, float)[..., :2]
    boxes = np.array([shape.bounds() for *_, shape, _, _ in _layout(figure, p, hand_points, infer_view(figure, body))])
    return (*boxes[:, :2].min(axis=0), *boxes[:, 2:].max(axis=0))
