r"""The zoo build: train, keep across sessions, and publish every model of pretrained/zoo.yaml.

    python -m trainers.zoo status                  # each entry: planned, trained, stashed, published
    python -m trainers.zoo build [--only=a,b] [--parallel=2 --threads=1] [--max_hours=2.5]
    python -m trainers.zoo stash [--only=a,b]      # unfinished runs' checkpoints → pretrained/in_progress/
    python -m trainers.zoo publish [--only=a,b]    # score, export, card, register; then `gallery`
    python -m trainers.zoo gallery                 # docs/zoo.md, the README's zoo table, and the
                                                   # plan's limitations into published cards

Every plan entry is one ordinary `trainers.train` run (or, with `phases`, a few runs each starting
from the previous one's model), in its own directory, so a killed build rerun with the same command
resumes every run exactly and each run can be inspected alone. `build` runs `--parallel` of them at
once with `--threads` TF threads each (default 2 × 1: on 2 cores two 1-thread runs train 1.13× as
many steps/s in total as one 2-thread run, docs/performance.md) and restores a run from
`pretrained/in_progress/` when its directory has no checkpoint (run directories do not outlive a
session; the stash is committed).

`--plan=pretrained/experiments.yaml` builds, stashes and resumes the same way the runs a results
page needs that are not published (e.g. a CascadeVAE with another schedule); its `published: false`
makes `publish` and `gallery` refuse it, and its names must differ from the zoo's, since both stash
into pretrained/in_progress/.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from trainers.run_dir import MANIFEST, MANIFEST_FORMAT, CheckpointStore, resumable_files
from zoo.files import sha256_of, write_json

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PLAN = REPO / "pretrained" / "zoo.yaml"
# Unpublished runs that answer a results page's question, built and stashed like the zoo's.
EXPERIMENT_PLAN = REPO / "pretrained" / "experiments.yaml"
DEFAULT_STASH = REPO / "pretrained" / "in_progress"
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]*")

# Keys of a plan entry (see pretrained/zoo.yaml's header) and of one of its phases.
RUN_SETTINGS = ("model", "model_args", "latent_dim", "network", "learning_rate", "steps", "seed",
                "dataset", "data_source", "batch_size", "train_args")
ENTRY_KEYS = RUN_SETTINGS + ("phases", "run_dir", "after", "citation", "hyperparameters_from",
                             "paper_steps", "metrics", "metric_args", "limitations")
MAX_ARTIFACT_BYTES = 5 * 1024 * 1024  # each published file
PHASE_KEYS = ("name", "steps", "model_args", "learning_rate", "train_args")
# What makes a run directory resumable (trainers.train resumes from these), and what else of it
# is worth keeping: the periodic evaluations and the best-by-metric model.
# Stashed beside a run's resumable checkpoint (`trainers.run_dir.resumable_files`: the manifest
# checkpoint_state.json and the checkpoint files it lists): its settings for people and its records.
KEPT_FILES = ("config.json", "metrics_history.jsonl", "best.keras", "best.json")
# Kept without optimizer state (an artifact, not a training state), each with the record that says
# which model it is: while the record is unchanged, the next stash keeps the file's bytes, since a
# re-save differs only in its date and would add megabytes to the repository's history.
SLIM_FILES = {"best.keras": "best.json"}
LIMITATIONS_HEADING = "## Known limitations"  # a card's last section (sync_card_limitations)


class PlanError(ValueError):
    """A zoo plan that cannot be built; the message names the entry and the key."""


@dataclasses.dataclass
class Run:
    """One trainers.train run of a plan entry."""

    entry: str
    phase: str | None
    directory: Path
    settings: dict  # trainers.train settings (TrainConfig fields)
    repo: Path  # the run is started here, and its paths are relative to it

    @property
    def label(self):
        return self.entry if self.phase is None else f"{self.entry}/{self.phase}"

    @property
    def steps(self):
        return int(self.settings["steps"])

    def config(self, **overrides):
        """The run's trainers.train TrainConfig (defaults filled in)."""
        from trainers.config import TrainConfig

        return TrainConfig.from_dict({**self.settings, "output_dir": str(self.directory),
                                      **overrides})


def _settings_of(entry, name, defaults):
    from trainers.config import TrainConfig

    known = set(TrainConfig.command_line_settings())
    settings = {k: v for k, v in defaults.items()}
    for key in RUN_SETTINGS:
        if key in entry and key != "train_args":
            settings[key] = entry[key]
    for key, value in (entry.get("train_args") or {}).items():
        if key not in known or key in RUN_SETTINGS or key in ("output_dir", "init_from"):
            raise PlanError(f"{name}: train_args key {key!r} is not a trainers.train setting "
                            "that a plan may set (accepted: "
                            f"{', '.join(sorted(known - set(RUN_SETTINGS) - {'output_dir', 'init_from'}))})")
        settings[key] = value
    return settings


