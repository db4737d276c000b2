"""Hoyer sparsity (docs/methods.md §16.10): known values of the pure core, then the synthetic cases."""
import itertools
import math

import numpy as np
import pytest

from tests.metric_cases import assert_permutation_invariant, assert_repeatable, run, single_code
from zoo.metrics.hoyer import hoyer


def test_hoyer_known_values():
    d = 6
    assert hoyer(np.eye(d)[np.arange(60) % d]) == pytest.approx(1.0)
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=d)))  # balanced columns
    assert hoyer(signs) == pytest.approx(0.0, abs=1e-12)
    for k in (2, 3):
        rows = np.array([[1.0 if i in subset else 0.0 for i in range(d)]
                         for subset in itertools.combinations(range(d), k)])
        expected = (math.sqrt(d) - math.sqrt(k)) / (math.sqrt(d) - 1)
        assert hoyer(rows) == pytest.approx(expected)
    assert hoyer(np.zeros((5, 3))) == 0.0
    assert hoyer(np.ones((5, 1))) == 1.0


def test_hoyer_is_invariant_to_per_dimension_scale():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(500, 4)) * (rng.random((500, 4)) < 0.3)
    assert hoyer(z * np.array([1.0, 10.0, 0.1, 3.0])) == pytest.approx(hoyer(z))


def test_a_single_code_is_sparse_by_definition():
    assert run("hoyer_sparsity", single_code)["hoyer_sparsity"] == 1.0


def test_permuted_rescaled_identity_gives_the_same_numbers():
    assert_permutation_invariant("hoyer_sparsity")


def test_seeds_repeat_and_agree():
    assert_repeatable("hoyer_sparsity", 0.02)
