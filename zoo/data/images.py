"""In-memory image data: image sets without factors, and ground-truth sets.

Two classes for real data held as a uint8 array:

* :class:`ArrayImageData` implements :class:`ImageData`, the interface of a
  data set *without* factors of variation (CelebA): ``observation_shape``,
  ``sample(n, rng)`` -> images, ``stream(batch_size, seed, start_step)``.
* :class:`ArrayGroundTruthData` is a :class:`~zoo.data.ground_truth.GroundTruthData`
  whose images are stored with their factor indices: one image per
  combination (the real dSprites, 3D Shapes), or several
  (``several_per_combination=True``: MNIST's class label has 6,000 images per
  value; smallNORB's four factors have one image per object instance), of
  which asking for a combination picks one uniformly at random (from ``rng``
  in numpy, from a stateless seed in TensorFlow).

Both share :class:`~zoo.data.ground_truth.ObservationData` with the ground-truth
interface, so a trainer that only needs observations calls
``data.sample_observations(n, rng)`` and ``data.stream(...)`` on either kind.
Images are returned as float32 ``pixel / max_value`` in [0, 1].  The
``tf.data`` streams draw rows with stateless ops seeded by ``(seed, step)`` and
gather them through ``tf.numpy_function``, so the image array is never embedded
in a graph.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from zoo import seeds
from zoo.checks import check_int
from zoo.data.ground_truth import (
    GroundTruthData,
    ObservationData,
    _check_seed,
    as_rng,
)

__all__ = ["ArrayGroundTruthData", "ArrayImageData", "ImageData", "StoredImages"]


def as_uint8_images(images) -> np.ndarray:
    """``images`` as a uint8 ``[N, H, W, C]`` array (a channel axis added to ``[N, H, W]``)."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {images.dtype}")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(
            f"images must have shape [N, H, W] or [N, H, W, C], got {images.shape}"
        )
    return images


def _max_value(images: np.ndarray, max_value) -> int:
    if max_value is None:
        max_value = 1 if (images.size == 0 or int(images.max()) <= 1) else 255
    if max_value not in (1, 255):
        raise ValueError(f"max_value must be 1 or 255, got {max_value}")
    return int(max_value)


def _check_stream_args(batch_size, seed, start_step):
    return (check_int("batch_size", batch_size, 1), _check_seed(seed),
            check_int("start_step", start_step, 0))


def _deterministic(dataset: tf.data.Dataset) -> tf.data.Dataset:
    options = tf.data.Options()
    options.deterministic = True
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


class StoredImages:
    """The uint8 image array behind an in-memory data set: storage, accessors and the conversion
    to float32 in [0, 1]. A subclass validates its images with ``as_uint8_images`` (before its
    shape is needed) and then calls ``_store_images``."""

    def _store_images(self, images: np.ndarray, max_value) -> None:
        self._images = images
        self._max_value = _max_value(images, max_value)

    @property
    def images(self) -> np.ndarray:
        """The stored uint8 images ``[N, H, W, C]`` (read-only view)."""
        view = self._images.view()
        view.flags.writeable = False
        return view

    @property
    def max_value(self) -> int:
        """The stored pixel value that means 1.0."""
        return self._max_value

    @property
    def num_images(self) -> int:
        return len(self._images)

    def __len__(self) -> int:
        return self.num_images

    def images_at(self, rows) -> np.ndarray:
        """float32 images of the given rows of the stored array."""
        rows = np.asarray(rows, dtype=np.int64)
        return self._images[rows].astype(np.float32) * np.float32(1.0 / self._max_value)

    def _to_float_tf(self, pixels: tf.Tensor) -> tf.Tensor:
        return tf.cast(pixels, tf.float32) * (1.0 / self._max_value)


class ImageData(ObservationData):
    """A data set of images without factors of variation.

    ``sample(n, rng)`` returns float32 images ``[n, H, W, C]`` drawn i.i.d.
    (uniformly over the stored images, with replacement);
    ``stream(batch_size, seed, start_step)`` is an infinite ``tf.data`` stream of
    image batches in which batch ``k`` is a pure function of
    ``(seed, start_step + k)``.
    """

    has_factors = False

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, "
            f"observation_shape={self.observation_shape}, source={self.data_source!r})"
        )

    @abc.abstractmethod
    def sample(self, n: int, rng=None) -> np.ndarray:
        """``n`` i.i.d. images, float32 ``[n, H, W, C]`` in [0, 1]."""

    def sample_observations(self, n: int, rng=None) -> np.ndarray:
        return self.sample(n, rng)


