"""Settings checked before work starts and errors a person can read (issue 24, items 5–8): one-line
`error: ...` from the commands, hyperparameters named, metric-parameter typos refused, output paths
checked before computing, memory estimates, SavedModel endpoints that say what they expect."""
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from trainers import train
from trainers.config import TrainConfig
from zoo import export, models

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _command(*arguments):
    return subprocess.run([sys.executable, "-m", *arguments], cwd=REPO, capture_output=True,
                          text=True, check=False)


def test_a_bad_setting_is_one_line_and_exit_status_2_and_verbose_errors_shows_the_traceback(
        tmp_path):
    arguments = ["trainers.train", "--learning_rate=-1", f"--output_dir={tmp_path / 'run'}"]
    done = _command(*arguments)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == \
        "error: learning_rate must be a finite number > 0, got -1.0."
    assert "Traceback" not in done.stderr
    verbose = _command(*arguments, "--verbose_errors")
    assert verbose.returncode == 2 and "Traceback" in verbose.stderr


def test_a_failure_is_one_line_and_exit_status_1(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint_state.json").write_text("{damaged")
    done = _command("trainers.train", f"--output_dir={out}")
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {out / 'checkpoint_state.json'} is damaged")
    assert "Traceback" not in done.stderr


def _tiny(out, **overrides):
    settings = {"model": "beta_vae", "latent_dim": 3, "steps": 1, "batch_size": 8,
                "checkpoint_every": 1, "eval_batches": 1, "export": False,
                "output_dir": str(out), "verbose": 0}
    return TrainConfig(**{**settings, **overrides})


def test_a_hyperparameter_that_is_not_a_number_is_named(tmp_path):
    with pytest.raises(ValueError, match="beta must be a finite number ≥ 0, got 'abc'"):
        train.run(_tiny(tmp_path / "run", model_args={"beta": "abc"}))
    assert not (tmp_path / "run").exists()  # a refused run leaves no directory behind


def test_a_metric_parameter_typo_is_refused_before_training_naming_the_accepted_ones(tmp_path):
    with pytest.raises(ValueError, match="no metric takes the parameter.*num_trian.*num_train"):
        train.run(_tiny(tmp_path / "run", eval_metrics="mig",
                        eval_metric_args=["num_trian=500"]))
    with pytest.raises(ValueError, match="mig has no parameter.*bins"):
        train.run(_tiny(tmp_path / "run", eval_metrics="mig", eval_metric_args=["mig.bins=5"]))
    assert not (tmp_path / "run").exists()


def test_a_run_that_cannot_fit_in_memory_is_refused_with_the_estimate(tmp_path):
    model = models.BetaVAE(latent_dim=3, seed=0)
    estimate = train.memory_estimate(model)
    assert estimate["traversal pictures"] == 4 * 9 * 3 * (3 + 2 * 4096)
    with pytest.raises(ValueError, match=r"needs at least .* GiB of memory .*traversal pictures"):
        train.check_memory(model, available=1000)
    # The issue's --latent_dim=100000: its traversal alone needs 9·100,000² floats (335 GiB).
    big = SimpleNamespace(trainable_variables=[], decoder_input_dim=100_000,
                          image_shape=(64, 64, 1))
    assert train.memory_estimate(big)["traversal pictures"] > 300 * 2 ** 30


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.keras"
    models.BetaVAE(latent_dim=3, seed=0).save(path)
    return path


def test_evaluate_checks_its_output_path_before_computing(model_path, tmp_path, monkeypatch):
    from trainers import evaluate
    from zoo import metrics

    monkeypatch.setattr(metrics, "evaluate", lambda *a, **k: pytest.fail("computed metrics"))
    with pytest.raises(ValueError, match="is a directory"):
        evaluate.run(model_path, "mig", output=tmp_path, log=None)
    with pytest.raises(ValueError, match="no metric takes the parameter"):
        evaluate.run(model_path, "mig", output=tmp_path / "m.json", metric_args=["num_trian=5"],
                     log=None)
    assert list(tmp_path.iterdir()) == []


def test_evaluate_takes_the_data_sets_own_default_source(model_path):
    from trainers import evaluate
    # digits has no procedural source: the error is about the shapes, not about 'procedural'.
    with pytest.raises(ValueError, match="the model takes images of shape"):
        evaluate.run(model_path, "mig", dataset="digits", log=None)


def test_sample_and_decode_refuse_what_they_cannot_do():
    model = models.BetaVAE(latent_dim=3, seed=0)
    with pytest.raises(ValueError, match="n must be a positive integer, got 2.7"):
        model.sample(2.7)
    with pytest.raises(ValueError, match="Codes z contain NaN"):
        model.decode(np.full((1, 3), np.nan, np.float32))


def test_saved_model_endpoints_say_what_shape_they_expect(tmp_path):
    model = models.BetaVAE(latent_dim=3, seed=0)
    export.export_saved_model(model, tmp_path / "saved")
    served = tf.saved_model.load(str(tmp_path / "saved"))
    expected = r"images must have shape \(batch,\) \+ \(64, 64, 1\)"
    # Through the signatures, as TF Serving calls them (they do not enforce the shapes).
    encode, decode = served.signatures["encode"], served.signatures["decode"]
    for wrong in (np.zeros((2, 64, 64, 3)), np.zeros((2, 32, 32, 1)), np.zeros((64, 64, 1))):
        with pytest.raises(tf.errors.InvalidArgumentError, match=expected):
            encode(images=tf.constant(wrong, tf.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="z contains NaN"):
        decode(z=tf.constant(np.full((1, 3), np.nan), tf.float32))
    assert encode(images=tf.zeros((2, 64, 64, 1)))["mean"].shape == (2, 3)


def test_a_fit_that_failed_on_a_wrong_shape_batch_leaves_the_model_usable(binary_images):
    model = models.BetaVAE(latent_dim=3, seed=0)
    model.compile()
    with pytest.raises(ValueError, match="Expected images of shape"):
        model.fit(np.zeros((8, 32, 32, 1), np.float32), batch_size=8, verbose=0)
    model.fit(binary_images, batch_size=8, verbose=0)
    assert int(model.global_step.numpy()) == 2


def test_a_model_file_with_a_damaged_config_is_named(tmp_path):
    import zipfile

    path = tmp_path / "model.keras"
    models.BetaVAE(latent_dim=3, seed=0).save(path)
    damaged = tmp_path / "damaged.keras"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "config.json":
                content = content.replace(b'"latent_dim": 3', b'"latent_dim": "three"')
            target.writestr(item, content)
    with pytest.raises(ValueError, match=f"{damaged} could not be loaded as a Keras model"):
        models.load(damaged)
