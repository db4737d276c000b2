"""How the package seeds its random draws: the one scheme, and every purpose it serves.

Training draws (data batches, reparameterisation noise, corruption, a GAN's codes) are pure
functions of (seed, step, purpose), made with TensorFlow's stateless random ops, so that a run
resumed from a checkpoint makes exactly the draws an uninterrupted run makes (a
`keras.random.SeedGenerator`'s state is not written into `.keras` files, so it cannot carry a
resumed run). A stateless op takes an int64 pair as its seed; this module makes those pairs.

The scheme
----------
A draw's seed is the pair [seed, step] with its purposes folded in one after the other by
`tf.random.experimental.stateless_fold_in` (Philox, named rather than left to "auto_select", so
the numbers do not depend on the device):

    derive(seed, step, p₁, …, pₙ) = fold(…fold([seed, step], p₁)…, pₙ)

A purpose is an integer named below; folding in a further one splits a draw into independent
draws (a batch's factor columns 0 … K−1, say). Purposes in use:

    DATA_STREAM        a data set's batch `step`: derive(seed, step, DATA_STREAM); its factor
                       column k: fold(batch seed, k); its observation noise:
                       fold(batch seed, OBSERVATION_NOISE), which a noisy data set splits
                       further (fold(noise seed, 0), fold(noise seed, 1), …)
    DC_IGN_BATCHES     DC-IGN's single-factor batches: derive(seed, step, DC_IGN_BATCHES, i)
                       for the batch type, free factors, fixed factors and varied values
                       (i = 0 … 3)
    SCAN_SYMBOLS       SCAN's symbols: derive(seed XOR SCAN_SYMBOLS, step, k), k its masks
                       (0 …), other factors (10, 11) and operator (20); the purpose is XORed
                       into the seed rather than folded in, as this stream was first written

Frozen layouts
--------------
A model's training draws predate the scheme and keep their own layout, [seed·1009 + purpose, step]
(`training_seed`; the models number their purposes, 0 being the reparameterisation noise), and
TFP's samplers take it as int32 (`as_tfp_seed`). Published and stored runs, and runs in progress
that resume from their checkpoints, depend on these numbers: moving them onto `derive` would change
every training trajectory. New draws use `derive`.

Draws that need not survive a resume (metrics, pictures, `model.sample`) use numpy Generators
seeded by an int (`zoo.data.as_rng`) or a `keras.random.SeedGenerator`.
"""
import numpy as np
import tensorflow as tf

#: The RNG algorithm of every stateless draw and fold.
ALG = "philox"

# Purposes (see the module docstring). DATA_STREAM doubles as the data streams' version: changing
# it would change every stream's batches.
DATA_STREAM = 1
OBSERVATION_NOISE = 2**31 - 1  # factor columns fold in 0 … K−1, so this stays clear of them
DC_IGN_BATCHES = 0x0DC16
SCAN_SYMBOLS = 0x5CA1

# The frozen model layout: seed·1009 + purpose, so purposes 0 … 1008 of two seeds never meet.
_MODEL_STRIDE = 1009
_TFP_MODULUS = 2**31 - 1


def fold(seed, purpose):
    """A stateless seed [2] for `purpose` within the draw of `seed` [2] (int64)."""
    return tf.random.experimental.stateless_fold_in(seed, purpose, alg=ALG)


def derive(seed, step, *purposes):
    """The int64 [2] seed of the draw `purposes` of training step `step` of a run seeded `seed`."""
    key = tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64)])
    for purpose in purposes:
        key = fold(key, purpose)
    return key


def training_seed(seed, step, purpose=0):
    """A model's seed [2] (int64) of its training draw `purpose` at `step` (frozen layout)."""
    return tf.stack([tf.constant(seed * _MODEL_STRIDE + purpose, tf.int64),
                     tf.cast(step, tf.int64)])


def as_tfp_seed(seed):
    """A seed [2] as the int32 pair TFP's `sample(seed=...)` takes (each entry mod 2³¹ − 1)."""
    return tf.cast(tf.math.floormod(tf.cast(seed, tf.int64), _TFP_MODULUS), tf.int32)


def resolve(seed):
    """`seed` as an int, or a fresh one from the OS's entropy when it is None: a model always has
    a concrete seed, stored in its config, so a saved model resumes the same draws."""
    return int(np.random.SeedSequence().entropy % 2**31) if seed is None else int(seed)


def random_seed():
    """A fresh seed [2] from TensorFlow's global generator, for draws that need not repeat."""
    return tf.random.uniform([2], minval=0, maxval=2**62, dtype=tf.int64)
