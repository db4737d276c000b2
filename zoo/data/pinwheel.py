"""The pinwheel data (docs/methods.md §17): 2-D points in spiral arms, one arm per class.

Per point of class ``k`` (of ``C``):

    f     = randn(2) * [tangential_std, radial_std] + [1, 0]
    angle = 2*pi*k/C + rate * exp(f[0])
    x     = R(angle) f        (R: counter-clockwise rotation)

so each arm starts near the unit circle at angle ``2*pi*k/C`` and curls
counter-clockwise as its points move outwards.  The defaults (4 classes x 100
points, ``radial_std=0.1``, ``tangential_std=0.3``, ``rate=0.25``) are the
data of Mathieu et al.'s clustering experiment.  Two facts about the original
generator (Adams' pinwheel.m, which that experiment calls as
``pinwheel(0.1, 0.3, 4, 100, 0.25)``) are kept or noted here:

* its ``tangential_std`` scales the *first* coordinate of ``f`` (the one
  displaced by 1, i.e. the radial direction before the warp) and
  ``radial_std`` the second; the names are the original's, the formula is the
  one of docs/methods.md §17, which matches it;
* it multiplies ``f`` as a row vector by ``[[c, -s], [s, c]]``, which is a
  *clockwise* turn: its data is the mirror image of this one (arms curl the
  other way, class ``k`` sits at ``-2*pi*k/C``).  For a density model the two
  are equivalent; this module turns f counter-clockwise (docs/methods.md §17).

Points are not rescaled or shuffled: :func:`pinwheel` returns the classes in
order (all of class 0, then class 1, ...).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from zoo import seeds
from zoo.checks import check_int
from zoo.data.ground_truth import GroundTruthData, as_rng

__all__ = ["Pinwheel", "pinwheel", "pinwheel_points"]

def pinwheel_points(eps, labels, num_classes, radial_std, tangential_std, rate, xp=np):
    """The pinwheel map from standard normal draws ``eps`` ``[n, 2]`` and float
    class labels ``[n]`` to points ``[n, 2]``; ``xp`` is ``numpy`` or ``tf``."""
    f0 = eps[:, 0] * tangential_std + 1.0
    f1 = eps[:, 1] * radial_std
    angle = (2.0 * math.pi / num_classes) * labels + rate * xp.exp(f0)
    cos, sin = xp.cos(angle), xp.sin(angle)
    return xp.stack([cos * f0 - sin * f1, sin * f0 + cos * f1], axis=1)


def _check_params(num_classes, radial_std, tangential_std, rate):
    num_classes = check_int("num_classes", num_classes, 1)
    for what, value in (("radial_std", radial_std), ("tangential_std", tangential_std)):
        if not value >= 0:
            raise ValueError(f"{what} must be non-negative, got {value}")
    if not math.isfinite(rate):
        raise ValueError(f"rate must be finite, got {rate}")
    return num_classes, float(radial_std), float(tangential_std), float(rate)


def pinwheel(
    num_classes: int = 4,
    per_class: int = 100,
    radial_std: float = 0.1,
    tangential_std: float = 0.3,
    rate: float = 0.25,
    rng=None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(points, labels)``: float32 ``[C * per_class, 2]`` and int64 labels.

    Exactly docs/methods.md §17: ``per_class`` points of each class, in class order;
    the normal draws are ``as_rng(rng).standard_normal((C * per_class, 2))``
    (one row per point, in output order).
    """
    num_classes, radial_std, tangential_std, rate = _check_params(
        num_classes, radial_std, tangential_std, rate
    )
    per_class = check_int("per_class", per_class, 0)
    labels = np.repeat(np.arange(num_classes, dtype=np.int64), per_class)
    eps = as_rng(rng).standard_normal((len(labels), 2))
    points = pinwheel_points(
        eps, labels.astype(np.float64), num_classes, radial_std, tangential_std, rate
    )
    return points.astype(np.float32), labels


class Pinwheel(GroundTruthData):
    """The pinwheel generator as a ground-truth data set.

    One factor, ``class`` (``num_classes`` values, 4 by default); observations
    are float32 2-D points (``observation_shape == (2,)``), not images, and are
    not confined to [0, 1].  A point is random given its class:
    ``images_from_factors(f, rng)`` draws it from ``rng``; the ``tf.data``
    stream from stateless ops seeded by ``(seed, step)``.  ``sample(n, rng)``
    draws classes uniformly (so counts vary); :func:`pinwheel` gives the fixed
    ``per_class`` layout of the paper's data.
    """

    def __init__(
        self,
        num_classes: int = 4,
        radial_std: float = 0.1,
        tangential_std: float = 0.3,
        rate: float = 0.25,
    ):
        num_classes, radial_std, tangential_std, rate = _check_params(
            num_classes, radial_std, tangential_std, rate
        )
        super().__init__(
            name="pinwheel",
            factor_names=("class",),
            factor_sizes=(num_classes,),
            observation_shape=(2,),
            data_source=(
                f"synthetic pinwheel generator ({num_classes} classes, radial_std "
                f"{radial_std}, tangential_std {tangential_std}, rate {rate})"
            ),
        )
        self._params = (num_classes, radial_std, tangential_std, rate)

    @property
    def params(self) -> dict:
        names = ("num_classes", "radial_std", "tangential_std", "rate")
        return dict(zip(names, self._params))

    def _images_from_valid_factors(self, factors, rng):
        eps = as_rng(rng).standard_normal((len(factors), 2))
        points = pinwheel_points(eps, factors[:, 0].astype(np.float64), *self._params)
        return points.astype(np.float32)

    def images_from_factors_seeded_tf(self, factors, seed):
        factors = tf.ensure_shape(tf.cast(factors, tf.int64), [None, 1])
        eps = tf.random.stateless_normal(
            tf.stack([tf.shape(factors)[0], 2]), seed=tf.cast(seed, tf.int64),
            dtype=tf.float32, alg=seeds.ALG,
        )
        labels = tf.cast(factors[:, 0], tf.float32)
        return pinwheel_points(eps, labels, *self._params, xp=tf)

    def images_from_factors_tf(self, factors, seed=None):
        """Points for ``factors`` ``[n, 1]``; noise from ``seed`` (shape [2]) or,
        when ``None``, from TF's global generator (not repeatable)."""
        if seed is None:
            seed = seeds.random_seed()
        return self.images_from_factors_seeded_tf(factors, seed)
