"""dSprites: a procedural renderer with the original factor grid, and the real data.

The original data set (Matthey et al. 2017) has 737,280 binary 64x64 images,
one per combination of

    shape        3   square, ellipse, heart
    scale        6   linspace(0.5, 1, 6)
    orientation 40   linspace(0, 2*pi, 40)  (both ends included, so orientation
                     0 and 39 are the same rotation and give the same image)
    posX        32   linspace(0, 1, 32)
    posY        32   linspace(0, 1, 32)

plus a colour factor with a single value (white).  The constant colour factor
is left out everywhere here: factors are ``("shape", "scale", "orientation",
"posX", "posY")`` with sizes ``(3, 6, 40, 32, 32)``.

Three sources:

* :class:`ProceduralDSprites` (the offline default) renders images for the
  identical factor grid with TensorFlow ops (:mod:`zoo.data.dsprites_render`;
  version 2 is fitted to the real frames, version 1 is the first renderer).
  The images are *not* the original pixels; every log and model card must say
  so, and which renderer version made them (``data_source`` does).
* :func:`load_dsprites_npz` reads the original ``.npz`` file placed in
  ``$ZOO_DATA_DIR`` after checking its sha256.
* :func:`load_dsprites_tfds` reads the prepared tensorflow_datasets ``dsprites``.

Both real-data loaders return an :class:`ArrayGroundTruthData`.
"""

from __future__ import annotations

import hashlib
import os
import re

import numpy as np
import tensorflow as tf

from zoo.data.dsprites_render import CANVAS, DATA_SOURCES, LATEST_VERSION, RENDERERS
from zoo.data.ground_truth import GroundTruthData
from zoo.data.images import ArrayGroundTruthData

__all__ = [
    "DSPRITES_FACTOR_NAMES",
    "DSPRITES_FACTOR_SIZES",
    "DSPRITES_NPZ_MD5",
    "DSPRITES_NPZ_NAME",
    "DSPRITES_NPZ_SHA256",
    "DSPRITES_URL",
    "ProceduralDSprites",
    "load_dsprites_npz",
    "load_dsprites_tfds",
    "sha256_of_file",
]

DSPRITES_FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
DSPRITES_FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPE_NAMES = ("square", "ellipse", "heart")

DSPRITES_URL = "https://github.com/deepmind/dsprites-dataset"
DSPRITES_NPZ_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
# No sha256 of the original npz file could be found in any published source we
# could check, and a digest must never be guessed.  Until one is verified, the
# caller supplies it (``expected_sha256=`` or $ZOO_DSPRITES_SHA256).  What *is*
# widely published, by several independent loaders, is the file's MD5; it is
# quoted in the error message so a user can check their copy before trusting
# the sha256 they compute from it.
DSPRITES_NPZ_SHA256: str | None = None
DSPRITES_NPZ_MD5 = "7da33b31b13a06f4b04a70402ce90c2e"

class ProceduralDSprites(GroundTruthData):
    """dSprites rendered on the fly, with exactly the original factor grid.

    Factors (indices): shape 3 (square, ellipse, heart), scale 6
    (linspace(0.5, 1, 6)), orientation 40 (linspace(0, 2*pi, 40), endpoints
    included as in the original, so index 0 and 39 give the same image), posX
    32 and posY 32 (linspace(0, 1, 32); posX moves right, posY moves down).
    The original's constant colour factor is left out.  The images are binary
    (exactly 0.0 / 1.0) float32 of shape (64, 64, 1); they are *not* the
    original pixels, and ``data_source`` names the renderer version.

    ``version=2`` (the default) is fitted to the real frames of the data set's
    animation (:mod:`zoo.data.dsprites_render` has the geometry and the IoU it
    reaches): a 20 x 20 px square, a 26 x 14 px ellipse and a 20 x 17 px heart
    with a sharp tip at scale 1, centres from 16 to 48 px in steps of 32/31 px.
    ``version=1`` is the first zoo renderer, kept so earlier runs reproduce.

    Rendering runs in TensorFlow (vectorised over the batch); the numpy path
    and the ``tf.data`` stream use the same ops and give identical images.
    """

    one_observation_per_combination = True

    SHAPE_NAMES = SHAPE_NAMES

    def __init__(self, chunk_size: int = 2048, version: int = LATEST_VERSION):
        if version not in RENDERERS or isinstance(version, bool):
            raise ValueError(
                f"unknown procedural dSprites version {version!r}; known versions: "
                f"{', '.join(map(str, RENDERERS))}"
            )
        super().__init__(
            name="dsprites",
            factor_names=DSPRITES_FACTOR_NAMES,
            factor_sizes=DSPRITES_FACTOR_SIZES,
            observation_shape=(CANVAS, CANVAS, 1),
            data_source=DATA_SOURCES[version],
        )
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self.version = int(version)
        self._render = RENDERERS[version]
        self._chunk_size = int(chunk_size)
        self._render_fn = tf.function(
            self._render,
            input_signature=[tf.TensorSpec([None, 5], tf.int64)],
            reduce_retracing=True,
        )

    def _images_from_valid_factors(self, factors, rng):
        if len(factors) == 0:
            return np.zeros((0,) + self.observation_shape, np.float32)
        chunks = [
            self._render_fn(tf.constant(factors[i : i + self._chunk_size])).numpy()
            for i in range(0, len(factors), self._chunk_size)
        ]
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def images_from_factors_tf(self, factors):
        factors = tf.cast(factors, tf.int64)
        factors = tf.ensure_shape(factors, [None, self.num_factors])
        checks = [
            tf.debugging.assert_non_negative(factors, message="negative factor"),
            tf.debugging.assert_less(
                factors,
                tf.constant(self.factor_sizes, tf.int64)[None, :],
                message=f"factor out of range; sizes {self.factor_sizes}",
            ),
        ]
        with tf.control_dependencies(checks):
            return self._render(tf.identity(factors))


