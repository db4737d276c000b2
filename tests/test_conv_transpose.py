"""zoo.networks.Conv2DTranspose (issue 18): Keras' layer computed faster on CPU where the output has
few channels. Same weights, same saved form, and the same numbers to float rounding: the layer's
outputs and gradients, whole training steps of the models that use it, and models saved with
either class."""
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo import models, networks
from zoo.models import cascade_vae_fast_step as fast_step

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _close(actual, expected, rtol=1e-5):
    """Equal to float rounding: every element within rtol of the largest magnitude."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    scale = float(np.abs(expected).max()) + 1e-30
    assert float(np.abs(actual - expected).max()) <= rtol * scale


def _pair(filters, channels_in, size, activation):
    """(ours, Keras') built alike, with the same weights."""
    ours = networks.Conv2DTranspose(filters, 4, strides=2, padding="same", activation=activation)
    theirs = keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same",
                                          activation=activation)
    for layer in (ours, theirs):
        layer.build((None, size, size, channels_in))
    rng = np.random.default_rng(filters + channels_in)
    theirs.set_weights([rng.normal(size=w.shape).astype("float32") for w in theirs.weights])
    ours.set_weights(theirs.get_weights())
    return ours, theirs


# (output channels, input channels, input size): the decoders' last layers (conv64 32 → 1 or 3,
# dcgan32 64 → 3, conv28 32 → 1 on 14×14), and a wide layer that keeps Keras' computation.
CASES = [(1, 32, 32), (3, 32, 32), (3, 64, 16), (1, 32, 14), (32, 64, 8)]


@pytest.mark.parametrize("filters, channels_in, size", CASES)
@pytest.mark.parametrize("activation", [None, "relu"])
def test_outputs_and_gradients_equal_keras(filters, channels_in, size, activation):
    ours, theirs = _pair(filters, channels_in, size, activation)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(5, size, size, channels_in)), tf.float32)
    upstream = tf.constant(rng.normal(size=(5, 2 * size, 2 * size, filters)), tf.float32)
    results = []
    for layer in (ours, theirs):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * upstream)
        results.append([y] + tape.gradient(loss, [x, layer.kernel, layer.bias]))
    for a, b in zip(*results):
        _close(a, b)


def test_the_fast_path_is_taken_only_for_few_output_channels():
    x = tf.zeros((1, 32, 32, 32))
    assert networks.Conv2DTranspose(1, 4, strides=2, padding="same")._overlap_add_applies(x)
    assert not networks.Conv2DTranspose(32, 4, strides=2, padding="same")._overlap_add_applies(x)
    assert not networks.Conv2DTranspose(1, 3, strides=2, padding="same")._overlap_add_applies(x)


def test_the_builders_use_it_and_keras_conv_transpose_swaps_in_keras_own():
    decoder = networks.build_decoder("conv64", 10, (64, 64, 1))
    assert all(type(layer) is networks.Conv2DTranspose for layer in decoder.layers[3:])
    with networks.keras_conv_transpose():
        decoder = networks.build_decoder("conv64", 10, (64, 64, 1))
    assert all(type(layer) is keras.layers.Conv2DTranspose for layer in decoder.layers[3:])
    assert type(networks.conv_transpose(4, 4)) is networks.Conv2DTranspose


def _twins(name, **kwargs):
    """The model built with our layer and with Keras', with the same weights, compiled with plain
    SGD: its update is proportional to the gradient, so equal updates mean equal gradients (Adam's
    first steps move every weight by about ± its learning rate, amplifying the rounding of
    gradients near zero)."""
    ours = models.get(name, seed=0, **kwargs)
    with networks.keras_conv_transpose():
        theirs = models.get(name, seed=0, **kwargs)
    for model in (ours, theirs):
        second = ({"discriminator_optimizer": keras.optimizers.SGD(1e-3)}
                  if hasattr(model, "discriminator_optimizer") else {})
        model.compile(optimizer=keras.optimizers.SGD(1e-3), **second)
    theirs.set_weights(ours.get_weights())
    return ours, theirs


# (model, hyperparameters, starting step, images): every model whose networks have a fast layer.
STEPS = [
    ("beta_vae", {}, 0, (64, 64, 1)),
    ("factor_vae", {}, 0, (64, 64, 1)),
    ("cascade_vae", {}, 0, (64, 64, 1)),
    ("cascade_vae", {}, 80_000, (64, 64, 1)),  # the discrete stage's hand-made backward pass
    ("beta_vae", {"network": "dcgan32", "input_shape": [32, 32, 3]}, 0, (32, 32, 3)),
    ("beta_vae", {"network": "conv28", "input_shape": [28, 28, 1]}, 0, (28, 28, 1)),
    ("infogan", {}, 0, (28, 28, 1)),
]


def check_twin_steps(name, kwargs, start, shape):
    """Three training steps of `name` with our layer and with Keras': equal loss terms, and equal
    updates at the first step. The weights come from Keras' global seed, set here."""
    keras.utils.set_random_seed(0)
    ours, theirs = _twins(name, **kwargs)
    rng = np.random.default_rng(1)
    batch = 16 * ours.batches_per_step
    for model in (ours, theirs):
        model.global_step.assign(start)
    before = [w.numpy() for w in ours.trainable_weights]
    for step in range(3):
        x = tf.constant(rng.random((batch,) + shape) > 0.8, tf.float32)
        terms = [model.train_step(x) for model in (ours, theirs)]
        for key in terms[1]:
            assert float(terms[0][key]) == pytest.approx(float(terms[1][key]), rel=1e-5,
                                                         abs=1e-6), (step, key)
        if step == 0:
            _check_equal_updates(before, ours.trainable_weights, theirs.trainable_weights)


