"""TrainConfig (trainers/config.py), the one schema of a training run's settings: checked when made
(types, ranges, known names, errors naming the setting), a JSON round trip that also reads the
config.json of older run directories, the command line built from it; and the one key=value
parser (zoo/key_values.py)."""
import json
import shutil
from pathlib import Path

import pytest
from absl import flags

import zoo.data
from trainers import train
from trainers import zoo as zoo_build
from trainers.config import RUN_KEYS, SETTINGS, ConfigError, TrainConfig
from trainers.run_dir import CheckpointStore, check_identity
from zoo.files import sha256_of
from zoo.key_values import parse_key_values, split_key_value

REPO = Path(__file__).resolve().parent.parent
STASH = REPO / "pretrained" / "in_progress"


# ------------------------------------------------------------------ the schema
def test_a_config_survives_a_json_round_trip():
    config = TrainConfig(model="cascade_vae", model_args={"beta_low": 0.1, "stage_steps": 5000},
                         latent_dim=6, learning_rate=3e-4, data_source="procedural_v1",
                         steps=40_000, seed=3, output_dir=Path("runs/x"), eval_metrics="mig",
                         eval_every=100, eval_metric_args=["mig.num_bins=10"],
                         keep_best="mig/mig", keep_best_mode="min", on_nan="skip_batch",
                         deterministic=False, verbose=0)
    assert TrainConfig.from_json(config.to_json()) == config
    assert TrainConfig.from_dict(json.loads(config.to_json())) == config
    assert config.output_dir == "runs/x"  # a path is kept as text, as JSON holds it
    assert tuple(config.to_dict()) == SETTINGS


def test_changes_make_a_checked_copy():
    config = TrainConfig(steps=10)
    assert config.replace(steps=20).steps == 20 and config.steps == 10
    with pytest.raises(ConfigError, match="steps must be ≥ 1"):
        config.replace(steps=0)
    with pytest.raises(ConfigError, match="'stpes' is not a training setting .*'steps'"):
        config.replace(stpes=20)
    with pytest.raises(AttributeError):
        config.steps = 5  # frozen: run() cannot change its caller's config


def test_the_run_fills_in_what_was_left_to_it():
    resolved = TrainConfig(model="factor_vae", seed=2).resolved()
    assert resolved.output_dir == "runs/factor_vae_dsprites_s2"
    assert resolved.verbose in (1, 2)
    assert TrainConfig(output_dir="here", verbose=0).resolved().output_dir == "here"


@pytest.mark.parametrize("settings, message", [
    ({"steps": 0}, r"^steps must be ≥ 1, got 0\.$"),
    ({"steps": "300"}, r"^steps must be an integer, got '300' \(str\)\.$"),
    ({"steps": 2.5}, "steps must be an integer, got 2.5"),
    ({"batch_size": True}, "batch_size must be an integer, got True"),
    ({"seed": -1}, "seed must be ≥ 0"),
    ({"latent_dim": 0}, "latent_dim must be ≥ 1"),
    ({"eval_every": -5}, "eval_every must be ≥ 0"),
    ({"checkpoints_kept": 0}, "checkpoints_kept must be ≥ 1"),
    ({"learning_rate": -1}, "learning_rate must be a finite number > 0, got -1"),
    ({"learning_rate": float("inf")}, "learning_rate must be a finite number > 0, got inf"),
    ({"learning_rate": "1e-4"}, r"learning_rate must be a number, got '1e-4' \(str\)"),
    ({"deterministic": "yes"}, "deterministic must be true or false, got 'yes'"),
    ({"export": 1}, "export must be true or false, got 1"),
    ({"model": 4}, "model must be a string, got 4"),
    ({"model": "beta_vea"}, ("model must be one of the zoo's models .*got 'beta_vea' .*"
                            "did you mean 'beta_vae'")),
    ({"dataset": "mnist3d"}, "dataset must be one of the data sets .*got 'mnist3d'"),
    ({"dataset": "digits", "data_source": "procedural"},
     "data_source must be one of the sources of digits .*got 'procedural'"),
    ({"output_dir": 3}, "output_dir must be a path, got 3"),
    ({"on_nan": "skip"}, "on_nan must be one of stop, skip_batch, got 'skip'"),
    ({"keep_best_mode": "maximum"}, "keep_best_mode must be one of max, min"),
    ({"verbose": 3}, "verbose must be one of 0, 1, 2, got 3"),
    ({"model_args": "beta=4"}, r"model_args must be a mapping of names to values, got 'beta=4'"),
    ({"model_args": {4: 1}}, "model_args must map hyperparameter names"),
    ({"eval_metric_args": "num_train=5"}, "eval_metric_args must be a list of strings"),
    ({"eval_metrics": "mig,migg"}, "eval_metrics: unknown metric 'migg'"),
    ({"eval_every_metrics": "sapp", "eval_every": 5}, "eval_every_metrics: unknown metric 'sapp'"),
    ({"eval_metrics": "mig", "eval_metric_args": ["num_trian=5"]},
     "eval_metric_args: no metric takes the parameter.*num_trian"),
    ({"eval_metrics": "mig", "eval_metric_args": ["num_train"]},
     "eval_metric_args: a metric argument must look like key=value"),
    ({"eval_every": 10}, "eval_every is set but no metrics are"),
    ({"eval_metrics": "mig", "keep_best": "mig/mig"}, "keep_best needs periodic evaluations"),
    ({"eval_metrics": "mig", "eval_every": 5, "keep_best": "mig"},
     "keep_best must name a value <metric>/<value> of a periodic metric"),
])
def test_a_bad_setting_is_refused_naming_it(settings, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**settings)


