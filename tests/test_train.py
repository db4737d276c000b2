"""The training command: outputs, resume after a kill, refusing mismatched reruns, bad settings."""
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.resume_harness import (
    kill_after_first_checkpoint_and_resume,
    to_first_checkpoint_format,
)
from trainers import train
from trainers.config import ConfigError, TrainConfig
from trainers.run_dir import latest_checkpoint
from zoo import export, models

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """A 200-step β-VAE run on procedural dSprites, trained in-process."""
    out = tmp_path_factory.mktemp("short_run")
    config = TrainConfig(model="beta_vae", model_args={"beta": 4.0}, steps=200,
                         checkpoint_every=100, image_every=100, eval_batches=4,
                         output_dir=str(out), verbose=0)
    return out, train.run(config)


def test_short_run_lowers_the_loss_clearly(short_run):
    _, results = short_run
    # At initialisation recon ≈ 4096·ln 2 ≈ 2839 nats; 200 steps take it well below half of that.
    assert results["final_loss_terms"]["recon"] < 0.5 * 4096 * np.log(2)
    assert results["steps"] == 200


def test_short_run_writes_every_output_and_names_its_data_source(short_run):
    out, _ = short_run
    for name in ("model.keras", "checkpoint-000000200.keras", "checkpoint_state.json",
                 "results.json", "config.json",
                 "reconstructions.png", "traversals.png", "saved_model/saved_model.pb"):
        assert (out / name).exists(), name
    assert any(p.name.startswith("events.out.tfevents") for p in (out / "tensorboard").iterdir())
    written = json.loads((out / "results.json").read_text())
    assert "procedural" in written["data_source"]
    assert written["seed"] == 0 and written["steps"] == 200
    assert written["train_wall_time_s"] > 0
    assert {"recon", "kl", "loss", "elbo"} <= set(written["final_loss_terms"])
    assert written["model_config"]["beta"] == 4.0


def test_rerunning_a_finished_run_does_not_train_further(short_run):
    out, results = short_run
    again = train.run(TrainConfig.read(out / "config.json").replace(verbose=0))
    assert again["steps"] == 200
    assert again["final_loss_terms"] == results["final_loss_terms"]


def test_a_rerun_with_different_settings_is_refused(short_run):
    out, _ = short_run
    config = TrainConfig(model="beta_vae", model_args={"beta": 8.0}, steps=200,
                         output_dir=str(out), verbose=0)
    with pytest.raises(ValueError, match="different settings.*model_args"):
        train.run(config)


def test_a_run_of_the_first_dsprites_renderer_resumes_only_with_that_renderer(short_run, tmp_path):
    """A run directory from before renderer versions (data_source unset, description of the
    unversioned v1) is refused under today's default renderer and accepted with procedural_v1."""
    import shutil

    old = tmp_path / "old_run"
    shutil.copytree(short_run[0], old)
    to_first_checkpoint_format(old)
    saved = json.loads((old / "config.json").read_text())
    saved["data_source_description"] = (
        "procedural dSprites (zoo renderer, identical factor grid; not the original images)")
    saved["data_source"] = None
    (old / "config.json").write_text(json.dumps(saved))
    config = TrainConfig.read(old / "config.json").replace(output_dir=str(old), verbose=0)
    with pytest.raises(ValueError, match="different settings.*data_source=procedural_v1 resumes"):
        train.run(config)
    # What the error tells the user to add.
    assert train.run(config.replace(data_source="procedural_v1"))["steps"] == 200


def test_export_command_writes_the_serving_endpoints(short_run, tmp_path):
    out, _ = short_run
    target = tmp_path / "exported"
    subprocess.run([sys.executable, "-m", "trainers.export", f"--model_path={out / 'model.keras'}",
                    f"--output_dir={target}"], check=True, cwd=REPO, capture_output=True)
    shown = subprocess.run(
        [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--dir",
         str(target), "--all"], capture_output=True, text=True, check=True).stdout
    for endpoint in export.ENDPOINTS:
        assert f"signature_def['{endpoint}']" in shown


