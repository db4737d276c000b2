"""`trainers.train --strategy`: training under tf.distribute matches training on one device.

TensorFlow's CPU must be split into logical devices before anything initialises it, so every run
here is a process of its own (tests/strategy_driver.py): 2 logical CPU devices for `mirrored`,
one per worker for `multi_worker` (two worker processes on 127.0.0.1), one for the single-device
reference. Tiny networks (the pinwheel data set's MLP) keep each run short; the cost is mostly
TensorFlow's start, a few minutes in all on a busy 2-core machine, so the runs are marked slow.
"""
import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from trainers import train
from trainers.config import ConfigError, TrainConfig
from zoo import models, replicas

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVER = os.path.join(REPO, "tests", "strategy_driver.py")

# 20 steps of each model; CascadeVAE's discrete stage starts at step 4 (stage_steps 2,
# discrete_stage 2) and a large λ' makes its assignment depend on the whole batch (solved over the
# global batch: per-replica solutions would differ); relief restarts happen at steps 2 and 6.
MODELS = {
    "beta_vae": {"model": "beta_vae", "model_args": {"beta": 4.0}},
    "factor_vae": {"model": "factor_vae", "model_args": {
        "gamma": 10.0, "discriminator_units": 16, "discriminator_layers": 2}},
    "cascade_vae": {"model": "cascade_vae", "model_args": {
        "stage_steps": 2, "discrete_stage": 2, "lambda_prime": 0.5}},
}
STEPS, BATCH = 20, 16


def _drive(mode, spec, env=None):
    return subprocess.Popen([sys.executable, DRIVER, mode, json.dumps(spec)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": REPO, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process, timeout=900):
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-4000:]
    return output


@pytest.fixture(scope="module")
def per_step_runs(tmp_path_factory):
    """Every model of MODELS trained STEPS steps on one device and under `mirrored` on 2 logical
    CPU devices: {(model, strategy): npz}."""
    root = tmp_path_factory.mktemp("strategy_steps")
    for strategy, cpus in (("default", 1), ("mirrored", 2)):
        runs = [{**settings, "strategy": strategy, "latent_dim": 3, "batch_size": BATCH,
                 "steps": STEPS, "out": str(root / f"{name}_{strategy}.npz")}
                for name, settings in MODELS.items()]
        _finish(_drive("steps", {"cpus": cpus, "runs": runs}))
    return {(name, strategy): np.load(root / f"{name}_{strategy}.npz")
            for name in MODELS for strategy in ("default", "mirrored")}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODELS))
def test_mirrored_training_matches_one_device_step_by_step(per_step_runs, name):
    one, two = per_step_runs[name, "default"], per_step_runs[name, "mirrored"]
    assert list(one["names"]) == list(two["names"])
    assert int(one["global_step"]) == int(two["global_step"]) == STEPS
    # Every logged term of every step (the loss terms, FactorVAE's discriminator terms,
    # CascadeVAE's stage), and the weights after the last.
    np.testing.assert_allclose(two["logs"], one["logs"], rtol=1e-5, atol=1e-6)
    weights = sorted(k for k in one.files if k.startswith("w"))
    assert weights and weights == sorted(k for k in two.files if k.startswith("w"))
    for key in weights:
        np.testing.assert_allclose(two[key], one[key], rtol=1e-5, atol=1e-6, err_msg=key)
    if name == "cascade_vae":
        active = list(one["names"]).index("discrete_active")
        assert one["logs"][:4, active].tolist() == [0, 0, 0, 0]
        assert set(one["logs"][4:, active]) == {1.0}


def test_the_cascade_assignment_depends_on_the_whole_batch():
    """Why CascadeVAE's assignment is solved over the global batch: with its balancing penalty the
    labels of one half of a batch depend on the other half (so per-replica solutions differ from
    the single-device one), and the test above compares against that one."""
    from zoo import assignment

    rng = np.random.default_rng(0)
    unary = rng.normal(size=(16, 3))
    unary[:8, 0] -= 2.0  # the first half prefers category 0
    whole = assignment.assign_labels(unary, 0.5, "linear_sum_assignment")
    halves = np.concatenate([assignment.assign_labels(unary[:8], 0.5, "linear_sum_assignment"),
                             assignment.assign_labels(unary[8:], 0.5, "linear_sum_assignment")])
    assert not np.array_equal(whole, halves)


