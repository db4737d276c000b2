"""Run directories that survive a second process, damaged files and reruns (issue 24, items 2, 3
and 8): the run lock, the checkpoint manifest with its fallback, refusing a directory that holds a
run without a checkpoint, the run's identity stored with its checkpoints."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.resume_harness import to_first_checkpoint_format
from trainers import train
from trainers.callbacks import BestModel, MetricsCallback
from trainers.config import TrainConfig
from trainers.run_dir import (
    CheckpointStore,
    RunDirError,
    RunLock,
    latest_checkpoint,
    resumable_files,
    save_model,
    write_json,
)
from zoo import models

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tiny(out, **overrides):
    settings = {"model": "beta_vae", "model_args": {"beta": 4.0}, "latent_dim": 3, "steps": 2,
                "batch_size": 8, "checkpoint_every": 1, "image_every": 1000, "eval_batches": 1,
                "export": False, "output_dir": str(out), "verbose": 0}
    return TrainConfig(**{**settings, **overrides})


def _weights(path):
    return [v.numpy() for v in models.load(path).weights]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 2-step run (checkpoints at steps 1 and 2)."""
    out = tmp_path_factory.mktemp("finished")
    train.run(_tiny(out))
    return out


def _copy(source, target):
    subprocess.run(["cp", "-r", str(source), str(target)], check=True)
    return target


# ------------------------------------------------------------------ one run per directory
def test_a_second_lock_on_a_directory_is_refused_naming_the_holder(tmp_path):
    refused = pytest.raises(RunDirError,
                            match=f"in use by another training process \\(pid {os.getpid()}")
    with RunLock(tmp_path), refused, RunLock(tmp_path):
        pass
    with RunLock(tmp_path):  # released: taken again
        pass


# Slow (half a minute or more on 2 cores): `make test-all` runs it.
@pytest.mark.slow
def test_a_training_into_a_directory_another_process_holds_is_refused_at_once(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import sys; from trainers.run_dir import RunLock\n"
                                f"with RunLock({str(out)!r}):\n"
                                "    print('locked', flush=True); sys.stdin.read()")],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirError, match=f"pid {holder.pid}"):
            train.run(_tiny(out))
    finally:
        holder.communicate("")  # the holder ends; its lock goes with it
    # The lock file of a process that has ended is taken over.
    assert (out / "run.lock").exists()
    assert train.run(_tiny(out, steps=1))["steps"] == 1


def test_the_run_identity_lives_in_the_checkpoint_manifest_not_in_config_json(finished,
                                                                               tmp_path):
    out = _copy(finished, tmp_path / "run")
    manifest = json.loads((out / "checkpoint_state.json").read_text())
    assert manifest["run"]["model_args"] == {"beta": 4.0}
    # config.json edited (or written by another process): the checkpoint's settings still rule.
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "model_args": {"beta": 1.0}}))
    with pytest.raises(RunDirError, match="different settings.*model_args"):
        train.run(_tiny(out, model_args={"beta": 1.0}))
    assert train.run(_tiny(out))["model_config"]["beta"] == 4.0


def test_naming_the_default_data_source_is_the_same_run(finished, tmp_path):
    out = _copy(finished, tmp_path / "run")
    assert train.run(_tiny(out, data_source="procedural"))["steps"] == 2


@pytest.mark.parametrize("removed", ["checkpoint_state.json", "every checkpoint"])
def test_a_directory_with_run_files_but_no_checkpoint_manifest_is_refused(finished, tmp_path,
                                                                          removed):
    out = _copy(finished, tmp_path / "run")
    if removed == "checkpoint_state.json":
        (out / removed).unlink()
        expected = "no checkpoint manifest"
    else:
        for path in out.glob("checkpoint-*.keras"):
            path.unlink()
        expected = "none of its checkpoints is usable"
    model_bytes = (out / "model.keras").read_bytes()
    with pytest.raises(RunDirError, match=expected):  # not retrained from step 0
        train.run(_tiny(out, steps=3))
    assert (out / "model.keras").read_bytes() == model_bytes


def test_a_run_stopped_before_its_first_checkpoint_starts_again(tmp_path):
    """config.json (written at the start) and no checkpoint: nothing to lose, nothing refused."""
    out = tmp_path / "run"
    out.mkdir()
    write_json(out / "config.json", {"model": "beta_vae", "model_args": {"beta": 1.0}})
    assert train.run(_tiny(out, steps=1))["steps"] == 1