class ArrayImageData(StoredImages, ImageData):
    """Images held in memory as uint8 ``[N, H, W, C]`` (or ``[N, H, W]``).

    Args:
      images: the uint8 array (kept, not copied).
      name, data_source: the metadata.
      max_value: the stored pixel value that means 1.0; ``None`` detects it
        (1 if no pixel exceeds 1, else 255).
    """

    def __init__(self, images, *, name: str, data_source: str, max_value: int | None = None):
        images = as_uint8_images(images)
        if len(images) == 0:
            raise ValueError(f"{name}: no images")
        super().__init__(name=name, observation_shape=images.shape[1:], data_source=data_source)
        self._store_images(images, max_value)

    def sample(self, n: int, rng=None) -> np.ndarray:
        n = check_int("n", n, 0)
        rows = as_rng(rng).integers(0, self.num_images, size=n, dtype=np.int64)
        return self.images_at(rows)

    def stream_rows(self, batch_size: int, seed: int, step: int) -> np.ndarray:
        """The stored rows (int64 ``[batch_size]``) behind batch ``step`` of a stream."""
        batch_size, seed, step = _check_stream_args(batch_size, seed, step)
        return self._rows_tf(batch_size, seeds.derive(seed, step, seeds.DATA_STREAM)).numpy()

    def _rows_tf(self, batch_size, step_seed):
        return tf.random.stateless_uniform(
            [batch_size], seed=step_seed, minval=0, maxval=self.num_images,
            dtype=tf.int64, alg=seeds.ALG,
        )

    def stream(self, batch_size: int, seed: int, start_step: int = 0) -> tf.data.Dataset:
        """Infinite stream of float32 batches ``[B, H, W, C]``.

        Batch ``k`` holds the stored rows :meth:`stream_rows` ``(batch_size,
        seed, start_step + k)``, drawn uniformly with replacement.
        """
        batch_size, seed, start_step = _check_stream_args(batch_size, seed, start_step)
        shape = (batch_size,) + self.observation_shape

        def make_batch(step):
            rows = self._rows_tf(batch_size, seeds.derive(seed, step, seeds.DATA_STREAM))
            pixels = tf.numpy_function(
                lambda r: self._images[r], [rows], tf.uint8, stateful=False
            )
            return tf.ensure_shape(self._to_float_tf(pixels), shape)

        steps = tf.data.Dataset.counter(start=start_step, dtype=tf.int64)
        return _deterministic(
            steps.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        )


