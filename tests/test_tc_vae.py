"""β-TCVAE and the log q(z) estimators it shares with the ELBO decomposition (docs/methods.md §3, §5)."""
import math

import numpy as np
import pytest
import tensorflow as tf

from zoo import decomposition, models
from zoo.decomposition import (
    gaussian_total_correlation,
    mss_log_weights,
    total_correlation,
)

SMALL = {"latent_dim": 4, "seed": 3}
DSPRITES_N = 737_280


def _uninformative(batch_size, latent_dim, seed=0):
    """Samples of q(z|x) = N(0, I) for every x: μ = 0, log σ² = 0."""
    z = tf.random.stateless_normal((batch_size, latent_dim), seed=[seed, 0])
    return z, tf.zeros_like(z), tf.zeros_like(z)


def _correlated_gaussian_batch(batch_size, rho, noise_var, rng):
    """x ~ N(0, [[1, ρ], [ρ, 1]]), q(z|x) = N(x, s²I): the aggregate q(z) is the Gaussian
    N(0, Σ_x + s²I), whose TC is known in closed form."""
    covariance = np.array([[1.0, rho], [rho, 1.0]])
    mean = rng.multivariate_normal([0.0, 0.0], covariance, size=batch_size).astype(np.float32)
    logvar = np.full_like(mean, math.log(noise_var))
    z = mean + math.sqrt(noise_var) * rng.standard_normal(mean.shape).astype(np.float32)
    closed_form = gaussian_total_correlation(covariance + noise_var * np.eye(2))
    return (tf.constant(z), tf.constant(mean), tf.constant(logvar)), closed_form


# ------------------------------------------------------------------------ MSS importance weights
@pytest.mark.parametrize("batch_size, dataset_size", [(2, 2), (5, 1000), (64, DSPRITES_N)])
def test_mss_weights_are_the_papers_and_every_row_sums_to_one(batch_size, dataset_size):
    weights = np.exp(mss_log_weights(batch_size, dataset_size).numpy().astype(np.float64))
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.diag(weights), 1.0 / dataset_size, rtol=1e-6)
    off_diagonal = weights[~np.eye(batch_size, dtype=bool)]
    np.testing.assert_allclose(off_diagonal,
                               (dataset_size - 1) / (dataset_size * (batch_size - 1)), rtol=1e-6)


def test_mss_weight_blocks_equal_the_rows_of_the_full_matrix():
    full = mss_log_weights(10, 100).numpy()
    np.testing.assert_array_equal(mss_log_weights(10, 100, rows=tf.range(3, 7)).numpy(), full[3:7])


def test_mss_refuses_a_batch_of_one():
    with pytest.raises(ValueError, match="at least 2"):
        mss_log_weights(1, 100)


# ------------------------------------------------------------------------ TC known answers
@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_tc_of_a_one_dimensional_code_is_zero(estimator):
    rng = np.random.default_rng(0)
    mean = tf.constant(rng.normal(size=(50, 1)), tf.float32)
    logvar = tf.constant(rng.normal(size=(50, 1)), tf.float32)
    z = mean + tf.exp(0.5 * logvar) * tf.constant(rng.normal(size=(50, 1)), tf.float32)
    assert float(total_correlation(z, mean, logvar, 1000, estimator)) == pytest.approx(0, abs=1e-5)


def test_uninformative_posterior_tc_known_answers():
    """10 dims, μ = 0, log σ² = 0, M = 10⁴ samples. Every sample's estimate is the same for this
    posterior, so the first 100 rows (against all 10⁴ columns) give the batch value cheaply."""
    z, mean, logvar = _uninformative(10_000, 10)
    rows = range(100)
    # disentanglement_lib's value (constants dropped): −9·ln 10⁴.
    dropped = total_correlation(z, mean, logvar, DSPRITES_N, "mws", drop_constant=True, rows=rows)
    assert float(dropped) == pytest.approx(-9 * math.log(1e4), abs=1e-3)
    assert float(dropped) == pytest.approx(-82.893, abs=1e-3)
    # MSS is exact for an uninformative posterior: q(z) factorises, TC = 0.
    assert float(total_correlation(z, mean, logvar, DSPRITES_N, "mss", rows=rows)) == \
        pytest.approx(0.0, abs=1e-3)
    # The MWS value with its constants (as published) is offset by (d − 1)·log N.
    assert float(total_correlation(z, mean, logvar, DSPRITES_N, "mws", rows=rows)) == \
        pytest.approx(9 * math.log(DSPRITES_N), abs=1e-3)


def test_mws_differs_from_the_dropped_constant_value_by_d_minus_1_log_bn():
    (z, mean, logvar), _ = _correlated_gaussian_batch(32, 0.5, 0.2, np.random.default_rng(1))
    full = float(total_correlation(z, mean, logvar, 1000, "mws"))
    dropped = float(total_correlation(z, mean, logvar, 1000, "mws", drop_constant=True))
    assert full - dropped == pytest.approx((2 - 1) * math.log(32 * 1000), rel=1e-5)
    with pytest.raises(ValueError, match="MWS"):
        total_correlation(z, mean, logvar, 1000, "mss", drop_constant=True)


