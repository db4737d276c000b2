"""Colour, noisy and scream-like dSprites (docs/methods.md §17), 64x64x3.

Each variant wraps a binary 64x64x1 dSprites data set (by default the
procedural :class:`~zoo.data.dsprites.ProceduralDSprites`; the real data from
``load_dsprites_npz``/``load_dsprites_tfds`` works too) and turns its images
into colour images with *random nuisance*: the factors and their grid are the
base set's, the randomness is not a factor.  As in disentanglement_lib's
variants:

* ``color_dsprites``: the sprite takes a random colour, each RGB channel
  uniform in [0.5, 1]; the background stays black.
* ``noisy_dsprites``: the background is uniform noise in [0, 1] per pixel and
  channel; the sprite stays white (1.0).
* ``scream_dsprites``: the background is a random 64x64 crop of a colourful
  texture, averaged with a random colour ((crop + c) / 2, c uniform in [0, 1]
  per channel), and the sprite's pixels are that background inverted
  (1 - value).  The original variant crops Munch's *The Scream*; that file
  cannot be downloaded here, so the texture is generated procedurally
  (deterministic swirling colour bands, :func:`scream_like_texture`), and
  ``data_source`` says so.

Randomness: the numpy path (``images_from_factors(f, rng)``, ``sample(n, rng)``)
draws it from ``rng``; the ``tf.data`` stream draws it with stateless ops from
a seed derived from ``(seed, step)``, so a stream's batch ``k`` stays a pure
function of ``(seed, start_step + k)``.  ``images_from_factors_tf(f)`` without
a seed draws one from TensorFlow's global generator (not repeatable).  Both
paths share the compositing code (TensorFlow ops); only the draws differ.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from zoo import seeds
from zoo.data.dsprites import ProceduralDSprites
from zoo.data.ground_truth import GroundTruthData, as_rng

__all__ = [
    "ColorDSprites",
    "DSpritesVariant",
    "NoisyDSprites",
    "ScreamDSprites",
    "scream_like_texture",
]

_SIZE = 64


class DSpritesVariant(GroundTruthData):
    """Base of the variants: a binary dSprites set plus per-image random nuisance.

    Subclasses define ``VARIANT`` (the name prefix), ``DESCRIPTION`` and three
    methods: ``_draw_np(n, gen)`` and ``_draw_tf(n, seed)`` return the same
    dict of random arrays (numpy / tensors), ``_compose(sprites, draws)`` turns
    binary sprites ``[n, 64, 64, 1]`` and those draws into RGB images (TF ops).
    """

    VARIANT = ""
    DESCRIPTION = ""

    def __init__(self, base: GroundTruthData | None = None):
        base = ProceduralDSprites() if base is None else base
        if tuple(base.observation_shape) != (_SIZE, _SIZE, 1):
            raise ValueError(
                f"{self.VARIANT}_dsprites needs a binary 64x64x1 dSprites base, "
                f"got observation shape {tuple(base.observation_shape)}"
            )
        super().__init__(
            name=f"{self.VARIANT}_dsprites",
            factor_names=base.factor_names,
            factor_sizes=base.factor_sizes,
            observation_shape=(_SIZE, _SIZE, 3),
            data_source=f"{self.DESCRIPTION}, on {base.data_source}",
        )
        self._base = base

    @property
    def base(self) -> GroundTruthData:
        """The binary dSprites data set underneath."""
        return self._base

    # The three variant-specific pieces.
    def _draw_np(self, n: int, gen: np.random.Generator) -> dict:
        raise NotImplementedError

    def _draw_tf(self, n, seed) -> dict:
        raise NotImplementedError

    def _compose(self, sprites: tf.Tensor, draws: dict) -> tf.Tensor:
        raise NotImplementedError

    def compose(self, sprites, draws: dict) -> np.ndarray:
        """RGB images from binary sprites ``[n, 64, 64, 1]`` and given random draws
        (numpy arrays as returned by ``_draw_np``); for tests and inspection."""
        sprites = tf.convert_to_tensor(np.asarray(sprites, np.float32))
        draws = {k: tf.convert_to_tensor(v) for k, v in draws.items()}
        return self._compose(sprites, draws).numpy()

    def _images_from_valid_factors(self, factors, rng):
        gen = as_rng(rng)
        sprites = self._base.images_from_factors(factors)
        return self.compose(sprites, self._draw_np(len(factors), gen))

    def images_from_factors_seeded_tf(self, factors, seed):
        sprites = self._base.images_from_factors_tf(factors)
        seed = tf.cast(seed, tf.int64)
        return self._compose(sprites, self._draw_tf(tf.shape(sprites)[0], seed))

    def images_from_factors_tf(self, factors, seed=None):
        """RGB images for ``factors``; the nuisance comes from ``seed`` (shape
        [2], stateless) or, when ``None``, from TF's global generator."""
        if seed is None:
            seed = seeds.random_seed()
        return self.images_from_factors_seeded_tf(factors, seed)


class ColorDSprites(DSpritesVariant):
    """dSprites whose sprite has a random colour (each channel U[0.5, 1])."""

    VARIANT = "color"
    DESCRIPTION = "colour dSprites (random sprite colour per image, channels U[0.5, 1])"

    def _draw_np(self, n, gen):
        return {"colour": gen.uniform(0.5, 1.0, size=(n, 3)).astype(np.float32)}

    def _draw_tf(self, n, seed):
        colour = tf.random.stateless_uniform(
            tf.stack([n, 3]), seed=seeds.fold(seed, 0), minval=0.5, maxval=1.0, alg=seeds.ALG
        )
        return {"colour": colour}

    def _compose(self, sprites, draws):
        return sprites * draws["colour"][:, None, None, :]


