"""The Gaussian total correlation of the codes (docs/methods.md §16.11): closed forms, then the synthetic
cases."""
import math

import numpy as np
import pytest

from tests.metric_cases import assert_permutation_invariant, assert_repeatable
from zoo import metrics
from zoo.decomposition import gaussian_total_correlation


def test_gaussian_total_correlation_of_a_covariance_is_the_closed_form():
    rho = 0.6
    assert gaussian_total_correlation([[1.0, rho], [rho, 1.0]]) == pytest.approx(
        -0.5 * math.log(1 - rho**2))
    # Scales do not matter; independent blocks add.
    scaled = np.diag([2.0, 0.5]) @ np.array([[1.0, rho], [rho, 1.0]]) @ np.diag([2.0, 0.5])
    assert gaussian_total_correlation(scaled) == pytest.approx(-0.5 * math.log(1 - rho**2))
    block = np.kron(np.eye(2), [[1.0, rho], [rho, 1.0]])
    assert gaussian_total_correlation(block) == pytest.approx(-math.log(1 - rho**2))


def test_total_correlation_of_codes_known_values():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20_000, 2))
    rho = 0.6
    z = np.stack([x[:, 0], rho * x[:, 0] + math.sqrt(1 - rho**2) * x[:, 1]], axis=1)
    expected = -0.5 * math.log(1 - rho**2)
    assert metrics.total_correlation_of_codes(z) == pytest.approx(expected, abs=0.02)
    assert metrics.total_correlation_of_codes(x) == pytest.approx(0.0, abs=1e-3)
    assert metrics.total_correlation_of_codes(np.concatenate([x, x[:, :1]], 1)) == math.inf
    assert metrics.total_correlation_of_codes(np.c_[x[:, 0], np.zeros(len(x))]) == 0.0


def test_permuted_rescaled_identity_gives_the_same_numbers():
    assert_permutation_invariant("gaussian_total_correlation")


def test_seeds_repeat_and_agree():
    assert_repeatable("gaussian_total_correlation", 0.02)
