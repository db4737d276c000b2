"""DCI disentanglement and completeness (docs/methods.md §16.5): importance-matrix known answers, then the
synthetic cases.

The synthetic cases use 5 factors of 5 values (GRID): DCI fits a gradient-boosted ensemble of 100
stages per factor and value, so 10 factors of 10 values cost four times as many trees for the same
known answers (the full-size run of the 10 × 10 grid is in test_metrics.py, marked slow)."""
import math

import numpy as np
import pytest

from tests.metric_cases import (
    GRID,
    SMALL_IDENTITY,
    codes,
    compute,
    noise,
    noisy_identity,
    permuted_rescaled,
    run,
    zeros,
)
from zoo.metrics.dci import disentanglement_completeness


# ------------------------------------------------------------------------ the pure core
def test_dci_diagonal_importance_is_perfect():
    assert disentanglement_completeness(np.eye(10)) == pytest.approx((1.0, 1.0))


def test_dci_two_redundant_codes_per_factor():
    # 10 factors, 20 codes: completeness entropies are in base D = 20 codes (Eastwood & Williams).
    r = np.repeat(np.eye(10), 2, axis=0)
    d, c = disentanglement_completeness(r)
    assert d == pytest.approx(1.0)
    assert c == pytest.approx(1 - math.log(2) / math.log(20))
    # docs/methods.md §16.5's second case: 5 factors, 10 codes, C = 1 − ln2/ln10.
    d, c = disentanglement_completeness(np.repeat(np.eye(5), 2, axis=0))
    assert d == pytest.approx(1.0)
    assert c == pytest.approx(1 - math.log(2) / math.log(10))


def test_dci_one_code_for_two_factors():
    r = np.repeat(np.eye(5), 2, axis=1)  # 5 codes, 10 factors
    d, c = disentanglement_completeness(r)
    assert d == pytest.approx(1 - math.log(2) / math.log(10))
    assert c == pytest.approx(1.0)


def test_dci_zero_importance_gives_zeros():
    assert disentanglement_completeness(np.zeros((10, 10))) == (0.0, 0.0)


def test_dci_single_code_or_factor_has_zero_entropy_in_base_one():
    assert disentanglement_completeness(np.ones((1, 4))) == pytest.approx((0.0, 1.0))
    assert disentanglement_completeness(np.ones((4, 1))) == pytest.approx((1.0, 0.0))


# ------------------------------------------------------------------------ the synthetic cases
def test_identity_scores_at_least_0_9_and_zeros_exactly_0():
    assert run("dci", codes, GRID)["disentanglement"] >= 0.9
    result = run("dci", zeros, GRID)
    assert result["disentanglement"] == 0.0 and result["completeness"] == 0.0


def test_noise_codes_score_at_most_0_2():
    assert run("dci", noise, GRID)["disentanglement"] <= 0.2


def test_permuted_rescaled_identity_stays_close():
    # The trees break ties between equally good splits by feature order.
    base, moved = run("dci", codes, GRID), run("dci", permuted_rescaled, GRID)
    for key in base:
        assert moved[key] == pytest.approx(base[key], abs=0.05), key


def test_dci_is_repeatable_with_a_seed_whatever_the_threads():
    assert compute("dci", noisy_identity, SMALL_IDENTITY, rng=3) == compute(
        "dci", noisy_identity, SMALL_IDENTITY, rng=3, n_jobs=1)
