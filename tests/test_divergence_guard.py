"""The divergence guard (issue 24, item 1): a training step with a non-finite loss term or gradient
never reaches the weights, in every kind of `train_step`; `trainers.train` stops naming the step
and the term (or skips the batch with --on_nan=skip_batch) and never writes non-finite values."""
import json

import numpy as np
import pytest
import tensorflow as tf

from tests.test_models import MODEL_CASES
from trainers import train
from trainers.callbacks import DivergenceGuard
from trainers.config import TrainConfig
from trainers.run_dir import NonFiniteModelError, nonfinite_variables
from zoo import models


def _blow_up(model):
    """Scale every trainable weight by 1e30: finite weights whose activations overflow."""
    for variable in model.trainable_variables:
        variable.assign(variable * 1e30)


# One case per kind of train_step: the shared optimizer_step, CascadeVAE's alternating step and
# the two two-optimiser steps (FactorVAE, InfoGAN).
@pytest.mark.parametrize("case", ["beta_vae", "cascade_vae", "factor_vae", "infogan"])
def test_a_non_finite_step_is_not_applied_and_is_reported(case, binary_images):
    name, kwargs = MODEL_CASES[case]
    model = models.get(name, **kwargs)
    model.compile()
    _blow_up(model)
    before = [v.numpy().copy() for v in model.trainable_variables]
    reported = []
    model.fit(binary_images, batch_size=8, epochs=1, verbose=0,
              callbacks=[tf.keras.callbacks.LambdaCallback(
                  on_batch_end=lambda batch, logs: reported.append(int(logs["nonfinite"])))])
    assert reported and all(reported), "the non-finite steps were not reported"
    for a, b in zip(before, model.trainable_variables):
        np.testing.assert_array_equal(a, b.numpy())
    assert not nonfinite_variables(model)
    assert int(model.global_step.numpy()) == len(reported)  # the batches still count as steps


def test_a_batch_rejected_by_the_input_checks_does_not_count_as_a_step(binary_images):
    model = models.BetaVAE(latent_dim=3, seed=0)
    model.compile()
    bad = binary_images.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN"):
        model.fit(bad, batch_size=16, epochs=1, verbose=0)
    assert int(model.global_step.numpy()) == 0


class _Model:
    def __init__(self, step):
        self.global_step = tf.Variable(step, dtype=tf.int64)

    @staticmethod
    def nonfinite_names():
        return ("loss", "recon", "kl", "elbo", "gradients")


def test_the_guard_names_the_step_and_the_terms_and_skips_when_asked(capsys):
    stop = DivergenceGuard("stop")
    stop.set_model(_Model(17))
    logs = {"loss": 1.0, "nonfinite": 0b10010}  # recon and the gradients
    with pytest.raises(NonFiniteModelError, match="recon, gradients at step 17"):
        stop.on_train_batch_end(0, logs)
    skip = DivergenceGuard("skip_batch", max_consecutive=3)
    skip.set_model(_Model(5))
    for _ in range(2):
        logs = {"loss": 1.0, "nonfinite": 1}
        skip.on_train_batch_end(0, logs)
        assert "nonfinite" not in logs  # not shown by the progress bar or TensorBoard
    assert "Skipped the update of step 5: non-finite (NaN or infinite) loss" in \
        capsys.readouterr().out
    skip.on_train_batch_end(0, {"nonfinite": 0})  # a good step resets the count
    skip.on_train_batch_end(0, {"nonfinite": 1})
    skip.on_train_batch_end(0, {"nonfinite": 1})
    with pytest.raises(NonFiniteModelError, match="3 steps in a row skipped"):
        skip.on_train_batch_end(0, {"nonfinite": 1})
    assert skip.skipped == 5


def _tiny(out, **overrides):
    settings = {"model": "beta_vae", "latent_dim": 3, "steps": 6, "batch_size": 8,
                "checkpoint_every": 1, "image_every": 1000, "eval_batches": 1, "export": False,
                "output_dir": str(out), "verbose": 0}
    return TrainConfig(**{**settings, **overrides})


def test_a_diverging_run_stops_naming_the_step_and_keeps_its_last_good_checkpoint(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(NonFiniteModelError, match=r"non-finite .*loss.* at step \d+"):
        train.run(_tiny(out, learning_rate=1e6))
    assert not (out / "model.keras").exists() and not (out / "results.json").exists()
    manifest = json.loads((out / "checkpoint_state.json").read_text())
    assert manifest["checkpoints"], "no good checkpoint kept"
    for entry in manifest["checkpoints"]:
        assert not nonfinite_variables(models.load(out / entry["file"])), entry["file"]


def test_skip_batch_goes_on_past_bad_steps_and_stops_when_they_do_not_end(tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(NonFiniteModelError, match="20 steps in a row skipped"):
        train.run(_tiny(out, learning_rate=1e6, on_nan="skip_batch", steps=40,
                        checkpoint_every=5))
    assert "Skipped the update of step" in capsys.readouterr().out
    manifest = json.loads((out / "checkpoint_state.json").read_text())
    for entry in manifest["checkpoints"]:  # checkpoints of skipped steps: finite weights
        assert not nonfinite_variables(models.load(out / entry["file"])), entry["file"]


@pytest.mark.parametrize("rate", [-1.0, 0.0, float("nan"), float("inf")])
def test_non_finite_or_non_positive_learning_rates_are_refused(rate, tmp_path):
    with pytest.raises(ValueError, match="learning_rate must be a finite number > 0"):
        train.run(_tiny(tmp_path / "run", learning_rate=rate))
    assert not (tmp_path / "run").exists()


def test_a_model_with_nan_weights_cannot_start_a_run(tmp_path):
    model = models.BetaVAE(latent_dim=3, seed=0)
    model.compile()
    model.trainable_variables[0].assign(model.trainable_variables[0] * np.nan)
    source = tmp_path / "nan.keras"
    model.save(source)
    with pytest.raises(ValueError, match="init_from .* holds NaN or infinite values"):
        train.run(_tiny(tmp_path / "run", init_from=str(source)))
