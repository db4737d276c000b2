"""SAP (docs/methods.md §16.6): the gap of the pure core, the R² matrix, then both forms on the synthetic
cases, among them a default (classification) case that a perfect code must score high on."""
import numpy as np
import pytest

from tests.metric_cases import (
    assert_permutation_invariant,
    assert_repeatable,
    codes,
    duplicated,
    noise,
    permuted_rescaled,
    run,
    zeros,
)
from zoo import metrics
from zoo.data.synthetic import IdentityData
from zoo.metrics.sap import r2_matrix, sap_from_matrix


# ------------------------------------------------------------------------ the pure cores
def test_sap_from_matrix_known_answers():
    scores = np.array([[0.9, 0.1], [0.4, 0.8], [0.2, 0.5]])
    assert sap_from_matrix(scores) == pytest.approx(((0.9 - 0.4) + (0.8 - 0.5)) / 2)
    assert sap_from_matrix([[0.7, 0.2]]) == pytest.approx((0.7 + 0.2) / 2)  # one code: no second
    assert sap_from_matrix(np.full((4, 3), 0.6)) == 0.0


def test_r2_matrix_known_answers():
    # Two balanced binary factors with zero covariance.
    factors = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 5, np.float64)
    z = np.stack([factors[:, 0], 5.0 - 3.0 * factors[:, 0], factors.sum(axis=1),
                  np.full(len(factors), 2.0)], axis=1)
    np.testing.assert_allclose(r2_matrix(z, factors), [[1.0, 0.0], [1.0, 0.0], [0.5, 0.5],
                                                        [0.0, 0.0]], atol=1e-12)


# ------------------------------------------------------------------------ the default form
def test_default_sap_of_a_perfect_code_of_binary_factors_is_one_minus_chance():
    """With two values per factor a linear classifier on the right code is always right and one
    on any other code is right half of the time (balanced classes): SAP = 1 − 0.5."""
    binary = IdentityData(num_factors=4, factor_size=2)
    assert metrics.sap(binary, codes, 0, num_train=500, num_test=500)["sap"] == pytest.approx(
        0.5, abs=0.06)
    assert metrics.sap(binary, lambda x: np.zeros((len(x), 4)), 0, num_train=500,
                       num_test=500)["sap"] < 0.05


def test_default_sap_stays_low_even_for_the_identity_of_ten_valued_factors():
    # docs/methods.md §16: a LinearSVC with C = 0.01 cannot split 10 classes on one axis.
    assert run("sap", codes)["sap"] < 0.5


def test_default_sap_of_zeros_is_zero_and_of_duplicated_codes_low():
    assert run("sap", zeros)["sap"] == 0.0
    assert run("sap", duplicated)["sap"] <= 0.2


def test_default_sap_of_the_permuted_rescaled_identity_stays_close():
    # The LinearSVC is regularised, so the score depends on the codes' scale a little.
    assert run("sap", permuted_rescaled)["sap"] == pytest.approx(run("sap", codes)["sap"],
                                                                 abs=0.05)


# ------------------------------------------------------------------------ the continuous form
def test_continuous_sap_of_the_identity_is_at_least_0_9():
    assert run("sap_continuous", codes)["sap"] >= 0.9


def test_continuous_sap_of_zeros_noise_and_duplicated_codes_is_low():
    assert run("sap_continuous", zeros)["sap"] <= 0.2
    assert run("sap_continuous", noise)["sap"] <= 0.2
    assert run("sap_continuous", duplicated)["sap"] <= 0.2


def test_continuous_sap_of_the_permuted_rescaled_identity_is_the_same():
    assert_permutation_invariant("sap_continuous")


def test_continuous_sap_seeds_repeat_and_agree():
    assert_repeatable("sap_continuous", 0.05, differs=True)
