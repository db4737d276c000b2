"""The FactorVAE score (docs/methods.md §16.2–16.3): its vote classifier's pieces, both protocols on the synthetic
cases."""
import numpy as np
import pytest

from tests.metric_cases import (
    SMALL_IDENTITY,
    assert_permutation_invariant,
    assert_repeatable,
    codes,
    gaussian_posterior,
    noise,
    run,
    with_constant_codes,
    zeros,
)
from zoo import metrics
from zoo.metrics.factor_vae_score import gini_index, majority_vote_accuracy


# ------------------------------------------------------------------------ the pure pieces
def test_gini_index_and_majority_vote():
    assert gini_index(np.zeros(10, int)) == 0.0
    # n = 4, two of each: (16 − 8)/(2·4·3) = 1/3
    assert gini_index(np.array([0, 0, 1, 1])) == pytest.approx(1 / 3)
    votes = np.array([[8, 2], [1, 9], [0, 0]])
    assert majority_vote_accuracy(votes) == (0.85, 0.85)


# ------------------------------------------------------------------------ disentanglement_lib's
def test_identity_scores_at_least_0_9():
    assert run("factor_vae_score", codes)["eval_accuracy"] >= 0.9


def test_zero_codes_give_exact_zeros_and_noise_at_most_0_2():
    assert run("factor_vae_score", zeros) == {
        "train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0.0}
    assert run("factor_vae_score", noise)["eval_accuracy"] <= 0.2


def test_permuted_rescaled_identity_gives_the_same_numbers():
    assert_permutation_invariant("factor_vae_score")


def test_constant_codes_are_pruned():
    assert run("factor_vae_score", with_constant_codes)["num_active_dims"] == 10.0


def test_seeds_repeat_and_agree():
    assert_repeatable("factor_vae_score", 0.1)


# ------------------------------------------------------------------------ CascadeVAE's protocol
def test_cascade_protocol_prunes_by_kl_and_uses_the_discrete_code():
    result = metrics.factor_vae_score(SMALL_IDENTITY, gaussian_posterior, 0, protocol="cascade_vae",
                                      votes_per_factor=50, batch_size=20)
    assert result["num_active_dims"] == 3.0  # the 2 collapsed dimensions are pruned
    assert result["eval_accuracy"] == result["train_accuracy"] == 1.0

    def discrete_first(x):
        # factor 0 only as a discrete code (last column), factors 1-2 as continuous codes
        out = gaussian_posterior(x)
        mean, logvar = out["mean"][:, 1:3], out["logvar"][:, 1:3]
        columns = np.concatenate([mean, out["mean"][:, :1]], axis=1)
        return {"codes": columns, "mean": mean, "logvar": logvar,
                "category": out["mean"][:, :1].astype(np.int64)}

    result = metrics.factor_vae_score(SMALL_IDENTITY, discrete_first, 0, protocol="cascade_vae",
                                      votes_per_factor=50, batch_size=20, discrete_columns=[2])
    assert result["num_active_dims"] == 3.0
    assert result["eval_accuracy"] == 1.0


def test_cascade_protocol_leaves_out_a_constant_discrete_code():
    # CascadeVAE before its discrete stage reports category 0 for every image. Its Gini index is 0
    # in every batch, so if it took part it would win every vote and score 1/3 here.
    def constant_code(x):
        out = gaussian_posterior(x)
        columns = np.concatenate([out["mean"], np.zeros((len(x), 1))], axis=1)
        return {**out, "codes": columns, "category": np.zeros((len(x), 1), np.int64)}

    result = metrics.factor_vae_score(SMALL_IDENTITY, constant_code, 0, protocol="cascade_vae",
                                      votes_per_factor=50, batch_size=20, discrete_columns=[5])
    assert result["num_active_dims"] == 3.0
    assert result["eval_accuracy"] == 1.0


def test_cascade_protocol_with_nothing_kept_scores_chance():
    def collapsed(x):
        return {"mean": np.zeros((len(x), 2)), "logvar": np.zeros((len(x), 2))}

    result = metrics.factor_vae_score(SMALL_IDENTITY, collapsed, 0, protocol="cascade_vae",
                                      votes_per_factor=10)
    assert result["eval_accuracy"] == pytest.approx(1 / 3)