class NoisyDSprites(DSpritesVariant):
    """dSprites on a background of uniform noise; the sprite stays white."""

    VARIANT = "noisy"
    DESCRIPTION = "noisy dSprites (background U[0, 1] per pixel and channel, white sprite)"

    def _draw_np(self, n, gen):
        return {"noise": gen.random((n, _SIZE, _SIZE, 3), dtype=np.float32)}

    def _draw_tf(self, n, seed):
        noise = tf.random.stateless_uniform(
            tf.stack([n, _SIZE, _SIZE, 3]), seed=seeds.fold(seed, 0), alg=seeds.ALG
        )
        return {"noise": noise}

    def _compose(self, sprites, draws):
        return tf.minimum(sprites + draws["noise"], 1.0)


def scream_like_texture(height: int = 192, width: int = 240, seed: int = 1893) -> np.ndarray:
    """A deterministic colourful texture standing in for *The Scream*.

    Swirling bands: a sum of a few sinusoidal waves over warped coordinates,
    mapped through an orange-yellow-blue palette, plus fine brush-stroke
    stripes.  float32 ``[height, width, 3]`` in [0, 1].  Not the painting.
    """
    gen = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64) / max(height, width)
    field = np.zeros_like(xx)
    for _ in range(6):
        fx, fy = gen.uniform(0.8, 3.5, size=2) * gen.choice([-1.0, 1.0], size=2)
        warp = 0.25 * np.sin(2 * math.pi * (gen.uniform(0.5, 2.0) * yy + gen.uniform()))
        field += gen.uniform(0.5, 1.0) * np.sin(
            2 * math.pi * (fx * (xx + warp) + fy * yy) + gen.uniform(0, 2 * math.pi)
        )
    field = (field - field.min()) / (field.max() - field.min())
    strokes = 0.06 * np.sin(2 * math.pi * 28.0 * (xx + 0.6 * yy + 0.15 * field))
    t = np.clip(field + strokes, 0.0, 1.0)
    # Palette stops: deep blue, blue, orange, yellow, red-orange.
    stops = np.linspace(0.0, 1.0, 5)
    palette = np.array(
        [[0.10, 0.15, 0.40], [0.25, 0.45, 0.75], [0.90, 0.50, 0.15],
         [0.98, 0.80, 0.30], [0.80, 0.25, 0.10]]
    )
    rgb = np.stack([np.interp(t, stops, palette[:, c]) for c in range(3)], axis=-1)
    return rgb.astype(np.float32)


class ScreamDSprites(DSpritesVariant):
    """dSprites on a random crop of a colourful texture, the sprite inverted.

    ``texture``: float32 ``[H, W, 3]`` in [0, 1] with H, W >= 64; by default
    :func:`scream_like_texture` (procedural; the painting is not available).
    """

    VARIANT = "scream"
    DESCRIPTION = (
        "scream-like dSprites (background: random 64x64 crop of a procedurally "
        "generated colourful texture standing in for The Scream, which cannot be "
        "downloaded here, averaged with a random colour; sprite = inverted background)"
    )

    def __init__(self, base: GroundTruthData | None = None, texture=None):
        texture = scream_like_texture() if texture is None else np.asarray(texture, np.float32)
        if texture.ndim != 3 or texture.shape[2] != 3 or min(texture.shape[:2]) < _SIZE:
            raise ValueError(f"texture must be [H >= 64, W >= 64, 3], got {texture.shape}")
        if texture.min() < 0.0 or texture.max() > 1.0:
            raise ValueError("texture values must lie in [0, 1]")
        self._texture = texture
        super().__init__(base)

    @property
    def texture(self) -> np.ndarray:
        return self._texture.copy()

    def _draw_np(self, n, gen):
        height, width = self._texture.shape[:2]
        return {
            "top": gen.integers(0, height - _SIZE + 1, size=n, dtype=np.int64),
            "left": gen.integers(0, width - _SIZE + 1, size=n, dtype=np.int64),
            "tint": gen.random((n, 3), dtype=np.float32),
        }

    def _draw_tf(self, n, seed):
        height, width = self._texture.shape[:2]
        return {
            "top": tf.random.stateless_uniform(
                tf.stack([n]), seed=seeds.fold(seed, 0), minval=0, maxval=height - _SIZE + 1,
                dtype=tf.int64, alg=seeds.ALG,
            ),
            "left": tf.random.stateless_uniform(
                tf.stack([n]), seed=seeds.fold(seed, 1), minval=0, maxval=width - _SIZE + 1,
                dtype=tf.int64, alg=seeds.ALG,
            ),
            "tint": tf.random.stateless_uniform(
                tf.stack([n, 3]), seed=seeds.fold(seed, 2), alg=seeds.ALG
            ),
        }

    def _compose(self, sprites, draws):
        offsets = tf.range(_SIZE, dtype=tf.int64)
        rows = draws["top"][:, None] + offsets[None, :]
        cols = draws["left"][:, None] + offsets[None, :]
        patch = tf.gather(tf.constant(self._texture), rows)  # [n, 64, W, 3]
        patch = tf.gather(patch, cols, axis=2, batch_dims=1)  # [n, 64, 64, 3]
        patch = 0.5 * (patch + draws["tint"][:, None, None, :])
        return tf.where(sprites > 0.5, 1.0 - patch, patch)