def test_a_mapping_with_an_unknown_key_is_refused_naming_the_closest_setting():
    with pytest.raises(ConfigError, match="'learnig_rate' is not a training setting .*"
                                          "'learning_rate'"):
        TrainConfig.from_dict({"model": "beta_vae", "learnig_rate": 1e-3})
    with pytest.raises(ConfigError, match="must be a mapping"):
        TrainConfig.from_dict(["model", "beta_vae"])
    with pytest.raises(ConfigError, match="not valid JSON"):
        TrainConfig.from_json("{model: beta_vae")


def test_run_takes_a_train_config_only():
    with pytest.raises(TypeError, match="takes a TrainConfig.*TrainConfig.from_dict"):
        train.run({"model": "beta_vae"})


def test_every_run_key_is_a_setting():
    assert set(RUN_KEYS) <= set(SETTINGS)


# ------------------------------------------------------------------ older run directories
def test_config_json_of_older_run_directories_reads_with_todays_defaults(tmp_path):
    """A config.json written before on_nan and checkpoints_kept existed, with the record key
    `data_source_description` beside the settings (the zoo's CascadeVAE run wrote this one at
    step 31,000; kept in tests/fixtures since its stash now holds today's format)."""
    path = REPO / "tests" / "fixtures" / "older_run_config.json"
    old = json.loads(path.read_text())
    assert "on_nan" not in old and "data_source_description" in old
    config = TrainConfig.read(path)
    assert config.model == "cascade_vae" and config.model_args == {"beta_low": 1.0}
    assert config.on_nan == "stop" and config.checkpoints_kept == 2
    assert config.eval_metric_args == ["factor_vae_score_cascade.normalize_over=10000"]


# Each stashed run: an entry's directory, or one per phase of an entry with phases.
STASHED_RUNS = sorted(str(p.parent.relative_to(STASH)) for p in STASH.glob("**/manifest.json"))


@pytest.mark.parametrize("stashed", STASHED_RUNS)
def test_the_stashed_runs_resume_under_their_plan_entries_settings(stashed):
    """The runs stashed in pretrained/in_progress/ (either checkpoint format: the first keeps the
    settings in config.json) are the ones `trainers.zoo build` resumes: their saved identity must
    equal the identity today's TrainConfig of the plan entry gives, or the rerun is refused."""
    entry, _, phase = stashed.partition("/")
    plans = {**zoo_build.load_plan(), **zoo_build.load_plan(zoo_build.EXPERIMENT_PLAN)}
    run, = [r for r in plans[entry][1] if (r.phase or "") == phase]
    config = run.config()
    data = zoo.data.get(config.dataset, source=config.data_source)
    manifest = CheckpointStore(STASH / stashed).manifest()
    assert manifest["format"] in (1, 2)
    check_identity(train._saved_identity(manifest["run"], data), train.run_identity(config, data),
                   STASH / stashed)


def test_the_zoo_plan_and_the_experiment_plan_share_no_name():
    """Both stash into pretrained/in_progress/<name>: one name in both would mix two runs."""
    shared = set(zoo_build.load_plan()) & set(zoo_build.load_plan(zoo_build.EXPERIMENT_PLAN))
    assert not shared


