"""The common distributions layer: known answers of docs/methods.md §0 and the likelihood heads."""
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from zoo import distributions


@pytest.mark.parametrize("mean, logvar, expected", [
    (0.0, 0.0, 0.0),
    (1.0, 0.0, 5.0),
    (1.0, 1.0, 5 * (np.e - 1)),  # ≈ 8.591
])
def test_kl_to_standard_normal_known_answers(mean, logvar, expected):
    kl = distributions.kl_to_standard_normal(tf.fill([1, 10], mean), tf.fill([1, 10], logvar))
    assert kl.shape == (1, 10)
    assert float(tf.reduce_sum(kl)) == pytest.approx(expected, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("z, mean, expected", [(1.0, 0.0, -1.4189), (1.0, 1.0, -0.9189)])
def test_gaussian_log_density_known_answers(z, mean, expected):
    assert float(distributions.gaussian_log_density(z, mean, 0.0)) == pytest.approx(expected,
                                                                                    abs=1e-4)


def test_standard_normal_prior_is_isotropic_in_d_dims():
    prior = distributions.standard_normal_prior(10)
    assert prior.event_shape == [10]
    assert float(prior.log_prob(tf.zeros(10))) == pytest.approx(-5 * np.log(2 * np.pi), rel=1e-6)


def test_reparameterized_sample_is_mean_plus_std_times_noise():
    z = distributions.reparameterized_sample(tf.constant([1.0]), tf.constant([np.log(4.0)], tf.float32),
                                             tf.constant([0.5]))
    assert float(z[0]) == pytest.approx(1.0 + 2.0 * 0.5)


@pytest.mark.parametrize("parameterization", ["exp_half_logvar", "softplus"])
def test_posterior_head_returns_mean_and_logvar(parameterization):
    head = distributions.GaussianPosteriorHead(3, parameterization)
    features = tf.random.stateless_normal((5, 8), seed=(1, 2))
    mean, logvar = head(features)
    assert mean.shape == logvar.shape == (5, 3)
    raw = head.dense(features)[:, 3:]
    if parameterization == "exp_half_logvar":
        np.testing.assert_allclose(logvar, raw)
    else:  # σ = softplus(raw)
        np.testing.assert_allclose(np.exp(0.5 * logvar), tf.nn.softplus(raw) + 1e-6, rtol=1e-5)


def test_unknown_posterior_parameterization_is_refused():
    with pytest.raises(ValueError, match="parameterization"):
        distributions.GaussianPosteriorHead(3, "exp")


def test_bernoulli_likelihood_is_summed_sigmoid_cross_entropy_on_non_binary_targets():
    logits = tf.random.stateless_normal((2, 64, 64, 1), seed=(0, 1))
    x = tf.random.stateless_uniform((2, 64, 64, 1), seed=(0, 2))  # not binarised
    log_prob = distributions.get_likelihood("bernoulli").log_prob(x, logits)
    expected = -tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits),
                              axis=[1, 2, 3])
    assert log_prob.shape == (2,)
    np.testing.assert_allclose(log_prob, expected, rtol=1e-5)


def test_bernoulli_reconstruction_of_zero_logits_costs_ln2_per_pixel():
    # The recon term at initialisation is ≈ 4096·ln 2 ≈ 2839 nats for a 64×64 image.
    log_prob = distributions.get_likelihood("bernoulli").log_prob(tf.zeros((1, 64, 64, 1)),
                                                                  tf.zeros((1, 64, 64, 1)))
    assert -float(log_prob[0]) == pytest.approx(4096 * np.log(2), rel=1e-5)


@pytest.mark.parametrize("name, scipy_density", [
    ("gaussian", lambda x, loc: scipy.stats.norm(loc, 1.0).logpdf(x)),
    ("laplace", lambda x, loc: scipy.stats.laplace(loc, 0.1).logpdf(x)),
])
def test_continuous_likelihoods_match_scipy(name, scipy_density):
    likelihood = distributions.get_likelihood(name)
    likelihood.build((None, 4, 4, 1))
    loc = np.linspace(-1, 1, 16, dtype=np.float32).reshape(1, 4, 4, 1)
    x = np.full_like(loc, 0.3)
    expected = scipy_density(x, loc).sum()
    assert float(likelihood.log_prob(x, loc)[0]) == pytest.approx(expected, rel=1e-5)


def test_unknown_likelihood_is_refused():
    with pytest.raises(ValueError, match="Unknown likelihood 'poisson'"):
        distributions.get_likelihood("poisson")
