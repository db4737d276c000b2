"""The procedural dSprites renderers: geometry and rasterisation in TF ops.

Two versions, both on the original factor grid (shape 3, scale
linspace(0.5, 1, 6), orientation linspace(0, 2*pi, 40), posX 32, posY 32):

* **v2** (the default): geometry fitted to the 320 real frames of the data
  set's own animation (``tools/fit_dsprites.py`` refits it; the fidelity test
  checks it).  Its constants below are that script's output.
* **v1**: the first zoo renderer (a 20.8 px square, a 2:1 ellipse, the
  implicit heart curve, centres on pixel centres one pixel apart).  Kept so
  that every figure trained on it reproduces (``source="procedural_v1"``).

Coordinates: pixel (row r, column c) covers [c, c+1] x [r, r+1] and has its
centre at (c + 0.5, r + 0.5).  A pixel is on when its centre lies inside the
sprite (point sampling; ``tools/fit_dsprites.py`` shows that this reproduces
the real frames better than any coverage threshold).  The sprite turns
counter-clockwise as the orientation grows; posY moves down.

Only gathers, arithmetic and comparisons touch pixels, so an image does not
depend on the batch it is rendered in.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

CANVAS = 64
SCALES = np.linspace(0.5, 1.0, 6)
ANGLES = np.linspace(0.0, 2.0 * math.pi, 40)


def _rotation_tables():
    cos, sin = np.cos(ANGLES), np.sin(ANGLES)
    # 2*pi is the same rotation as 0 (the real frames of orientation 0 and 39
    # are identical); float rounding (sin(2*pi) ~ -2.4e-16) would otherwise
    # flip pixels whose centre lies exactly on an edge.
    cos[-1], sin[-1] = cos[0], sin[0]
    return cos.astype(np.float32), sin.astype(np.float32)


_COS, _SIN = _rotation_tables()


def _inverse_sizes(unit):
    """1 / (scale * unit) for each scale index, float32 (computed in float64)."""
    return (1.0 / (SCALES * unit)).astype(np.float32)


def _sprite_frame(factors, first_centre, centre_step, inverse_sizes):
    """Pixel centres in each sprite's frame: (x right, y up), size divided out.

    Returns ``x``, ``y`` [n, 64, 64]; ``inverse_sizes`` (one per scale index)
    turns pixels into the shape's own units.
    """
    f = tf.cast(factors, tf.int32)
    inv = tf.gather(tf.constant(inverse_sizes), f[:, 1])[:, None, None]
    cos = tf.gather(tf.constant(_COS), f[:, 2])[:, None, None]
    sin = tf.gather(tf.constant(_SIN), f[:, 2])[:, None, None]
    centre_x = (first_centre + centre_step * tf.cast(f[:, 3], tf.float32))[:, None, None]
    centre_y = (first_centre + centre_step * tf.cast(f[:, 4], tf.float32))[:, None, None]

    pixel = tf.range(CANVAS, dtype=tf.float32) + 0.5
    dx = pixel[None, None, :] - centre_x  # columns, to the right
    dy = centre_y - pixel[None, :, None]  # rows, upwards (row 0 is the top)
    # Rotate by -orientation: the sprite turns counter-clockwise.
    x = (cos * dx + sin * dy) * inv
    y = (cos * dy - sin * dx) * inv
    return x, y


def _render(factors, first_centre, centre_step, inverse_sizes, inside_tests):
    """Binary float32 images [n, 64, 64, 1]: pixel centres inside the sprite.

    ``inside_tests`` holds one function (x, y) -> bool [m, 64, 64] per shape
    index (square, ellipse, heart).  The batch is split by shape and each image
    is tested against its own shape only (the heart's test costs several times
    the others'), then the images are put back in batch order; the pixels are
    the same as testing every shape everywhere and selecting.
    """
    factors = tf.cast(factors, tf.int32)
    shape = factors[:, 0]
    positions = tf.dynamic_partition(tf.range(tf.shape(factors)[0]), shape, len(inside_tests))
    parts = tf.dynamic_partition(factors, shape, len(inside_tests))
    images = [
        tf.cast(inside(*_sprite_frame(part, first_centre, centre_step, inverse_sizes)),
                tf.float32)
        for inside, part in zip(inside_tests, parts)
    ]
    return tf.dynamic_stitch(positions, images)[..., None]


# ----------------------------------------------------------------------------
# v2: fitted to the real frames (tools/fit_dsprites.py)
# ----------------------------------------------------------------------------
# Sprite centre of position index k: 16 + 32 k / 31 px, i.e. 64 * (0.25 + 0.5 *
# k / 31): from a pixel boundary at k = 0 to one at k = 31, in steps of 1.032 px
# (so the raster changes slightly with position, as in the real frames).
V2_FIRST_CENTRE = 16.0
V2_CENTRE_STEP = 32.0 / 31.0
# Square half-side at scale 1 (px).  Every real square frame (64 of them: all
# scales and orientations) is reproduced exactly by any value in
# (9.5966, 9.5998); the axis-aligned square then covers 20 x 20 pixels.
V2_SQUARE_HALF_SIDE = 9.598
# Ellipse semi-axes at scale 1 (px), long axis horizontal at orientation 0.
# The only values on a 0.002 px grid that reproduce all 64 real ellipse frames
# exactly (26 x 14 px and 288 px at scale 1).
V2_ELLIPSE_SEMI_AXES = (12.766, 7.214)
# Heart: r <= R(phi) in the sprite frame, with phi the angle of (|x|, y) from
# the +x axis (the heart is mirror-symmetric about its vertical axis), R
# interpolated linearly between these radii (px at scale 1) at phi = -90, -85,
# ..., +90 degrees: the sharp lower tip is the first value, the notch between
# the lobes the last.  Fitted to the 192 real heart frames (every scale, every
# orientation, the posX / posY sweeps): the fit misclassifies 24 of 129,280
# pixel centres; mean IoU 0.9994, worst frame 0.991.  Fitted without the
# position sweeps it scores 0.993 on them (held out).
V2_HEART_RADII = (
    9.3966, 7.9861, 7.3549, 6.8356, 6.5011, 6.2528, 6.0819, 5.9544, 5.9117,
    5.9507, 5.9338, 6.0345, 6.1562, 6.3574, 6.5637, 6.9007, 7.2138, 7.6531,
    8.0740, 8.6688, 9.1694, 9.7053, 10.2062, 10.5892, 10.8865, 11.1106, 11.2283,
    11.2960, 11.1845, 11.0182, 10.7300, 10.2927, 9.7124, 8.8928, 7.9140, 6.6607,
    5.0721,
)
_V2_INVERSE_SIZES = _inverse_sizes(1.0)
V2_DATA_SOURCE = (
    "procedural dSprites v2 (zoo renderer fitted to the real frames: mean IoU "
    "0.9997 over the 320 frames of the data set's animation; identical factor "
    "grid; not the original images)"
)


def _v2_square(x, y):
    return tf.maximum(tf.abs(x), tf.abs(y)) <= V2_SQUARE_HALF_SIDE


def _v2_ellipse(x, y):
    a, b = V2_ELLIPSE_SEMI_AXES
    return x * x * (1.0 / (a * a)) + y * y * (1.0 / (b * b)) <= 1.0


def _v2_heart(x, y):
    radii = tf.constant(V2_HEART_RADII, tf.float32)
    intervals = len(V2_HEART_RADII) - 1
    phi = tf.atan2(y, tf.abs(x))  # in [-pi/2, pi/2]
    position = (phi + 0.5 * math.pi) * (intervals / math.pi)
    lower = tf.clip_by_value(tf.floor(position), 0.0, intervals - 1.0)
    weight = position - lower
    lower = tf.cast(lower, tf.int32)
    radius = tf.gather(radii, lower) * (1.0 - weight) + tf.gather(radii, lower + 1) * weight
    return x * x + y * y <= radius * radius


def render_v2(factors: tf.Tensor) -> tf.Tensor:
    """Binary float32 images [n, 64, 64, 1] for int factors [n, 5] (TF ops)."""
    return _render(factors, V2_FIRST_CENTRE, V2_CENTRE_STEP, _V2_INVERSE_SIZES,
                   (_v2_square, _v2_ellipse, _v2_heart))


# ----------------------------------------------------------------------------
# v1: the first zoo renderer (kept so that earlier runs reproduce)
# ----------------------------------------------------------------------------
# Half the side of the square at scale 1.  Deliberately not a multiple of 0.5:
# with sprite centres on pixel centres, no edge then passes exactly through a
# pixel centre for the unrotated shapes (no rounding ties).
_V1_HALF_SIZE = 10.4
# Sprite centre of position index k is 16.5 + k (one pixel per step).
_V1_FIRST_CENTRE = 16.5
_V1_ELLIPSE_SEMI_AXES = (1.2, 0.6)  # in units of _V1_HALF_SIZE; aspect ratio 2:1
# Heart: (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0 in its own coordinates, which spans
# x in [-1.139, 1.139], y in [-1, 1.236].  It is shrunk by _V1_HEART_ZOOM and
# shifted so that the middle of its bounding box sits at the sprite centre.
_V1_HEART_ZOOM = 1.1
_V1_HEART_Y_SHIFT = 0.118
_V1_INVERSE_SIZES = _inverse_sizes(_V1_HALF_SIZE)
V1_DATA_SOURCE = (
    "procedural dSprites v1 (first zoo renderer, not fitted to the real frames: "
    "mean IoU 0.75 on the real frames; identical factor grid; not the original images)"
)


def _v1_square(x, y):
    return tf.maximum(tf.abs(x), tf.abs(y)) <= 1.0


def _v1_ellipse(x, y):
    ax, ay = _V1_ELLIPSE_SEMI_AXES
    return x * x * (1.0 / (ax * ax)) + y * y * (1.0 / (ay * ay)) <= 1.0


def _v1_heart(x, y):
    hx = x * _V1_HEART_ZOOM
    hy = y * _V1_HEART_ZOOM + _V1_HEART_Y_SHIFT
    hx2 = hx * hx
    radial = hx2 + hy * hy - 1.0
    return radial * radial * radial - hx2 * (hy * hy * hy) <= 0.0


def render_v1(factors: tf.Tensor) -> tf.Tensor:
    """Binary float32 images [n, 64, 64, 1] for int factors [n, 5] (TF ops).

    Sizes in units of the square's half-side (10.4 px at scale 1): the square
    is 20.8 px, the ellipse 2:1 with semi-axes 1.2 x 0.6, the heart the curve
    (x^2 + y^2 - 1)^3 = x^2 y^3; the centre moves one pixel per position step.
    """
    return _render(factors, _V1_FIRST_CENTRE, 1.0, _V1_INVERSE_SIZES,
                   (_v1_square, _v1_ellipse, _v1_heart))


# What data_source said of v1 before renderers had versions (in run files of that time).
_UNVERSIONED_V1_DATA_SOURCE = (
    "procedural dSprites (zoo renderer, identical factor grid; not the original images)"
)


def canonical_data_source(description: str) -> str:
    """A data-source description as today's code words it (v1's unversioned name -> v1's)."""
    return V1_DATA_SOURCE if description == _UNVERSIONED_V1_DATA_SOURCE else description


RENDERERS = {1: render_v1, 2: render_v2}
DATA_SOURCES = {1: V1_DATA_SOURCE, 2: V2_DATA_SOURCE}
LATEST_VERSION = 2