class ArrayGroundTruthData(StoredImages, GroundTruthData):
    """Ground-truth data held in memory: uint8 images and the factor indices of each.

    Args:
      images: uint8 ``[N, H, W, C]`` (or ``[N, H, W]``).
      factor_classes: integer ``[N, K]``, the factor indices of each image.
      factor_sizes, factor_names, name, data_source: the metadata.
      max_value: the stored pixel value that means 1.0 (images are returned as
        ``pixel / max_value``); ``None`` detects it: 1 if no pixel exceeds 1
        (the original dSprites stores 0/1), else 255.
      several_per_combination: False (the default) for a grid with at most one
        image per combination (dSprites, 3D Shapes, Cars3D, MPI3D): a second
        image of a combination is an error, and the images are a function of
        the factors. True when a combination may have many images (MNIST's 6,000
        per class, smallNORB's object instances): asking for it picks one of
        them uniformly, with ``rng`` in numpy and with a stateless seed in
        TensorFlow (the stream's, so batch ``k`` stays a function of
        ``(seed, start_step + k)``).

    The array need not hold the whole grid (:attr:`complete` says whether it
    does); asking for a combination without an image is an error.  ``sample``
    draws combinations uniformly over the grid, not images uniformly over the
    array (on MNIST every class is equally likely).  The ``tf.data`` stream
    gathers rows through ``tf.numpy_function``: the image array is never
    embedded in the graph.
    """

    def __init__(
        self,
        images,
        factor_classes,
        *,
        factor_sizes: Sequence[int],
        factor_names: Sequence[str],
        name: str,
        data_source: str,
        max_value: int | None = None,
        several_per_combination: bool = False,
    ):
        images = as_uint8_images(images)
        super().__init__(
            name=name,
            factor_names=factor_names,
            factor_sizes=factor_sizes,
            observation_shape=images.shape[1:],
            data_source=data_source,
        )
        classes = np.asarray(factor_classes)
        if len(classes) != len(images):
            raise ValueError(f"{len(images)} images but {len(classes)} rows of factor classes")
        classes = self.validate_factors(classes)
        index = classes @ self._bases
        self._counts = np.bincount(index, minlength=self.num_combinations).astype(np.int64)
        if not several_per_combination and len(images) and self._counts.max() > 1:
            first = int(np.argmax(self._counts > 1))
            raise ValueError(
                f"each factor combination may appear only once, but "
                f"{self._describe(self.factors_of(first)[0])} appears "
                f"{int(self._counts[first])} times (several_per_combination=True "
                "serves data with several images per combination)"
            )
        # The rows of each combination's images, contiguous: combination i's are
        # _order[_starts[i] : _starts[i] + _counts[i]].
        self._order = np.argsort(index, kind="stable")
        self._starts = np.concatenate([[0], np.cumsum(self._counts)[:-1]]).astype(np.int64)
        self._store_images(images, max_value)
        self._classes = classes
        self.several_per_combination = bool(several_per_combination)
        self.one_observation_per_combination = not self.several_per_combination

    @property
    def factor_classes(self) -> np.ndarray:
        """The factor indices of each stored image, int64 ``[N, K]``."""
        return self._classes.copy()

    @property
    def images_per_combination(self) -> np.ndarray:
        """int64 ``[num_combinations]``: how many images each combination has."""
        return self._counts.copy()

    @property
    def complete(self) -> bool:
        """Whether every factor combination has at least one image."""
        return bool(np.all(self._counts > 0))

    def _describe(self, combination) -> str:
        pairs = ", ".join(f"{n}={int(v)}" for n, v in zip(self.factor_names, combination))
        return f"({pairs})"

    def _uniforms(self, n, rng):
        """The draws that pick among a combination's images (none with one image each)."""
        return as_rng(rng).random(n) if self.several_per_combination else None

    def _rows(self, factors: np.ndarray, u=None) -> np.ndarray:
        """The stored row of each (validated) combination: its image, or the one of its images
        that the uniform ``u`` ∈ [0, 1) picks."""
        index = np.asarray(factors, np.int64) @ self._bases
        counts = self._counts[index]
        missing = counts == 0
        if missing.any():
            first = np.asarray(factors)[int(np.flatnonzero(missing)[0])]
            raise ValueError(
                f"factor combination {self._describe(first)} is not in the {self.name} array: "
                f"it has no image ({self.num_images} images of "
                f"{np.count_nonzero(self._counts)} of the {self.num_combinations} "
                f"combinations; source: {self.data_source})"
            )
        pick = 0 if u is None else np.minimum(
            (np.asarray(u, np.float64) * counts).astype(np.int64), counts - 1)
        return self._order[self._starts[index] + pick]

    def rows_of(self, factors, rng=None) -> np.ndarray:
        """The stored row (int64 ``[n]``) of each factor combination; with several images per
        combination, one chosen uniformly with ``rng``."""
        arr = self.validate_factors(factors)
        return self._rows(arr, self._uniforms(len(arr), rng))

    def _images_from_valid_factors(self, factors, rng):
        return self.images_at(self._rows(factors, self._uniforms(len(factors), rng)))

    def _gather_uint8(self, factors, u=None):
        return self._images[self._rows(self.validate_factors(factors), u)]

    def images_from_factors_seeded_tf(self, factors, seed):
        factors = tf.ensure_shape(tf.cast(factors, tf.int64), [None, self.num_factors])
        inputs = [factors]
        if self.several_per_combination:
            inputs.append(tf.random.stateless_uniform(
                tf.shape(factors)[:1], seed=tf.cast(seed, tf.int64), dtype=tf.float64,
                alg=seeds.ALG,
            ))
        pixels = tf.numpy_function(self._gather_uint8, inputs, tf.uint8, stateful=False)
        return self._to_float_tf(tf.ensure_shape(pixels, (None,) + self.observation_shape))

    def images_from_factors_tf(self, factors, seed=None):
        """Images for ``factors``; with several images per combination, which one is drawn
        from ``seed`` (shape [2]) or, when ``None``, from TF's global generator (not
        repeatable)."""
        if seed is None:
            seed = seeds.random_seed()
        return self.images_from_factors_seeded_tf(factors, seed)
