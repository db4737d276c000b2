"""Decomposition VAE (docs/methods.md §11): the IMQ MMD, the inclusive-KL estimator, the structured priors
against scipy, the Monte-Carlo KL, the loss, vector observations.

Save/load, fine-tuning and serving are covered by the shared harness (tests/test_models.py)."""
import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from zoo import distributions
from zoo.models.base import check_images
from zoo.models.decomposition_vae import (
    MMD_SCALES,
    DecompositionVAE,
    aggregate_log_density,
    imq_kernel,
    inclusive_kl,
    kl_to_prior,
    mmd_imq,
)

SMALL = {"latent_dim": 4, "seed": 3}


# ------------------------------------------------------------------------ IMQ MMD
def _brute_force_mmd(y, z, scales=MMD_SCALES):
    def k(a, b):
        return sum(np.sum(2 * s / (2 * s + (a - b) ** 2)) for s in scales)

    n, m = len(y), len(z)
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    zz = sum(k(z[i], z[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yz = sum(k(y[i], z[j]) for i in range(n) for j in range(m)) / (n * m)
    return yy + zz - 2 * yz


def test_imq_kernel_is_a_sum_of_one_dimensional_kernels_over_scales():
    a, b = tf.constant([[0.0, 1.0]]), tf.constant([[1.0, 1.0]])
    # dim 0: (a − b)² = 1, dim 1: 0 → Σ_s [2s/(2s + 1) + 1]
    expected = sum(2 * s / (2 * s + 1) + 1 for s in MMD_SCALES)
    assert float(imq_kernel(a, b)[0, 0]) == pytest.approx(expected, rel=1e-6)
    assert float(imq_kernel(a, a)[0, 0]) == pytest.approx(2 * len(MMD_SCALES), rel=1e-6)


def test_mmd_matches_the_unbiased_estimator_written_out():
    rng = np.random.default_rng(0)
    y, z = rng.normal(size=(7, 3)), rng.normal(1.0, 2.0, size=(5, 3))
    value = float(mmd_imq(tf.constant(y, tf.float32), tf.constant(z, tf.float32)))
    assert value == pytest.approx(_brute_force_mmd(y, z), rel=1e-5)


def test_mmd_is_zero_in_expectation_for_one_distribution_and_grows_with_mean_shift():
    mmd = tf.function(mmd_imq)
    rng = np.random.default_rng(1)
    repeats, n, d = 200, 64, 3
    same = [float(mmd(tf.constant(rng.normal(size=(n, d)), tf.float32),
                          tf.constant(rng.normal(size=(n, d)), tf.float32)))
            for _ in range(repeats)]
    standard_error = np.std(same) / np.sqrt(repeats)
    assert abs(np.mean(same)) < 3 * standard_error  # unbiased: no systematic offset
    assert min(same) < 0 < max(same)                 # an unbiased estimate can be negative
    shifts = [0.25, 0.5, 1.0, 2.0]
    means = []
    for shift in shifts:
        values = [float(mmd(tf.constant(rng.normal(size=(n, d)), tf.float32),
                                tf.constant(rng.normal(shift, 1.0, size=(n, d)), tf.float32)))
                  for _ in range(20)]
        means.append(np.mean(values))
    assert means[0] > 3 * standard_error * np.sqrt(repeats / 20)
    assert np.all(np.diff(means) > 0), means


# ------------------------------------------------------------------------ inclusive KL
def _gaussian_kl(mean_p, std_p, mean_q, std_q):
    """KL(N(mean_p, std_p²) ‖ N(mean_q, std_q²)) summed over dimensions."""
    return float(np.sum(np.log(std_q / std_p)
                        + (std_p ** 2 + (mean_p - mean_q) ** 2) / (2 * std_q ** 2) - 0.5))


def test_inclusive_kl_with_identical_posteriors_matches_the_closed_form():
    # All q(z|x_i) equal N(m, s²): the aggregate posterior is that Gaussian exactly.
    d, batch = 3, 8
    m, s = np.array([0.5, -1.0, 0.0]), np.array([0.7, 1.5, 1.0])
    prior = distributions.isotropic_gaussian_prior(d)
    samples = prior.sample(40_000, seed=tf.constant([1, 2], tf.int32))
    mean = tf.constant(np.tile(m, (batch, 1)), tf.float32)
    logvar = tf.constant(np.tile(2 * np.log(s), (batch, 1)), tf.float32)
    estimate = float(inclusive_kl(prior, samples, mean, logvar))
    expected = _gaussian_kl(np.zeros(d), np.ones(d), m, s)
    assert estimate == pytest.approx(expected, rel=0.02)


def test_inclusive_kl_of_a_batch_of_spread_posteriors_approaches_the_aggregate_closed_form():
    # q(z|x_i) = N(μ_i, s²) with μ_i ~ N(0, τ²): q(z) = N(0, τ² + s²) for a large batch.
    rng = np.random.default_rng(2)
    batch, tau, s = 3000, 0.8, 0.4
    mean = tf.constant(rng.normal(0.0, tau, (batch, 1)), tf.float32)
    logvar = tf.fill([batch, 1], float(2 * np.log(s)))
    prior = distributions.isotropic_gaussian_prior(1)
    samples = prior.sample(3000, seed=tf.constant([3, 4], tf.int32))
    estimate = float(inclusive_kl(prior, samples, mean, logvar))
    expected = _gaussian_kl(np.zeros(1), np.ones(1), np.zeros(1), np.sqrt([tau**2 + s**2]))
    assert estimate == pytest.approx(expected, abs=0.02)
    # log q̂ at a point is the log of the mean of the posterior densities.
    point = tf.constant([[0.3]])
    direct = np.log(np.mean(scipy.stats.norm(mean.numpy()[:, 0], s).pdf(0.3)))
    assert float(aggregate_log_density(point, mean, logvar)[0]) == pytest.approx(direct, rel=1e-4)


# ------------------------------------------------------------------------ priors vs scipy
def _points(d, n=50, seed=0):
    return np.random.default_rng(seed).normal(0, 1.5, (n, d)).astype(np.float32)


def _prior(kind, d, **kwargs):
    return distributions.StructuredPrior(kind, d, **kwargs).distribution()


def test_isotropic_prior_log_density_matches_scipy():
    z = _points(5)
    np.testing.assert_allclose(_prior("isotropic", 5).log_prob(z),
                               scipy.stats.norm.logpdf(z).sum(-1), rtol=1e-5)


def test_anisotropic_prior_keeps_the_variance_proportions_with_mean_variance_one():
    variances = [4.0, 2.0, 1.0, 1.0]
    z = _points(4)
    expected_var = np.array(variances) / np.mean(variances)       # [2, 1, 0.5, 0.5]
    np.testing.assert_allclose(_prior("anisotropic", 4, variances=variances).log_prob(z),
                               scipy.stats.norm(0, np.sqrt(expected_var)).logpdf(z).sum(-1),
                               rtol=1e-5)


def test_student_t_prior_log_density_matches_scipy():
    z = _points(3)
    np.testing.assert_allclose(_prior("student_t", 3).log_prob(z),
                               scipy.stats.t(df=9).logpdf(z).sum(-1), rtol=1e-5)


def test_pinwheel_mixture_prior_log_density_matches_scipy():
    z = _points(2)
    locs = [(0, -1), (0, 1), (1, 0), (-1, 0)]
    density = sum(0.25 * scipy.stats.multivariate_normal(loc, 0.03 * np.eye(2)).pdf(z)
                  for loc in locs)
    np.testing.assert_allclose(_prior("mixture", 2).log_prob(z), np.log(density), rtol=1e-5)
    with pytest.raises(ValueError, match="2-dimensional"):
        distributions.StructuredPrior("mixture", 3)


@pytest.mark.parametrize("gamma", [0.0, 0.8])
def test_spike_and_slab_prior_log_density_matches_scipy(gamma):
    z = _points(4)
    per_dim = (gamma * scipy.stats.norm(0, 0.05).pdf(z)
               + (1 - gamma) * scipy.stats.norm(0, 1).pdf(z))
    np.testing.assert_allclose(_prior("spike_and_slab", 4, spike_weight=gamma).log_prob(z),
                               np.log(per_dim).sum(-1), rtol=1e-5)


def test_pca_variances_recover_the_principal_variances():
    rng = np.random.default_rng(3)
    rotation = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    x = rng.normal(size=(20_000, 5)) * np.sqrt([9.0, 4.0, 1.0, 0.25, 0.01]) @ rotation.T
    np.testing.assert_allclose(distributions.pca_variances(x, 3), [9.0, 4.0, 1.0], rtol=0.05)


def test_bad_prior_settings_are_refused():
    with pytest.raises(ValueError, match="Unknown prior"):
        DecompositionVAE(prior="laplace", **SMALL)
    with pytest.raises(ValueError, match="variances must be 4 positive"):
        DecompositionVAE(prior="anisotropic", prior_variances=[1.0, 2.0], **SMALL)
    with pytest.raises(ValueError, match="Only the anisotropic prior can be learned"):
        DecompositionVAE(prior="student_t", learn_prior=True, **SMALL)
    with pytest.raises(ValueError, match="Unknown divergence"):
        DecompositionVAE(divergence="wasserstein", **SMALL)
    with pytest.raises(ValueError, match="spike_weight"):
        DecompositionVAE(prior="spike_and_slab", spike_weight=1.5, **SMALL)


# ------------------------------------------------------------------------ KL and the loss
def test_monte_carlo_kl_is_log_q_minus_log_p_and_unbiased_for_the_gaussian_prior():
    rng = np.random.default_rng(4)
    mean = tf.constant(rng.normal(size=(1, 3)), tf.float32)
    logvar = tf.constant(rng.normal(0, 0.5, size=(1, 3)), tf.float32)
    prior = distributions.isotropic_gaussian_prior(3)
    analytic = float(kl_to_prior(prior, mean, logvar)[0])
    np.testing.assert_allclose(
        analytic, float(tf.reduce_sum(distributions.kl_to_standard_normal(mean, logvar))),
        rtol=1e-5)
    n = 50_000
    noise = tf.constant(rng.normal(size=(n, 3)), tf.float32)
    z = distributions.reparameterized_sample(mean, logvar, noise)
    many_mean, many_logvar = tf.tile(mean, [n, 1]), tf.tile(logvar, [n, 1])
    mc = kl_to_prior(prior, many_mean, many_logvar, z, analytic=False).numpy()
    assert np.mean(mc) == pytest.approx(analytic, abs=4 * np.std(mc) / np.sqrt(n))
    q = scipy.stats.norm(mean.numpy(), np.exp(0.5 * logvar.numpy()))
    expected = q.logpdf(z.numpy()[:5]).sum(-1) - scipy.stats.norm.logpdf(z.numpy()[:5]).sum(-1)
    np.testing.assert_allclose(mc[:5], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("prior, divergence", [("isotropic", "mmd_imq"),
                                               ("spike_and_slab", "kl_inclusive"),
                                               ("anisotropic", "mmd_imq")])
def test_loss_is_recon_plus_beta_kl_plus_alpha_divergence(binary_images, prior, divergence):
    model = DecompositionVAE(beta=0.5, alpha=3.0, prior=prior, divergence=divergence, **SMALL)
    terms = {k: float(v) for k, v in model.compute_loss_terms(binary_images,
                                                              training=True).items()}
    assert terms["loss"] == pytest.approx(
        terms["recon"] + 0.5 * terms["kl"] + 3.0 * terms["divergence"], rel=1e-6)
    again = {k: float(v) for k, v in model.compute_loss_terms(binary_images,
                                                              training=True).items()}
    assert again == terms  # training draws are a function of (seed, step)


def test_the_isotropic_decomposition_vae_with_alpha_0_is_the_beta_vae(binary_images):
    from zoo.models.beta_vae import BetaVAE

    ours = DecompositionVAE(beta=4.0, **SMALL)
    reference = BetaVAE(beta=4.0, **SMALL)
    reference.set_weights(ours.get_weights())  # the isotropic prior has no weights
    mine = ours.compute_loss_terms(binary_images, training=True)
    theirs = reference.compute_loss_terms(binary_images, training=True)
    for key in ("recon", "kl", "elbo"):
        assert float(mine[key]) == pytest.approx(float(theirs[key]), rel=1e-5), key
    assert float(mine["loss"]) == pytest.approx(float(theirs["loss"]), rel=1e-5)


@pytest.mark.slow  # trains and saves (about 30 s on 2 cores)
def test_a_learned_anisotropic_prior_trains_keeps_mean_variance_one_and_is_saved(
        binary_images, tmp_path):
    model = DecompositionVAE(prior="anisotropic", prior_variances=[4.0, 2.0, 1.0, 1.0],
                             learn_prior=True, alpha=10.0, **SMALL)
    before = model.prior.log_variances.numpy().copy()
    model.compile()
    model.fit(binary_images, batch_size=8, epochs=2, verbose=0)
    assert not np.allclose(before, model.prior.log_variances.numpy())
    scales = model.prior.scales().numpy()
    assert np.mean(scales ** 2) == pytest.approx(1.0, rel=1e-5)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(loaded.prior.scales().numpy(), scales)
    fixed = DecompositionVAE(prior="anisotropic", prior_variances=[4.0, 2.0, 1.0, 1.0], **SMALL)
    assert not fixed.prior.log_variances.trainable


def test_samples_come_from_the_prior_through_the_decoder():
    model = DecompositionVAE(prior="spike_and_slab", **SMALL)
    assert model.sample(3).shape == (3, 64, 64, 1)


# ------------------------------------------------------------------------ vector observations
def test_check_images_accepts_finite_vectors_and_keeps_the_image_checks():
    points = np.array([[-3.0, 7.5], [0.1, 0.2]], np.float32)
    np.testing.assert_array_equal(check_images(points, (2,)).numpy(), points)
    with pytest.raises(ValueError, match="NaN"):
        check_images(np.array([[np.nan, 0.0]], np.float32), (2,))
    with pytest.raises(ValueError, match=r"observations of shape \(batch,\) \+ \(2,\)"):
        check_images(np.zeros((3, 3), np.float32), (2,))
    with pytest.raises(ValueError, match="must be float"):
        check_images(np.zeros((3, 2), np.int64), (2,))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        check_images(np.full((1, 4, 4, 1), 2.0, np.float32), (4, 4, 1))

    @tf.function
    def checked(x):
        return check_images(x, (2,))

    np.testing.assert_array_equal(checked(tf.constant(points)).numpy(), points)
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN"):
        checked(tf.constant([[np.inf, 0.0]]))


def test_pinwheel_sized_model_trains_on_2d_points():
    rng = np.random.default_rng(5)
    points = rng.normal(size=(64, 2)).astype(np.float32) * 2.0
    model = DecompositionVAE(latent_dim=2, input_shape=(2,), network="mlp",
                             likelihood="gaussian_learned", posterior="softplus",
                             prior="mixture", divergence="kl_inclusive", beta=0.0, alpha=1.0,
                             seed=0)
    terms = model.compute_loss_terms(points, training=True)
    assert np.isfinite(float(terms["loss"]))
    assert model(points).shape == (64, 2) and model.representation(points).shape == (64, 2)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(points, batch_size=64, epochs=20, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