@pytest.mark.parametrize("overrides, message", [
    ({"model": "gan"}, "model must be one of the zoo's models .*got 'gan'"),
    ({"dataset": "mnist3d"}, "dataset must be .*got 'mnist3d'"),
    ({"data_source": "web"}, "data_source must be .*got 'web'"),
    ({"steps": 0}, "steps must be ≥ 1"),
])
def test_bad_settings_are_refused_when_the_config_is_made(overrides, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**overrides)


@pytest.mark.parametrize("model_args, message", [
    ({"beta": -2.0}, "beta must be"),
    ({"bta": 2.0}, "bta"),
])
def test_bad_hyperparameters_are_refused_before_anything_is_written(model_args, message,
                                                                     tmp_path):
    config = TrainConfig(model_args=model_args, output_dir=str(tmp_path / "run"), verbose=0)
    with pytest.raises(ValueError, match=message):
        train.run(config)
    assert not (tmp_path / "run").exists()


def _train_command(out, steps=90, every=30):
    return [sys.executable, "-m", "trainers.train", "--model=beta_vae", "--model_arg=beta=4",
            f"--steps={steps}", f"--checkpoint_every={every}", "--log_every=10",
            "--image_every=1000", "--eval_batches=1", "--noexport", f"--output_dir={out}"]


def _weights(path):
    return [v.numpy() for v in models.load(path).weights]


# Slow (half a minute or more on 2 cores): `make test-all` runs it.
@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_weights_as_an_uninterrupted_run(tmp_path):
    uninterrupted, interrupted, killed_at = kill_after_first_checkpoint_and_resume(
        _train_command, tmp_path)
    assert 0 < killed_at < 90
    for a, b in zip(_weights(uninterrupted / "model.keras"), _weights(interrupted / "model.keras")):
        np.testing.assert_array_equal(a, b)
    assert json.loads((interrupted / "results.json").read_text())["steps"] == 90


def test_loaded_checkpoint_continues_the_step_counter(short_run):
    out, _ = short_run
    model = keras.models.load_model(latest_checkpoint(out))
    assert int(model.global_step.numpy()) == 200


def test_models_default_their_own_latent_size_and_learning_rate():
    """Without --latent_dim / --learning_rate a model gets its paper defaults (docs/methods.md §7–8)."""
    expected = {"beta_vae": (10, 1e-4), "cascade_vae": (6, 1e-4), "joint_vae": (6, 5e-4)}
    for name, (latent_dim, learning_rate) in expected.items():
        model = train.build_model(TrainConfig(model=name))
        assert model.latent_dim == latent_dim
        assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(learning_rate)
    explicit = train.build_model(TrainConfig(model="cascade_vae", latent_dim=4,
                                             learning_rate=3e-4))
    assert explicit.latent_dim == 4
    assert float(explicit.optimizer.learning_rate.numpy()) == pytest.approx(3e-4)


def test_vector_data_trains_with_the_data_sets_input_shape_and_no_image_summaries(tmp_path):
    """Pinwheel points (2-D vectors): the model takes the data set's shape, and the image
    summaries, which need images, are skipped rather than failing."""
    config = TrainConfig(
        model="decomposition_vae", dataset="pinwheel", network="mlp", latent_dim=2,
        model_args={"likelihood": "gaussian_learned", "prior": "mixture"}, steps=4,
        batch_size=16, checkpoint_every=2, image_every=1, log_every=1, eval_batches=1,
        export=False, output_dir=str(tmp_path / "run"), verbose=0)
    results = train.run(config)
    assert results["steps"] == 4
    assert results["model_config"]["input_shape"] == [2]


def test_a_setting_left_to_the_models_default_resumes_with_the_saved_value(tmp_path):
    """A run saved with --learning_rate=1e-4 --latent_dim=10 resumes without those flags."""
    settings = {"model": "beta_vae", "steps": 2, "checkpoint_every": 1, "eval_batches": 1,
                "export": False, "output_dir": str(tmp_path / "run"), "verbose": 0}
    train.run(TrainConfig(latent_dim=10, learning_rate=1e-4, **settings))
    results = train.run(TrainConfig(**{**settings, "steps": 3}))
    assert results["steps"] == 3
    assert results["config"]["learning_rate"] == 1e-4 and results["config"]["latent_dim"] == 10


