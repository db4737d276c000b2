"""`TrainConfig`: the settings of one `trainers.train` run, checked when it is made.

One schema serves every way a run is described: the command line of `trainers.train` (a flag per
setting, defined from the fields below by `TrainConfig.define_flags` and read back by
`from_flags`), the in-process entry point `trainers.train.run(config)`, the zoo build's plan
entries and the sweep's trials (`trainers.zoo`), and the `config.json` a run directory keeps
(`to_json` / `from_json`).

    >>> from trainers.config import TrainConfig
    >>> config = TrainConfig(model="beta_vae", model_args={"beta": 4}, steps=1000)
    >>> TrainConfig.from_json(config.to_json()) == config
    True

A setting of the wrong type, out of its range or naming something unknown (a model, data set,
data source or metric) is refused with a `ConfigError` that names the setting. Hyperparameters in
`model_args` are checked by the model itself when `trainers.train` builds it.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
import numbers
import os
import sys
from pathlib import Path

from zoo.key_values import parse_key_values

__all__ = ["RECORD_KEYS", "RUN_KEYS", "SETTINGS", "ConfigError", "TrainConfig"]


class ConfigError(ValueError):
    """A training setting that cannot make a sound run; the message names the setting."""


# What config.json holds beside the settings: a record for people, not a setting (it is ignored
# when the file is read back).
RECORD_KEYS = ("data_source_description",)

# Settings that define a run: a rerun into the same output_dir must repeat them (steps may grow).
RUN_KEYS = ("model", "model_args", "latent_dim", "network", "dataset", "data_source",
            "batch_size", "learning_rate", "seed", "init_from")


def _describe(kind, help_text, *, minimum=None, choices=None, flag=None):
    """The metadata of a TrainConfig field. kind: "int", "float", "bool", "str", "path" (str or
    os.PathLike, kept as str), "choice" (one of `choices`), "key_values" (a dict, from repeated
    key=value flags) or "strings" (a list of str, from a repeated flag). `minimum`: the least
    int, or the bound a float must exceed. `flag`: the command-line flag's name when it is not
    the setting's, False for a setting without a flag."""
    return {"kind": kind, "help": help_text, "minimum": minimum, "choices": choices, "flag": flag}


