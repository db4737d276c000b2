"""Errors a person can read: every command runs its `main` through `run`, which prints an
anticipated error as one line `error: ...` on stderr and exits with 2 for bad usage (a setting,
flag, hyperparameter or path that is refused) or 1 for a failure (a locked or damaged run
directory, a diverged training, a missing file, a full disk). `--verbose_errors` shows the
traceback too. Unanticipated errors keep their traceback."""
import sys
import traceback

import tensorflow as tf
from absl import app, flags

if "verbose_errors" not in flags.FLAGS:  # several trainer modules may share one process
    flags.DEFINE_bool("verbose_errors", False, "Show the traceback of an error, not only its "
                      "one-line message.")


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
            return main(argv)
        except Exception as error:
            code = exit_code(error)
            if code is None:
                raise
            if flags.FLAGS.verbose_errors:
                traceback.print_exc()
            message = getattr(error, "message", None) or str(error) or type(error).__name__
            print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
            sys.exit(code)
    return wrapped


def run(main):
    """`absl.app.run(main)` with readable errors."""
    app.run(readable_errors(main))
