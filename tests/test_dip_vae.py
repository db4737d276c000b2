"""DIP-VAE-I and DIP-VAE-II (docs/methods.md §6): the covariance, the penalty, the loss."""
import numpy as np
import pytest
import tensorflow as tf

from zoo import models
from zoo.models.dip_vae import DIPVAE, batch_covariance, dip_covariance, dip_penalty

SMALL = {"latent_dim": 4, "seed": 3}


@pytest.mark.parametrize("matrix, expected", [
    (np.ones((10, 10)), 90.0),
    (np.zeros((10, 10)), 10.0),
    (np.eye(10), 0.0),
    (2 * np.eye(10), 10.0),
])
def test_penalty_known_answers(matrix, expected):
    penalty = dip_penalty(tf.constant(matrix, tf.float32), lambda_od=1.0, lambda_d=1.0)
    assert float(penalty) == pytest.approx(expected)


def test_penalty_weights_off_diagonal_and_diagonal_separately():
    matrix = tf.constant([[2.0, 0.5], [0.5, 1.0]])
    # off-diagonal: 2·0.5² = 0.5; diagonal: (2 − 1)² = 1.
    assert float(dip_penalty(matrix, lambda_od=3.0, lambda_d=7.0)) == pytest.approx(3 * 0.5 + 7)


def test_covariance_is_centred_over_the_batch_axis():
    rng = np.random.default_rng(0)
    mean = rng.normal(loc=[5.0, -2.0, 0.0], scale=[1.0, 2.0, 0.5], size=(200, 3))
    expected = np.cov(mean, rowvar=False, bias=True)
    np.testing.assert_allclose(batch_covariance(tf.constant(mean)).numpy(), expected, rtol=1e-10)


def test_dip_ii_adds_the_mean_posterior_variance_to_the_diagonal():
    rng = np.random.default_rng(1)
    mean = tf.constant(rng.normal(size=(64, 3)), tf.float32)
    logvar = tf.constant(rng.normal(size=(64, 3)), tf.float32)
    cov_i = dip_covariance(mean, logvar, "i").numpy()
    cov_ii = dip_covariance(mean, logvar, "ii").numpy()
    np.testing.assert_allclose(cov_ii - cov_i, np.diag(np.exp(logvar.numpy()).mean(axis=0)),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, variant, lambda_d", [("dip_vae_i", "i", 100.0),
                                                     ("dip_vae_ii", "ii", 10.0)])
def test_loss_is_recon_plus_kl_plus_penalty(name, variant, lambda_d, binary_images):
    model = models.get(name, lambda_od=10.0, **SMALL)
    assert model.variant == variant and model.lambda_d == lambda_d  # sweep convention
    terms = model.compute_loss_terms(binary_images, training=True)
    posterior = model.encode(binary_images)
    expected = dip_penalty(dip_covariance(posterior["mean"], posterior["logvar"], variant),
                           10.0, lambda_d)
    assert float(terms["dip_penalty"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(terms["loss"]) == pytest.approx(
        float(terms["recon"] + terms["kl"] + terms["dip_penalty"]), rel=1e-6)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="variant"):
        DIPVAE(variant="iii", **SMALL)
    with pytest.raises(ValueError, match="DIPVAEI is variant 'i'"):
        models.DIPVAEI(variant="ii", **SMALL)
    with pytest.raises(ValueError, match="lambda_od"):
        models.DIPVAEII(lambda_od=-1.0, **SMALL)
