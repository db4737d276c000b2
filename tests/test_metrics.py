"""Known-answer tests of zoo.metrics (METHODS §12) on synthetic data where observations = factors.

Every metric is run on `IdentityData` (10 factors x 10 values) with representations whose right
answer is known: the identity, zeros, noise, every code duplicated, a permuted and rescaled
identity; plus the pure-function cases (DCI importance matrices, UDR, Hungarian accuracy, Hoyer),
repeatability, odd code counts and a NaN encoder. Sample sizes are reduced so the file runs in
a few minutes on 2 cores; full-size runs are marked slow.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from zoo import metrics
from zoo.data.synthetic import IdentityData, identity_representation
from zoo.metrics import core
from zoo.metrics.dci import disentanglement_completeness
from zoo.metrics.factor_vae_score import gini_index, majority_vote_accuracy
from zoo.metrics.hoyer import hoyer
from zoo.metrics.modularity_explicitness import modularity
from zoo.metrics.udr import relative_strength, udr_scores

# Reduced sizes for the default run (the METHODS defaults are 10,000 / 5,000).
SMALL = {
    "beta_vae_score": {"num_train": 1000, "num_eval": 500},
    "factor_vae_score": {"num_train": 1000, "num_eval": 500, "num_variance_estimate": 2000},
    "mig": {"num_train": 5000},
    "dci": {"num_train": 250, "num_test": 100},
    "sap": {"num_train": 2000, "num_test": 1000},
    "sap_continuous": {"num_train": 5000, "continuous_factors": True},
    "modularity_explicitness": {"num_train": 1000, "num_test": 500},
    "hoyer_sparsity": {"num_points": 5000},
    "gaussian_total_correlation": {"num_points": 5000},
}
PERMUTATION = np.array([3, 7, 0, 9, 1, 5, 8, 2, 6, 4])
SCALES = np.array([0.5, 2.0, 3.0, 0.25, 1.0, 10.0, 0.7, 4.0, 1.5, 0.1])


@pytest.fixture(scope="module")
def data():
    return IdentityData()


def _codes(x):
    return identity_representation(x)


def zeros(x):
    return np.zeros((len(x), 10))


def _hash_noise(x, width=10, salt=0.0):
    """Deterministic pseudo-random values in [-0.5, 0.5) from each observation (a fixed function of
    the observation, like an encoder, but independent of the factors)."""
    f = _codes(x)
    key = f @ (10.0 ** np.arange(f.shape[1]))[::-1] + salt
    columns = key[:, None] * 12.9898 + np.arange(width)[None, :] * 78.233
    return (np.sin(columns) * 43758.5453) % 1.0 - 0.5


def noise(x):
    return _hash_noise(x)


def duplicated(x):
    f = _codes(x)
    return np.concatenate([f, f], axis=1)


def permuted_rescaled(x):
    return _codes(x)[:, PERMUTATION] * SCALES


def noisy_identity(x):
    """A plausible imperfect encoder: the identity plus noise of std ~1.2 per code."""
    return _codes(x) + 4.0 * _hash_noise(x, salt=0.5)


_MEMO = {}


def compute(name, data, fn, rng=0, **extra):
    """Metric `name` (or "sap_continuous") with the reduced sizes."""
    params = {**SMALL[name], **extra}
    metric = "sap" if name == "sap_continuous" else name
    return metrics.METRICS[metric].fn(data, fn, rng, **params)


def run(name, data, fn, rng=0, **extra):
    """`compute`, memoised: metrics are pure functions of their arguments, so tests that need the
    same result share one computation (the repeatability tests call `compute` afresh)."""
    key = (name, id(data), fn, rng, tuple(sorted(extra.items())))
    if key not in _MEMO:
        _MEMO[key] = compute(name, data, fn, rng, **extra)
    return dict(_MEMO[key])


# The value each headline metric is judged by.
HEADLINE = {
    "beta_vae_score": lambda r: r["eval_accuracy"],
    "factor_vae_score": lambda r: r["eval_accuracy"],
    "mig": lambda r: r["mig"],
    "dci": lambda r: r["disentanglement"],
    "modularity_explicitness": lambda r: r["modularity"],
    "sap_continuous": lambda r: r["sap"],
}


# --------------------------------------------------------------------------------------------------
# Known answers on the synthetic data
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def identity_results(data):
    return {name: run(name, data, _codes) for name in HEADLINE}


@pytest.mark.parametrize("name", sorted(HEADLINE))
def test_identity_representation_scores_at_least_0_9(identity_results, name):
    assert HEADLINE[name](identity_results[name]) >= 0.9


@pytest.mark.parametrize("name", sorted(HEADLINE))
def test_zero_codes_score_at_most_0_2(data, name):
    assert HEADLINE[name](run(name, data, zeros)) <= 0.2


def test_zero_codes_give_exact_zeros_where_the_definition_does(data):
    assert run("mig", data, zeros)["mig"] == 0.0
    assert run("factor_vae_score", data, zeros) == {
        "train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0.0}
    result = run("dci", data, zeros)
    assert result["disentanglement"] == 0.0 and result["completeness"] == 0.0
    assert run("sap", data, zeros)["sap"] == 0.0
    assert run("modularity_explicitness", data, zeros)["modularity"] == 0.0


@pytest.mark.parametrize("name", sorted(set(HEADLINE) - {"modularity_explicitness"}))
def test_noise_codes_score_at_most_0_2(data, name):
    assert HEADLINE[name](run(name, data, noise)) <= 0.2


def test_noise_codes_get_low_modularity_but_not_zero_by_definition(data):
    # Modularity asks only whether each code's MI is concentrated on one factor. Noise codes have
    # small, nearly equal plug-in MIs (estimator bias) with every factor, so δ ≈ 0.7 and modularity
    # ≈ 0.3 whatever the sample size; it is far below the identity's ~1 but not ≤ 0.2.
    value = run("modularity_explicitness", data, noise)["modularity"]
    assert 0.1 < value < 0.45


def test_noise_codes_have_chance_explicitness(data):
    result = run("modularity_explicitness", data, noise)
    assert abs(result["explicitness_test"] - 0.5) < 0.05


def test_duplicated_codes_give_mig_and_sap_at_most_0_2(data):
    assert run("mig", data, duplicated)["mig"] <= 0.2
    assert run("sap", data, duplicated)["sap"] <= 0.2
    assert run("sap_continuous", data, duplicated)["sap"] <= 0.2


def test_sap_classification_form_stays_low_even_for_the_identity(data):
    # METHODS §12: a LinearSVC with C = 0.01 cannot split 10 classes on one axis.
    assert run("sap", data, _codes)["sap"] < 0.5


@pytest.mark.parametrize("name", ["mig", "factor_vae_score", "sap_continuous",
                                  "modularity_explicitness", "hoyer_sparsity",
                                  "gaussian_total_correlation"])
def test_permuted_rescaled_identity_gives_the_same_numbers(data, name):
    base = run(name, data, _codes)
    moved = run(name, data, permuted_rescaled)
    assert moved.keys() == base.keys()
    for key in base:
        assert moved[key] == pytest.approx(base[key], abs=1e-9), key


@pytest.mark.parametrize("name", ["beta_vae_score", "dci", "sap"])
def test_permuted_rescaled_identity_stays_close_for_scale_or_order_dependent_metrics(data, name):
    # The BetaVAE score's logistic regression and SAP's LinearSVC are regularised (scale-dependent
    # by definition); DCI's trees break ties between equally good splits by feature order.
    base = run(name, data, _codes)
    moved = run(name, data, permuted_rescaled)
    for key in base:
        assert moved[key] == pytest.approx(base[key], abs=0.05), key


# --------------------------------------------------------------------------------------------------
# DCI importance-matrix cases
# --------------------------------------------------------------------------------------------------
def test_dci_diagonal_importance_is_perfect():
    assert disentanglement_completeness(np.eye(10)) == pytest.approx((1.0, 1.0))


def test_dci_two_redundant_codes_per_factor():
    # 10 factors, 20 codes: completeness entropies are in base D = 20 codes (Eastwood & Williams).
    r = np.repeat(np.eye(10), 2, axis=0)
    d, c = disentanglement_completeness(r)
    assert d == pytest.approx(1.0)
    assert c == pytest.approx(1 - math.log(2) / math.log(20))
    # METHODS quotes C = 1 − ln2/ln10: that is the value with 10 codes, i.e. 5 factors.
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


# --------------------------------------------------------------------------------------------------
# UDR
# --------------------------------------------------------------------------------------------------
def _orthogonal_design():
    """A full factorial grid of 3 variables x 4 levels (64 points): any two columns have exactly
    zero rank correlation, so a perfect match gives a similarity matrix with no off-diagonal."""
    grid = np.stack(np.meshgrid(*[np.arange(4.0)] * 3, indexing="ij"), -1).reshape(-1, 3)
    return grid


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


def test_udr_on_data_self_versus_permuted_copy_is_close_to_one(data):
    # Independent codes have finite-sample rank correlations ~ 0.8/√n, so with n = 10,000 and 10
    # codes the score is ≈ 1/(1 + 9·0.008) ≈ 0.93; it tends to 1 as n grows.
    result = metrics.udr(data, [_codes, permuted_rescaled], rng=0, num_points=10_000)
    assert result["model_0"] > 0.9 and result["model_1"] > 0.9


def test_relative_strength_of_a_permutation_matrix_is_one():
    assert relative_strength(np.eye(4)[[2, 0, 3, 1]]) == 1.0
    assert relative_strength(np.zeros((0, 3))) == 0.0


# --------------------------------------------------------------------------------------------------
# Hungarian accuracy, Hoyer, Gaussian TC, Gini
# --------------------------------------------------------------------------------------------------
def test_hungarian_accuracy_of_permuted_labels_is_one():
    labels = np.repeat(np.arange(4), 25)
    assert metrics.hungarian_accuracy(np.array([2, 0, 3, 1])[labels], labels) == 1.0


def test_hungarian_accuracy_of_a_constant_code_is_one_over_s_on_balanced_data():
    labels = np.repeat(np.arange(3), 100)
    assert metrics.hungarian_accuracy(np.zeros(300), labels) == pytest.approx(1 / 3)


def test_unsupervised_accuracy_on_data(data):
    def with_code(x):  # codes + a discrete code: factor 0 relabelled
        f = _codes(x)
        return np.concatenate([f, PERMUTATION[f[:, :1].astype(int)]], axis=1)

    result = metrics.unsupervised_accuracy(data, with_code, 0, factor=0, discrete_columns=[10],
                                           num_points=2000)
    assert result == {"accuracy": 1.0}

    def constant_code(x):
        return {"codes": _codes(x), "category": np.zeros((len(x), 1), np.int64)}

    result = metrics.unsupervised_accuracy(data, constant_code, 0, factor=0, num_points=5000)
    assert result["accuracy"] == pytest.approx(0.1, abs=0.02)


def test_unsupervised_accuracy_needs_a_discrete_code(data):
    with pytest.raises(ValueError, match="no discrete code"):
        metrics.unsupervised_accuracy(data, _codes, 0, factor=0, num_points=100)


def test_hoyer_known_values():
    d = 6
    assert hoyer(np.eye(d)[np.arange(60) % d]) == pytest.approx(1.0)
    import itertools
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


def test_gaussian_total_correlation_known_values():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200_000, 2))
    rho = 0.6
    z = np.stack([x[:, 0], rho * x[:, 0] + math.sqrt(1 - rho**2) * x[:, 1]], axis=1)
    expected = -0.5 * math.log(1 - rho**2)
    assert metrics.total_correlation_of_codes(z) == pytest.approx(expected, abs=0.01)
    assert metrics.total_correlation_of_codes(x) == pytest.approx(0.0, abs=1e-3)
    assert metrics.total_correlation_of_codes(np.concatenate([x, x[:, :1]], 1)) == math.inf
    assert metrics.total_correlation_of_codes(np.c_[x[:, 0], np.zeros(len(x))]) == 0.0


def test_gini_index_and_majority_vote():
    assert gini_index(np.zeros(10, int)) == 0.0
    # n = 4, two of each: (16 − 8)/(2·4·3) = 1/3
    assert gini_index(np.array([0, 0, 1, 1])) == pytest.approx(1 / 3)
    votes = np.array([[8, 2], [1, 9], [0, 0]])
    assert majority_vote_accuracy(votes) == (0.85, 0.85)


# --------------------------------------------------------------------------------------------------
# Shared helpers agree with scikit-learn / numpy
# --------------------------------------------------------------------------------------------------
def test_mutual_information_matrix_equals_sklearn_mutual_info_score():
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 5, size=(3000, 3))
    codes = np.c_[factors[:, 0] + rng.normal(0, 0.5, 3000), rng.normal(size=(3000, 2))]
    binned = core.histogram_discretize(codes, 20)
    matrix = core.mutual_information_matrix(binned, factors)
    for i in range(3):
        for j in range(3):
            assert matrix[i, j] == pytest.approx(mutual_info_score(binned[:, i], factors[:, j]),
                                                 abs=1e-12)
        edges = np.histogram(codes[:, i], 20)[1]
        assert np.array_equal(binned[:, i], np.digitize(codes[:, i], edges[:-1]) - 1)
    assert core.discrete_entropy(factors) == pytest.approx(
        [mutual_info_score(factors[:, j], factors[:, j]) for j in range(3)])


def test_modularity_of_a_diagonal_mi_matrix_is_one():
    assert modularity(np.eye(5) * 0.7) == 1.0
    assert modularity(np.ones((5, 5))) == pytest.approx(0.0)


# --------------------------------------------------------------------------------------------------
# Repeatability
# --------------------------------------------------------------------------------------------------
REPEATABLE = ["beta_vae_score", "factor_vae_score", "mig", "sap_continuous",
              "modularity_explicitness", "hoyer_sparsity", "gaussian_total_correlation"]
# Tolerances between seeds, for the reduced sizes above (≈ 4 binomial standard deviations of the
# accuracies with 500 eval points; sampling noise of MI/R² estimates with 2,000–5,000 points).
SEED_TOLERANCE = {"beta_vae_score": 0.1, "factor_vae_score": 0.1, "mig": 0.05,
                  "sap_continuous": 0.05, "modularity_explicitness": 0.05,
                  "hoyer_sparsity": 0.02, "gaussian_total_correlation": 0.02}


@pytest.fixture(scope="module")
def seeded_results(data):
    return {(name, seed): compute(name, data, noisy_identity, rng=seed)
            for name in REPEATABLE for seed in (0, 1)}


@pytest.mark.parametrize("name", REPEATABLE)
def test_same_seed_gives_the_same_numbers(data, seeded_results, name):
    assert compute(name, data, noisy_identity, rng=0) == seeded_results[name, 0]


@pytest.mark.parametrize("name", REPEATABLE)
def test_different_seeds_agree_within_the_stated_tolerance(seeded_results, name):
    first, second = seeded_results[name, 0], seeded_results[name, 1]
    for key in first:
        assert abs(first[key] - second[key]) <= SEED_TOLERANCE[name], key
    if name in ("mig", "sap_continuous"):  # and the seeds really drew different points
        assert first != second


def test_dci_is_repeatable_with_a_seed_whatever_the_threads(data):
    assert compute("dci", data, noisy_identity, rng=3) == compute("dci", data, noisy_identity,
                                                                  rng=3, n_jobs=1)


# --------------------------------------------------------------------------------------------------
# Odd representations
# --------------------------------------------------------------------------------------------------
def more_codes(x):
    return np.concatenate([_codes(x), noise(x)[:, :5]], axis=1)


def fewer_codes(x):
    return _codes(x)[:, :5]


def with_constant_codes(x):
    return np.concatenate([_codes(x), np.full((len(x), 3), 2.5)], axis=1)


def single_code(x):
    return _codes(x)[:, 0]  # 1-D: read as one code


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


@pytest.mark.parametrize("fn", [more_codes, fewer_codes, with_constant_codes, single_code],
                         ids=lambda f: f.__name__)
def test_every_metric_handles_odd_code_counts(data, fn):
    result = metrics.evaluate(data, fn, "all", seed=0, **ALL_SMALL)
    assert set(result["metrics"]) == set(metrics.DEFAULT_SUITE)
    for name, entry in result["metrics"].items():
        for key, value in entry["values"].items():
            assert isinstance(value, float), (name, key)
            assert not math.isnan(value), (name, key)


def test_odd_code_counts_give_the_expected_mig(data):
    assert run("mig", data, more_codes)["mig"] >= 0.9
    assert run("mig", data, fewer_codes)["mig"] == pytest.approx(0.5, abs=0.01)
    assert run("mig", data, with_constant_codes)["mig"] == run("mig", data, _codes)["mig"]
    assert run("mig", data, single_code)["mig"] == pytest.approx(0.1, abs=0.01)
    assert run("factor_vae_score", data, with_constant_codes)["num_active_dims"] == 10.0
    assert run("hoyer_sparsity", data, single_code)["hoyer_sparsity"] == 1.0


def test_an_encoder_returning_nan_is_a_clear_error(data):
    def broken(x):
        codes = _codes(x)
        codes[0, 3] = np.nan
        return codes

    for name in ("mig", "beta_vae_score", "dci"):
        with pytest.raises(ValueError, match="NaN or infinite"):
            run(name, data, broken)


def test_wrongly_shaped_codes_are_a_clear_error(data):
    with pytest.raises(ValueError, match="shape"):
        run("mig", data, lambda x: np.zeros((len(x) + 1, 3)))


# --------------------------------------------------------------------------------------------------
# The shared cache and evaluate()
# --------------------------------------------------------------------------------------------------
def test_the_cache_encodes_each_combination_once():
    data = IdentityData(num_factors=3, factor_size=4)  # 64 combinations
    calls = []

    def counting(x):
        calls.append(len(x))
        return _codes(x)

    reps = metrics.Representations(data, counting)
    factors = data.sample_factors(5000, 0)
    first = reps(factors)
    assert np.array_equal(first, factors.astype(float))
    assert sum(calls) == len(np.unique(data.index_of(factors))) <= 64
    again = reps(factors.reshape(50, 100, 3))
    assert again.shape == (50, 100, 3) and sum(calls) <= 64
    assert reps.num_requested == 10_000


def test_evaluate_shares_the_representations_between_metrics(data):
    result = metrics.evaluate(
        data, noisy_identity, ["mig", "dci", "sap", "hoyer_sparsity"], seed=0,
        common={"num_train": 400, "num_test": 100, "num_points": 400})
    entries = result["metrics"]
    assert entries["mig"]["observations_encoded"] == 400
    # DCI and SAP draw the same 400 train points first, then their 100 test points.
    assert entries["dci"]["observations_encoded"] == 100
    assert entries["sap"]["observations_encoded"] == 0
    assert entries["hoyer_sparsity"]["observations_encoded"] == 0
    assert result["encoding"]["observations_encoded"] == 500
    assert entries["mig"]["params"] == {"estimator": "discretized", "num_train": 400,
                                        "num_bins": 20}
    assert set(metrics.flatten(result)) >= {"mig/mig", "dci/disentanglement", "sap/sap"}
    table = metrics.format_table(result)
    assert "disentanglement" in table and "mig" in table


def test_evaluate_skips_optional_metrics_and_refuses_explicit_ones_it_cannot_run(data):
    result = metrics.evaluate(data, _codes, "all", seed=0, **ALL_SMALL)
    assert set(result["skipped"]) == {"unsupervised_accuracy", "elbo_decomposition"}
    with pytest.raises(ValueError, match="cannot compute elbo_decomposition.*posterior"):
        metrics.evaluate(data, _codes, "elbo_decomposition")
    with pytest.raises(ValueError, match="unknown metric 'migg'"):
        metrics.evaluate(data, _codes, "migg")
    with pytest.raises(ValueError, match="has no parameter"):
        metrics.evaluate(data, _codes, "mig", mig={"bins": 3})


def test_parse_metric_args():
    per_metric, common = metrics.parse_metric_args(
        ["mig.estimator=sampled", "num_train=1000", "factor_vae_score.normalize_over=null"])
    assert per_metric == {"mig": {"estimator": "sampled"},
                          "factor_vae_score": {"normalize_over": None}}
    assert common == {"num_train": 1000}
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.parse_metric_args(["nope.x=1"])


# --------------------------------------------------------------------------------------------------
# Posterior-based options: sampled MIG, CascadeVAE protocol, ELBO decomposition, UDR's KL filter
# --------------------------------------------------------------------------------------------------
def gaussian_posterior(x):
    """A posterior whose means are the identity (3 factors) plus two collapsed dimensions."""
    f = _codes(x)
    mean = np.concatenate([f, np.zeros((len(f), 2))], axis=1)
    logvar = np.concatenate([np.full(f.shape, -4.0), np.zeros((len(f), 2))], axis=1)
    return {"mean": mean, "logvar": logvar}


@pytest.fixture(scope="module")
def small_data():
    return IdentityData(num_factors=3, factor_size=6)  # 216 combinations


def test_sampled_mig_of_an_identity_posterior_is_high(small_data):
    result = metrics.mig(small_data, gaussian_posterior, 0, estimator="sampled", num_samples=216)
    assert result["mig"] > 0.9
    noisy = metrics.mig(small_data, lambda x: {"mean": np.zeros((len(x), 3)),
                                                "logvar": np.zeros((len(x), 3))},
                        0, estimator="sampled", num_samples=216)
    assert noisy["mig"] < 0.05


def test_sampled_mig_needs_a_posterior(small_data):
    with pytest.raises(ValueError, match="posterior"):
        metrics.mig(small_data, _codes, 0, estimator="sampled")


def test_cascade_protocol_prunes_by_kl_and_uses_the_discrete_code(small_data):
    result = metrics.factor_vae_score(small_data, gaussian_posterior, 0, protocol="cascade_vae",
                                      votes_per_factor=50, batch_size=20)
    assert result["num_active_dims"] == 3.0  # the 2 collapsed dimensions are pruned
    assert result["eval_accuracy"] == result["train_accuracy"] == 1.0

    def discrete_first(x):
        # factor 0 only as a discrete code (last column), factors 1-2 as continuous codes
        out = gaussian_posterior(x)
        mean, logvar = out["mean"][:, 1:3], out["logvar"][:, 1:3]
        codes = np.concatenate([mean, out["mean"][:, :1]], axis=1)
        return {"codes": codes, "mean": mean, "logvar": logvar,
                "category": out["mean"][:, :1].astype(np.int64)}

    result = metrics.factor_vae_score(small_data, discrete_first, 0, protocol="cascade_vae",
                                      votes_per_factor=50, batch_size=20, discrete_columns=[2])
    assert result["num_active_dims"] == 3.0
    assert result["eval_accuracy"] == 1.0


def test_cascade_protocol_leaves_out_a_constant_discrete_code(small_data):
    # CascadeVAE before its discrete stage reports category 0 for every image. Its Gini index is 0
    # in every batch, so if it took part it would win every vote and score 1/3 here.
    def constant_code(x):
        out = gaussian_posterior(x)
        codes = np.concatenate([out["mean"], np.zeros((len(x), 1))], axis=1)
        return {**out, "codes": codes, "category": np.zeros((len(x), 1), np.int64)}

    result = metrics.factor_vae_score(small_data, constant_code, 0, protocol="cascade_vae",
                                      votes_per_factor=50, batch_size=20, discrete_columns=[5])
    assert result["num_active_dims"] == 3.0
    assert result["eval_accuracy"] == 1.0


def test_cascade_protocol_with_nothing_kept_scores_chance(small_data):
    def collapsed(x):
        return {"mean": np.zeros((len(x), 2)), "logvar": np.zeros((len(x), 2))}

    result = metrics.factor_vae_score(small_data, collapsed, 0, protocol="cascade_vae",
                                      votes_per_factor=10)
    assert result["eval_accuracy"] == pytest.approx(1 / 3)


def test_elbo_decomposition_runs_on_the_shared_cache(small_data):
    result = metrics.evaluate(small_data, gaussian_posterior,
                              ["hoyer_sparsity", "elbo_decomposition"], seed=0,
                              hoyer_sparsity={"num_points": 500},
                              elbo_decomposition={"num_samples": 500})
    entry = result["metrics"]["elbo_decomposition"]
    assert entry["observations_encoded"] == 0  # the same 500 points Hoyer encoded
    values = entry["values"]
    assert values["kl_monte_carlo"] == pytest.approx(
        values["index_code_mi"] + values["total_correlation"] + values["dimension_wise_kl"])


def test_udr_filters_collapsed_dimensions_by_kl(small_data):
    result = metrics.udr(small_data, [gaussian_posterior, gaussian_posterior], 0,
                         num_points=1000)
    assert result["udr"] > 0.9


# --------------------------------------------------------------------------------------------------
# Full-size runs (METHODS defaults)
# --------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_full_size_known_answers(data):
    for fn, low in ((_codes, False), (zeros, True), (noise, True)):
        result = metrics.evaluate(data, fn, ["beta_vae_score", "factor_vae_score", "mig", "dci"],
                                  seed=0)
        scores = {
            "beta_vae": result["metrics"]["beta_vae_score"]["values"]["eval_accuracy"],
            "factor_vae": result["metrics"]["factor_vae_score"]["values"]["eval_accuracy"],
            "mig": result["metrics"]["mig"]["values"]["mig"],
            "dci": result["metrics"]["dci"]["values"]["disentanglement"],
        }
        for name, value in scores.items():
            assert (value <= 0.2) if low else (value >= 0.9), (fn.__name__, name, value)


def test_sets_with_several_images_per_combination_are_not_cached_and_stay_repeatable():
    """MNIST-like sets have many images per class: one cached code per combination would stand
    for all of them. The cache is off for such sets, and the images drawn for the requested
    combinations come from a seeded generator, so the metric is still a function of its seed."""
    import zoo.data

    digits = zoo.data.get("digits")
    assert not digits.one_observation_per_combination
    assert zoo.data.get("dsprites").one_observation_per_combination

    def mean_pixel(x):
        return np.asarray(x).reshape(len(x), -1).mean(axis=1, keepdims=True)

    reps = metrics.Representations(digits, mean_pixel)
    assert not reps.cache
    factors = np.zeros((200, 1), np.int64)  # 200 requests of the class "0"
    codes = reps(factors)
    assert len(np.unique(codes)) > 20  # different images of one class, not one cached image
    assert np.array_equal(codes, metrics.Representations(digits, mean_pixel)(factors))


def test_correlation_ratio_is_one_for_any_function_of_the_factor_and_low_for_noise():
    rng = np.random.default_rng(0)
    angle = rng.integers(0, 40, size=4000)
    circular = np.cos(2 * np.pi * angle / 40)  # a rank correlation with `angle` is about 0
    codes = np.stack([circular, rng.normal(size=4000), np.zeros(4000)], axis=1)
    eta = core.correlation_ratios(codes, angle[:, None])[:, 0]
    assert eta[0] == pytest.approx(1.0)
    assert eta[1] < 2 * math.sqrt(39 / 4000)  # chance level √((values − 1)/n) ≈ 0.1
    assert eta[2] == 0.0


def test_correlation_ratio_of_a_half_explained_code_is_the_root_of_the_half():
    rng = np.random.default_rng(1)
    factor = rng.integers(0, 2, size=200_000)
    codes = (2.0 * factor - 1.0 + rng.normal(size=factor.size))[:, None]  # Var 1 from each part
    assert core.correlation_ratios(codes, factor[:, None])[0, 0] == pytest.approx(
        math.sqrt(0.5), abs=0.01)
