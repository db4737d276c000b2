"""The metric suite as a whole (docs/methods.md §16): `zoo.metrics.evaluate`, the representation cache, the
shared helpers of `zoo.metrics.core`, odd representations, and the full-size known answers.

Each metric has its own file of known answers (tests/test_metric_<name>.py); the synthetic cases
they share are in tests/metric_cases.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from tests.metric_cases import (
    ALL_SMALL,
    IDENTITY,
    codes,
    fewer_codes,
    more_codes,
    noise,
    noisy_identity,
    run,
    single_code,
    with_constant_codes,
    zeros,
)
from zoo import metrics
from zoo.data.synthetic import IdentityData
from zoo.metrics import core

#: Where the whole suite runs: the odd representations of 6 factors (more, fewer, constant and a
#: single code) on a grid small enough for the suite's tree ensembles to be quick.
SUITE_DATA = IdentityData(num_factors=6, factor_size=3)


# --------------------------------------------------------------------------------------------------
# Odd representations
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [more_codes, fewer_codes, with_constant_codes, single_code],
                         ids=lambda f: f.__name__)
def test_every_metric_handles_odd_code_counts(fn):
    result = metrics.evaluate(SUITE_DATA, fn, "all", seed=0, **ALL_SMALL)
    assert set(result["metrics"]) == set(metrics.DEFAULT_SUITE)
    for name, entry in result["metrics"].items():
        for key, value in entry["values"].items():
            assert isinstance(value, float), (name, key)
            assert not math.isnan(value), (name, key)


def test_an_encoder_returning_nan_is_a_clear_error():
    def broken(x):
        values = codes(x)
        values[0, 3] = np.nan
        return values

    for name in ("mig", "beta_vae_score", "dci"):
        with pytest.raises(ValueError, match="NaN or infinite"):
            run(name, broken)


def test_wrongly_shaped_codes_are_a_clear_error():
    with pytest.raises(ValueError, match="shape"):
        run("mig", lambda x: np.zeros((len(x) + 1, 3)))


# --------------------------------------------------------------------------------------------------
# The shared cache and evaluate()
# --------------------------------------------------------------------------------------------------
def test_the_cache_encodes_each_combination_once():
    data = IdentityData(num_factors=3, factor_size=4)  # 64 combinations
    calls = []

    def counting(x):
        calls.append(len(x))
        return codes(x)

    reps = metrics.Representations(data, counting)
    factors = data.sample_factors(5000, 0)
    first = reps(factors)
    assert np.array_equal(first, factors.astype(float))
    assert sum(calls) == len(np.unique(data.index_of(factors))) <= 64
    again = reps(factors.reshape(50, 100, 3))
    assert again.shape == (50, 100, 3) and sum(calls) <= 64
    assert reps.num_requested == 10_000


def test_evaluate_shares_the_representations_between_metrics():
    # 2²⁰ combinations: the 500 points drawn are all different ones (each is encoded once), and
    # DCI's trees are quick on binary factors.
    data = IdentityData(num_factors=20, factor_size=2)
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


def test_evaluate_skips_optional_metrics_and_refuses_explicit_ones_it_cannot_run():
    result = metrics.evaluate(SUITE_DATA, codes, "all", seed=0, **ALL_SMALL)
    assert set(result["skipped"]) == {"unsupervised_accuracy", "elbo_decomposition"}
    with pytest.raises(ValueError, match="cannot compute elbo_decomposition.*posterior"):
        metrics.evaluate(IDENTITY, codes, "elbo_decomposition")
    with pytest.raises(ValueError, match="unknown metric 'migg'"):
        metrics.evaluate(IDENTITY, codes, "migg")
    with pytest.raises(ValueError, match="has no parameter"):
        metrics.evaluate(IDENTITY, codes, "mig", mig={"bins": 3})


def test_parse_metric_args():
    per_metric, common = metrics.parse_metric_args(
        ["mig.estimator=sampled", "num_train=1000", "factor_vae_score.normalize_over=null"])
    assert per_metric == {"mig": {"estimator": "sampled"},
                          "factor_vae_score": {"normalize_over": None}}
    assert common == {"num_train": 1000}
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.parse_metric_args(["nope.x=1"])


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
    values = reps(factors)
    assert len(np.unique(values)) > 20  # different images of one class, not one cached image
    assert np.array_equal(values, metrics.Representations(digits, mean_pixel)(factors))


# --------------------------------------------------------------------------------------------------
# Shared helpers agree with scikit-learn / numpy, and their own known answers
# --------------------------------------------------------------------------------------------------
def test_mutual_information_matrix_equals_sklearn_mutual_info_score():
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 5, size=(3000, 3))
    values = np.c_[factors[:, 0] + rng.normal(0, 0.5, 3000), rng.normal(size=(3000, 2))]
    binned = core.histogram_discretize(values, 20)
    matrix = core.mutual_information_matrix(binned, factors)
    for i in range(3):
        for j in range(3):
            assert matrix[i, j] == pytest.approx(mutual_info_score(binned[:, i], factors[:, j]),
                                                 abs=1e-12)
        edges = np.histogram(values[:, i], 20)[1]
        assert np.array_equal(binned[:, i], np.digitize(values[:, i], edges[:-1]) - 1)
    assert core.discrete_entropy(factors) == pytest.approx(
        [mutual_info_score(factors[:, j], factors[:, j]) for j in range(3)])


def test_correlation_ratio_is_one_for_any_function_of_the_factor_and_low_for_noise():
    rng = np.random.default_rng(0)
    angle = rng.integers(0, 40, size=4000)
    circular = np.cos(2 * np.pi * angle / 40)  # a rank correlation with `angle` is about 0
    values = np.stack([circular, rng.normal(size=4000), np.zeros(4000)], axis=1)
    eta = core.correlation_ratios(values, angle[:, None])[:, 0]
    assert eta[0] == pytest.approx(1.0)
    assert eta[1] < 2 * math.sqrt(39 / 4000)  # chance level √((values − 1)/n) ≈ 0.1
    assert eta[2] == 0.0


def test_correlation_ratio_of_a_half_explained_code_is_the_root_of_the_half():
    rng = np.random.default_rng(1)
    factor = rng.integers(0, 2, size=20_000)
    values = (2.0 * factor - 1.0 + rng.normal(size=factor.size))[:, None]  # Var 1 from each part
    assert core.correlation_ratios(values, factor[:, None])[0, 0] == pytest.approx(
        math.sqrt(0.5), abs=0.02)


# --------------------------------------------------------------------------------------------------
# Full-size runs (docs/methods.md §16 defaults)
# --------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_full_size_known_answers():
    for fn, low in ((codes, False), (zeros, True), (noise, True)):
        result = metrics.evaluate(IDENTITY, fn,
                                  ["beta_vae_score", "factor_vae_score", "mig", "dci"], seed=0)
        scores = {
            "beta_vae": result["metrics"]["beta_vae_score"]["values"]["eval_accuracy"],
            "factor_vae": result["metrics"]["factor_vae_score"]["values"]["eval_accuracy"],
            "mig": result["metrics"]["mig"]["values"]["mig"],
            "dci": result["metrics"]["dci"]["values"]["disentanglement"],
        }
        for name, value in scores.items():
            assert (value <= 0.2) if low else (value >= 0.9), (fn.__name__, name, value)
