"""UDR (docs/methods.md §16.8): exact scores of matched and permuted models, then the synthetic cases."""
import numpy as np
import pytest

from tests.metric_cases import (
    IDENTITY,
    SMALL_IDENTITY,
    codes,
    gaussian_posterior,
    permuted_rescaled,
)
from zoo import metrics
from zoo.metrics.udr import relative_strength, udr_scores


def _orthogonal_design():
    """A full factorial grid of 3 variables x 4 levels (64 points): any two columns have exactly
    zero rank correlation, so a perfect match gives a similarity matrix with no off-diagonal."""
    return np.stack(np.meshgrid(*[np.arange(4.0)] * 3, indexing="ij"), -1).reshape(-1, 3)


def test_udr_of_a_model_and_its_permuted_rescaled_copy_is_exactly_one():
    a = np.concatenate([_orthogonal_design(), np.zeros((64, 2))], axis=1)  # 2 collapsed dims
    b = a[:, [2, 4, 0, 3, 1]] * np.array([3.0, 1.0, -0.5, 1.0, 7.0])
    kl_a = np.array([1.0, 2.0, 0.5, 0.0, 0.0])
    kl_b = kl_a[[2, 4, 0, 3, 1]]
    scores, pairwise = udr_scores([a, b], [kl_a, kl_b])
    assert scores == pytest.approx([1.0, 1.0], abs=1e-12)
    assert pairwise[0, 1] == pytest.approx(1.0, abs=1e-12)


def test_udr_with_lasso_shrinks_a_perfect_match_by_alpha():
    a = _orthogonal_design()
    b = a[:, [1, 2, 0]] * np.array([2.0, 5.0, 0.3])
    scores, _ = udr_scores([a, b], correlation="lasso", alpha=0.1)
    assert scores == pytest.approx([0.9, 0.9], abs=1e-3)


def test_udr_of_unrelated_models_is_low():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2000, 5)), rng.normal(size=(2000, 5))
    scores, _ = udr_scores([a, b])
    assert np.all(scores < 0.35)


def test_relative_strength_of_a_permutation_matrix_is_one():
    assert relative_strength(np.eye(4)[[2, 0, 3, 1]]) == 1.0
    assert relative_strength(np.zeros((0, 3))) == 0.0


def test_udr_on_data_self_versus_permuted_copy_is_close_to_one():
    # Independent codes have finite-sample rank correlations ~ 0.8/√n, so with n = 10,000 and 10
    # codes the score is ≈ 1/(1 + 9·0.008) ≈ 0.93; it tends to 1 as n grows.
    result = metrics.udr(IDENTITY, [codes, permuted_rescaled], rng=0, num_points=10_000)
    assert result["model_0"] > 0.9 and result["model_1"] > 0.9


def test_udr_filters_collapsed_dimensions_by_kl():
    result = metrics.udr(SMALL_IDENTITY, [gaussian_posterior, gaussian_posterior], 0,
                         num_points=1000)
    assert result["udr"] > 0.9