# ----------------------------------------------------------------------------
# Real dSprites
# ----------------------------------------------------------------------------


def sha256_of_file(path: str, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (never the whole file at once)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _default_npz_path() -> str:
    data_dir = os.environ.get("ZOO_DATA_DIR")
    if not data_dir:
        raise FileNotFoundError(
            "cannot find the real dSprites file: $ZOO_DATA_DIR is not set. "
            f"Download {DSPRITES_NPZ_NAME} from {DSPRITES_URL}, put it in a "
            "directory, set ZOO_DATA_DIR to that directory (or pass path=...). "
            "Without it, use the procedural dSprites (source='procedural')."
        )
    return os.path.join(data_dir, DSPRITES_NPZ_NAME)


def load_dsprites_npz(
    path: str | None = None, expected_sha256: str | None = DSPRITES_NPZ_SHA256
) -> ArrayGroundTruthData:
    """Load the original dSprites ``.npz`` after verifying its sha256.

    Args:
      path: the file; defaults to ``$ZOO_DATA_DIR/<DSPRITES_NPZ_NAME>``.
      expected_sha256: the digest the file must have.  When ``None`` (the
        default while no published digest is known), ``$ZOO_DSPRITES_SHA256``
        is used; if that is unset too, loading is refused.

    Only the ``imgs`` and ``latents_classes`` arrays are read, with
    ``allow_pickle=False`` (the file's ``metadata`` entry is a pickle and is
    never loaded).  The constant colour column is dropped.  The whole image
    array (about 3 GB as uint8) is held in memory.
    """
    if path is None:
        path = _default_npz_path()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"dSprites file not found: {path}. Download {DSPRITES_NPZ_NAME} from "
            f"{DSPRITES_URL} and place it there (the default location is "
            "$ZOO_DATA_DIR/" + DSPRITES_NPZ_NAME + ")."
        )
    if expected_sha256 is None:
        expected_sha256 = os.environ.get("ZOO_DSPRITES_SHA256") or None
    if expected_sha256 is None:
        raise ValueError(
            f"refusing to load {path} unchecked: no sha256 is known for "
            f"{DSPRITES_NPZ_NAME}. Pass expected_sha256=... or set "
            "ZOO_DSPRITES_SHA256 to the sha256 of the original file. To check "
            "your copy first: its published MD5 is "
            f"{DSPRITES_NPZ_MD5} (md5sum), then take its sha256 (sha256sum)."
        )
    expected = expected_sha256.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise ValueError(
            f"expected_sha256 must be 64 hexadecimal digits, got {expected_sha256!r}"
        )
    actual = sha256_of_file(path)
    if actual != expected:
        raise ValueError(
            f"sha256 mismatch for {path}: expected {expected}, got {actual}. "
            "The file is damaged, incomplete or not the expected dSprites file; "
            f"download {DSPRITES_NPZ_NAME} again from {DSPRITES_URL}."
        )
    with np.load(path, allow_pickle=False) as npz:
        missing = {"imgs", "latents_classes"} - set(npz.files)
        if missing:
            raise ValueError(f"{path} lacks the arrays {sorted(missing)}")
        images = npz["imgs"]
        classes = npz["latents_classes"]
    if images.ndim != 3 or images.shape[1:] != (64, 64):
        raise ValueError(f"{path}: imgs must be [N, 64, 64], got {images.shape}")
    if classes.ndim != 2 or classes.shape[1] != 6:
        raise ValueError(
            f"{path}: latents_classes must be [N, 6] (colour, shape, scale, "
            f"orientation, posX, posY), got {classes.shape}"
        )
    if np.any(classes[:, 0] != 0):
        raise ValueError(
            f"{path}: the colour column of latents_classes is not constant 0"
        )
    return ArrayGroundTruthData(
        images.astype(np.uint8, copy=False),
        classes[:, 1:],
        factor_sizes=DSPRITES_FACTOR_SIZES,
        factor_names=DSPRITES_FACTOR_NAMES,
        name="dsprites",
        data_source=f"real dSprites from {os.path.basename(path)} (sha256 {actual})",
    )


def load_dsprites_tfds(
    data_dir: str | None = None, batch_size: int = 8192
) -> ArrayGroundTruthData:
    """Load the prepared tensorflow_datasets ``dsprites`` (split ``train``).

    Reads ``image`` and the class labels ``label_shape``, ``label_scale``,
    ``label_orientation``, ``label_x_position``, ``label_y_position`` into
    memory (:func:`zoo.data.tfds_sets.read_tfds`, which says how to prepare it
    when it is missing).  Nothing is downloaded: the
    data set must already be prepared in ``data_dir`` (tfds' default directory
    when ``None``).
    """
    from zoo.data.tfds_sets import read_ground_truth

    labels = ("shape", "scale", "orientation", "x_position", "y_position")
    # The stored pixels are 0/1: max_value=None detects that.
    return read_ground_truth(
        "dsprites", name="dsprites", title="dSprites", factor_names=DSPRITES_FACTOR_NAMES,
        factor_sizes=DSPRITES_FACTOR_SIZES, data_dir=data_dir,
        label_keys=tuple(f"label_{label}" for label in labels), max_value=None,
        batch_size=batch_size, alternative="or use source='npz' or 'procedural'",
    )
