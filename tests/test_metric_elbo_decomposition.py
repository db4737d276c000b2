"""The ELBO decomposition (docs/methods.md §3, §16.12): `zoo.decomposition.decompose` against closed forms and
numerical integration, and the suite metric on the shared cache.

The posterior samples below are quantiles rather than random draws (z = μ + σ·u_k with u_k ∝
Φ⁻¹((k + ½)/m), scaled so that their mean square is exactly 1), so every mean over samples is a
quadrature of the expectation it estimates: exact for the Gaussian log-density ratios (quadratic in
u), within about 2·10⁻⁴ nats for the mixture terms, and free of Monte-Carlo error.
"""
import math

import numpy as np
import pytest
from scipy import integrate, stats

from tests.metric_cases import SMALL_IDENTITY, gaussian_posterior
from zoo import metrics
from zoo.decomposition import decompose


def _quantile_samples(mean, std, count):
    """`count` samples of each N(mean, std²), as equal-probability quantiles: [len(mean)·count]."""
    unit = stats.norm.ppf((np.arange(count) + 0.5) / count)
    unit /= np.sqrt(np.mean(unit**2))  # the quantiles' own mean square falls short of 1
    return (np.asarray(mean)[:, None] + std * unit[None, :]).ravel()


def _gaussian_kl(mean, std):
    """KL(N(mean, std²) ‖ N(0, 1))."""
    return 0.5 * (mean**2 + std**2 - 1.0 - 2.0 * math.log(std))


def test_an_uninformative_posterior_has_no_mutual_information_and_no_total_correlation():
    """q(z|x) = N(m, s²) for every x: q(z) = q(z|x) and it factorises, so MI = TC = 0 exactly
    and the dimension-wise KL is the whole KL."""
    means, std, count = np.array([0.8, -0.3, 0.0]), 0.6, 400
    z = np.stack([_quantile_samples([m], std, count) for m in means], axis=1)
    mean = np.broadcast_to(means, z.shape)
    logvar = np.full(z.shape, 2 * math.log(std))
    result = decompose(mean, logvar, z, dataset_size=10_000, estimator="mss")
    kl = sum(_gaussian_kl(m, std) for m in means)
    assert result["index_code_mi"] == pytest.approx(0.0, abs=1e-4)
    assert result["total_correlation"] == pytest.approx(0.0, abs=1e-4)
    assert result["dimension_wise_kl"] == pytest.approx(kl, abs=1e-4)
    assert result["kl"] == pytest.approx(kl, rel=1e-5)


def test_two_posteriors_give_the_mutual_information_and_kl_of_their_mixture():
    """Two data points, q(z|x) = N(∓a, s²) (d = 1), each half of the samples. With the samples as
    the whole data set (N = n) the MSS estimate of q(z) is the exact mixture m(z), so MI = I(x; z)
    and the dimension-wise KL = KL(m ‖ N(0, 1)), both by numerical integration here; MWS adds
    log N to the first and takes it from the second."""
    a, s, count = 1.0, 0.5, 1000
    z = _quantile_samples([-a, a], s, count)[:, None]
    mean = np.repeat([-a, a], count)[:, None]
    logvar = np.full(z.shape, 2 * math.log(s))
    n = len(z)

    def mixture(v):
        return 0.5 * (stats.norm.pdf(v, -a, s) + stats.norm.pdf(v, a, s))

    def integral(f):
        return integrate.quad(f, -12, 12, points=[-a, a], limit=200)[0]

    mutual_information = integral(
        lambda v: stats.norm.pdf(v, a, s) * math.log(stats.norm.pdf(v, a, s) / mixture(v)))
    mixture_kl = integral(lambda v: mixture(v) * math.log(mixture(v) / stats.norm.pdf(v)))

    mss = decompose(mean, logvar, z, dataset_size=n, estimator="mss")
    assert mss["index_code_mi"] == pytest.approx(mutual_information, abs=2e-3)
    assert mss["total_correlation"] == 0.0  # one dimension
    assert mss["dimension_wise_kl"] == pytest.approx(mixture_kl, abs=2e-3)
    assert mss["kl_monte_carlo"] == pytest.approx(_gaussian_kl(a, s), abs=1e-4)
    assert mss["kl"] == pytest.approx(_gaussian_kl(a, s), rel=1e-5)

    mws = decompose(mean, logvar, z, dataset_size=n, estimator="mws")
    assert mws["index_code_mi"] == pytest.approx(mutual_information + math.log(n), abs=2e-3)
    assert mws["dimension_wise_kl"] == pytest.approx(mixture_kl - math.log(n), abs=2e-3)


def test_the_suite_metric_decomposes_the_shared_cache_posteriors():
    result = metrics.evaluate(SMALL_IDENTITY, gaussian_posterior,
                              ["hoyer_sparsity", "elbo_decomposition"], seed=0,
                              hoyer_sparsity={"num_points": 500},
                              elbo_decomposition={"num_samples": 500})
    entry = result["metrics"]["elbo_decomposition"]
    assert entry["observations_encoded"] == 0  # the same 500 points Hoyer encoded
    values = entry["values"]
    # The Monte-Carlo KL of 500 samples is within 5 standard errors (≈ 0.06 nats here) of the
    # analytic mean KL of the same posteriors.
    assert values["kl_monte_carlo"] == pytest.approx(values["kl"], abs=0.3)
    # Identity means σ = e⁻² apart from the two collapsed dimensions: informative codes.
    assert values["index_code_mi"] > 1.0
