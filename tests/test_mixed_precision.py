"""Training under Keras' mixed_float16 policy: layers compute in float16, the weights, the loss
terms and the update stay float32, and the base step scales the loss (`optimizer.scale_loss`) so
that the LossScaleOptimizer `compile` puts in place gets the gradients it expects."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo import data, models

LEARNING_RATE = 0.01


@pytest.fixture
def mixed_float16():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy(previous)


@pytest.fixture
def points():
    return data.pinwheel(rng=0)[0][:64]


def _model():
    model = models.get("beta_vae", beta=1.0, latent_dim=2, input_shape=(2,), network="mlp",
                       likelihood="gaussian", seed=0)
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE))
    return model


def test_one_step_under_mixed_float16_makes_the_float32_update(mixed_float16, points):
    model = _model()
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.encoder.layers[-1].compute_dtype == "float16"
    assert {v.dtype for v in model.trainable_variables} == {"float32"}
    with tf.GradientTape() as tape:  # the step's own loss: same weights, same training noise
        terms = model.compute_loss_terms(points, training=True)
    assert {t.dtype for t in terms.values()} == {tf.float32}
    gradients = tape.gradient(terms["loss"], model.trainable_variables)
    before = [v.numpy() for v in model.trainable_variables]

    logs = model.train_step(points)
    assert int(logs["nonfinite"]) == 0
    assert float(model.optimizer.dynamic_scale) == model.optimizer.initial_scale  # no overflow
    # SGD moves every weight by −lr·g. Without the scaled loss, the wrapper would divide the
    # gradient by its scale (2¹⁵) and the weights would hardly move.
    for old, variable, gradient in zip(before, model.trainable_variables, gradients):
        expected = -LEARNING_RATE * gradient.numpy()
        np.testing.assert_allclose(variable.numpy() - old, expected, rtol=0.05,
                                   atol=0.02 * np.abs(expected).max() + 1e-7)


def test_fit_under_mixed_float16_gives_finite_decreasing_losses(mixed_float16, points):
    model = _model()
    history = model.fit(points, batch_size=16, epochs=3, verbose=0, shuffle=False).history
    assert np.all(np.isfinite(history["loss"])) and not any(history["nonfinite"])
    assert history["loss"][-1] < history["loss"][0]