def _read_plan(path):
    """The plan file as a mapping, its top-level keys checked."""
    try:
        plan = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise PlanError(f"cannot read the zoo plan {path}: {error}") from None
    if not isinstance(plan, dict) or not isinstance(plan.get("models"), dict):
        raise PlanError(f"{path}: the plan must be a mapping with a 'models' mapping")
    unknown = set(plan) - {"defaults", "models", "published"}
    if unknown:
        raise PlanError(f"{path}: unknown top-level keys {sorted(unknown)} "
                        "(accepted: defaults, models, published)")
    if not isinstance(plan.get("published", True), bool):
        raise PlanError(f"{path}: published must be true or false, got {plan['published']!r}")
    return plan


def is_published(path=DEFAULT_PLAN):
    """Whether the plan's models are published (`published: false` marks a plan of runs that only
    a results page reads, such as pretrained/experiments.yaml)."""
    return _read_plan(path).get("published", True)


def load_plan(path=DEFAULT_PLAN, repo=REPO):
    """The plan's entries as {name: (entry dict, [Run, ...])}, checked key by key."""
    from zoo import models

    path, repo = Path(path), Path(repo).resolve()
    plan = _read_plan(path)
    defaults = plan.get("defaults") or {}
    bad = set(defaults) - set(RUN_SETTINGS)
    if bad:
        raise PlanError(f"{path}: unknown defaults keys {sorted(bad)} (accepted: {', '.join(RUN_SETTINGS)})")
    entries = {}
    for name, entry in plan["models"].items():
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise PlanError(f"{path}: model name {name!r} must match {NAME_PATTERN.pattern}")
        if not isinstance(entry, dict):
            raise PlanError(f"{name}: an entry must be a mapping of keys")
        bad = set(entry) - set(ENTRY_KEYS)
        if bad:
            raise PlanError(f"{name}: unknown keys {sorted(bad)} (accepted: {', '.join(ENTRY_KEYS)})")
        if entry.get("model") not in models.MODELS:
            raise PlanError(f"{name}: model {entry.get('model')!r} is not one of {sorted(models.MODELS)}")
        after = entry.get("after", [])
        entry["after"] = after = [after] if isinstance(after, str) else list(after)
        missing = [other for other in after if other not in plan["models"]]
        if missing:
            raise PlanError(f"{name}: after names {missing}, which are not entries of the plan")
        # abspath, not resolve(): a symlinked runs/ must not turn the commands that cards print
        # into paths outside the repository.
        directory = Path(os.path.abspath(Path(repo) / entry.get("run_dir", f"runs/zoo/{name}")))
        base = _settings_of(entry, name, defaults)
        phases = entry.get("phases")
        if phases is None:
            entries[name] = (entry, [Run(name, None, directory, base, repo)])
            continue
        runs, previous = [], None
        for k, phase in enumerate(phases):
            bad = set(phase) - set(PHASE_KEYS)
            if bad or "name" not in phase or "steps" not in phase:
                raise PlanError(f"{name}: phase {k} needs name and steps and takes only "
                                f"{', '.join(PHASE_KEYS)} (got {sorted(phase)})")
            settings = {**base, **_settings_of(phase, f"{name}/{phase['name']}", {})}
            settings["model_args"] = {**base.get("model_args", {}), **phase.get("model_args", {})}
            if previous is not None:
                if settings["steps"] <= previous.steps:
                    raise PlanError(f"{name}: phase {phase['name']} must end after step "
                                    f"{previous.steps} (steps count from the first phase)")
                settings["init_from"] = os.path.relpath(previous.directory / "model.keras", repo)
            run = Run(name, phase["name"], directory / phase["name"], settings, repo)
            runs.append(run)
            previous = run
        entries[name] = (entry, runs)
    for _, runs in entries.values():  # every setting's type, range and names, before training
        for run in runs:
            try:
                run.config()
            except ValueError as error:
                raise PlanError(f"{run.label}: {error}") from None
    return entries


def train_command(run, python="python"):
    """The `python -m trainers.train ...` command of `run`, run from the repository root (what
    the model card shows)."""
    args = [python, "-m", "trainers.train"]
    for key, value in run.settings.items():
        if key == "model_args":
            args += [f"--model_arg={k}={json.dumps(v)}" for k, v in value.items()]
        elif key == "eval_metric_args":
            args += [f"--eval_metric_arg={v}" for v in value]
        elif value is not None:
            args.append(f"--{key}={value}")
    args.append(f"--output_dir={os.path.relpath(run.directory, run.repo)}")
    return args


def _read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def trained_steps(directory):
    """Steps a run directory holds: results.json's when finished, else its checkpoint's."""
    results = _read_json(Path(directory) / "results.json")
    if results:
        return int(results["steps"]), True
    state = _read_json(Path(directory) / "checkpoint_state.json")
    return (int(state["global_step"]), False) if state else (0, False)


def save_without_optimizer(source, target):
    """Copy the .keras model at `source` to `target` without its optimizers' state (about a third
    of the size), and without FactorVAE's discriminator (see `FactorVAE.without_discriminator`:
    23 MB otherwise); loading it gives the same outputs, and fine-tuning starts a fresh optimizer
    (and discriminator)."""
    import keras

    from zoo import models

    model = models.load(source)
    model = model.for_publication()
    for name, value in list(vars(model).items()):
        if isinstance(value, keras.optimizers.Optimizer):
            setattr(model, name, None)
    model.save(target)


def _stash_dir(run, stash):
    return Path(stash) / run.entry / (run.phase or "")


