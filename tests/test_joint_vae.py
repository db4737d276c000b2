"""JointVAE: presets, capacity schedules, the loss, Gumbel-softmax codes in training and hard codes
at evaluation. (The shared harness in test_models.py covers saving, fine-tuning and serving.)"""
import numpy as np
import pytest
import tensorflow as tf

from zoo import distributions, models
from zoo.models.joint_vae import PRESETS

SMALL = {"latent_dim": 4, "seed": 3}


def test_dsprites_preset_is_the_methods_setting():
    model = models.JointVAE(seed=0)
    assert model.preset == "dsprites" and model.latent_dim == 6
    assert model.categorical_dims == [3] and model.temperature == pytest.approx(0.67)
    assert model.cont_capacity == [0.0, 40.0, 300_000, 150.0]
    assert model.disc_capacity == [0.0, 1.1, 300_000, 150.0]
    model.compile()
    assert float(model.optimizer.learning_rate) == pytest.approx(5e-4)
    assert model.optimizer.epsilon == 1e-8


@pytest.mark.parametrize("preset, cont, disc", [
    ("mnist", [0.0, 5.0, 25_000, 30.0], [0.0, 5.0, 25_000, 30.0]),
    ("fashion_mnist", [0.0, 5.0, 50_000, 100.0], [0.0, 10.0, 50_000, 100.0]),
])
def test_mnist_presets(preset, cont, disc):
    assert PRESETS[preset]["cont_capacity"] == cont
    assert PRESETS[preset]["disc_capacity"] == disc
    assert PRESETS[preset]["categorical_dims"] == [10]


def test_explicit_arguments_override_the_preset_and_survive_the_config():
    model = models.JointVAE(preset="mnist", categorical_dims=[3, 2], **SMALL)
    assert model.latent_dim == 4 and model.categorical_dims == [3, 2]
    assert model.cont_capacity == PRESETS["mnist"]["cont_capacity"]
    assert model.decoder_input_dim == 4 + 5
    assert models.JointVAE.from_config(model.get_config()).get_config() == model.get_config()


def test_capacities_follow_the_linear_schedules_and_the_categorical_cap():
    model = models.JointVAE(cont_capacity=[1.0, 11.0, 10, 5.0], disc_capacity=[0.0, 5.0, 10, 5.0],
                            **SMALL)
    for t, cont, disc in [(0, 1.0, 0.0), (5, 6.0, 2.5), (10, 11.0, np.log(3)),
                          (20, 11.0, np.log(3))]:
        model.global_step.assign(t)
        got_cont, got_disc = model.capacities()
        assert float(got_cont) == pytest.approx(cont)
        assert float(got_disc) == pytest.approx(min(disc, np.log(3)))  # capped at Σ log K


def test_categorical_kl_to_uniform_known_answers():
    uniform = tf.zeros((1, 3))
    assert float(distributions.categorical_kl_to_uniform(uniform)[0]) == pytest.approx(0.0)
    nearly_one_hot = tf.constant([[30.0, 0.0, 0.0]])
    assert float(distributions.categorical_kl_to_uniform(nearly_one_hot)[0]) == pytest.approx(
        np.log(3), abs=1e-6)
    probs = np.array([0.5, 0.25, 0.25])
    expected = np.log(3) + np.sum(probs * np.log(probs))
    assert float(distributions.categorical_kl_to_uniform(tf.math.log([probs]))[0]) == \
        pytest.approx(expected, rel=1e-5)


def test_loss_is_recon_plus_both_capacity_penalties(binary_images):
    model = models.JointVAE(cont_capacity=[0.0, 20.0, 10, 30.0], disc_capacity=[0.0, 1.0, 10, 7.0],
                            **SMALL)
    model.global_step.assign(5)  # C_z = 10, C_c = 0.5
    terms = {k: float(v) for k, v in model.compute_loss_terms(binary_images, True).items()}
    assert terms["capacity_cont"] == pytest.approx(10.0)
    assert terms["capacity_disc"] == pytest.approx(0.5)
    assert terms["loss"] == pytest.approx(
        terms["recon"] + 30.0 * abs(terms["kl_cont"] - 10.0) + 7.0 * abs(terms["kl_disc"] - 0.5),
        rel=1e-6)
    assert terms["kl"] == pytest.approx(terms["kl_cont"] + terms["kl_disc"], rel=1e-6)


def test_training_codes_are_relaxed_one_hot_samples_tied_to_seed_and_step(binary_images):
    model = models.JointVAE(categorical_dims=[3, 2], **SMALL)
    logits = model._heads(binary_images)[2]
    first = model._relaxed_codes(logits).numpy()
    assert first.shape == (16, 5)
    np.testing.assert_allclose(first[:, :3].sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(first[:, 3:].sum(axis=1), 1.0, rtol=1e-5)
    assert not np.all(np.isin(first, [0.0, 1.0]))  # relaxed, not hard
    np.testing.assert_array_equal(first, model._relaxed_codes(logits).numpy())
    model.global_step.assign_add(1)
    assert not np.array_equal(first, model._relaxed_codes(logits).numpy())


def test_the_relaxed_sample_is_a_tempered_softmax_of_gumbel_perturbed_logits():
    # With one very large logit the sample concentrates on it; at high temperature it flattens.
    logits = tf.math.log(tf.constant([[0.98, 0.01, 0.01]] * 2000))
    seed = tf.constant([1, 2], tf.int32)
    sharp = distributions.relaxed_one_hot_categorical(logits, 0.67).sample(seed=seed).numpy()
    flat = distributions.relaxed_one_hot_categorical(logits, 100.0).sample(seed=seed).numpy()
    assert np.mean(sharp.argmax(axis=1) == 0) > 0.9
    assert np.abs(flat - 1 / 3).max() < 0.1


def test_evaluation_uses_hard_codes_and_the_posterior_mean(binary_images):
    model = models.JointVAE(**SMALL)
    posterior = model.encode(binary_images)
    argmax = posterior["probs"].numpy().argmax(axis=1)
    np.testing.assert_array_equal(posterior["category"].numpy()[:, 0], argmax)
    np.testing.assert_array_equal(posterior["discrete"].numpy(), np.eye(3)[argmax])
    representation = model.representation(binary_images).numpy()
    assert representation.shape == (16, 5)
    np.testing.assert_array_equal(representation[:, -1], argmax)
    expected = model.decode_mean(tf.concat([posterior["mean"], posterior["discrete"]], -1))
    np.testing.assert_array_equal(model(binary_images).numpy(), expected.numpy())


@pytest.mark.parametrize("kwargs, message", [
    ({"preset": "cifar"}, "Unknown JointVAE preset"),
    ({"preset": None}, "needs"),
    ({"categorical_dims": [1]}, "categorical_dims"),
    ({"temperature": 0.0}, "temperature"),
    ({"cont_capacity": [0.0, 5.0, 0, 30.0]}, "T must be"),
    ({"disc_capacity": [2.0, 1.0, 10, 30.0]}, "C_min ≤ C_max"),
    ({"cont_capacity": [0.0, 5.0]}, r"\[C_min, C_max, T, gamma\]"),
])
def test_bad_hyperparameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.JointVAE(**kwargs)
