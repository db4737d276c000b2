"""Unsupervised accuracy (docs/methods.md §16.9): Hungarian matching of a discrete code to a factor."""
import numpy as np
import pytest

from tests.metric_cases import IDENTITY, PERMUTATION, codes
from zoo import metrics


def test_hungarian_accuracy_of_permuted_labels_is_one():
    labels = np.repeat(np.arange(4), 25)
    assert metrics.hungarian_accuracy(np.array([2, 0, 3, 1])[labels], labels) == 1.0


def test_hungarian_accuracy_of_a_constant_code_is_one_over_s_on_balanced_data():
    labels = np.repeat(np.arange(3), 100)
    assert metrics.hungarian_accuracy(np.zeros(300), labels) == pytest.approx(1 / 3)


def test_hungarian_accuracy_matches_the_best_one_to_one_map():
    # Code 0 is mostly label 1 and code 1 mostly label 0: 8 + 7 of 20 points are matched.
    labels = np.array([1] * 8 + [0] * 2 + [0] * 7 + [1] * 3)
    code = np.array([0] * 10 + [1] * 10)
    assert metrics.hungarian_accuracy(code, labels) == pytest.approx(15 / 20)


def test_unsupervised_accuracy_on_data():
    def with_code(x):  # codes + a discrete code: factor 0 relabelled
        f = codes(x)
        return np.concatenate([f, PERMUTATION[f[:, :1].astype(int)]], axis=1)

    result = metrics.unsupervised_accuracy(IDENTITY, with_code, 0, factor=0,
                                           discrete_columns=[10], num_points=2000)
    assert result == {"accuracy": 1.0}

    def constant_code(x):
        return {"codes": codes(x), "category": np.zeros((len(x), 1), np.int64)}

    result = metrics.unsupervised_accuracy(IDENTITY, constant_code, 0, factor=0, num_points=5000)
    assert result["accuracy"] == pytest.approx(0.1, abs=0.02)


def test_unsupervised_accuracy_needs_a_discrete_code():
    with pytest.raises(ValueError, match="no discrete code"):
        metrics.unsupervised_accuracy(IDENTITY, codes, 0, factor=0, num_points=100)
