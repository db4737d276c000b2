"""``digits``: scikit-learn's 8×8 handwritten digits, upscaled to 28×28, offline.

The data are ``sklearn.datasets.load_digits()``: scikit-learn's bundled copy of the
*test* part of the UCI "Optical Recognition of Handwritten Digits" set (Alpaydin &
Kaynak 1998): 1,797 real handwritten digits, 0–9 (about 180 per class).  Each image is
a 32×32 bitmap summed over non-overlapping 4×4 blocks, so an 8×8 grid of counts 0..16;
the digits were size-normalised (NIST preprocessing) and fill most of the frame.
scikit-learn ships the file, so it loads without network access.

It is a small *offline stand-in for MNIST*, not MNIST: its images are shaped like
MNIST's (28×28×1, so the MNIST networks "infogan28" and "conv28" apply) and it has
MNIST's single factor ``class`` (10, the digit), but there are only 1,797 of them, drawn
by other writers, and their detail is that of an 8×8 grid.  The 8×8 counts are
upscaled by bilinear interpolation (``tf.image.resize(method="bilinear")``, half-pixel
centres, so each source pixel covers a 3.5×3.5 block and the edges are clamped) to
``28 - 2·border`` pixels and zero-padded by ``border`` on each side (``border=0``,
the default, fills the frame as the source does; ``border=4`` gives MNIST's 20×20 digit
box in a 28×28 frame).  The counts 0..16 map linearly onto [0, 1] and are stored as
uint8 ``round(count / 16 · 255)`` (``max_value`` 255), like the other array sets.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from zoo.data.images import ArrayGroundTruthData
from zoo.data.tfds_sets import MNIST_FACTOR_NAMES

__all__ = ["DIGITS_IMAGE_SIZE", "DIGITS_MAX_COUNT", "load_digits"]

DIGITS_IMAGE_SIZE = 28
DIGITS_MAX_COUNT = 16  # the 8×8 counts are 0..16 (4×4 blocks of a 32×32 bitmap)


def upscale_digits(counts: np.ndarray, border: int = 0) -> np.ndarray:
    """8×8 counts ``[N, 8, 8]`` (0..16) → uint8 images ``[N, 28, 28, 1]`` (0..255)."""
    size = DIGITS_IMAGE_SIZE - 2 * border
    scaled = np.asarray(counts, np.float32)[..., None] * np.float32(255.0 / DIGITS_MAX_COUNT)
    resized = tf.image.resize(scaled, (size, size), method="bilinear").numpy()
    images = np.clip(np.rint(resized), 0, 255).astype(np.uint8)
    if border:
        images = np.pad(images, [(0, 0), (border, border), (border, border), (0, 0)])
    return images


def load_digits(border: int = 0) -> ArrayGroundTruthData:
    """scikit-learn's handwritten digits as a 28×28×1 :class:`ArrayGroundTruthData`
    (about 180 images per class).

    One factor ``class`` (10 values, the digit, named as MNIST's); 1,797 images (see the
    module docstring for the source and the resizing).  ``border`` (0..10): zero pixels
    around the upscaled digit (4 = MNIST's 20×20 digit box).  ``sample`` draws the class
    uniformly and then one of its images.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    border = int(border)
    if not 0 <= border <= 10:
        raise ValueError(f"border must be in 0..10, got {border}")
    bunch = sklearn_digits()
    counts = np.asarray(bunch.images)
    if counts.shape[1:] != (8, 8) or counts.min() < 0 or counts.max() > DIGITS_MAX_COUNT:
        raise ValueError(f"unexpected sklearn digits: shape {counts.shape}, values "
                         f"{counts.min()}..{counts.max()}")
    labels = np.asarray(bunch.target, np.int64)[:, None]
    size = DIGITS_IMAGE_SIZE - 2 * border
    frame = f", zero border {border}" if border else ""
    return ArrayGroundTruthData(
        upscale_digits(counts, border), labels, several_per_combination=True,
        factor_sizes=(10,), factor_names=MNIST_FACTOR_NAMES, name="digits",
        data_source=(
            f"real handwritten digits from sklearn.datasets.load_digits (UCI optical digits, "
            f"{len(counts)} images, 8x8 counts 0..16, bilinear-upscaled to {size}x{size}"
            f"{frame}; an offline stand-in for MNIST, not MNIST)"
        ),
        max_value=255,
    )