def _unchanged_slim_file(run_directory, stash_directory, manifest, name):
    """Whether the stash already holds `name` for the same model as the run: its record (e.g.
    best.json) is the run's, and the stashed file matches the stash's manifest."""
    record = _read_json(run_directory / SLIM_FILES[name])
    stashed = stash_directory / name
    return (record is not None and manifest is not None and stashed.exists()
            and _read_json(stash_directory / SLIM_FILES[name]) == record
            and manifest.get("sha256", {}).get(name) == sha256_of(stashed))


def stash_run(run, stash=DEFAULT_STASH):
    """Copy a run's resumable files into the stash (replacing an older stash atomically).
    Returns the stashed step, or None when there is nothing newer to stash."""
    step, _ = trained_steps(run.directory)
    resumable = resumable_files(run.directory)
    if not resumable:
        return None
    target = _stash_dir(run, stash)
    manifest = _read_json(target / "manifest.json")
    if manifest and manifest["step"] >= step:
        return None
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    # Only the newest checkpoint travels: the run keeps an older one as a fallback against a
    # damaged newest file, but the stash is verified by sha256 and committed, where a second
    # checkpoint would double the bytes.
    checkpoints = CheckpointStore(run.directory).manifest()
    older = set()
    if checkpoints.get("format") == MANIFEST_FORMAT and len(checkpoints["checkpoints"]) > 1:
        older = {entry["file"] for entry in checkpoints["checkpoints"][:-1]}
        checkpoints["checkpoints"] = checkpoints["checkpoints"][-1:]
    files = {}
    for name in dict.fromkeys(resumable + list(KEPT_FILES)):
        source = run.directory / name
        if name in older:
            continue
        if name == MANIFEST and older:
            write_json(tmp / name, checkpoints)
            files[name] = sha256_of(tmp / name)
        elif source.exists():
            if name in SLIM_FILES:
                if _unchanged_slim_file(run.directory, target, manifest, name):
                    shutil.copyfile(target / name, tmp / name)
                else:
                    save_without_optimizer(source, tmp / name)
            else:
                shutil.copyfile(source, tmp / name)
            files[name] = sha256_of(tmp / name)
    (tmp / "manifest.json").write_text(json.dumps(
        {"run": run.label, "step": step, "steps": run.steps, "sha256": files}, indent=2))
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return step


def restore_run(run, stash=DEFAULT_STASH):
    """Put a stashed checkpoint back into an empty run directory (sha256-checked). Returns the
    restored step or None."""
    source = _stash_dir(run, stash)
    manifest = _read_json(source / "manifest.json")
    if manifest is None or resumable_files(run.directory):
        return None
    for name, digest in manifest["sha256"].items():
        if sha256_of(source / name) != digest:
            raise ValueError(f"stashed {source / name} does not match its manifest's sha256; "
                             "the stash is damaged: delete it to retrain from the start")
    run.directory.mkdir(parents=True, exist_ok=True)
    for name in manifest["sha256"]:
        shutil.copyfile(source / name, run.directory / name)
    return int(manifest["step"])


def status_rows(entries, stash=DEFAULT_STASH, registry=None):
    from zoo import pretrained

    published = pretrained.read_registry(registry)["models"]
    rows = []
    for name, (_, runs) in entries.items():
        last = runs[-1]
        steps, finished = trained_steps(last.directory)
        stashed = _read_json(_stash_dir(last, stash) / "manifest.json")
        if name in published:
            state = "published"
            # the published model's steps: its run directory need not be on this machine
            steps = published[name]["steps"]
        elif finished and steps >= last.steps:
            state = "trained"
        elif steps or stashed:
            state = "in progress"
        else:
            state = "missing"
        rows.append({"name": name, "state": state, "steps": steps, "planned": last.steps,
                     "stashed": stashed["step"] if stashed else None,
                     "phases": len(runs)})
    return rows


def _is_trained(entries, name):
    run = entries[name][1][-1]
    steps, finished = trained_steps(run.directory)
    return finished and steps >= run.steps


def _runs_to_do(entries, only):
    """The next run of every unfinished entry whose `after` entries are trained."""
    todo = []
    for name, (entry, runs) in entries.items():
        if only and name not in only:
            continue
        if not all(_is_trained(entries, other) for other in entry.get("after", [])):
            continue
        for run in runs:
            steps, finished = trained_steps(run.directory)
            if not (finished and steps >= run.steps):
                todo.append(run)
                break  # later phases start from this one's model
    return todo


