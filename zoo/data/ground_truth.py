"""The ground-truth data interface shared by every data set, metric and trainer.

A ground-truth data set is a finite grid of discrete factors of variation
(``factor_sizes``) and a deterministic map from a factor combination to an
image.  Factor values are always integer *indices* into each factor's grid,
never the physical values (a scale of 0.7 is index 2 of dSprites' scale grid).

Two ways to draw data:

* numpy, for metrics: ``sample_factors(n, rng)`` / ``images_from_factors(f)``
  / ``sample(n, rng)``, with ``rng`` an int seed, a ``np.random.Generator`` or
  None (see :func:`as_rng`);
* ``tf.data``, for training: ``stream(batch_size, seed, start_step)``, an
  infinite data set of i.i.d. image batches in which batch ``k`` depends only
  on ``(seed, start_step + k)``, so a run resumed at step ``t`` sees exactly
  the batches an uninterrupted run sees from step ``t`` on.
"""

from __future__ import annotations

import abc
import numbers
import operator
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from zoo import seeds
from zoo.checks import check_int

__all__ = ["GroundTruthData", "ObservationData", "as_rng"]


def as_rng(rng=None) -> np.random.Generator:
    """Normalise the ``rng`` argument every sampling function accepts.

    * ``None`` -> a fresh, OS-seeded ``np.random.Generator`` (not repeatable);
    * an ``int`` -> ``np.random.default_rng(seed)`` (repeatable);
    * a ``np.random.Generator`` -> itself (its state advances);
    * a legacy ``np.random.RandomState`` -> a Generator seeded from one draw of
      it, so code written against disentanglement_lib-style metrics stays
      repeatable.
    """
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, np.random.RandomState):
        return np.random.default_rng(int(rng.randint(0, 2**31 - 1)))
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"a random seed must be non-negative, got {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(
        "rng must be None, an int seed, a numpy Generator or RandomState; "
        f"got {type(rng).__name__}"
    )


def _read_only(attribute: str, doc: str) -> property:
    """A property returning ``self.<attribute>``: a data set's metadata is fixed once made."""
    return property(operator.attrgetter(attribute), doc=doc)


class ObservationData(abc.ABC):
    """What every data set offers, with or without factors of variation.

    A name, the shape of one observation, where the data comes from (in words,
    for logs and model cards), i.i.d. observations as numpy
    (:meth:`sample_observations`) and an infinite ``tf.data`` stream of
    observation batches in which batch ``k`` is a pure function of
    ``(seed, start_step + k)`` (:meth:`stream`).  ``has_factors`` tells the two
    kinds apart: :class:`GroundTruthData` (factors; ``sample`` returns
    ``(factors, images)``) and :class:`zoo.data.images.ImageData` (no factors;
    ``sample`` returns images only).  Code that only needs observations (a
    trainer's fixed images, say) should call :meth:`sample_observations`,
    which both kinds implement.

    Observations are usually images ``(H, W, C)``, but any non-empty shape is
    allowed (the pinwheel data set's observations are 2-D points, shape ``(2,)``).
    """

    has_factors: bool = False

    def __init__(self, *, name: str, observation_shape: Sequence[int], data_source: str):
        observation_shape = tuple(int(d) for d in observation_shape)
        if not observation_shape or any(d < 1 for d in observation_shape):
            raise ValueError(
                "observation_shape must be a non-empty tuple of positive sizes, "
                f"e.g. (H, W, C), got {observation_shape}"
            )
        self._name = str(name)
        self._observation_shape = observation_shape
        self._data_source = str(data_source)

    name = _read_only("_name", "The data set's name.")
    observation_shape = _read_only(
        "_observation_shape",
        "The shape of one observation: (H, W, C) for images, (D,) for vectors.")
    data_source = _read_only(
        "_data_source", "Where the observations come from, in words (goes into logs and cards).")

    @abc.abstractmethod
    def sample_observations(self, n: int, rng=None) -> np.ndarray:
        """``n`` i.i.d. observations, float32 ``[n, *observation_shape]``."""

    @abc.abstractmethod
    def stream(self, batch_size: int, seed: int, start_step: int = 0) -> tf.data.Dataset:
        """Infinite ``tf.data`` stream of float32 observation batches."""