def test_mws_and_mss_converge_to_the_closed_form_tc_of_a_correlated_gaussian():
    """q(z) = N(0, [[1.1, 0.9], [0.9, 1.1]]): TC = ½(Σ log Σ_dd − log det Σ) ≈ 0.553 nats. With a
    data set far larger than the batch (N = 10⁹) MSS converges to it as the batch grows; MWS agrees
    with MSS up to its constant (d − 1)·log N (here log 10⁹), which carries no gradient."""
    rng = np.random.default_rng(0)
    n, offset = 10**9, math.log(10**9)
    errors = {}
    for batch_size in (64, 4096):
        repeats = 4 if batch_size == 64 else 1
        mss, mws = [], []
        for _ in range(repeats):
            batch, closed_form = _correlated_gaussian_batch(batch_size, 0.9, 0.1, rng)
            mss.append(float(total_correlation(*batch, n, "mss")))
            mws.append(float(total_correlation(*batch, n, "mws")) - offset)
        errors[batch_size] = (abs(np.mean(mss) - closed_form), abs(np.mean(mws) - closed_form))
        if batch_size == 4096:
            assert np.mean(mss) == pytest.approx(closed_form, abs=0.04)
            assert np.mean(mws) == pytest.approx(closed_form, abs=0.04)
            assert np.mean(mws) == pytest.approx(np.mean(mss), abs=0.02)
    assert errors[4096][0] < errors[64][0]


# ------------------------------------------------------------------------ the ELBO decomposition
class _GaussianData:
    """A stand-in ground-truth data set whose "images" are draws of x ~ N(0, Σ_x) (2-D)."""

    num_combinations = 10**9
    data_source = "synthetic correlated Gaussian"
    covariance = np.array([[1.0, 0.9], [0.9, 1.0]])

    def sample(self, n, rng):
        return None, rng.multivariate_normal([0, 0], self.covariance, size=n).astype(np.float32)


def test_elbo_decomposition_matches_the_closed_form_terms_of_a_gaussian_posterior():
    """q(z|x) = N(x, 0.1·I) with x ~ N(0, Σ_x): q(z) = N(0, Σ) with Σ = Σ_x + 0.1·I, so
    MI = ½ log(det Σ / det 0.1·I), TC = Gaussian TC of Σ, dwKL = Σ_d KL(N(0, Σ_dd) ‖ N(0, 1))."""
    noise_var = 0.1
    covariance = _GaussianData.covariance + noise_var * np.eye(2)

    def encode(x):
        return {"mean": x, "logvar": np.full_like(x, math.log(noise_var))}

    result = decomposition.elbo_decomposition(_GaussianData(), encode, num_samples=4000, seed=0)
    assert result["estimator"] == "mss"
    assert result["data_source"] == "synthetic correlated Gaussian"
    mi = 0.5 * (np.linalg.slogdet(covariance)[1] - 2 * math.log(noise_var))
    dwkl = sum(0.5 * (covariance[d, d] - 1 - math.log(covariance[d, d])) for d in range(2))
    assert result["index_code_mi"] == pytest.approx(mi, abs=0.05)
    assert result["total_correlation"] == pytest.approx(gaussian_total_correlation(covariance),
                                                        abs=0.05)
    assert result["dimension_wise_kl"] == pytest.approx(dwkl, abs=0.02)
    # The Monte-Carlo KL is close to the analytic mean KL.
    assert result["kl_monte_carlo"] == pytest.approx(result["kl"], abs=0.05)
    # MWS splits the same Monte-Carlo KL differently (its constants); the sum is the same.
    mws = decomposition.elbo_decomposition(_GaussianData(), encode, num_samples=4000, seed=0,
                                           estimator="mws")
    assert mws["estimator"] == "mws"
    assert mws["kl_monte_carlo"] == pytest.approx(result["kl_monte_carlo"], abs=1e-3)


def test_elbo_decomposition_of_a_model_on_procedural_dsprites():
    from zoo import data
    model = models.BetaTCVAE(**SMALL)
    result = decomposition.elbo_decomposition(data.get("dsprites"), model, num_samples=200, seed=1)
    assert result["dataset_size"] == 737_280 and result["num_samples"] == 200
    assert "procedural" in result["data_source"]
    assert len(result["dimension_wise_kl_per_dim"]) == 4
    again = decomposition.elbo_decomposition(data.get("dsprites"), model, num_samples=200, seed=1)
    assert again == result


def test_unknown_estimators_are_refused():
    with pytest.raises(ValueError, match="Unknown log q"):
        models.BetaTCVAE(estimator="iwae", **SMALL)
    with pytest.raises(ValueError, match="dataset_size"):
        models.BetaTCVAE(dataset_size=0, **SMALL)


# ------------------------------------------------------------------------ the β-TCVAE loss
@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_beta_tcvae_loss_is_recon_plus_kl_plus_beta_minus_one_tc(estimator, binary_images):
    model = models.BetaTCVAE(beta=6.0, dataset_size=1000, estimator=estimator, **SMALL)
    terms = {k: float(v) for k, v in model.compute_loss_terms(binary_images, training=True).items()}
    assert terms["loss"] == pytest.approx(terms["recon"] + terms["kl"] + 5.0 * terms["tc"],
                                          rel=1e-6)
    # The logged TC is the estimator's full value, on the batch's own training samples.
    posterior = model.encode(binary_images)
    z = posterior["mean"] + tf.exp(0.5 * posterior["logvar"]) * model.training_noise(
        tf.shape(posterior["mean"]))
    expected = total_correlation(z, posterior["mean"], posterior["logvar"], 1000, estimator)
    assert terms["tc"] == pytest.approx(float(expected), rel=1e-5, abs=1e-5)


def test_beta_one_is_the_plain_vae(binary_images):
    model = models.BetaTCVAE(beta=1.0, **SMALL)
    terms = model.compute_loss_terms(binary_images, training=True)
    assert float(terms["loss"]) == pytest.approx(float(terms["recon"] + terms["kl"]), rel=1e-6)
