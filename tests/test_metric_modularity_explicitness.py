"""Modularity and explicitness (docs/methods.md §16.7): known answers of both pure cores, then the synthetic
cases, on 5 factors of 5 values (GRID): explicitness fits a logistic regression per factor and
value, the cost of this metric."""
import numpy as np
import pytest

from tests.metric_cases import (
    GRID,
    assert_permutation_invariant,
    assert_repeatable,
    codes,
    noise,
    run,
    zeros,
)
from zoo.metrics.modularity_explicitness import explicitness, modularity


# ------------------------------------------------------------------------ the pure cores
def test_modularity_known_answers():
    assert modularity(np.eye(5) * 0.7) == 1.0
    assert modularity(np.ones((5, 5))) == pytest.approx(0.0)
    # θ = 0.8, Σ m² = 0.64 + 0.16: δ = 0.16/(0.64·2) = 0.125 → 0.875; a code with no MI scores 0.
    assert modularity([[0.8, 0.4, 0.0], [0.0, 0.0, 0.0]]) == pytest.approx((0.875 + 0.0) / 2)
    assert modularity([[0.3], [0.0]]) == 0.5  # one factor: any code with MI is modular


def test_explicitness_known_answers():
    labels = np.repeat(np.arange(3), 20)
    one_hot = np.eye(3)[labels]
    assert explicitness(one_hot, labels, one_hot, labels) == (1.0, 1.0)
    # Codes that say nothing: every class gets the same score, a ROC-AUC of exactly 0.5.
    constant = np.zeros((len(labels), 2))
    assert explicitness(constant, labels, constant, labels) == (0.5, 0.5)
    # A code that ranks the classes backwards on the test set scores 0 there.
    line = labels[:, None].astype(float)
    binary = (labels > 0).astype(int)
    assert explicitness(line, binary, -line, binary) == (1.0, 0.0)
    # One class only: explicit by definition.
    assert explicitness(one_hot, np.zeros(60, int), one_hot, np.zeros(60, int)) == (1.0, 1.0)


# ------------------------------------------------------------------------ the synthetic cases
def test_identity_has_modularity_at_least_0_9_and_zeros_exactly_0():
    assert run("modularity_explicitness", codes, GRID)["modularity"] >= 0.9
    assert run("modularity_explicitness", zeros, GRID)["modularity"] == 0.0


def test_noise_codes_get_low_modularity_but_not_zero_by_definition():
    # Modularity asks only whether each code's MI is concentrated on one factor. Noise codes have
    # small, nearly equal plug-in MIs (estimator bias) with every factor, so δ ≈ 0.7 and modularity
    # ≈ 0.3 whatever the sample size; it is far below the identity's ~1 but not ≤ 0.2.
    assert 0.1 < run("modularity_explicitness", noise, GRID)["modularity"] < 0.45


def test_noise_codes_have_chance_explicitness():
    result = run("modularity_explicitness", noise, GRID)
    assert result["explicitness_test"] == pytest.approx(0.5, abs=0.05)
    assert run("modularity_explicitness", zeros, GRID)["explicitness_test"] == 0.5


def test_permuted_rescaled_identity_gives_the_same_numbers():
    assert_permutation_invariant("modularity_explicitness", GRID)


def test_seeds_repeat_and_agree():
    assert_repeatable("modularity_explicitness", 0.05, data=GRID)


def test_each_factors_explicitness_is_reported_and_a_dropped_factor_reads_at_chance():
    """The identity reads every factor (AUC ≈ 1); the identity with factor 0's code replaced by
    noise reads factor 0 at chance (0.5) and the others as before; the mean is over the factors."""
    def without_factor0(x):
        c = codes(x).astype(float)
        c[:, 0] = noise(x)[:, 0]
        return c

    names = [f"explicitness_test_factor{k}" for k in range(5)]
    full = run("modularity_explicitness", codes, GRID)
    dropped = run("modularity_explicitness", without_factor0, GRID)
    assert all(full[name] > 0.95 for name in names)
    assert dropped["explicitness_test_factor0"] == pytest.approx(0.5, abs=0.08)
    assert all(dropped[name] > 0.95 for name in names[1:])
    assert full["explicitness_test"] == pytest.approx(np.mean([full[n] for n in names]))

