"""Process-wide settings a training run needs, held for the run only.

`trainers.train.run` is also called in-process (by tests, notebooks, `trainers.demo` and
`trainers.experiments`), so what it sets for itself must not stay behind: op determinism and the
global random seeds are set on entry to these context managers and restored on exit, also when
the run fails. TensorFlow's thread pools are not among them: they can only be sized before
TensorFlow starts, so `trainers.train --threads` sizes them in the command's main() and `run`
never touches them.
"""
import contextlib
import random

import keras
import numpy as np

# Keras keeps its global seed and seed generator here and exports a setter only.
from keras.src.backend.common import global_state as keras_state
from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED

# TensorFlow exports only tf.config.experimental.enable_op_determinism; its reader and its inverse
# are in this module (tensorflow's own tests use them), as is the eager global seed's getter.
from tensorflow.python.eager import context as tf_context
from tensorflow.python.framework import config as tf_config


def _set_op_determinism(enabled):
    if enabled:
        tf_config.enable_op_determinism()
    else:
        tf_config.disable_op_determinism()


@contextlib.contextmanager
def op_determinism(enabled):
    """Deterministic TF ops on (`enabled`) or off inside the block; as before after it."""
    before = tf_config.is_op_determinism_enabled()
    _set_op_determinism(enabled)
    try:
        yield
    finally:
        _set_op_determinism(before)


def random_state():
    """The global random state `keras.utils.set_random_seed` sets: Python's and NumPy's
    generators, Keras' global seed and seed generator, TensorFlow's global seed and the generator
    it derives op seeds from."""
    tf_rng = getattr(tf_context.context(), "_rng", None)
    # NumPy's legacy global generator is the state set_random_seed sets: saved, not used.
    return {"python": random.getstate(), "numpy": np.random.get_state(),  # noqa: NPY002
            "keras_seed": keras_state.get_global_attribute(GLOBAL_RANDOM_SEED),
            "keras_generator": keras_state.get_global_attribute(GLOBAL_SEED_GENERATOR),
            "tf_seed": tf_context.global_seed(),
            "tf_op_seeds": None if tf_rng is None else tf_rng.getstate()}


def _restore(state):
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    keras_state.set_global_attribute(GLOBAL_RANDOM_SEED, state["keras_seed"])
    keras_state.set_global_attribute(GLOBAL_SEED_GENERATOR, state["keras_generator"])
    tf_context.set_global_seed(state["tf_seed"])
    if state["tf_op_seeds"] is not None:
        tf_context.context()._rng.setstate(state["tf_op_seeds"])


@contextlib.contextmanager
def global_seeds(seed):
    """`keras.utils.set_random_seed(seed)` inside the block, the caller's random state after it.
    (Setting TF's global seed also resets the counters of stateful random kernels, which nothing
    can read back; a caller relying on them gets them reset.)"""
    before = random_state()
    keras.utils.set_random_seed(seed)
    try:
        yield
    finally:
        _restore(before)
