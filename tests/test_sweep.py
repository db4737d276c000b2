"""trainers.sweep: specs are checked key by key, trials are ordinary trainers.train runs, a sweep
runs on local Ray, resumes after a kill to the same table, and selects models by UDR."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from trainers import sweep

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "trainers" / "sweeps" / "smoke.yaml"


def write_spec(tmp_path, spec):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def smoke_spec():
    return yaml.safe_load(SMOKE.read_text())


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update(seedz=2), r"unknown key 'seedz'"),
    (lambda s: s.pop("steps"), r"missing key 'steps'"),
    (lambda s: s["models"].update(beta_vea={}), r"models.beta_vea: unknown model"),
    (lambda s: s["models"]["beta_vae"].update(gird={}), r"models.beta_vae.gird: unknown key"),
    (lambda s: s["models"]["beta_vae"]["grid"].update(beta=4), r"models.beta_vae.grid.beta must be"),
    (lambda s: s.update(seeds=0), "seeds must be"),
    (lambda s: s["resources"].update(gpus=1), r"resources.gpus: unknown key"),
    (lambda s: s.update(train_args={"learnig_rate": 1}), "train_args key 'learnig_rate'"),
    (lambda s: s.update(train_args={"checkpoint_every": 0}),
     r"a trial of the spec is not a valid run: [\w.-]+: checkpoint_every must be ≥ 1, got 0"),
])
def test_a_malformed_spec_is_refused_naming_the_key(tmp_path, change, message):
    spec = smoke_spec()
    change(spec)
    with pytest.raises(sweep.SpecError, match=message):
        sweep.expand(sweep.load_spec(write_spec(tmp_path, spec)), tmp_path / "out", repo=tmp_path)


def test_the_presets_expand_to_their_trials(tmp_path):
    trials = sweep.expand(sweep.load_spec(SMOKE), tmp_path / "smoke", repo=tmp_path)
    assert [run.label for run, *_ in trials] == [
        "beta_vae_beta-4_s0", "beta_vae_beta-4_s1", "beta_tcvae_beta-6_s0", "beta_tcvae_beta-6_s1"]
    study = sweep.expand(sweep.load_spec(REPO / "trainers/sweeps/dlib_study.yaml"),
                         tmp_path / "study", repo=tmp_path)
    assert len(study) == 6 * 6 * 50
    assert {model for _, model, *_ in study} == {"beta_vae", "annealed_vae", "factor_vae",
                                                   "dip_vae_i", "dip_vae_ii", "beta_tcvae"}


def test_one_at_a_time_gives_each_trial_every_core_as_ray_cpus_and_tf_threads(tmp_path):
    spec = sweep.load_spec(SMOKE)
    whole = sweep.one_trial_at_a_time(spec, cores=8)
    assert whole["resources"] == {"cpus_per_trial": 8, "threads": 8}
    assert spec["resources"] == {"cpus_per_trial": 1, "threads": 1}  # the loaded spec is kept
    run = sweep.expand(whole, tmp_path / "out", repo=tmp_path)[0][0]
    train, _ = sweep._commands(run, whole, whole["resources"]["threads"], "python")
    assert train[-1] == "--threads=8"
    assert sweep.one_trial_at_a_time(spec)["resources"]["threads"] == os.cpu_count()


def _sweep_command(output_dir):
    return [sys.executable, "-m", "trainers.sweep", f"--spec={SMOKE}", f"--output_dir={output_dir}"]


def _table(output_dir):
    import pandas as pd

    table = pd.read_csv(output_dir / "results.csv").sort_values("trial").reset_index(drop=True)
    return table.drop(columns=["train_wall_time_s"])


@pytest.mark.slow  # four trials on local Ray, then a killed and resumed second sweep: minutes
def test_a_smoke_sweep_runs_on_ray_and_a_killed_one_resumes_to_the_same_table(tmp_path):
    pytest.importorskip("ray")
    whole = tmp_path / "whole"
    subprocess.run(_sweep_command(whole), cwd=REPO, check=True, capture_output=True)
    table = _table(whole)
    assert len(table) == 4 and {"mig/mig", "sap/sap", "loss/elbo", "udr"} <= set(table.columns)
    selection = json.loads((whole / "udr_selection.json").read_text())
    assert set(selection["chosen_by_udr"]) == {"beta_vae", "beta_tcvae"}
    assert list((whole / "plots").glob("*.png"))

    # Kill a second sweep once its first trial has a checkpoint, then rerun the same command.
    killed = tmp_path / "killed"
    process = subprocess.Popen(_sweep_command(killed), cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    while not list(killed.glob("trials/*/checkpoint_state.json")):
        assert process.poll() is None, "the sweep ended before its first checkpoint"
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    subprocess.run(_sweep_command(killed), cwd=REPO, check=True, capture_output=True)
    import pandas as pd

    pd.testing.assert_frame_equal(_table(killed).drop(columns="udr"), table.drop(columns="udr"))
    pd.testing.assert_series_equal(_table(killed)["udr"], table["udr"])