def build(entries, only=(), parallel=1, threads=0, max_hours=None, stash=DEFAULT_STASH,
          python=sys.executable, poll_s=10.0, log=print):
    """Train what is missing, `parallel` runs at a time. Returns {label: exit code}."""
    deadline = None if max_hours is None else time.time() + 3600 * max_hours
    outcome, running = {}, {}
    pending = _runs_to_do(entries, only)
    while pending or running:
        while pending and len(running) < parallel:
            run = pending.pop(0)
            restored = restore_run(run, stash)
            if restored is not None:
                log(f"{run.label}: restored the stashed checkpoint at step {restored}")
            run.directory.mkdir(parents=True, exist_ok=True)
            command = train_command(run, python) + ([f"--threads={threads}"] if threads else [])
            # Open for as long as the process runs; closed when it ends (below).
            log_file = open(run.directory / "train.log", "a")  # noqa: SIM115
            log(f"{run.label}: training to step {run.steps} (log {run.directory / 'train.log'})")
            running[run.label] = (run, subprocess.Popen(command, cwd=run.repo, stdout=log_file,
                                                        stderr=subprocess.STDOUT), log_file)
        time.sleep(poll_s)
        for label, (run, process, log_file) in list(running.items()):
            if process.poll() is None:
                if deadline is not None and time.time() > deadline:
                    process.terminate()  # resumes from its last checkpoint next time
                    process.wait()
                else:
                    continue
            log_file.close()
            del running[label]
            outcome[label] = process.returncode
            steps, finished = trained_steps(run.directory)
            if process.returncode == 0 and finished:
                log(f"{label}: done at step {steps}")
                # Its next phase, and entries that were waiting for it, can start now.
                queued = {r.label for r in pending} | set(running) | set(outcome)
                pending.extend(r for r in _runs_to_do(entries, only) if r.label not in queued)
            else:
                log(f"{label}: stopped at step {steps} (exit {process.returncode}); "
                    f"log {run.directory / 'train.log'}")
        if deadline is not None and time.time() > deadline:
            pending.clear()
    return outcome


# --------------------------------------------------------------------------------------------------
# Publishing: score, artifacts, pictures, model card, registry
# --------------------------------------------------------------------------------------------------
def hardware():
    """CPU model and core count, in words (for the card)."""
    import platform

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs"


def export_archive(model_path, target):
    """The model's SavedModel (zoo.export endpoints) as one .tar.gz file."""
    import tarfile

    from zoo import export, models

    with tempfile.TemporaryDirectory() as scratch:
        saved = Path(scratch) / "saved_model"
        export.export_saved_model(models.load(model_path), saved)
        tmp = Path(str(target) + ".tmp")
        with tarfile.open(tmp, "w:gz") as archive:
            archive.add(saved, arcname="saved_model")
        os.replace(tmp, target)
    return target


def _score_rows(metrics_report):
    """(metric, "name value, ...", "parameter=value, ...") per scored metric of a metrics.json."""
    rows = []
    for metric, result in metrics_report["metrics"].items():
        values = ", ".join(f"{k} {v:.3f}" for k, v in result["values"].items())
        params = ", ".join(f"{k}={v}" for k, v in result.get("params", {}).items()
                           if isinstance(v, (int, float, str)))
        rows.append((metric, values, params))
    return rows


def metric_params(metrics_report):
    """{metric: {parameter: value}} of a metrics.json (the plain values), so a score can be
    recomputed with the card's settings (`make demo` does)."""
    return {metric: {k: v for k, v in result.get("params", {}).items()
                     if v is None or isinstance(v, (bool, int, float, str))}
            for metric, result in metrics_report["metrics"].items()}


def headline_scores(metrics_report):
    """{"metric/value": number} of a metrics.json, as the registry records them."""
    return {f"{metric}/{key}": value for metric, result in metrics_report["metrics"].items()
            for key, value in result["values"].items()}


# A card's limitation when the published .keras file leaves a part out (FactorVAE.without_discriminator).
WITHOUT_DISCRIMINATOR = (
    "The published `.keras` file leaves out the discriminator's weights (a 6 x 1000-unit MLP, "
    "most of the model's weights; the file would be over the 5 MB limit). The encoder and decoder "
    "are exactly the trained ones, so representations, traversals and scores are unaffected; "
    "`fit` and `evaluate` start a fresh discriminator (as `fit` starts a fresh optimizer), so the "
    "TC estimate means nothing until it has trained for a while. The command above trains the "
    "whole model again, discriminator included.")


def metric_sections(entry, run, metrics_report, results, kl, artifacts):
    """The card's scores (the metric suite of `trainers.evaluate`), latents and pictures."""
    lines = [
        "## Scores", "",
        (f"`python -m trainers.evaluate --model_path={os.path.relpath(run.directory, run.repo)}"
         f"/model.keras --metrics={entry.get('metrics', 'all')} --seed={metrics_report['seed']}` "
         f"(seed {metrics_report['seed']}; parameters as listed):"), "",
        "| metric | values | parameters |", "|---|---|---|",
        *(f"| {m} | {v} | {p} |" for m, v, p in _score_rows(metrics_report)), "",
    ]
    if results.get("best_model"):
        best = results["best_model"]
        lines += [(f"Best periodic evaluation (`best.keras`, kept in the run directory): "
                  f"{json.dumps(best)}."), ""]
    return lines + [
        "## Latents", "",
        "Mean KL of each latent to the prior over 1,000 images (nats): "
        + ", ".join(f"z{i} {v:.2f}" for i, v in enumerate(kl)) + ".", "",
        f"![traversals]({artifacts['traversal_gif']})", "",
        f"![traversals]({artifacts['traversal_png']})", "",
        f"![reconstructions]({artifacts['reconstructions_png']})", "",
    ]