def test_a_replica_gets_its_slice_of_each_batch_of_the_step():
    # FactorVAE's step reads two batches (x, x'): each replica gets its rows of both.
    element = tf.reshape(tf.range(16 * 2), [16, 2])  # rows 0-7: x, rows 8-15: x'
    first = replicas.slice_for_replica(element, 0, 2, batches_per_step=2)
    second = replicas.slice_for_replica(element, 1, 2, batches_per_step=2)
    assert first[:, 0].numpy().tolist() == [0, 2, 4, 6, 16, 18, 20, 22]
    assert second[:, 0].numpy().tolist() == [8, 10, 12, 14, 24, 26, 28, 30]
    pair = replicas.slice_for_replica((element, element[:, 0]), 1, 2)
    assert pair[1].numpy().tolist() == [16, 18, 20, 22, 24, 26, 28, 30]


def test_an_unknown_strategy_is_refused_naming_it():
    with pytest.raises(ConfigError, match="strategy must be one of default, mirrored, "
                                          "multi_worker, got 'tpu'"):
        TrainConfig(strategy="tpu")
    with pytest.raises(ValueError, match="'horovod'"):
        train.make_strategy("horovod")
    refused = subprocess.run([sys.executable, "-m", "trainers.train", "--strategy=tpu"],
                             check=False, cwd=REPO, capture_output=True, text=True)
    assert refused.returncode != 0 and "tpu" in refused.stderr
    assert "strategy" in refused.stderr


def test_a_batch_the_replicas_cannot_share_evenly_is_refused():
    strategy = tf.distribute.get_strategy()

    class Two:
        num_replicas_in_sync = 2

    assert train.distributed_stream(strategy, lambda: "stream", 7) == "stream"
    with pytest.raises(ValueError, match="--batch_size=7 .* 2 replicas"):
        train.distributed_stream(Two(), lambda: None, 7)


# ------------------------------------------------------------------ whole runs
TRAIN = {"model": "factor_vae", "model_args": MODELS["factor_vae"]["model_args"],
         "latent_dim": 3, "dataset": "pinwheel", "network": "mlp", "batch_size": BATCH,
         "steps": 6, "checkpoint_every": 3, "eval_batches": 2}


def _weights(path):
    return models.load(path).get_weights()


def _assert_same_weights(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def one_device_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("one_device") / "run"
    _finish(_drive("train", {"config": {**TRAIN, "output_dir": str(out)}}))
    return out


@pytest.mark.slow
def test_a_mirrored_run_killed_at_its_checkpoint_resumes_and_exports(one_device_run, tmp_path):
    """trainers.train --strategy=mirrored: killed right after its first checkpoint (step 3),
    rerun, it ends with the weights of the uninterrupted single-device run, and writes its
    SavedModel."""
    from trainers.callbacks import KILL_AFTER_CHECKPOINT

    out = tmp_path / "run"
    spec = {"cpus": 2, "config": {**TRAIN, "strategy": "mirrored", "output_dir": str(out)}}
    killed = _drive("train", spec, env={KILL_AFTER_CHECKPOINT: "1"})
    killed.communicate(timeout=900)
    assert killed.returncode == -signal.SIGKILL
    assert json.loads((out / "checkpoint_state.json").read_text())["global_step"] == 3
    assert "Resuming from" in _finish(_drive("train", spec))
    assert (out / "saved_model" / "saved_model.pb").exists()
    _assert_same_weights(_weights(out / "model.keras"), _weights(one_device_run / "model.keras"))
    results = json.loads((out / "results.json").read_text())
    assert results["steps"] == 6 and results["config"]["strategy"] == "mirrored"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_multi_worker_run_on_loopback_matches_one_device(one_device_run, tmp_path):
    """Two worker processes on 127.0.0.1 (TF_CONFIG as usual): the run completes, only the chief
    writes the run directory, and its model is the single-device run's."""
    out = tmp_path / "run"
    cluster = {"worker": [f"127.0.0.1:{_free_port()}" for _ in range(2)]}
    spec = {"config": {**TRAIN, "strategy": "multi_worker", "output_dir": str(out)}}
    workers = [_drive("train", spec, env={"TF_CONFIG": json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": i}})}) for i in range(2)]
    outputs = [_finish(worker) for worker in workers]
    assert str(out) in outputs[0] and str(out) not in outputs[1]  # worker 1 wrote elsewhere
    assert (out / "saved_model" / "saved_model.pb").exists()
    _assert_same_weights(_weights(out / "model.keras"), _weights(one_device_run / "model.keras"))
