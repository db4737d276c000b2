"""MIG (docs/methods.md §16.4): the gap of the pure core, then both estimators on the synthetic cases."""
import numpy as np
import pytest

from tests.metric_cases import (
    SMALL_IDENTITY,
    assert_permutation_invariant,
    assert_repeatable,
    codes,
    duplicated,
    fewer_codes,
    gaussian_posterior,
    more_codes,
    noise,
    run,
    single_code,
    with_constant_codes,
    zeros,
)
from zoo import metrics
from zoo.data.synthetic import IdentityData
from zoo.metrics.mig import gap_score


# ------------------------------------------------------------------------ the pure core
def test_gap_score_known_answers():
    mi = np.array([[1.0, 0.2], [0.3, 0.8], [0.1, 0.1]])
    # factor 0: (1.0 − 0.3)/2; factor 1: (0.8 − 0.2)/1
    assert gap_score(mi, [2.0, 1.0]) == pytest.approx((0.35 + 0.6) / 2)
    # A single code has no second best: its gap is its MI.
    assert gap_score([[0.5, 1.0]], [1.0, 2.0]) == pytest.approx(0.5)
    # A factor with zero entropy is left out.
    assert gap_score(mi, [0.0, 1.0]) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="constant"):
        gap_score(mi, [0.0, 0.0])


def test_discretized_mig_is_one_for_a_single_factor_and_zero_for_a_duplicated_code():
    one = IdentityData(num_factors=1, factor_size=7)
    assert metrics.mig(one, codes, 0, num_train=500)["mig"] == pytest.approx(1.0)
    two = IdentityData(num_factors=2, factor_size=5)

    def first_factor_twice(x):
        return codes(x)[:, [0, 0]]

    assert metrics.mig(two, first_factor_twice, 0, num_train=500)["mig"] == 0.0


# ------------------------------------------------------------------------ the synthetic cases
def test_identity_scores_at_least_0_9_and_zeros_exactly_0():
    assert run("mig", codes)["mig"] >= 0.9
    assert run("mig", zeros)["mig"] == 0.0


def test_noise_and_duplicated_codes_score_at_most_0_2():
    assert run("mig", noise)["mig"] <= 0.2
    assert run("mig", duplicated)["mig"] <= 0.2


def test_permuted_rescaled_identity_gives_the_same_numbers():
    assert_permutation_invariant("mig")


def test_odd_code_counts_give_the_expected_mig():
    assert run("mig", more_codes)["mig"] >= 0.9
    assert run("mig", fewer_codes)["mig"] == pytest.approx(0.5, abs=0.01)
    assert run("mig", with_constant_codes)["mig"] == run("mig", codes)["mig"]
    assert run("mig", single_code)["mig"] == pytest.approx(0.1, abs=0.01)


def test_seeds_repeat_and_agree():
    assert_repeatable("mig", 0.05, differs=True)


# ------------------------------------------------------------------------ the sampled estimator
def test_sampled_mig_of_an_identity_posterior_is_high():
    result = metrics.mig(SMALL_IDENTITY, gaussian_posterior, 0, estimator="sampled",
                         num_samples=216)
    assert result["mig"] > 0.9
    noisy = metrics.mig(SMALL_IDENTITY, lambda x: {"mean": np.zeros((len(x), 3)),
                                                   "logvar": np.zeros((len(x), 3))},
                        0, estimator="sampled", num_samples=216)
    assert noisy["mig"] < 0.05


def test_sampled_mig_needs_a_posterior():
    with pytest.raises(ValueError, match="posterior"):
        metrics.mig(SMALL_IDENTITY, codes, 0, estimator="sampled")
