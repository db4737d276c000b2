"""The commands of trainers/ together: every module imports beside every other (flags are defined
only when a command runs), the flags several commands share have one default, and every command
the README and docs/ show still parses."""
import argparse
import dataclasses
import importlib
import pkgutil
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from absl import flags

import trainers
from trainers import cli
from trainers.config import TrainConfig

REPO = Path(__file__).resolve().parent.parent
MODULES = sorted(module.name for module in pkgutil.iter_modules(trainers.__path__))


def _absl_flags(module):
    """A command's flags (with the common ones), defined on a FlagValues of their own."""
    flag_values = flags.FlagValues()
    module.define_flags(flag_values)
    cli.define_common_flags(flag_values)
    return flag_values


def _absl_commands():
    commands = {}
    for name in MODULES:
        module = importlib.import_module(f"trainers.{name}")
        if hasattr(module, "define_flags"):
            commands[name] = module
    return commands


def test_every_trainers_module_imports_beside_the_others_and_defines_no_flag():
    """In a fresh process (this one has imported them already): no DuplicateFlagError, and no
    flag defined by importing a module."""
    script = (
        "import importlib\n"
        "from absl import flags\n"
        f"for name in {MODULES!r}:\n"
        "    importlib.import_module(f'trainers.{name}')\n"
        "defined = [m for m in flags.FLAGS.flags_by_module_dict() if 'trainers' in m]\n"
        "assert not defined, defined\n"
        "print('imported', len(" + repr(MODULES) + "))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"imported {len(MODULES)}" in done.stdout


def test_commands_define_flags_only_in_their_define_flags_function():
    """No module-level flag definition is left in trainers/ (a second way in would bring the
    clashes back)."""
    for path in sorted((REPO / "trainers").glob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            assert not re.match(r"(flags\.)?DEFINE_\w+\(|flags\.mark_flag", line), \
                f"{path.name}:{number}: {line}"


# Flags of one name that mean different things in different commands (so their defaults may).
DIFFERENT_MEANINGS = {
    "batch_size": "discrete_accuracy's is images per forward pass, not a training batch",
    "steps": "benchmark's is timed steps per round, not the length of a training run",
    "num_samples": "the sample of two different measurements (discrete_accuracy's accuracy, "
                   "scan_report's img2sym and classifier accuracies), each with its own figures",
}


def test_a_flag_several_commands_share_has_one_default():
    defaults = {}
    for name, module in _absl_commands().items():
        for flag, value in _absl_flags(module).flag_values_dict().items():
            defaults.setdefault(flag, {})[name] = value
    assert {"train", "evaluate", "discrete_accuracy", "scan_report"} <= set(defaults["data_source"])
    for flag, by_command in defaults.items():
        if flag in DIFFERENT_MEANINGS or len(by_command) < 2:
            continue
        assert len({repr(v) for v in by_command.values()}) == 1, (flag, by_command)
    # And they are trainers.train's, i.e. TrainConfig's.
    config = TrainConfig()
    for flag in ("dataset", "data_source", "seed", "model", "deterministic"):
        assert set(defaults[flag].values()) == {getattr(config, flag)}, flag


def _documented_commands():
    """(where, module, argv) of every `python -m trainers.<module> ...` in README.md and docs/:
    fenced lines (with backslash continuations) and inline code spans, placeholders such as
    <name> or S filled with 0 and shell variables set beside them expanded."""
    found = []
    for path in [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]:
        # A continued line's newline becomes "\r": a space in the command, a line in the count.
        text = path.read_text(encoding="utf-8").replace("\\\n", "\r")
        variables = dict(re.findall(r"^(\w+)='([^']*)'$", text, re.MULTILINE))
        for match in re.finditer(r"python -m trainers\.(\w+)", text):
            inline = text[match.start() - 1] == "`"
            end = text.index("`" if inline else "\n", match.end())
            command = text[match.end():end].split(" #")[0]
            command = re.sub(r"<[^>]*>", "0", re.sub(r"[\r\n]", " ", command))
            command = re.sub(r"--seed=S\b", "--seed=0", command)
            for name, value in variables.items():
                command = command.replace(f'"${name}"', shlex.quote(value))
            line = len(re.findall(r"[\r\n]", text[:match.start()])) + 1
            found.append((f"{path.relative_to(REPO)}:{line}", match.group(1),
                          shlex.split(command)))
    return found


class _Parsed(Exception):
    """Raised once an argparse command line has parsed, before the command does anything."""


def _parse_argparse_command(module, argv, monkeypatch):
    parse = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        parse(self, args, namespace)
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    with pytest.raises(_Parsed):
        module.main(argv)


@pytest.mark.parametrize("where, name, argv", _documented_commands(),
                         ids=lambda value: value if isinstance(value, str) else None)
def test_a_documented_command_line_parses(where, name, argv, monkeypatch):
    module = importlib.import_module(f"trainers.{name}")
    if not hasattr(module, "define_flags"):
        _parse_argparse_command(module, argv, monkeypatch)
        return
    flag_values = _absl_flags(module)
    try:
        assert flag_values([name, *argv]) == [name], f"{where}: stray arguments"
    except flags.Error as error:
        pytest.fail(f"{where}: {error}")
    # The settings too (types, ranges, names, --model_arg pairs), except for the model that
    # docs/adding_a_model.md shows how to add.
    if name == "train" and not where.startswith("docs/adding_a_model.md"):
        TrainConfig.from_flags(flag_values)


def test_the_documented_commands_cover_every_command_the_readme_names():
    shown = {name for _, name, _ in _documented_commands()}
    assert {"train", "evaluate", "export", "benchmark", "discrete_accuracy", "experiments",
            "scan_report", "zoo", "sweep", "cascade_results"} <= shown


def test_the_data_flags_are_trainers_trains():
    settings = {field.name: field for field in dataclasses.fields(TrainConfig)}
    flag_values = flags.FlagValues()
    cli.define_data_flags(flag_values)
    for name in ("dataset", "data_source"):
        assert flag_values[name].default == settings[name].default
        assert flag_values[name].help == settings[name].metadata["help"]