def test_a_refused_setting_leaves_no_directory_behind(tmp_path):
    with pytest.raises(ValueError, match="steps must be"):
        train.run(_tiny(tmp_path / "run", steps=0))
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ checkpoints to fall back on
def test_the_last_k_checkpoints_are_kept_with_their_checksums(tmp_path):
    out = tmp_path / "run"
    train.run(_tiny(out, steps=4, checkpoints_kept=3))
    manifest = json.loads((out / "checkpoint_state.json").read_text())
    assert [e["step"] for e in manifest["checkpoints"]] == [2, 3, 4]
    assert sorted(p.name for p in out.glob("checkpoint*.keras")) == [
        "checkpoint-000000002.keras", "checkpoint-000000003.keras", "checkpoint-000000004.keras"]
    assert manifest["global_step"] == 4 and len(manifest["checkpoints"][-1]["sha256"]) == 64
    assert latest_checkpoint(out) == out / "checkpoint-000000004.keras"
    assert resumable_files(out) == ["checkpoint_state.json", "checkpoint-000000002.keras",
                                    "checkpoint-000000003.keras", "checkpoint-000000004.keras"]
    assert not list(out.glob(".*tmp*")), "temporary files left behind"


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one_and_resumes_exactly(
        finished, tmp_path, capsys):
    straight = tmp_path / "straight"
    train.run(_tiny(straight, steps=3))
    out = _copy(finished, tmp_path / "run")
    newest = latest_checkpoint(out)
    content = bytearray(newest.read_bytes())
    content[len(content) // 2] ^= 0xFF
    newest.write_bytes(bytes(content))
    results = train.run(_tiny(out, steps=3))
    printed = capsys.readouterr().out
    assert f"checkpoint {newest} is unusable (its sha256 differs" in printed
    assert "Resuming from" in printed and "at step 1." in printed
    assert results["steps"] == 3
    for a, b in zip(_weights(straight / "model.keras"), _weights(out / "model.keras")):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("damaged", ["checkpoint_state.json", "best.json"])
def test_a_damaged_json_file_is_named_with_what_to_do(finished, tmp_path, damaged):
    out = _copy(finished, tmp_path / "run")
    (out / damaged).write_text('{"global_step": 2, "chec')
    with pytest.raises(RunDirError, match=f"{damaged} is damaged .*(restore|delete)"):
        if damaged == "best.json":
            BestModel(out, "mig/mig")
        else:
            train.run(_tiny(out))


def test_a_run_saved_in_the_first_checkpoint_format_resumes(finished, tmp_path):
    """Runs started before the manifest (one checkpoint.keras, settings in config.json) resume."""
    out = _copy(finished, tmp_path / "run")
    to_first_checkpoint_format(out)
    config = json.loads((out / "config.json").read_text())
    write_json(out / "config.json", {**config, "data_source": None})
    assert resumable_files(out) == ["checkpoint_state.json", "checkpoint.keras", "config.json"]
    results = train.run(_tiny(out, steps=3))
    assert results["steps"] == 3
    assert not (out / "checkpoint.keras").exists()
    assert latest_checkpoint(out).name == "checkpoint-000000003.keras"


def test_a_failed_write_leaves_no_partial_file(tmp_path):
    model = models.BetaVAE(latent_dim=3, seed=0)

    class FullDisk:
        def save(self, path):
            with open(path, "wb") as f:
                f.write(b"partial")
            raise OSError(28, "No space left on device")

        variables = model.variables
        optimizers = model.optimizers

    with pytest.raises(OSError, match="No space left"):
        save_model(FullDisk(), tmp_path / "model.keras")
    assert list(tmp_path.iterdir()) == []


def test_a_store_refuses_to_keep_no_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="checkpoints_kept must be"):
        CheckpointStore(tmp_path, keep=0)


# ------------------------------------------------------------------ metrics history
class _Stepped:
    def __init__(self, step):
        import tensorflow as tf

        self.global_step = tf.Variable(step, dtype="int64")


def test_evaluations_after_the_resumed_checkpoint_are_not_repeated_in_the_history(tmp_path):
    history = tmp_path / "metrics_history.jsonl"
    history.write_text("".join(json.dumps({"step": s, "values": {}}) + "\n"
                               for s in (10, 20, 30)) + '{"step": 4')  # and a torn last line
    callback = MetricsCallback(None, ["mig"], 10, logdir=str(tmp_path / "tb"),
                               history_path=history)
    callback.set_model(_Stepped(20))
    callback.on_train_begin()
    assert [json.loads(line)["step"] for line in history.read_text().splitlines()] == [10, 20]