def _setting(default, kind, help_text, **limits):
    """A TrainConfig field of one value (see `_describe`). A default of None means "left to the
    model, data set or run" and None is then always accepted."""
    return dataclasses.field(default=default, metadata=_describe(kind, help_text, **limits))


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The settings of a training run (see trainers/train.py's docstring for what a run writes).
    Frozen: `replace(**changes)` makes a changed copy, checked again."""

    # What is trained.
    model: str = _setting("beta_vae", "str", "Model name: one of zoo.models.MODELS.")
    model_args: dict = dataclasses.field(default_factory=dict, metadata=_describe(
        "key_values", "Model hyperparameter as key=value, e.g. beta=4 (repeat the flag for "
        "several).", flag="model_arg"))
    latent_dim: int | None = _setting(
        None, "int", "Number of (continuous) latent dimensions (default: the model's own: 10 for "
        "the β-VAE family and CascadeVAE-C, 6 for CascadeVAE and the JointVAE presets, 2 for "
        "InfoGAN).", minimum=1)
    network: str = _setting("conv64", "str", "Encoder/decoder pair (see zoo.networks.NETWORKS).")
    learning_rate: float | None = _setting(
        None, "float", "Adam learning rate (β1 0.9, β2 0.999, ε 1e-8); default: the model's own "
        "(1e-4; JointVAE presets 5e-4).", minimum=0.0)
    # What it is trained on.
    dataset: str = _setting("dsprites", "str", "Ground-truth data set name.")
    data_source: str | None = _setting(
        None, "str", "Where images come from (default: the data set's first source; for "
        "dSprites procedural, the renderer fitted to the real frames): procedural, procedural_v1 "
        "(the first renderer), npz, or tfds.")
    batch_size: int = _setting(64, "int", "Batch size.", minimum=1)
    seed: int = _setting(0, "int", "Seed of weights, data order and noise.", minimum=0)
    # How long, and where it is kept.
    steps: int = _setting(300_000, "int", "Training iterations in total (a resumed run counts "
                          "the steps it has done).", minimum=1)
    output_dir: str | None = _setting(None, "path", "Run directory (default "
                                      "runs/<model>_<dataset>_s<seed>).")
    init_from: str | None = _setting(
        None, "path", "A saved model (model.keras or a checkpoint) of the same model, network, "
        "latent size and input shape whose weights start this run. Its step counter, and so any "
        "schedule and the data stream's position, carries on (--steps counts it); the optimizer "
        "starts fresh.")
    checkpoint_every: int = _setting(1000, "int", "Steps between checkpoints.", minimum=1)
    checkpoints_kept: int = _setting(2, "int", "How many of the newest checkpoints to keep (a "
                                     "damaged newest one falls back to the one before).",
                                     minimum=1)
    log_every: int = _setting(100, "int", "Steps between TensorBoard scalar summaries.",
                              minimum=1)
    image_every: int = _setting(5000, "int", "Steps between TensorBoard image summaries.",
                                minimum=1)
    # Evaluation.
    eval_batches: int = _setting(16, "int", "Held-out batches for the final loss terms.",
                                 minimum=1)
    eval_metrics: str = _setting("", "str", "Metrics scored at the end into results.json: 'all' "
                                 "or a comma-separated list of zoo.metrics names ('' = none).")
    eval_every: int = _setting(0, "int", "Steps between periodic metric evaluations (0 = none).",
                               minimum=0)
    eval_every_metrics: str = _setting("", "str", "Metrics of the periodic evaluations (default: "
                                       "--eval_metrics).")
    keep_best: str | None = _setting(
        None, "str", "Keep the model of the best periodic evaluation of this value, "
        "<metric>/<value> as in metrics_history.jsonl (e.g. unsupervised_accuracy/accuracy), as "
        "best.keras.")
    keep_best_mode: str = _setting("max", "choice", "Whether --keep_best keeps the highest or the "
                                   "lowest value.", choices=("max", "min"))
    eval_metric_args: list = dataclasses.field(default_factory=list, metadata=_describe(
        "strings", "Metric parameter as [metric.]name=value, e.g. num_train=1000 (repeat the flag "
        "for several).", flag="eval_metric_arg"))
    # Devices.
    strategy: str = _setting(
        "default", "choice", "tf.distribute strategy: default (one device), mirrored (every local "
        "device of this machine) or multi_worker (the workers TF_CONFIG names; only the chief "
        "writes the run directory). The batch size is the global batch, split evenly over the "
        "replicas; see docs/distributed.md.", choices=("default", "mirrored", "multi_worker"))
    # Behaviour.
    deterministic: bool = _setting(True, "bool", "Deterministic TF ops (exact resume, repeatable "
                                   "runs).")
    export: bool = _setting(True, "bool", "Write a SavedModel at the end.")
    on_nan: str = _setting("stop", "choice", "When a loss term or gradient is NaN or infinite "
                           "(the update is never applied): stop with an error, or skip the batch "
                           "and go on (stopping after 20 skipped steps in a row).",
                           choices=("stop", "skip_batch"))
    verbose: int | None = _setting(None, "choice", "Keras' progress output: 0 none, 1 a progress "
                                   "bar, 2 a line per checkpoint interval (default: 1 on a "
                                   "terminal, else 2).", choices=(0, 1, 2), flag=False)

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None or field.default is not None:
                object.__setattr__(self, field.name, _checked(field, value))
        self._check_names()
        self._check_evaluation()

    # ---------------------------------------------------------------- reading and writing
    @classmethod
    def from_dict(cls, settings):
        """The config of a mapping of settings; a key that is not a setting is refused, naming
        the closest setting. Settings left out take their defaults (a config.json written before
        a setting existed reads as the default it had then)."""
        if not isinstance(settings, dict):
            raise ConfigError(f"training settings must be a mapping of setting names to values, "
                              f"got {type(settings).__name__}.")
        unknown = [key for key in settings if key not in SETTINGS]
        if unknown:
            raise ConfigError(f"{unknown[0]!r} is not a training setting"
                              f"{_suggestion(unknown[0], SETTINGS)} (settings: "
                              f"{', '.join(SETTINGS)}).")
        return cls(**settings)

    def to_dict(self):
        """The settings as a dict of JSON values (a deep copy)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, text):
        """The config of `to_json`'s text or of a run directory's config.json (whose record
        keys, RECORD_KEYS, are left aside)."""
        try:
            settings = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"training settings are not valid JSON: {error}") from None
        if isinstance(settings, dict):
            settings = {k: v for k, v in settings.items() if k not in RECORD_KEYS}
        return cls.from_dict(settings)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def read(cls, path):
        """The config a run directory's config.json (or any such file at `path`) holds."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    @classmethod
    def define_flags(cls, flag_values):
        """Define a command-line flag for every setting that has one on `flag_values` (absl
        FlagValues): --model_arg and --eval_metric_arg are repeated, the others take one value,
        and the defaults are the settings' own."""
        from absl import flags

        definers = {"int": flags.DEFINE_integer, "float": flags.DEFINE_float,
                    "bool": flags.DEFINE_bool, "str": flags.DEFINE_string,
                    "path": flags.DEFINE_string}
        for field in dataclasses.fields(cls):
            name, meta = _flag_name(field), field.metadata
            if name is None:
                continue
            if meta["kind"] in ("key_values", "strings"):
                flags.DEFINE_multi_string(name, [], meta["help"], flag_values=flag_values)
            elif meta["kind"] == "choice":
                flags.DEFINE_enum(name, field.default, meta["choices"], meta["help"],
                                  flag_values=flag_values)
            else:
                definers[meta["kind"]](name, field.default, meta["help"],
                                       flag_values=flag_values)

    @classmethod
    def from_flags(cls, flag_values):
        """The config of parsed command-line flags (`define_flags` defined them)."""
        settings = {}
        for field in dataclasses.fields(cls):
            name = _flag_name(field)
            if name is None:
                continue
            value = flag_values[name].value
            if field.metadata["kind"] == "key_values":
                value = parse_key_values(value, f"--{name}")
            elif field.metadata["kind"] == "strings":
                value = list(value)
            settings[field.name] = value
        return cls(**settings)

    @classmethod
    def command_line_settings(cls):
        """The settings a command line can give (all but `verbose`), by setting name."""
        return tuple(field.name for field in dataclasses.fields(cls)
                     if _flag_name(field) is not None)

    # ---------------------------------------------------------------- derived
    def replace(self, **changes):
        """A copy with `changes`, checked like a new config."""
        unknown = [key for key in changes if key not in SETTINGS]
        if unknown:
            raise ConfigError(f"{unknown[0]!r} is not a training setting"
                              f"{_suggestion(unknown[0], SETTINGS)}.")
        return dataclasses.replace(self, **changes)

    @property
    def directory(self):
        """The run directory: output_dir, or runs/<model>_<dataset>_s<seed> when it is unset."""
        return Path(self.output_dir or f"runs/{self.model}_{self.dataset}_s{self.seed}")

    def resolved(self):
        """This config with the settings left to the run filled in as the run takes them: the
        run directory, and the progress output (a bar on a terminal, a line per interval in a
        log file). This is what a run records in config.json and results.json."""
        return self.replace(output_dir=str(self.directory),
                            verbose=(1 if sys.stdout.isatty() else 2) if self.verbose is None
                            else self.verbose)

    # ---------------------------------------------------------------- checks
    def _check_names(self):
        # Imported here: the registries pull in TensorFlow, which importing this module (for the
        # flags of a command, say) should not.
        import zoo.data
        from zoo import models

        _check_known("model", self.model, models.MODELS, "the zoo's models")
        _check_known("dataset", self.dataset, zoo.data.DATASETS, "the data sets")
        if self.data_source is not None:
            _check_known("data_source", self.data_source, zoo.data.SOURCES[self.dataset],
                         f"the sources of {self.dataset}")
        bad = [key for key in self.model_args if not isinstance(key, str)]
        if bad:
            raise ConfigError(f"model_args must map hyperparameter names (str) to values, got "
                              f"the key {bad[0]!r}.")

    def _check_evaluation(self):
        """The metric settings name known metrics and parameters, and fit together."""
        periodic_names = self.eval_every_metrics or self.eval_metrics
        if self.eval_every and not periodic_names:
            raise ConfigError("eval_every is set but no metrics are: set eval_every_metrics or "
                              "eval_metrics.")
        if self.keep_best and not self.eval_every:  # "" (an empty flag) keeps nothing, as None
            raise ConfigError("keep_best needs periodic evaluations: set eval_every.")
        if not (self.eval_metrics or self.eval_every_metrics or self.eval_metric_args):
            return
        from zoo import metrics

        final = _metric_names("eval_metrics", self.eval_metrics)
        periodic = _metric_names("eval_every_metrics", periodic_names)
        try:
            params, common = metrics.parse_metric_args(self.eval_metric_args)
            metrics.check_metric_params(list(dict.fromkeys(final + periodic)), params, common)
        except ValueError as error:
            raise ConfigError(f"eval_metric_args: {error}") from None
        if self.keep_best:
            metric, _, value = self.keep_best.partition("/")
            if metric not in periodic or not value:
                raise ConfigError(f"keep_best must name a value <metric>/<value> of a periodic "
                                  f"metric ({', '.join(periodic)}), got {self.keep_best!r}.")


