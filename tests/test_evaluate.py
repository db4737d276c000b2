"""The evaluate command, metrics during/after training, and scoring zoo models (tiny sizes)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import zoo.data
from trainers import train
from trainers.callbacks import BestModel
from trainers.config import TrainConfig
from zoo import metrics, models

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["num_train=300", "num_test=100", "num_points=300", "elbo_decomposition.num_samples=300"]


@pytest.fixture(scope="module")
def dsprites():
    return zoo.data.get("dsprites")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.keras"
    models.get("beta_vae", seed=0).save(path)
    return path


def test_evaluate_command_writes_metrics_json_and_prints_a_table(model_path, tmp_path):
    output = tmp_path / "metrics.json"
    command = [sys.executable, "-m", "trainers.evaluate", f"--model_path={model_path}",
               "--metrics=mig,sap,hoyer_sparsity,gaussian_total_correlation,elbo_decomposition",
               "--dataset=dsprites", "--data_source=procedural", "--seed=3",
               f"--output={output}"] + [f"--metric_arg={a}" for a in TINY]
    shown = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True).stdout
    written = json.loads(output.read_text())
    assert "procedural" in written["data_source"] and written["seed"] == 3
    assert written["dataset"] == "dsprites" and written["model_class"] == "BetaVAE"
    assert set(written["metrics"]) == {"mig", "sap", "hoyer_sparsity",
                                       "gaussian_total_correlation", "elbo_decomposition"}
    mig = written["metrics"]["mig"]
    assert mig["params"] == {"estimator": "discretized", "num_train": 300, "num_bins": 20}
    assert 0.0 <= mig["values"]["mig"] <= 1.0 and mig["wall_time_s"] >= 0
    assert written["metrics"]["sap"]["params"]["C"] == 0.01
    assert written["encoding"]["observations_encoded"] == 400  # 300 shared train + 100 test
    for library in ("scikit-learn", "tensorflow", "keras", "numpy", "scipy"):
        assert library in written["versions"]
    assert "mig" in shown and "index_code_mi" in shown and "Wrote" in shown


def test_unknown_metric_is_refused_by_the_command(model_path, tmp_path):
    from trainers import evaluate

    with pytest.raises(ValueError, match="unknown metric 'foo'"):
        evaluate.run(model_path, "mig,foo", output=tmp_path / "m.json", log=None)


def test_model_representation_fused_and_image_paths_agree(dsprites):
    model = models.get("beta_vae", seed=1)
    factors = dsprites.sample_factors(40, 0)
    wrapped = metrics.ModelRepresentation(model, batch_size=16)
    fused = wrapped.outputs_from_factors(dsprites, factors)
    plain = wrapped(dsprites.images_from_factors(factors))
    direct = model.encode(dsprites.images_from_factors(factors))
    for key in ("codes", "mean", "logvar"):
        np.testing.assert_allclose(fused[key], plain[key], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(plain["codes"], direct["mean"].numpy(), rtol=1e-5, atol=1e-6)
    assert wrapped.discrete_columns == ()


@pytest.mark.skipif("cascade_vae" not in models.MODELS, reason="no CascadeVAE in this tree")
# Slow (half a minute or more on 2 cores): `make test-all` runs it.
@pytest.mark.slow
def test_a_model_with_a_discrete_code_gets_unsupervised_accuracy(dsprites):
    model = models.get("cascade_vae", seed=0)
    result = metrics.evaluate(dsprites, model, "all", seed=0, common={
        "num_train": 200, "num_test": 100, "num_points": 200, "num_eval": 50,
        "num_variance_estimate": 200, "num_samples": 200, "batch_size": 4})
    assert "unsupervised_accuracy" in result["metrics"]
    assert 0.0 < result["metrics"]["unsupervised_accuracy"]["values"]["accuracy"] <= 1.0
    assert "elbo_decomposition" in result["metrics"]


def _scalar_tags(logdir):
    tags = set()
    for name in os.listdir(logdir):
        if name.startswith("events.out.tfevents"):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(logdir, name)):
                tags.update((value.tag, event.step) for value in event.summary.value)
    return tags


def test_training_runs_metrics_periodically_and_at_the_end(tmp_path):
    out = tmp_path / "run"
    config = TrainConfig(
        steps=4, checkpoint_every=2, log_every=2, image_every=1000, eval_batches=1,
        export=False, output_dir=str(out), verbose=0, eval_metrics="mig,hoyer_sparsity",
        eval_every=2, eval_every_metrics="mig",
        eval_metric_args=["num_train=200", "num_points=200"])
    results = train.run(config)
    assert set(results["metrics"]) == {"mig", "hoyer_sparsity"}
    assert results["metrics"]["mig"]["params"]["num_train"] == 200
    written = json.loads((out / "results.json").read_text())
    assert written["metrics"]["hoyer_sparsity"]["values"] == \
        results["metrics"]["hoyer_sparsity"]["values"]
    history = [json.loads(line) for line in
               (out / "metrics_history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [2, 4]
    assert set(history[0]["values"]) == {"mig/mig"}
    tags = _scalar_tags(out / "tensorboard")
    assert ("metrics/mig/mig", 2) in tags and ("metrics/mig/mig", 4) in tags


def _history(out):
    return [json.loads(line) for line in (out / "metrics_history.jsonl").read_text().splitlines()]


# Slow (about a minute or more on 2 cores): `make test-all` runs it.
@pytest.mark.slow
def test_training_keeps_the_model_of_the_best_periodic_evaluation(tmp_path):
    out = tmp_path / "run"
    config = TrainConfig(
        steps=6, checkpoint_every=2, log_every=2, image_every=1000, eval_batches=1, export=False,
        output_dir=str(out), verbose=0, eval_every=2, eval_every_metrics="mig",
        eval_metric_args=["num_train=200"], keep_best="mig/mig")
    results = train.run(config)
    best = max(_history(out), key=lambda h: h["values"]["mig/mig"])  # the first of equal ones
    assert results["best_model"]["step"] == best["step"]
    assert results["best_model"]["value"] == best["values"]["mig/mig"]
    assert json.loads((out / "best.json").read_text()) == results["best_model"]
    assert int(models.load(out / "best.keras").global_step.numpy()) == best["step"]

    # Resumed for more steps: the record carries over and only a better evaluation replaces it.
    results = train.run(config.replace(steps=10))
    best = max(_history(out), key=lambda h: h["values"]["mig/mig"])
    assert [h["step"] for h in _history(out)] == [2, 4, 6, 8, 10]
    assert results["best_model"]["step"] == best["step"]
    assert int(models.load(out / "best.keras").global_step.numpy()) == best["step"]


def _tiny_model():
    """A zoo model (run directories hold only those) on 2-D points: quick to build and save."""
    return models.get("beta_vae", latent_dim=1, network="mlp", input_shape=(2,), seed=0)


@pytest.mark.parametrize("mode, best_step", [("max", 2), ("min", 1)])
def test_the_best_model_is_the_highest_or_lowest_value_and_never_nan(tmp_path, mode, best_step):
    best = BestModel(tmp_path, "m/v", mode)
    for step, value in enumerate([0.4, 0.2, 0.9, 0.9, float("nan")]):
        best.update(_tiny_model(), step, {"m/v": value})
    assert best.record["step"] == best_step
    assert (tmp_path / "best.keras").exists()
    assert BestModel(tmp_path, "m/v", mode).record == best.record  # read back on resume


def test_the_best_model_refuses_a_missing_value_or_another_record(tmp_path):
    best = BestModel(tmp_path, "m/v")
    with pytest.raises(ValueError, match="'m/w' is not a value.*m/v"):
        BestModel(tmp_path, "m/w").update(_tiny_model(), 1, {"m/v": 0.5})
    best.update(_tiny_model(), 1, {"m/v": 0.5})
    with pytest.raises(ValueError, match="keeps the best model by max 'm/v', not min 'm/v'"):
        BestModel(tmp_path, "m/v", "min")


def test_training_refuses_unknown_metrics_before_training():
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        TrainConfig(eval_metrics="mig,nope")
    with pytest.raises(ValueError, match="no metrics"):
        TrainConfig(eval_every=5)
    with pytest.raises(ValueError, match="needs periodic evaluations"):
        TrainConfig(eval_metrics="mig", keep_best="mig/mig")
    with pytest.raises(ValueError, match="value <metric>/<value> of a periodic metric"):
        TrainConfig(eval_metrics="mig", eval_every=5, keep_best="sap/sap")