TWIN_STEPS = """
import json
from tests.test_conv_transpose import STEPS, check_twin_steps
results = []
for case in STEPS:
    try:
        check_twin_steps(*case)
        results.append("ok")
    except AssertionError as error:
        results.append(f"{error}")
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def twin_steps():
    """`check_twin_steps` of every STEPS case, run in a fresh interpreter. In a process that had
    first run tests/test_pretrained.py and tests/test_pretrained_presets.py (as a pytest-xdist
    worker may), the InfoGAN case failed in 4 of 5 runs (after either file alone: never): the
    generator's first kernel updated up to 1% differently under the two layers, where a fresh
    process stays within the tolerance (19 seeds, and seed 0 25 times in one process). Which
    state does that is not known yet; this test checks the layer, so it runs where no other test
    has changed the process."""
    out = subprocess.run([sys.executable, "-c", TWIN_STEPS], cwd=REPO, check=False,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]  # an error other than a failed check
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", range(len(STEPS)), ids=[f"{n}-{s}-{'x'.join(map(str, shape))}"
                                                         for n, _, s, shape in STEPS])
def test_training_steps_equal_those_with_keras_layers(case, twin_steps):
    assert twin_steps[case] == "ok", (STEPS[case], twin_steps[case])


def _check_equal_updates(before, ours, theirs):
    """Each tensor's update equal to 1e-4 of its largest element, up to the rounding of the
    weights themselves and 1e-5 of the model's largest update (a bias in front of a batch norm has
    a true gradient of zero: its update is rounding alone)."""
    updates = [(a.numpy() - w, b.numpy() - w, w) for w, a, b in zip(before, ours, theirs)]
    largest = max(np.abs(expected).max() for _, expected, _ in updates)
    for (update, expected, start), variable in zip(updates, theirs):
        tolerance = (1e-4 * np.abs(expected).max() + 1e-5 * largest
                     + 4 * np.finfo(np.float32).eps * np.abs(start).max())
        assert np.abs(update - expected).max() <= tolerance, variable.path


def test_cascade_vae_keeps_its_fast_discrete_step():
    model = models.get("cascade_vae", seed=0)
    assert model.reuse_unary_pass and fast_step.supports(model.decoder)


def test_model_files_load_into_either_class_with_equal_outputs(tmp_path, binary_images):
    with networks.keras_conv_transpose():
        theirs = models.get("beta_vae", seed=0)
    theirs(binary_images)
    theirs.save(tmp_path / "keras_layers.keras")
    ours = keras.models.load_model(tmp_path / "keras_layers.keras")
    assert type(ours.decoder.layers[-1]) is networks.Conv2DTranspose
    for a, b in zip(ours.weights, theirs.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    _close(ours.decode(tf.ones((4, 10))), theirs.decode(tf.ones((4, 10))))
    _close(ours(binary_images), theirs(binary_images))
    ours.save(tmp_path / "ours.keras")
    with networks.keras_conv_transpose():
        back = keras.models.load_model(tmp_path / "ours.keras")
    assert type(back.decoder.layers[-1]) is keras.layers.Conv2DTranspose
    for a, b in zip(back.weights, theirs.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_a_published_file_gives_the_outputs_it_gave_with_keras_layers(binary_images):
    """A .keras file written before the layer existed: the CascadeVAE seed run's best.keras as
    stashed at step 31,000 (commit 8c8c8df; the stash has since moved on, so the file is kept in
    tests/fixtures, the same git blob)."""
    path = os.path.join(REPO, "tests", "fixtures", "cascade_vae_best_before_conv_layer.keras")
    ours = keras.models.load_model(path)
    with networks.keras_conv_transpose():
        theirs = keras.models.load_model(path)
    for a, b in zip(ours.weights, theirs.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    _close(ours.representation(binary_images), theirs.representation(binary_images))
    _close(ours(binary_images), theirs(binary_images))


DETERMINISTIC_STEPS = """
import keras
import numpy as np
import tensorflow as tf
tf.config.experimental.enable_op_determinism()
from zoo import models
x = tf.constant(np.random.default_rng(0).random((8, 64, 64, 1)) > 0.8, tf.float32)


def losses():
    keras.utils.set_random_seed(0)
    model = models.get("beta_vae", seed=0)
    model.compile()
    step = tf.function(model.train_step)
    return [float(step(x)["loss"]) for _ in range(2)]


first, again = losses(), losses()
assert first == again, (first, again)
print("ok")
"""


# Slow (about a minute or more on 2 cores): `make test-all` runs it.
@pytest.mark.slow
def test_training_steps_run_and_repeat_exactly_under_op_determinism():
    """trainers.train enables op determinism: the layer's ops (and its backward's) are allowed and
    a rerun repeats the steps exactly."""
    out = subprocess.run([sys.executable, "-c", DETERMINISTIC_STEPS], cwd=REPO, check=True,
                         capture_output=True, text=True, timeout=600)
    assert out.stdout.strip().endswith("ok")
