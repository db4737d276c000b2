"""The BetaVAE score (docs/methods.md §16.1) on the synthetic cases."""
import pytest

from tests.metric_cases import assert_repeatable, codes, noise, permuted_rescaled, run, zeros


def test_identity_scores_at_least_0_9():
    assert run("beta_vae_score", codes)["eval_accuracy"] >= 0.9


@pytest.mark.parametrize("fn", [zeros, noise], ids=lambda f: f.__name__)
def test_codes_without_information_score_at_most_0_2(fn):
    assert run("beta_vae_score", fn)["eval_accuracy"] <= 0.2


def test_permuted_rescaled_identity_stays_close():
    # The logistic regression is regularised, so the score depends on the codes' scale a little.
    base, moved = run("beta_vae_score", codes), run("beta_vae_score", permuted_rescaled)
    for key in base:
        assert moved[key] == pytest.approx(base[key], abs=0.05), key


def test_seeds_repeat_and_agree():
    assert_repeatable("beta_vae_score", 0.1)