def write_card(path, name, entry, runs, results, sections, artifacts, notes=()):
    """The model card (markdown): what the model is, how exactly it was made, what it scores
    (`sections`: markdown lines, e.g. `metric_sections`'), its files. `notes` are further known
    limitations (e.g. WITHOUT_DISCRIMINATOR)."""
    paper = entry.get("paper_steps")
    schedule = (f"{results['steps']:,} steps; the paper trains {paper:,}" if paper
                else f"{results['steps']:,} steps (the paper gives no step count)")
    lines = [
        f"# {name}", "",
        f"**Method**: `{entry['model']}` — {entry.get('citation', '')}.", "",
        f"**Hyperparameters**: {entry.get('hyperparameters_from', '')}.", "",
        "**Made with** (from the repository root; each command resumes if rerun):", "", "```bash",
        *(shlex.join(train_command(run)) for run in runs), "```", "",
        f"**Data**: {results['data_source']}.", "",
        f"**Training**: {schedule}; seed {results['seed']}; "
        f"{results['train_wall_time_s'] / 3600:.1f} h of training wall time"
        + (" (last phase)" if len(runs) > 1 else "") + f" on {artifacts['hardware']}.", "",
        *sections,
        *([(f"Periodic evaluations during training (one JSON line per evaluation: step, "
            f"values): [`{artifacts['evaluation_history']}`]({artifacts['evaluation_history']})."),
           ""] if artifacts.get("evaluation_history") else []),
        "## Files", "",
        "| file | sha256 | bytes |", "|---|---|---|",
        *(f"| `{f['file']}` | `{f['sha256']}` | {f['bytes']:,} |" for f in artifacts["files"]), "",
        LIMITATIONS_HEADING, "",
        f"- Trained for {schedule}." + (" Scores may still move with longer training."
                                        if paper and results["steps"] < paper else ""),
        ("- Procedural dSprites, not the original images: the renderer matches the real frames "
        "to a mean IoU of 0.9997 (README, Data), but scores on the real data set may differ."),
        *(f"- {text}" for text in [*notes, *entry.get("limitations", [])]), "",
    ]
    Path(path).write_text("\n".join(lines), encoding="utf-8")
    return path


def sync_card_limitations(card_path, entry):
    """Append to a published card's "Known limitations" (its last section) each of the plan
    entry's `limitations` it does not hold yet: what was measured after a model was published
    reaches its card without publishing (and scoring) it again. Returns the lines added."""
    path = Path(card_path)
    text = path.read_text(encoding="utf-8")
    if LIMITATIONS_HEADING not in text:
        raise ValueError(f"{path} has no '{LIMITATIONS_HEADING}' section")
    section = text.split(LIMITATIONS_HEADING, 1)[1]
    if "\n## " in section:
        raise ValueError(f"{path}: '{LIMITATIONS_HEADING}' is not the card's last section")
    missing = [f"- {t}" for t in entry.get("limitations", []) if f"- {t}" not in section]
    if missing:
        path.write_text(text.rstrip("\n") + "\n" + "\n".join(missing) + "\n", encoding="utf-8")
    return missing


def published_visual_model(model, entry, registry):
    """The published entry (among the plan entry's `after`) whose weights a SCAN's frozen visual
    model holds exactly: {"name", "file", "sha256", "run_file_sha256"}. Refused when none does:
    a card must not name a visual model the SCAN does not sit on."""
    import numpy as np

    from zoo import pretrained

    weights = model.visual.get_weights()
    for other in entry.get("after", []):
        if other not in pretrained.available(registry):
            continue
        candidate = pretrained.load(other, registry)
        theirs = candidate.get_weights()
        if len(theirs) == len(weights) and all(
                a.shape == b.shape and np.array_equal(a, b) for a, b in zip(theirs, weights)):
            record = pretrained.entry(other, registry)
            return {"name": other, "file": record["file"], "sha256": record["sha256"],
                    "run_file_sha256": model.visual_sha256}
    raise ValueError(f"the SCAN's visual model is none of the published entries it is built on "
                     f"({entry.get('after', [])}); publish that model first")


# A SCAN card's note on its pictures and its size.
SCAN_NOTES = (
    ("SCAN has no traversal of its own: its latent space is the frozen visual model's, so its "
    "latent traversals, reconstructions and KL per latent are those of the visual model's card. "
    "Its own picture is sym2img: samples z ~ q(z_y|y) decoded by the visual decoder, one row per "
    "concept (a GIF would add nothing: the samples are independent draws, not a path)."),
    ("The `.keras` file embeds the frozen visual model's weights (so `keras.models.load_model` "
    "needs no other file); the card names the published visual model and its sha256, and "
    "publishing checked that its weights are exactly the embedded ones."))