SETTINGS = tuple(field.name for field in dataclasses.fields(TrainConfig))


def _flag_name(field):
    """The command-line flag of a setting, or None for a setting without one."""
    flag = field.metadata["flag"]
    return None if flag is False else flag or field.name


def _suggestion(name, known):
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_known(key, value, known, what):
    if value not in known:
        raise ConfigError(f"{key} must be one of {what} ({', '.join(sorted(known))}), got "
                          f"{value!r}{_suggestion(value, known)}.")


def _metric_names(key, names):
    from zoo import metrics

    try:
        return metrics.resolve_metric_names(names)
    except ValueError as error:
        raise ConfigError(f"{key}: {error}") from None


def _checked(field, value):
    """`value` as setting `field` keeps it, or a ConfigError naming the setting."""
    name, meta = field.name, field.metadata
    kind, minimum = meta["kind"], meta["minimum"]

    def refuse(expected):
        raise ConfigError(f"{name} must be {expected}, got {value!r}"
                          f"{'' if isinstance(value, (int, float)) else f' ({type(value).__name__})'}.")

    # bool is an int to Python, but True is no step count (and 1 no switch).
    if kind == "int":
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            refuse("an integer")
        if minimum is not None and value < minimum:
            refuse(f"≥ {minimum}")
        return int(value)
    if kind == "float":
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            refuse("a number")
        if not math.isfinite(value) or (minimum is not None and value <= minimum):
            refuse(f"a finite number > {minimum:g}" if minimum is not None
                   else "a finite number")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            refuse("true or false")
        return value
    if kind == "str":
        if not isinstance(value, str):
            refuse("a string")
        return value
    if kind == "path":
        if not isinstance(value, (str, os.PathLike)):
            refuse("a path")
        return os.fspath(value)
    if kind == "choice":
        if value not in meta["choices"] or isinstance(value, bool):
            refuse(f"one of {', '.join(map(str, meta['choices']))}")
        return value
    if kind == "key_values":
        if not isinstance(value, dict):
            refuse("a mapping of names to values")
        return dict(value)
    if kind == "strings":
        if isinstance(value, str) or not isinstance(value, (list, tuple)) or \
                not all(isinstance(v, str) for v in value):
            refuse("a list of strings")
        return list(value)
    raise AssertionError(f"setting {name} has no known kind {kind!r}")
