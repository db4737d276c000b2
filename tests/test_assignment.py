"""The assignment solvers of CascadeVAE's inner problem and the Hungarian-matched accuracy."""
import itertools

import numpy as np
import pytest

from zoo import assignment

SOLVERS = [pytest.param(s, marks=pytest.mark.skipif(
    s == "min_cost_flow" and not assignment.ortools_available(), reason="OR-Tools not installed"))
    for s in assignment.SOLVERS]


def brute_force(costs, lambda_prime):
    """Optimal objective by enumerating all S^n assignments."""
    n, s = costs.shape
    labels = np.array(list(itertools.product(range(s), repeat=n)))          # [S^n, n]
    unary = costs[np.arange(n), labels].sum(axis=1)
    counts = np.stack([(labels == k).sum(axis=1) for k in range(s)], axis=1)
    return float(np.min(unary + lambda_prime * (counts * (counts - 1) / 2).sum(axis=1)))


def random_cases(count=300, seed=0):
    """(costs, λ') with n ≤ 8, S = 3, λ' ∈ {0, small, comparable, large}, real and tied costs."""
    rng = np.random.default_rng(seed)
    cases = []
    for index in range(count):
        n = int(rng.integers(1, 9))
        if index % 3 == 2:  # small integers: many ties
            costs = rng.integers(0, 4, size=(n, 3)).astype(np.float64)
        else:
            costs = rng.normal(scale=10.0 ** rng.uniform(-1, 3), size=(n, 3))
        spread = float(np.ptp(costs)) or 1.0
        lambda_prime = [0.0, 1e-3, 0.3, 1e3][(index // 3) % 4] * spread
        cases.append((costs, lambda_prime))
    return cases


@pytest.mark.parametrize("solver", SOLVERS)
def test_solvers_match_brute_force_on_hundreds_of_small_cases(solver):
    for costs, lambda_prime in random_cases():
        one_hot, objective = assignment.solve_assignment(costs, lambda_prime, solver)
        assert one_hot.shape == costs.shape and np.all(one_hot.sum(axis=1) == 1)
        assert set(np.unique(one_hot)) <= {0.0, 1.0}
        expected = brute_force(costs, lambda_prime)
        tolerance = 1e-9 * (np.abs(costs).sum() + lambda_prime * len(costs) ** 2 + 1)
        assert objective == pytest.approx(expected, abs=tolerance), (costs, lambda_prime)
        # The reported objective is the objective of the returned assignment.
        labels = one_hot.argmax(axis=1)
        assert assignment.assignment_objective(costs, labels, lambda_prime) == objective


@pytest.mark.parametrize("lambda_prime", [0.0, 1e-3, 1.0, 30.0, 1e4])
def test_both_solvers_agree_on_a_batch_of_64(lambda_prime):
    if not assignment.ortools_available():
        pytest.skip("OR-Tools not installed")
    rng = np.random.default_rng(1)
    for _ in range(5):
        costs = rng.normal(scale=100.0, size=(64, 3))
        _, flow = assignment.solve_assignment(costs, lambda_prime, "min_cost_flow")
        _, slots = assignment.solve_assignment(costs, lambda_prime, "linear_sum_assignment")
        assert flow == pytest.approx(slots, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("solver", SOLVERS)
def test_without_pair_penalty_every_row_takes_its_argmin(solver):
    costs = np.random.default_rng(2).normal(size=(64, 3))
    labels = assignment.assign_labels(costs, 0.0, solver)
    np.testing.assert_array_equal(labels, costs.argmin(axis=1))


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("num_categories", [3, 5])
def test_a_large_pair_penalty_balances_the_categories(solver, num_categories):
    costs = np.random.default_rng(3).normal(size=(64, num_categories))
    costs[:, 0] -= 10.0  # every row prefers category 0 on its own
    labels = assignment.assign_labels(costs, 1e3, solver)
    counts = np.bincount(labels, minlength=num_categories)
    assert counts.sum() == 64 and counts.max() - counts.min() <= 1


def test_auto_uses_or_tools_when_installed_and_names_are_checked():
    expected = "min_cost_flow" if assignment.ortools_available() else "linear_sum_assignment"
    assert assignment.resolve_solver("auto") == expected
    with pytest.raises(ValueError, match="Unknown assignment solver 'greedy'"):
        assignment.assign_labels(np.zeros((2, 3)), 0.0, "greedy")


@pytest.mark.parametrize("costs, lambda_prime, message", [
    (np.zeros((4, 3)), -1.0, "lambda_prime"),
    (np.zeros((4, 3)), float("nan"), "lambda_prime"),
    (np.full((4, 3), np.nan), 0.0, "NaN"),
    (np.zeros(4), 0.0, "matrix"),
])
def test_bad_problems_are_refused(costs, lambda_prime, message):
    with pytest.raises(ValueError, match=message):
        assignment.solve_assignment(costs, lambda_prime)


def test_solver_timings_are_reported_for_each_installed_solver():
    timings = assignment.time_solvers(repeats=3)
    assert "linear_sum_assignment" in timings and all(t > 0 for t in timings.values())


# ---------------------------------------------------------------------------- accuracy
def test_a_permuted_labelling_scores_one():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, size=900)
    codes = np.array([2, 0, 1])[labels]
    result = assignment.match_codes(codes, labels)
    assert result["accuracy"] == 1.0
    assert result["mapping"] == {2: 0, 0: 1, 1: 2}


def test_a_constant_code_scores_one_over_s_on_balanced_data():
    labels = np.repeat(np.arange(3), 300)
    assert assignment.unsupervised_accuracy(np.zeros(900, int), labels) == pytest.approx(1 / 3)


def test_confusion_matrix_and_partial_matching():
    codes = np.array([0, 0, 1, 1, 1, 2])
    labels = np.array([1, 1, 0, 0, 1, 2])
    matrix = assignment.confusion_matrix(codes, labels)
    np.testing.assert_array_equal(matrix, [[0, 2, 0], [2, 1, 0], [0, 0, 1]])
    assert assignment.unsupervised_accuracy(codes, labels) == pytest.approx(5 / 6)
    # More codes than labels: the extra code's samples are errors.
    assert assignment.unsupervised_accuracy([0, 1, 2, 3], [0, 1, 0, 1]) == 0.5
    with pytest.raises(ValueError, match="differ in length"):
        assignment.confusion_matrix([0, 1], [0])
    with pytest.raises(ValueError, match="non-negative integers"):
        assignment.confusion_matrix([0, -1], [0, 1])


class _Toy:
    """A ground-truth data set stand-in: factor 0 has 3 values, images encode it."""
    factor_names = ("shape", "scale")
    factor_sizes = (3, 2)

    def sample(self, n, rng):
        factors = np.stack([rng.integers(0, 3, n), rng.integers(0, 2, n)], axis=1)
        images = np.zeros((n, 64, 64, 1), np.float32)
        images[:, 0, 0, 0] = factors[:, 0]
        return factors, images


def test_discrete_code_accuracy_on_a_data_set():
    perfect = assignment.discrete_code_accuracy(
        _Toy(), lambda x: (x[:, 0, 0, 0].astype(int) + 1) % 3, factor="shape", num_samples=1000,
        batch_size=300)
    assert perfect["accuracy"] == 1.0 and perfect["num_samples"] == 1000
    assert perfect["confusion"].sum() == 1000 and perfect["factor"] == "shape"
    constant = assignment.discrete_code_accuracy(_Toy(), lambda x: np.zeros(len(x), int),
                                                 factor=0, num_samples=3000)
    assert constant["accuracy"] == pytest.approx(1 / 3, abs=0.03)
    with pytest.raises(ValueError, match="Unknown factor 'colour'"):
        assignment.discrete_code_accuracy(_Toy(), lambda x: x, factor="colour")