def scan_sections(model, run, data, visual, seed, picture_dir, card_dir, log=print):
    """Score a SCAN with `trainers.scan_report` (its own criteria, issue 20): returns (card
    lines, registry scores, card facts, the scores)."""
    from trainers import scan_report

    settings = scan_report.PUBLISH_SETTINGS
    log(f"{run.entry}: scoring with trainers.scan_report {settings}")
    picture = picture_dir / "sym2img.png"
    result = scan_report.report(model, data, seed=seed, picture=picture, **settings)
    result["picture"] = os.path.relpath(picture, card_dir.parent)
    model_path = os.path.relpath(run.directory / "model.keras", run.repo)
    command = scan_report.command(model_path, seed, **settings)
    held_out = "; ".join("{" + ", ".join(c) + "}" for c in model.held_out_concepts) or "none"
    lines = [
        "## Visual model", "",
        (f"Frozen, embedded in the `.keras` file: the published `{visual['name']}` "
         f"(`{visual['file']}`, sha256 `{visual['sha256']}`; its training run's file, which "
         f"SCAN was trained from, had sha256 `{visual['run_file_sha256']}`). Publishing checked "
         "that the embedded weights equal the published model's."), "",
        "## Scores", "",
        f"`{command}` (seed {seed}; {result['wall_time_s']:.0f} s):", "",
        (f"An attribute classifier (`zoo.scan_scores.train_attribute_classifier`, "
         f"{settings['classifier_steps']} steps) labels images. img2sym and the classifier: "
         f"accuracy of the most probable word per attribute on {settings['num_samples']:,} "
         f"ground-truth images. sym2img: {settings['samples_per_concept']} samples per concept "
         f"over {settings['num_concepts']} random concepts (each attribute named with probability "
         f"{model.specify_probability}), the fraction the classifier labels with the named word; "
         f"AND, IN COMMON, IGNORE: the same for {settings['num_concepts']} random pairs "
         "recombined by each operator. Chance: 1/3 for shape, scale and position, 1/4 for "
         f"orientation. Held out of both training stages: {held_out}."), "",
        *scan_report.tables(result, model.vocabulary), "",
        "## Pictures", "",
        "sym2img samples, one row per concept (the last rows: the held-out combinations):", "",
        f"![sym2img]({os.path.relpath(picture, card_dir)})", "",
    ]
    facts = {"scan_report_command": command, "scan_report_settings": dict(settings),
             "visual_model": visual, "picture": os.path.relpath(picture, card_dir.parent)}
    return lines, scan_report.flat_scores(result), facts, result


def dc_ign_sections(model, run, data, seed, log=print):
    """Score a DC-IGN by its own criteria with `trainers.dc_ign_report` (issue 20): returns (card
    lines, registry scores, card facts, the report)."""
    from trainers import dc_ign_report

    settings = dc_ign_report.PUBLISH_SETTINGS
    log(f"{run.entry}: scoring with trainers.dc_ign_report {settings}")
    result = dc_ign_report.report(model.encode, data, seed=seed,
                                  latents_per_factor=model.latents_per_factor, **settings)
    command = dc_ign_report.command(
        os.path.relpath(run.directory / "model.keras", run.repo), seed, **settings)
    lines = [
        "## DC-IGN's own criteria", "",
        (f"`{command}` (seed {seed}): each factor against its assigned latent. η and the "
         f"absolute Spearman ρ on {result['num_points']:,} i.i.d. held-out points; the "
         f"within-batch std ratio (the paper's criterion) over {result['batches_per_factor']} "
         "batches of 64 in which only that factor varies, over the latent's std on i.i.d. data "
         "(the assigned latent should carry the variation, the others stay near 0); KL of the "
         "assigned latent to the prior (≈ 0: collapsed, carrying nothing)."), "",
        *dc_ign_report.table(result), "",
    ]
    facts = {"dc_ign_report_command": command, "dc_ign_report": result}
    return lines, dc_ign_report.flat_scores(result), facts, result


def preset_record(model, archive, scratch):
    """The registry's preset numbers (zoo.pretrained.preset_numbers) of the .keras `model` and of
    its SavedModel `archive`; refused when the two disagree (a broken export)."""
    import numpy as np
    import tensorflow as tf

    from zoo import pretrained

    shape = list(model.image_shape)
    saved = tf.saved_model.load(str(pretrained.unpack_saved_model(archive, scratch / "presets")))
    record = {"inputs": f"zoo.pretrained.preset_inputs({shape})", "input_shape": shape,
              "keras": pretrained.preset_numbers(model, shape),
              "saved_model": pretrained.preset_numbers(saved, shape)}
    for key, value in record["keras"].items():
        if not np.allclose(record["saved_model"][key], value, rtol=pretrained.PRESET_RTOL,
                           atol=pretrained.PRESET_ATOL):
            raise ValueError(f"the SavedModel's {key} {record['saved_model'][key]} differs from "
                             f"the .keras model's {value}: the export is broken")
    return record