@pytest.mark.slow  # loads a CascadeVAE checkpoint and trains one step: about a minute
def test_a_stashed_run_of_the_older_format_trains_on(tmp_path):
    """cascade_vae_dsprites_s0 as stashed at step 31,000 in the first stash format (commit
    8c8c8df): its small files in tests/fixtures/older_stash, its two .keras files beside them in
    tests/fixtures (the same git blobs; the live stash has moved on in today's format). Its
    config.json's output_dir, absolute as that format wrote it, is made relative here (and its
    manifest digest with it): the output directory is not part of a run's identity."""
    entry, fixtures = "cascade_vae_dsprites_s0", REPO / "tests" / "fixtures"
    run = zoo_build.load_plan()[entry][1][-1]
    sources = {"checkpoint.keras": fixtures / "cascade_vae_step31000.keras",
               "best.keras": fixtures / "cascade_vae_best_before_conv_layer.keras"}
    manifest = json.loads((fixtures / "older_stash" / "manifest.json").read_text())
    for name, digest in manifest["sha256"].items():
        shutil.copyfile(sources.get(name, fixtures / "older_stash" / name), tmp_path / name)
        assert sha256_of(tmp_path / name) == digest, name
    step = json.loads((tmp_path / "checkpoint_state.json").read_text())["global_step"]
    assert step == 31_000
    # The evaluation settings are not part of a run's identity: left out to keep this short.
    config = run.config(output_dir=str(tmp_path), steps=step + 1, eval_metrics="",
                        eval_every=0, eval_every_metrics="", keep_best=None, export=False,
                        eval_batches=1, verbose=0)
    assert train.run(config)["steps"] == step + 1


# ------------------------------------------------------------------ the command line
def _parsed(*arguments):
    flag_values = flags.FlagValues()
    train.define_flags(flag_values)
    assert flag_values(["train", *arguments]) == ["train"]
    return flag_values


def test_the_flags_are_the_settings_with_their_defaults():
    flag_values = _parsed()
    assert TrainConfig.from_flags(flag_values) == TrainConfig()  # every default agrees
    singular = {"model_args": "model_arg", "eval_metric_args": "eval_metric_arg"}
    assert {singular.get(name, name) for name in TrainConfig.command_line_settings()} | \
        {"threads"} == set(flag_values)


def test_a_command_line_becomes_its_config():
    config = TrainConfig.from_flags(_parsed(
        "--model=annealed_vae", "--model_arg=c_max=25", "--model_arg=gamma=1000",
        "--model_arg=name=x", "--latent_dim=6", "--learning_rate=5e-4", "--noexport",
        "--eval_metrics=mig", "--eval_metric_arg=mig.num_bins=10", "--output_dir=runs/a"))
    assert config == TrainConfig(
        model="annealed_vae", model_args={"c_max": 25, "gamma": 1000, "name": "x"},
        latent_dim=6, learning_rate=5e-4, export=False, eval_metrics="mig",
        eval_metric_args=["mig.num_bins=10"], output_dir="runs/a")
    with pytest.raises(ValueError, match="--model_arg sets 'beta' twice"):
        TrainConfig.from_flags(_parsed("--model_arg=beta=4", "--model_arg=beta=5"))


# ------------------------------------------------------------------ key=value arguments
def test_key_values_parse_as_json_values():
    assert parse_key_values(["beta=4", "name=x", "flag=true", "rate=1e-3", "none=null",
                             "sizes=[1,2]", 'text="4"', "expr=a=b"]) == {
        "beta": 4, "name": "x", "flag": True, "rate": 1e-3, "none": None, "sizes": [1, 2],
        "text": "4", "expr": "a=b"}
    assert split_key_value("1.0=runs/a=b", "--run_dirs") == ("1.0", "runs/a=b")


@pytest.mark.parametrize("pairs, message", [
    (["beta"], "--model_arg must look like key=value, got 'beta'"),
    (["=4"], "--model_arg must look like key=value, got '=4'"),
    (["beta=4", "beta=5"], "--model_arg sets 'beta' twice"),
])
def test_bad_key_values_are_refused_naming_the_flag(pairs, message):
    with pytest.raises(ValueError, match=message):
        parse_key_values(pairs, "--model_arg")
