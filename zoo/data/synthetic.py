"""A synthetic ground-truth data set whose observations *are* the factors.

Used for the metrics' known-answer tests (docs/methods.md §16): with the identity representation every
metric knows exactly what a perfectly disentangled code looks like, and with a permuted, rescaled,
duplicated, constant or noisy transform of it, what the answer must become.

    >>> from zoo.data.synthetic import IdentityData
    >>> data = IdentityData()                    # 10 factors x 10 values
    >>> factors, obs = data.sample(4, rng=0)     # obs[i, 0, 0, k] == factors[i, k]
    >>> codes = obs.reshape(len(obs), -1)        # the identity representation

An observation is a float32 array of shape (1, 1, K) holding the K factor indices themselves (not
scaled to [0, 1]: these are not images and never go through a model's image check).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from zoo.data.ground_truth import GroundTruthData

__all__ = ["IdentityData", "identity_representation"]


class IdentityData(GroundTruthData):
    """K discrete factors; the observation of a factor combination is the combination itself.

    Args:
      num_factors: K (default 10).
      factor_size: values per factor (default 10); ignored when ``factor_sizes`` is given.
      factor_sizes: explicit sizes per factor, e.g. ``(3, 6, 40)``.
    """

    one_observation_per_combination = True

    def __init__(self, num_factors: int = 10, factor_size: int = 10,
                 factor_sizes: Sequence[int] | None = None):
        if factor_sizes is None:
            factor_sizes = (int(factor_size),) * int(num_factors)
        factor_sizes = tuple(int(s) for s in factor_sizes)
        super().__init__(
            name="identity",
            factor_names=tuple(f"factor{k}" for k in range(len(factor_sizes))),
            factor_sizes=factor_sizes,
            observation_shape=(1, 1, len(factor_sizes)),
            data_source="synthetic: observations equal the factor indices",
        )

    def _images_from_valid_factors(self, factors, rng):
        return factors.astype(np.float32)[:, None, None, :]

    def images_from_factors_tf(self, factors):
        factors = tf.ensure_shape(tf.cast(factors, tf.int64), [None, self.num_factors])
        return tf.cast(factors, tf.float32)[:, None, None, :]


def identity_representation(observations) -> np.ndarray:
    """The identity representation of :class:`IdentityData`: observations [n, 1, 1, K] → [n, K]."""
    observations = np.asarray(observations)
    return observations.reshape(len(observations), -1).astype(np.float64)