def _init_from_config(source, out, **overrides):
    settings = {"model": "beta_vae", "model_args": {"beta": 4.0}, "init_from": str(source),
                "checkpoint_every": 1, "eval_batches": 1, "export": False,
                "output_dir": str(out), "verbose": 0}
    return TrainConfig(**{**settings, **overrides})


def test_a_run_started_from_a_saved_model_takes_its_weights_and_step(short_run, tmp_path):
    out, _ = short_run
    # --steps equal to the saved model's step: nothing to train, so the run's model is the source.
    train.run(_init_from_config(out / "model.keras", tmp_path / "same", steps=200))
    for a, b in zip(_weights(out / "model.keras"), _weights(tmp_path / "same" / "model.keras")):
        np.testing.assert_array_equal(a, b)
    # With more steps it trains on from step 200, and the setting is part of the run's identity.
    continued = train.run(_init_from_config(out / "model.keras", tmp_path / "more", steps=203))
    assert continued["steps"] == 203 and continued["config"]["init_from"] == str(out / "model.keras")
    with pytest.raises(ValueError, match="different settings.*init_from"):
        train.run(_init_from_config(None, tmp_path / "more", steps=204))


@pytest.mark.parametrize("overrides, message", [
    ({"latent_dim": 4}, "does not fit this run's model"),
    ({"model": "beta_tcvae", "model_args": {}}, "holds a BetaVAE; this run trains a BetaTCVAE"),
])
def test_a_saved_model_that_does_not_fit_the_run_is_refused(short_run, tmp_path, overrides,
                                                             message):
    out, _ = short_run
    with pytest.raises(ValueError, match=message):
        train.run(_init_from_config(out / "model.keras", tmp_path / "run", steps=201, **overrides))


def _draws():
    """One number from each global generator a run seeds: Python's, NumPy's, TensorFlow's (an
    unseeded op takes its seed from the global one) and Keras' (an unseeded keras.random op)."""
    import random

    import tensorflow as tf

    return (random.random(), np.random.random(),  # noqa: NPY002 (the global state is the point)
            float(tf.random.uniform(())), float(keras.random.uniform(())))


def _set_op_determinism(enabled):
    from tensorflow.python.framework import config as tf_config

    if enabled:
        tf_config.enable_op_determinism()
    else:
        tf_config.disable_op_determinism()


def test_run_leaves_the_process_as_it_found_it(tmp_path, monkeypatch):
    """run() in-process sets op determinism and the global seeds for the run only; thread pools
    it never touches. Also when it fails."""
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config

    threads = (tf.config.threading.get_intra_op_parallelism_threads(),
               tf.config.threading.get_inter_op_parallelism_threads())
    determinism = tf_config.is_op_determinism_enabled()
    during = []
    train_and_finish = train._train_and_finish
    monkeypatch.setattr(train, "_train_and_finish", lambda *args: during.append(
        tf_config.is_op_determinism_enabled()) or train_and_finish(*args))
    settings = {"model": "beta_vae", "latent_dim": 3, "steps": 1, "batch_size": 8,
                "checkpoint_every": 1, "eval_batches": 1, "export": False, "verbose": 0,
                "seed": 5}
    try:
        keras.utils.set_random_seed(1234)
        expected = _draws()
        for deterministic, model_args in ((True, {}), (False, {"beta": -1.0})):
            _set_op_determinism(not deterministic)  # the opposite of what the run wants
            keras.utils.set_random_seed(1234)
            config = TrainConfig(**settings, deterministic=deterministic, model_args=model_args,
                                 output_dir=str(tmp_path / f"run_{deterministic}"))
            if model_args:  # a run refused after it started
                with pytest.raises(ValueError, match="beta must be"):
                    train.run(config)
            else:
                assert train.run(config)["steps"] == 1
                assert during == [True]
            assert tf_config.is_op_determinism_enabled() is not deterministic
            assert _draws() == expected
        assert (tf.config.threading.get_intra_op_parallelism_threads(),
                tf.config.threading.get_inter_op_parallelism_threads()) == threads
    finally:
        _set_op_determinism(determinism)