def publish_entry(name, entry, runs, registry_dir, seed=0, log=print, stash=None):
    """Score a trained entry, write its artifacts, pictures and card, and register it; then
    remove its stashed checkpoints from `stash` (pretrained/in_progress/ from the command line),
    which a published model no longer needs. A SCAN is scored by its own criteria
    (`scan_sections`), every other model by the metric suite of `trainers.evaluate`."""
    import numpy as np

    import zoo.data
    from trainers import evaluate
    from zoo import models, pretrained, visualize

    last = runs[-1]
    results = _read_json(last.directory / "results.json")
    if not results or results["steps"] < last.steps:
        raise ValueError(f"{name} is not trained yet ({trained_steps(last.directory)[0]} of "
                         f"{last.steps} steps); run `python -m trainers.zoo build --only={name}`")
    settings = last.config()
    scan = entry["model"] == "scan"
    if not scan:
        log(f"{name}: scoring with {entry.get('metrics', 'all')}")
        report = evaluate.run(last.directory / "model.keras", metrics=entry.get("metrics", "all"),
                              dataset=settings.dataset, data_source=settings.data_source,
                              seed=seed, output=last.directory / "metrics.json",
                              metric_args=entry.get("metric_args", []), log=None)
    registry_dir = Path(registry_dir)
    card_dir = registry_dir / "cards"
    picture_dir = card_dir / name
    picture_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        keras_file = Path(scratch) / f"{name}.keras"
        save_without_optimizer(last.directory / "model.keras", keras_file)
        archive = export_archive(keras_file, Path(scratch) / f"{name}.savedmodel.tar.gz")
        files = []
        for path, suffix in ((keras_file, ".keras"), (archive, ".savedmodel.tar.gz")):
            size, digest = path.stat().st_size, sha256_of(path)
            if size > MAX_ARTIFACT_BYTES:
                raise ValueError(f"{path.name} is {size:,} bytes, over the "
                                 f"{MAX_ARTIFACT_BYTES:,}-byte limit of a published file")
            files.append({"file": pretrained.published_file_name(name, digest, suffix),
                          "sha256": digest, "bytes": size})

        model = models.load(keras_file)
        presets = preset_record(model, archive, Path(scratch))
        data = zoo.data.get(settings.dataset, source=settings.data_source)
        artifacts = {"files": [{**f, "file": f"../{f['file']}"} for f in files],
                     "hardware": hardware()}
        history = last.directory / "metrics_history.jsonl"
        if history.exists():  # the run directory is not kept; its evaluations stay with the card
            shutil.copyfile(history, picture_dir / history.name)
            artifacts["evaluation_history"] = os.path.relpath(picture_dir / history.name, card_dir)
        facts = {"method": entry["model"], "citation": entry.get("citation"),
                 "commands": [shlex.join(train_command(r)) for r in runs],
                 "train_wall_time_s": results["train_wall_time_s"],
                 "hardware": artifacts["hardware"], "dataset": settings.dataset,
                 "dataset_source": settings.data_source, "paper_steps": entry.get("paper_steps")}
        if scan:
            visual = published_visual_model(model, entry, registry_dir / "registry.json")
            # Scored from the run's file, as the card's command does (the same weights).
            sections, scores, scan_facts, result = scan_sections(
                models.load(last.directory / "model.keras"), last, data, visual, seed,
                picture_dir, card_dir, log)
            write_json(last.directory / "scan_scores.json", result)
            facts.update(scan_facts, scores_seed=seed)
            notes = list(SCAN_NOTES)
        else:
            images = data.sample_observations(1000, np.random.default_rng(seed))
            kl = visualize.kl_per_dimension(model, images)
            pictures = {
                "traversal_gif": visualize.save_traversal_gif(model, images[0],
                                                              picture_dir / "traversals.gif"),
                "traversal_png": visualize.save_traversals(model, images[0],
                                                           picture_dir / "traversals.png"),
                "reconstructions_png": visualize.save_png(
                    visualize.reconstruction_grid(model, images[:8]),
                    picture_dir / "reconstructions.png"),
            }
            artifacts.update({k: os.path.relpath(v, card_dir) for k, v in pictures.items()})
            sections = metric_sections(entry, last, report, results, kl, artifacts)
            scores = headline_scores(report)
            facts.update(kl_per_latent=[round(float(v), 4) for v in kl], metrics_seed=seed,
                         metric_params=metric_params(report))
            if entry["model"] == "dc_ign":
                own, own_scores, own_facts, result = dc_ign_sections(model, last, data, seed, log)
                write_json(last.directory / "dc_ign_scores.json", result)
                sections, scores = sections + own, {**scores, **own_scores}
                facts.update(own_facts)
            notes = [WITHOUT_DISCRIMINATOR] \
                if model.get_config().get("discriminator_built") is False else []
        card = write_card(card_dir / f"{name}.md", name, entry, runs, results, sections,
                          artifacts, notes)
        facts["path"] = os.path.relpath(card, registry_dir)
        record = pretrained.publish(
            keras_file, name, data_source=results["data_source"], steps=results["steps"],
            seed=results["seed"], scores=scores,
            registry=registry_dir / "registry.json", overwrite=True, saved_model=archive,
            card=facts, presets=presets)
    log(f"{name}: published ({card})")
    if stash is not None and (Path(stash) / name).exists():
        shutil.rmtree(Path(stash) / name)
        log(f"{name}: removed its stash {Path(stash) / name} (commit the removal)")
    return record


HEADLINE_SCORES = (("factor_vae_score/eval_accuracy", "FactorVAE score"), ("mig/mig", "MIG"),
                   ("dci/disentanglement", "DCI dis."), ("sap/sap", "SAP"),
                   ("unsupervised_accuracy/accuracy", "shape acc."))
README_TABLE_MARKERS = ("<!-- zoo table: written by `python -m trainers.zoo gallery` -->",
                        "<!-- end of zoo table -->")


