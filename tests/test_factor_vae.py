"""FactorVAE (docs/methods.md §4): discriminator, permute_dims, the two-step train_step, both optimisers
through save/load and through a killed and resumed training run."""
import json
import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.resume_harness import kill_after_first_checkpoint_and_resume
from zoo import models
from zoo.decomposition import gaussian_total_correlation
from zoo.models.factor_vae import (
    FactorVAE,
    build_discriminator,
    discriminator_terms,
    permute_dims,
    tc_estimate,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A narrow discriminator keeps these tests fast; the docs/methods.md §4 size is the default.
FAST = {"latent_dim": 4, "seed": 3, "gamma": 10.0, "discriminator_units": 32}


# ------------------------------------------------------------------------ the discriminator
def test_discriminator_is_six_dense_1000_leaky_relu_0_2_layers_and_two_logits():
    discriminator = build_discriminator(10)
    dense = [layer for layer in discriminator.layers if isinstance(layer, keras.layers.Dense)]
    leaky = [layer for layer in discriminator.layers if isinstance(layer, keras.layers.LeakyReLU)]
    assert [layer.units for layer in dense] == [1000] * 6 + [2]
    assert len(leaky) == 6 and all(layer.negative_slope == pytest.approx(0.2) for layer in leaky)
    assert discriminator.count_params() == 5_018_002  # "about 5.0M parameters for d = 10"


def test_tc_estimate_is_the_mean_logit_difference():
    logits = tf.constant([[2.0, 0.5], [0.0, 1.0]])
    assert float(tc_estimate(logits)) == pytest.approx(((2.0 - 0.5) + (0.0 - 1.0)) / 2)


# ------------------------------------------------------------------------ permute_dims
def test_permute_dims_keeps_each_column_and_destroys_cross_column_dependence():
    t = tf.random.stateless_normal((2000, 1), seed=[0, 1])
    z = tf.tile(t, [1, 5])  # a perfectly correlated code: every column is the same
    permuted = permute_dims(z, tf.random.stateless_normal(z.shape, seed=[0, 2])).numpy()
    for j in range(5):  # each column's multiset of values is unchanged
        np.testing.assert_array_equal(np.sort(permuted[:, j]), np.sort(z.numpy()[:, j]))
    correlation = np.corrcoef(permuted, rowvar=False)
    off_diagonal = correlation[~np.eye(5, dtype=bool)]
    assert np.all(np.abs(off_diagonal) < 0.1), correlation  # was 1 everywhere


def test_permute_dims_is_a_function_of_its_noise_and_the_model_draws_it_from_seed_and_step():
    z = tf.reshape(tf.range(40, dtype=tf.float32), (10, 4))
    noise = tf.random.stateless_normal(z.shape, seed=[5, 6])
    np.testing.assert_array_equal(permute_dims(z, noise), permute_dims(z, noise))
    model = FactorVAE(**FAST)
    first = model.training_noise(z.shape, purpose=2)
    np.testing.assert_array_equal(first, FactorVAE(**FAST).training_noise(z.shape, purpose=2))
    model.global_step.assign_add(1)
    assert not np.array_equal(first, model.training_noise(z.shape, purpose=2))


# ------------------------------------------------------------------------ density-ratio trick
def _train_discriminator_alone(covariance, steps=600, batch_size=512):
    """Train D on codes z ~ N(0, Σ) (class 0) against permute_dims of an independent batch
    (class 1), as FactorVAE's discriminator step does; return its TC estimate on fresh codes."""
    cholesky = tf.constant(np.linalg.cholesky(covariance), tf.float32)
    discriminator = build_discriminator(2, units=128, num_hidden=3)
    # lr 1e-3 (docs/methods.md §4: 1e-4) so that a few hundred steps suffice; β1, β2, ε as there.
    optimizer = keras.optimizers.Adam(1e-3, beta_1=0.5, beta_2=0.9, epsilon=1e-8)

    def codes(seed):
        return tf.matmul(tf.random.stateless_normal((batch_size, 2), seed=seed), cholesky,
                         transpose_b=True)

    @tf.function
    def step(i):
        z, other = codes(tf.stack([1, i])), codes(tf.stack([2, i]))
        noise = tf.random.stateless_normal(other.shape, seed=tf.stack([3, i]))
        with tf.GradientTape() as tape:
            loss = discriminator_terms(discriminator, z, permute_dims(other, noise),
                                       training=True)["discriminator_loss"]
        variables = discriminator.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

    for i in range(steps):
        step(tf.constant(i))
    held_out = tf.matmul(tf.random.stateless_normal((20_000, 2), seed=[9, 9]), cholesky,
                         transpose_b=True)
    return float(tc_estimate(discriminator(held_out)))


def test_discriminator_alone_estimates_the_closed_form_tc_of_correlated_codes():
    keras.utils.set_random_seed(0)
    covariance = np.array([[1.0, 0.8], [0.8, 1.0]])
    closed_form = gaussian_total_correlation(covariance)  # −½ log(1 − 0.8²) ≈ 0.511 nats
    assert _train_discriminator_alone(covariance) == pytest.approx(closed_form, abs=0.08)


def test_discriminator_alone_estimates_zero_tc_on_independent_codes():
    keras.utils.set_random_seed(0)
    assert _train_discriminator_alone(np.eye(2)) == pytest.approx(0.0, abs=0.05)


# ------------------------------------------------------------------------ losses and train_step
def test_vae_loss_is_recon_plus_kl_plus_gamma_tc(binary_images):
    model = FactorVAE(**FAST)
    terms = model.compute_loss_terms(binary_images, training=True)
    assert set(terms) == {"loss", "recon", "kl", "elbo", "tc_estimate"}
    assert float(terms["loss"]) == pytest.approx(
        float(terms["recon"] + terms["kl"] + 10.0 * terms["tc_estimate"]), rel=1e-6)
    posterior = model.encode(binary_images)
    z = posterior["mean"] + tf.exp(0.5 * posterior["logvar"]) * model.training_noise(
        tf.shape(posterior["mean"]))  # the step's reparameterised sample
    expected_tc = tc_estimate(model.discriminator(z))
    assert float(terms["tc_estimate"]) == pytest.approx(float(expected_tc), rel=1e-6)


def test_optimisers_have_the_methods_settings_and_each_holds_only_its_variables():
    model = FactorVAE(**FAST)
    model.compile()
    vae, discriminator = model.optimizer, model.discriminator_optimizer
    assert (vae.beta_1, vae.beta_2, vae.epsilon) == (0.9, 0.999, 1e-8)
    assert (discriminator.beta_1, discriminator.beta_2, discriminator.epsilon) == (0.5, 0.9, 1e-8)
    assert float(vae.learning_rate) == float(discriminator.learning_rate) == pytest.approx(1e-4)
    d_ids = {id(v) for v in model.discriminator.trainable_variables}
    assert not d_ids & {id(v) for v in model.vae_variables}
    assert len(model.vae_variables) + len(d_ids) == len(model.trainable_variables)
    assert {id(v) for v in vae._trainable_variables} == {id(v) for v in model.vae_variables}
    assert {id(v) for v in discriminator._trainable_variables} == d_ids


def _copies(**kwargs):
    """Two FactorVAEs with identical initial weights."""
    first = FactorVAE(**{**FAST, **kwargs})
    second = FactorVAE(**{**FAST, **kwargs})
    second.set_weights(first.get_weights())
    return first, second


def test_each_update_moves_only_its_own_network(binary_images):
    frozen_d, frozen_vae = _copies()
    frozen_d.compile(discriminator_optimizer=keras.optimizers.Adam(0.0))
    frozen_vae.compile(optimizer=keras.optimizers.Adam(0.0))
    before = [v.numpy() for v in frozen_d.discriminator.weights]
    vae_before = [v.numpy() for v in frozen_vae.vae_variables]
    frozen_d.train_step(binary_images)
    frozen_vae.train_step(binary_images)
    for a, v in zip(before, frozen_d.discriminator.weights):   # D frozen, VAE step only
        np.testing.assert_array_equal(a, v.numpy())
    for a, v in zip(vae_before, frozen_vae.vae_variables):     # VAE frozen, D step only
        np.testing.assert_array_equal(a, v.numpy())
    assert not all(np.array_equal(a, v.numpy())
                   for a, v in zip(before, frozen_vae.discriminator.weights))


def test_the_second_half_of_the_batch_feeds_only_the_discriminator(binary_images):
    """With batches_per_step = 2 the step's images are split into x (VAE update) and x' (the
    permuted codes of the discriminator update)."""
    a, b = _copies()
    assert a.batches_per_step == 2
    a.compile()
    b.compile()
    x, other = binary_images[:8], binary_images[8:]
    logs_a = a.train_step(np.concatenate([x, other]))
    logs_b = b.train_step(np.concatenate([x, np.zeros_like(other)]))
    assert float(logs_a["recon"]) == float(logs_b["recon"])
    for u, v in zip(a.vae_variables, b.vae_variables):
        np.testing.assert_array_equal(u.numpy(), v.numpy())
    assert not all(np.array_equal(u.numpy(), v.numpy())
                   for u, v in zip(a.discriminator.weights, b.discriminator.weights))


def test_same_batch_option_uses_one_batch_per_step_and_fit_logs_every_term(binary_images):
    model = FactorVAE(same_batch=True, **FAST)
    assert model.batches_per_step == 1
    model.compile()
    history = model.fit(binary_images, batch_size=4, epochs=2, verbose=0)
    assert int(model.global_step.numpy()) == 8  # once per iteration, not once per optimiser
    assert int(model.discriminator_optimizer.iterations.numpy()) == 8
    assert {"recon", "kl", "tc_estimate", "discriminator_loss",
            "discriminator_accuracy"} <= set(history.history)


# ------------------------------------------------------------------------ saving and resuming
def test_save_load_restores_both_optimisers_and_fit_continues_identically(binary_images,
                                                                         tmp_path):
    model = FactorVAE(**FAST)
    model.compile()
    model.fit(binary_images, batch_size=8, epochs=2, verbose=0)
    model.save(tmp_path / "factor_vae.keras")
    loaded = models.load(tmp_path / "factor_vae.keras")
    np.testing.assert_array_equal(loaded(binary_images), model(binary_images))
    np.testing.assert_array_equal(loaded.discriminator(model.encode(binary_images)["mean"]),
                                  model.discriminator(model.encode(binary_images)["mean"]))
    # The discriminator's optimizer comes back with its settings and its slots.
    assert loaded.discriminator_optimizer.beta_1 == 0.5
    assert loaded.discriminator_optimizer.beta_2 == 0.9
    # (optimizer variables are matched by position, as load_model restores them)
    index, slot = next((i, v) for i, v in enumerate(model.discriminator_optimizer.variables)
                       if "momentum" in v.path and v.shape == (4, 32))
    loaded_slot = loaded.discriminator_optimizer.variables[index]
    assert "momentum" in loaded_slot.path and np.any(slot.numpy() != 0)
    np.testing.assert_array_equal(loaded_slot.numpy(), slot.numpy())
    assert int(loaded.discriminator_optimizer.iterations.numpy()) == 4
    # One more epoch on both: identical weights only if both optimisers' states were restored.
    model.fit(binary_images, batch_size=8, epochs=1, verbose=0, shuffle=False)
    loaded.fit(binary_images, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)


# ------------------------------------------------------------------------ the published copy
def _discriminator_arrays(path):
    """Names of the weight arrays a .keras file stores under the discriminator."""
    import zipfile

    import h5py

    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as f, \
            h5py.File(f, "r") as weights:
        found = []
        weights.visititems(lambda name, obj: found.append(name)
                           if isinstance(obj, h5py.Dataset) and name.startswith("discriminator")
                           else None)
    return found


def test_a_published_factor_vae_leaves_the_discriminator_out_and_fine_tunes(binary_images,
                                                                            tmp_path):
    from trainers import zoo

    model = FactorVAE(**FAST)
    model.compile()
    model.fit(binary_images, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "full.keras")
    zoo.save_without_optimizer(tmp_path / "full.keras", tmp_path / "published.keras")
    assert _discriminator_arrays(tmp_path / "full.keras")  # the check can see them
    assert _discriminator_arrays(tmp_path / "published.keras") == []

    published = keras.models.load_model(tmp_path / "published.keras")
    assert not published.discriminator.built and not published.get_config()["discriminator_built"]
    np.testing.assert_array_equal(published(binary_images), model(binary_images))
    np.testing.assert_array_equal(published.encode(binary_images)["mean"],
                                  model.encode(binary_images)["mean"])
    assert int(published.global_step.numpy()) == int(model.global_step.numpy())
    # Evaluation and fine-tuning give it a fresh discriminator (and that optimizer's slots) ...
    assert "discriminator_loss" in published.evaluate(binary_images, batch_size=8, verbose=0,
                                                      return_dict=True)
    history = published.fit(binary_images, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["discriminator_loss"][-1])
    assert published.get_config()["discriminator_built"]
    assert len(published.discriminator_optimizer.variables) == \
        len(model.discriminator_optimizer.variables)
    # ... which its own saves then keep, as any FactorVAE's.
    published.save(tmp_path / "tuned.keras")
    tuned = models.load(tmp_path / "tuned.keras")
    codes = model.encode(binary_images)["mean"]
    np.testing.assert_array_equal(tuned.discriminator(codes), published.discriminator(codes))


def test_a_run_can_start_from_a_published_factor_vae(binary_images, tmp_path):
    from trainers import train, zoo

    model = FactorVAE(**FAST)
    model.compile()
    model.save(tmp_path / "full.keras")
    zoo.save_without_optimizer(tmp_path / "full.keras", tmp_path / "published.keras")
    run = FactorVAE(**{**FAST, "seed": 4})
    run.compile()
    train.initialise_from(run, tmp_path / "published.keras")
    np.testing.assert_array_equal(run.encode(binary_images)["mean"],
                                  model.encode(binary_images)["mean"])


def _train_command(out):
    return [sys.executable, "-m", "trainers.train", "--model=factor_vae", "--model_arg=gamma=10",
            "--model_arg=discriminator_units=64", "--latent_dim=4", "--batch_size=16",
            "--steps=30", "--checkpoint_every=10", "--log_every=10", "--image_every=1000",
            "--eval_batches=1", "--noexport", f"--output_dir={out}"]


def _state(path):
    model = models.load(path)
    return ([v.numpy() for v in model.weights] + [v.numpy() for v in model.optimizer.variables]
            + [v.numpy() for v in model.discriminator_optimizer.variables])


@pytest.mark.slow  # three `trainers.train` processes: about 3 minutes on a busy 2-core machine
def test_a_killed_factor_vae_run_resumes_to_the_same_state_as_an_uninterrupted_run(tmp_path):
    uninterrupted, interrupted, killed_at = kill_after_first_checkpoint_and_resume(
        _train_command, tmp_path)
    assert 0 < killed_at < 30
    # Weights of both networks and both optimisers' variables are bit-identical.
    for a, b in zip(_state(uninterrupted / "model.keras"), _state(interrupted / "model.keras")):
        np.testing.assert_array_equal(a, b)
    assert json.loads((interrupted / "results.json").read_text())["steps"] == 30
