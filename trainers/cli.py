"""How every absl command of trainers/ runs, and errors a person can read.

A command defines its flags in a function, `define_flags(flag_values)`, which `run` calls on
absl's global FLAGS just before parsing them: flags exist only in the process of the command that
runs, never because a module was imported, so every trainers module can be imported beside the
others, and a test can define a command's flags on a FlagValues of its own to parse a command
line.

Every command runs its `main` through `run`, which prints an anticipated error as one line
`error: ...` on stderr and exits with 2 for bad usage (a setting, flag, hyperparameter or path
that is refused) or 1 for a failure (a locked or damaged run directory, a diverged training, a
missing file, a full disk). `--verbose_errors` shows the traceback too. Unanticipated errors keep
their traceback."""
import dataclasses
import sys
import traceback

import tensorflow as tf
from absl import app, flags

from trainers.config import TrainConfig


def definer(flag_values):
    """define(kind, name, default, help, **options): absl's DEFINE_<kind> on `flag_values`."""
    def define(kind, name, default, help_text, **options):
        getattr(flags, f"DEFINE_{kind}")(name, default, help=help_text,
                                         flag_values=flag_values, **options)
    return define


def load_model_of(path, model_class, label):
    """The zoo model saved at `path`; a usage error naming what it holds unless it is a
    `model_class` (`label`: the method's name for the message, e.g. "SCAN")."""
    from zoo import models

    model = models.load(path)
    if not isinstance(model, model_class):
        raise app.UsageError(f"{path} holds a {type(model).__name__}, not a {label}.")
    return model


def define_common_flags(flag_values):
    """The flags every command has."""
    flags.DEFINE_bool("verbose_errors", False, "Show the traceback of an error, not only its "
                      "one-line message.", flag_values=flag_values)


def define_data_flags(flag_values):
    """--dataset and --data_source as trainers.train has them (its defaults and help): every
    command that reads a data set takes them alike."""
    settings = {field.name: field for field in dataclasses.fields(TrainConfig)}
    for name in ("dataset", "data_source"):
        flags.DEFINE_string(name, settings[name].default, settings[name].metadata["help"],
                            flag_values=flag_values)


def _failures():
    from trainers.run_dir import NonFiniteModelError, RunDirError

    # RunDirError is a ValueError, so failures are tested first.
    return (RunDirError, NonFiniteModelError, OSError, tf.errors.OpError)


USAGE_ERRORS = (ValueError, TypeError, KeyError, app.UsageError)


def exit_code(error):
    """1 for a failure, 2 for bad usage, None for an error nobody anticipated."""
    if isinstance(error, _failures()):
        return 1
    if isinstance(error, USAGE_ERRORS):
        return 2
    return None


def readable_errors(main):
    """`main` with anticipated errors turned into one line and an exit status."""
    def wrapped(argv):
        try:
            if len(argv) > 1:  # no command takes positional arguments: one is a typo
                raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
            return main(argv)
        except Exception as error:
            code = exit_code(error)
            if code is None:
                raise
            if "verbose_errors" in flags.FLAGS and flags.FLAGS.verbose_errors:
                traceback.print_exc()
            message = getattr(error, "message", None) or str(error) or type(error).__name__
            print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
            sys.exit(code)
    return wrapped


def run(main, define_flags):
    """Define the command's flags (`define_flags(flag_values)`) and the common ones, then
    `absl.app.run(main)` with readable errors."""
    define_flags(flags.FLAGS)
    define_common_flags(flags.FLAGS)
    app.run(readable_errors(main))