def zoo_table(registry=None, link_prefix="pretrained/"):
    """Markdown table of the published models (name with its card, method, steps, headline
    scores); the README shows it and a test keeps it equal to the registry."""
    from zoo import pretrained

    published = pretrained.read_registry(registry)["models"]
    if not published:
        return "No model is published yet: `python -m trainers.zoo status` shows the build."
    header = "| model | method | steps | " + " | ".join(h for _, h in HEADLINE_SCORES) + " |"
    rows = [header, "|" + "---|" * (3 + len(HEADLINE_SCORES))]
    for name, record in sorted(published.items()):
        scores = record.get("scores", {})
        cells = [f"{scores[key]:.3f}" if key in scores else "—" for key, _ in HEADLINE_SCORES]
        # The plan's model name (the Keras name of e.g. DIPVAEI would be "dipvaei").
        method = record.get("card", {}).get("method") or record.get("config", {}).get("name", "")
        rows.append(f"| [{name}]({link_prefix}cards/{name}.md) | {method} | "
                    f"{record.get('steps', 0):,} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def gallery(registry=None):
    """docs/zoo.md: every published model with its traversal GIF and headline scores."""
    from zoo import pretrained

    published = pretrained.read_registry(registry)["models"]
    lines = ["# The zoo", "",
             ("Every published model, its traversal (each panel moves one latent, most informative "
             "first) and its headline scores; the model card has the rest. Load one with "
             "`zoo.pretrained.load(name)`. Written by `python -m trainers.zoo gallery`."), "",
             zoo_table(registry, link_prefix="../pretrained/"), ""]
    for name in sorted(published):
        # A model without traversals of its own (SCAN) names its picture in its card facts.
        picture = published[name].get("card", {}).get("picture", f"cards/{name}/traversals.gif")
        lines += [f"## {name}", "", f"![{name} {Path(picture).stem}](../pretrained/{picture})",
                  "", f"[model card](../pretrained/cards/{name}.md)", ""]
    return "\n".join(lines)


def write_gallery(registry=None, readme=REPO / "README.md", page=REPO / "docs" / "zoo.md"):
    """Write docs/zoo.md and replace the README's zoo table between its markers."""
    page.write_text(gallery(registry), encoding="utf-8")
    text = readme.read_text(encoding="utf-8")
    start, end = README_TABLE_MARKERS
    if start not in text or end not in text:
        raise ValueError(f"{readme} has no zoo table markers ({start} ... {end})")
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    readme.write_text(f"{before}{start}\n{zoo_table(registry)}\n{end}{after}", encoding="utf-8")


def _parse_only(value):
    return tuple(v for v in (value or "").split(",") if v)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m trainers.zoo", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("status", "build", "stash", "publish", "gallery"))
    parser.add_argument("--plan", default=str(DEFAULT_PLAN), help="the build plan (YAML)")
    parser.add_argument("--only", default="", help="comma-separated entry names (default: all)")
    parser.add_argument("--parallel", type=int, default=2, help="runs trained at once")
    parser.add_argument("--threads", type=int, default=1, help="TF threads per run (0: TF's default)")
    parser.add_argument("--max_hours", type=float, default=None,
                        help="stop the runs after this long (they resume from their checkpoints)")
    args = parser.parse_args(argv)
    try:
        if args.command in ("publish", "gallery") and not is_published(args.plan):
            raise PlanError(f"{args.plan} says `published: false`: its runs are not published "
                            "(publish and gallery read the zoo's plan)")
        entries = load_plan(args.plan)
        only = _parse_only(args.only)
        unknown = set(only) - set(entries)
        if unknown:
            raise PlanError(f"--only names {sorted(unknown)}, which are not in the plan")
    except PlanError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.command == "status":
        rows = status_rows(entries)
        print(f"{'model':<40} {'state':<12} {'steps':>8} {'planned':>8} {'stashed':>8}")
        for row in rows:
            if only and row["name"] not in only:
                continue
            stashed = "" if row["stashed"] is None else row["stashed"]
            print(f"{row['name']:<40} {row['state']:<12} {row['steps']:>8} {row['planned']:>8} "
                  f"{stashed:>8}")
    elif args.command == "stash":
        for name, (_, runs) in entries.items():
            if only and name not in only:
                continue
            for run in runs:
                step = stash_run(run)
                if step is not None:
                    print(f"{run.label}: stashed step {step} in {_stash_dir(run, DEFAULT_STASH)}")
    elif args.command == "gallery":
        from zoo import pretrained

        for name in pretrained.available():
            if name in entries and (not only or name in only):
                card = DEFAULT_PLAN.parent / pretrained.entry(name)["card"]["path"]
                for line in sync_card_limitations(card, entries[name][0]):
                    print(f"{name}: added to its card's limitations: {line[2:60]}...")
        write_gallery()
        print("wrote docs/zoo.md and the README's zoo table")
    elif args.command == "publish":
        failed = []
        for name, (entry, runs) in entries.items():
            if (only and name not in only) or not trained_steps(runs[-1].directory)[1]:
                continue
            try:
                publish_entry(name, entry, runs, DEFAULT_PLAN.parent, stash=DEFAULT_STASH)
            except ValueError as error:
                print(f"error: {name}: {error}", file=sys.stderr)
                failed.append(name)
        write_gallery()
        return 1 if failed else 0
    else:
        outcome = build(entries, only, args.parallel, args.threads, args.max_hours)
        failed = {k: v for k, v in outcome.items() if v not in (0, -15)}
        return 1 if failed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
