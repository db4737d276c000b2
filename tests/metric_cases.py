"""The shared cases of the metric tests (tests/test_metric_*.py, docs/methods.md §16): a synthetic data set
whose observations are the factors, and representations of it whose right answer is known.

`IDENTITY` (10 factors × 10 values) with the identity representation, zeros, noise, every code
duplicated, a permuted and rescaled identity, an identity plus noise, and codes of odd counts.
Sample sizes are reduced (`SMALL`) so the files run in minutes on 2 cores; the docs/methods.md §16 defaults run
in the tests marked slow. Metrics are pure functions of their arguments, so `run` memoises them:
tests in one process that need the same result share one computation.
"""
from __future__ import annotations

import numpy as np

from zoo import metrics
from zoo.data.synthetic import IdentityData, identity_representation

IDENTITY = IdentityData()
#: 5 factors × 5 values: the synthetic cases of the metrics that fit a model per factor and value
#: (DCI's boosted trees, explicitness' logistic regressions), a quarter of the 10 × 10 grid's cost.
GRID = IdentityData(num_factors=5, factor_size=5)
#: 3 factors × 6 values (216 combinations): the metrics that read a posterior, and the checks
#: that need no more.
SMALL_IDENTITY = IdentityData(num_factors=3, factor_size=6)

# Reduced sizes for the default run (the docs/methods.md §16 defaults are 10,000 / 5,000).
SMALL = {
    "beta_vae_score": {"num_train": 1000, "num_eval": 500},
    "factor_vae_score": {"num_train": 1000, "num_eval": 500, "num_variance_estimate": 2000},
    "mig": {"num_train": 5000},
    "dci": {"num_train": 250, "num_test": 100},
    "sap": {"num_train": 2000, "num_test": 1000},
    "sap_continuous": {"num_train": 5000, "continuous_factors": True},
    "modularity_explicitness": {"num_train": 500, "num_test": 200},
    "hoyer_sparsity": {"num_points": 5000},
    "gaussian_total_correlation": {"num_points": 5000},
}
# Smaller still, for the tests that run the whole suite several times.
ALL_SMALL = {
    "beta_vae_score": {"num_train": 300, "num_eval": 100},
    "factor_vae_score": {"num_train": 300, "num_eval": 100, "num_variance_estimate": 500},
    "mig": {"num_train": 1000},
    "dci": {"num_train": 100, "num_test": 50},
    "sap": {"num_train": 500, "num_test": 200},
    "modularity_explicitness": {"num_train": 300, "num_test": 100},
    "hoyer_sparsity": {"num_points": 500},
    "gaussian_total_correlation": {"num_points": 500},
}
PERMUTATION = np.array([3, 7, 0, 9, 1, 5, 8, 2, 6, 4])
SCALES = np.array([0.5, 2.0, 3.0, 0.25, 1.0, 10.0, 0.7, 4.0, 1.5, 0.1])


def codes(x):
    """The identity representation: the factors themselves."""
    return identity_representation(x)


def zeros(x):
    return np.zeros((len(x), 10))


def _hash_noise(x, salt=0.0):
    """Deterministic pseudo-random values in [-0.5, 0.5) from each observation, one per factor (a
    fixed function of the observation, like an encoder, but independent of the factors)."""
    f = codes(x)
    key = f @ (10.0 ** np.arange(f.shape[1]))[::-1] + salt
    columns = key[:, None] * 12.9898 + np.arange(f.shape[1])[None, :] * 78.233
    return (np.sin(columns) * 43758.5453) % 1.0 - 0.5


def noise(x):
    return _hash_noise(x)


def duplicated(x):
    f = codes(x)
    return np.concatenate([f, f], axis=1)


def permuted_rescaled(x):
    """The identity's codes permuted and rescaled (for 10 or 5 factors)."""
    f = codes(x)
    if f.shape[1] == 5:
        return f[:, [3, 0, 4, 1, 2]] * SCALES[:5]
    return f[:, PERMUTATION] * SCALES


def noisy_identity(x):
    """A plausible imperfect encoder: the identity plus noise of std ~1.2 per code."""
    return codes(x) + 4.0 * _hash_noise(x, salt=0.5)


def gaussian_posterior(x):
    """A posterior whose means are the identity plus two collapsed dimensions (σ² = 1)."""
    f = codes(x)
    mean = np.concatenate([f, np.zeros((len(f), 2))], axis=1)
    logvar = np.concatenate([np.full(f.shape, -4.0), np.zeros((len(f), 2))], axis=1)
    return {"mean": mean, "logvar": logvar}


def more_codes(x):
    return np.concatenate([codes(x), noise(x)[:, :5]], axis=1)


def fewer_codes(x):
    return codes(x)[:, :5]


def with_constant_codes(x):
    return np.concatenate([codes(x), np.full((len(x), 3), 2.5)], axis=1)


def single_code(x):
    return codes(x)[:, 0]  # 1-D: read as one code


_MEMO = {}


def compute(name, fn, data=IDENTITY, rng=0, **extra):
    """Metric `name` (or "sap_continuous") of `fn` on `data` with the reduced sizes."""
    params = {**SMALL[name], **extra}
    metric = "sap" if name == "sap_continuous" else name
    return metrics.METRICS[metric].fn(data, fn, rng, **params)


def run(name, fn, data=IDENTITY, rng=0, **extra):
    """`compute`, memoised (the repeatability tests call `compute` afresh)."""
    key = (name, id(data), fn, rng, tuple(sorted(extra.items())))
    if key not in _MEMO:
        _MEMO[key] = compute(name, fn, data, rng, **extra)
    return dict(_MEMO[key])


def assert_permutation_invariant(name, data=IDENTITY):
    """The permuted, rescaled identity scores exactly what the identity scores."""
    base, moved = run(name, codes, data), run(name, permuted_rescaled, data)
    assert moved.keys() == base.keys()
    for key in base:
        assert abs(moved[key] - base[key]) <= 1e-9, key


def assert_repeatable(name, tolerance, differs=False, data=IDENTITY):
    """The same seed gives the same numbers on `data`; another seed agrees within `tolerance` (and,
    with `differs`, really drew other points)."""
    first = compute(name, noisy_identity, data, rng=0)
    assert compute(name, noisy_identity, data, rng=0) == first
    second = compute(name, noisy_identity, data, rng=1)
    for key in first:
        assert abs(first[key] - second[key]) <= tolerance, key
    if differs:
        assert first != second