class GroundTruthData(ObservationData):
    """A data set whose images are a function of a grid of discrete factors.

    Subclasses set the metadata in ``__init__`` (by calling this constructor)
    and implement :meth:`_images_from_valid_factors` (numpy) and
    :meth:`images_from_factors_tf` (TensorFlow, graph-compatible).  Data sets
    with observation noise (e.g. noisy dSprites) draw it from the ``rng``
    argument in numpy and override :meth:`images_from_factors_seeded_tf` so the
    stream's noise comes from stateless ops seeded by ``(seed, step)``.
    """

    has_factors = True
    #: True when a factor combination determines its observation (one image per combination, no
    #: observation noise), so metrics may encode each combination once and reuse its code
    #: (`zoo.metrics.Representations`). False (the safe default) for sets with several images per
    #: combination (MNIST-like class labels) or per-draw nuisance (noisy/colour/scream dSprites).
    one_observation_per_combination = False

    def __init__(
        self,
        *,
        name: str,
        factor_names: Sequence[str],
        factor_sizes: Sequence[int],
        observation_shape: Sequence[int],
        data_source: str,
    ):
        factor_names = tuple(str(n) for n in factor_names)
        factor_sizes = tuple(int(s) for s in factor_sizes)
        if len(factor_names) != len(factor_sizes):
            raise ValueError(
                f"{len(factor_names)} factor names {factor_names} but "
                f"{len(factor_sizes)} factor sizes {factor_sizes}"
            )
        if not factor_sizes or any(s < 1 for s in factor_sizes):
            raise ValueError(f"factor sizes must be positive, got {factor_sizes}")
        if len(set(factor_names)) != len(factor_names):
            raise ValueError(f"factor names must be unique, got {factor_names}")
        super().__init__(
            name=name, observation_shape=observation_shape, data_source=data_source
        )
        self._factor_names = factor_names
        self._factor_sizes = factor_sizes
        sizes = np.asarray(factor_sizes, dtype=np.int64)
        # Mixed-radix bases, row-major (last factor varies fastest), exactly
        # like the original dSprites file's ``latents_bases``.
        self._bases = np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]]).astype(
            np.int64
        )
        self._num_combinations = int(np.prod(sizes))

    # ------------------------------------------------------------------ metadata
    @property
    def factor_names(self) -> tuple[str, ...]:
        return self._factor_names

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return self._factor_sizes

    @property
    def num_factors(self) -> int:
        return len(self._factor_sizes)

    @property
    def num_combinations(self) -> int:
        return self._num_combinations

    @property
    def factor_bases(self) -> np.ndarray:
        """Mixed-radix weights: ``index = factors @ factor_bases``."""
        return self._bases.copy()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, "
            f"factor_sizes={self.factor_sizes}, source={self.data_source!r})"
        )

    # ---------------------------------------------------------------- validation
    def validate_factors(self, factors) -> np.ndarray:
        """Return ``factors`` as an int64 ``[n, K]`` array or raise ``ValueError``.

        Factors must be integers (an integer numpy dtype or Python ints; floats
        are refused even when integral, since they usually mean physical values
        were passed instead of indices), 2-D with one column per factor, and
        every value inside its factor's range.
        """
        arr = np.asarray(factors)
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(
                f"factors must be integer indices, got dtype {arr.dtype} "
                f"(factor order: {self.factor_names})"
            )
        if arr.ndim != 2 or arr.shape[1] != self.num_factors:
            raise ValueError(
                f"factors must have shape [n, {self.num_factors}] (one column per "
                f"factor {self.factor_names}), got shape {arr.shape}"
            )
        arr = arr.astype(np.int64, copy=False)
        for k, (fname, size) in enumerate(zip(self.factor_names, self.factor_sizes)):
            column = arr[:, k]
            bad = (column < 0) | (column >= size)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"factor {fname!r} (column {k}) must be in [0, {size - 1}], "
                    f"got {int(column[row])} in row {row}"
                )
        return arr

    # ------------------------------------------------------------------- indices
    def index_of(self, factors) -> np.ndarray:
        """Mixed-radix index (int64 ``[n]``) of each factor combination."""
        arr = self.validate_factors(factors)
        return arr @ self._bases

    def factors_of(self, index) -> np.ndarray:
        """Inverse of :meth:`index_of`: int64 ``[n, K]`` factors of each index."""
        idx = np.asarray(index)
        if idx.dtype == bool or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"indices must be integers, got dtype {idx.dtype}")
        idx = np.atleast_1d(idx).astype(np.int64)
        if idx.ndim != 1:
            raise ValueError(f"indices must be 1-D, got shape {idx.shape}")
        bad = (idx < 0) | (idx >= self.num_combinations)
        if bad.any():
            raise ValueError(
                f"index must be in [0, {self.num_combinations - 1}], "
                f"got {int(idx[bad][0])}"
            )
        sizes = np.asarray(self.factor_sizes, dtype=np.int64)
        return (idx[:, None] // self._bases[None, :]) % sizes[None, :]

    # ------------------------------------------------------------ numpy sampling
    def sample_factors(self, n: int, rng=None) -> np.ndarray:
        """``n`` factor combinations, i.i.d. uniform over the grid (int64 [n, K])."""
        n = check_int("n", n, 0)
        gen = as_rng(rng)
        return gen.integers(
            0, np.asarray(self.factor_sizes), size=(n, self.num_factors), dtype=np.int64
        )

    def images_from_factors(self, factors, rng=None) -> np.ndarray:
        """float32 images ``[n, H, W, C]`` in [0, 1] for the given factor indices.

        ``rng`` is used by data sets with observation noise (the dSprites
        variants, the pinwheel, data sets with several images per combination);
        deterministic data sets ignore it.
        """
        arr = self.validate_factors(factors)
        return self._images_from_valid_factors(arr, rng)

    def sample(self, n: int, rng=None) -> tuple[np.ndarray, np.ndarray]:
        """``(factors, images)`` for ``n`` i.i.d. uniform factor combinations."""
        gen = as_rng(rng)
        factors = self.sample_factors(n, gen)
        return factors, self.images_from_factors(factors, gen)

    def sample_observations(self, n: int, rng=None) -> np.ndarray:
        """The images of :meth:`sample` without the factors."""
        return self.sample(n, rng)[1]

    @abc.abstractmethod
    def _images_from_valid_factors(self, factors: np.ndarray, rng) -> np.ndarray:
        """Images for already validated int64 factors."""

    # ------------------------------------------------------------- TensorFlow
    @abc.abstractmethod
    def images_from_factors_tf(self, factors: tf.Tensor) -> tf.Tensor:
        """Graph-compatible twin of :meth:`images_from_factors`.

        Takes an integer tensor ``[n, K]`` and returns float32 ``[n, H, W, C]``.
        """

    def images_from_factors_seeded_tf(self, factors: tf.Tensor, seed) -> tf.Tensor:
        """:meth:`images_from_factors_tf` with its observation noise seeded.

        ``seed`` is a shape-[2] integer tensor; a data set with observation
        noise draws it with stateless random ops from that seed, so the same
        ``(factors, seed)`` always gives the same images.  The stream calls this
        with a seed derived from ``(seed, step)``.  Deterministic data sets
        ignore ``seed`` (this default).
        """
        del seed
        return self.images_from_factors_tf(factors)

    def sample_factors_tf(self, n: int, seed) -> tf.Tensor:
        """Stateless uniform factors (int64 ``[n, K]``) from a shape-[2] seed.

        The same ``seed`` always gives the same factors (``tf.random.stateless_*``).
        Each column gets its own seed, derived by folding its column number in.
        """
        seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
        columns = [
            tf.random.stateless_uniform(
                [n], seed=seeds.fold(seed, k), minval=0, maxval=size, dtype=tf.int64,
                alg=seeds.ALG,
            )
            for k, size in enumerate(self.factor_sizes)
        ]
        return tf.stack(columns, axis=1)

    def stream_factors(self, batch_size: int, seed: int, step: int) -> np.ndarray:
        """The factors (int64 ``[batch_size, K]``) behind batch ``step`` of a stream.

        ``stream(batch_size, seed)``'s batch number ``step`` is exactly
        ``images_from_factors(stream_factors(batch_size, seed, step))`` for a
        deterministic data set (one without observation noise).
        """
        batch_size = check_int("batch_size", batch_size, 0)
        _check_seed(seed)
        step = check_int("step", step, 0)
        step_seed = seeds.derive(seed, step, seeds.DATA_STREAM)
        return self.sample_factors_tf(batch_size, step_seed).numpy()

    def stream(
        self, batch_size: int, seed: int, start_step: int = 0, with_factors: bool = False
    ) -> tf.data.Dataset:
        """Infinite ``tf.data`` stream of float32 image batches ``[B, H, W, C]``.

        With ``with_factors=True`` each element is ``(images, factors)``, the same
        images and their int64 factors ``[B, K]`` (for models that train on
        labelled batches).

        Batch ``k`` of the stream is a pure function of ``(seed, start_step + k)``:
        its factors (and observation noise, if any; see
        :meth:`images_from_factors_seeded_tf`) are drawn with stateless random
        ops seeded by ``(seed, step)`` (see :meth:`stream_factors`).  Restarting with
        ``start_step=t`` therefore replays exactly what an uninterrupted stream
        yields from batch ``t`` on.  Batches are built in parallel, kept in
        order, and prefetched.
        """
        batch_size = check_int("batch_size", batch_size, 1)
        seed = _check_seed(seed)
        start_step = check_int("start_step", start_step, 0)
        shape = (batch_size,) + self.observation_shape

        def make_batch(step):
            step_seed = seeds.derive(seed, step, seeds.DATA_STREAM)
            factors = self.sample_factors_tf(batch_size, step_seed)
            noise_seed = seeds.fold(step_seed, seeds.OBSERVATION_NOISE)
            images = tf.ensure_shape(
                self.images_from_factors_seeded_tf(factors, noise_seed), shape
            )
            return (images, factors) if with_factors else images

        steps = tf.data.Dataset.counter(start=start_step, dtype=tf.int64)
        dataset = steps.map(
            make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        options = tf.data.Options()
        options.deterministic = True
        return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def _check_seed(seed) -> int:
    """A stream's seed: any integer that fits in the int64 of a stateless seed."""
    return check_int("seed", seed, -(2**63), 2**63 - 1)
