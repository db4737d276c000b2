r"""Sweeps: models × hyperparameter grid × seeds, each trial an ordinary trainers.train run, on Ray.

    python -m trainers.sweep --spec=trainers/sweeps/smoke.yaml [--output_dir=runs/sweeps/smoke]
    python -m trainers.sweep --spec=trainers/sweeps/dlib_study.yaml --address=<head:port>

A spec (YAML or JSON; trainers/sweeps/ has the presets) names:

    name: smoke                      # default output directory runs/sweeps/<name>
    dataset: dsprites                # and data_source (default: the data set's own)
    models:                          # model name -> its grid and fixed settings
      beta_vae: {grid: {beta: [1, 4]}, latent_dim: 10}
      factor_vae: {grid: {gamma: [10, 35]}}
    seeds: [0, 1]                    # or a count: 3 means 0, 1, 2
    steps: 30
    batch_size: 64
    train_args: {checkpoint_every: 10}   # any other trainers.train setting (TrainConfig)
    metrics: mig,sap                 # scored after training (trainers.evaluate); "all" for the suite
    metric_args: []                  # trainers.evaluate --metric_arg values
    resources: {cpus_per_trial: 1, threads: 1}   # the default: one trial per core, 1 TF thread
    udr: true                        # unsupervised model selection across each setting's seeds

Every trial's settings are checked as a `trainers.config.TrainConfig` (types, ranges, names) before
anything trains. Each trial trains into `<output_dir>/trials/<model>_<key>=<value>..._s<seed>` and
is then scored into its `metrics.json`. Trials run as Ray tasks (a local Ray sized to this machine
unless `--address` names a running cluster), by default one per core with one TF thread each: the
faster packing (two 1-thread runs train 1.13× as many steps/s in total as one 2-thread run on 2
cores, docs/performance.md). A rerun of the same command skips finished trials and
resumes unfinished ones from their checkpoints; a failing trial is reported with its log and the
others go on. Results: `results.csv` and `results.jsonl` (one row per trial: settings, steps, wall
time, loss terms, metrics), `udr.csv` and `udr_selection.json` (UDR per trial, the chosen trial per
model, Spearman correlation of UDR with each supervised metric), and one plot per model and metric
in `plots/`.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from trainers import zoo

SPEC_KEYS = ("name", "dataset", "data_source", "models", "seeds", "steps", "batch_size",
             "train_args", "metrics", "metric_args", "resources", "udr")
MODEL_KEYS = ("grid", "model_args", "latent_dim", "network", "learning_rate")
RESOURCE_KEYS = ("cpus_per_trial", "threads")


class SpecError(ValueError):
    """A sweep spec that cannot run; the message names the key."""


def load_spec(path):
    """The spec at `path` (YAML or JSON), checked key by key."""
    from zoo import models

    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise SpecError(f"cannot read the sweep spec {path}: {error}") from None
    if not isinstance(spec, dict):
        raise SpecError(f"{path}: a sweep spec is a mapping of keys ({', '.join(SPEC_KEYS)})")
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise SpecError(f"{path}: unknown key {unknown[0]!r} (accepted: {', '.join(SPEC_KEYS)})")
    for key in ("name", "models", "steps"):
        if key not in spec:
            raise SpecError(f"{path}: missing key {key!r}")
    if not isinstance(spec["models"], dict) or not spec["models"]:
        raise SpecError(f"{path}: 'models' must map model names to their settings")
    for name, settings in spec["models"].items():
        if name not in models.MODELS:
            raise SpecError(f"{path}: models.{name}: unknown model (known: {sorted(models.MODELS)})")
        settings = settings or {}
        bad = sorted(set(settings) - set(MODEL_KEYS))
        if bad:
            raise SpecError(f"{path}: models.{name}.{bad[0]}: unknown key (accepted: "
                            f"{', '.join(MODEL_KEYS)})")
        for key, values in (settings.get("grid") or {}).items():
            if not isinstance(values, list) or not values:
                raise SpecError(f"{path}: models.{name}.grid.{key} must be a non-empty list")
    seeds = spec.get("seeds", 1)
    if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds > 0:
        spec["seeds"] = list(range(seeds))
    elif not (isinstance(seeds, list) and seeds and all(isinstance(s, int) for s in seeds)):
        raise SpecError(f"{path}: seeds must be a positive count or a list of integer seeds")
    bad = sorted(set(spec.get("resources") or {}) - set(RESOURCE_KEYS))
    if bad:
        raise SpecError(f"{path}: resources.{bad[0]}: unknown key (accepted: {', '.join(RESOURCE_KEYS)})")
    if not isinstance(spec["steps"], int) or spec["steps"] < 1:
        raise SpecError(f"{path}: steps must be a positive integer, got {spec['steps']!r}")
    return spec


def _label(text):
    """A trial-name part: lower case, only [a-z0-9_.-] (other characters become '-')."""
    return re.sub(r"[^a-z0-9_.-]", "-", str(text).lower())


def expand(spec, output_dir, repo=zoo.REPO):
    """The sweep's trials as trainers.zoo.Run objects (plus their grid values), checked by
    loading them as a zoo plan (so a bad setting is refused before anything trains)."""
    plan, grids = {}, {}
    shared = {k: spec[k] for k in ("dataset", "data_source", "batch_size", "train_args")
              if k in spec}
    for model, settings in spec["models"].items():
        settings = dict(settings or {})
        grid = settings.pop("grid", None) or {}
        fixed_args = settings.pop("model_args", None) or {}
        keys = sorted(grid)
        for values in itertools.product(*(grid[k] for k in keys)):
            point = dict(zip(keys, values))
            for seed in spec["seeds"]:
                label = "_".join([_label(model), *(f"{_label(k)}-{_label(v)}" for k, v in point.items()),
                                  f"s{seed}"])
                if label in plan:
                    raise SpecError(f"two trials would share the directory {label}; make the "
                                    "grid values of models differ")
                plan[label] = {"model": model, "seed": seed, "steps": spec["steps"],
                               "run_dir": os.path.relpath(Path(output_dir) / "trials" / label, repo),
                               "model_args": {**fixed_args, **point}, **settings, **shared}
                grids[label] = (model, point, seed)
    path = Path(output_dir) / "plan.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"models": plan}, sort_keys=False))
    try:
        entries = zoo.load_plan(path, repo=repo)
    except zoo.PlanError as error:
        raise SpecError(f"a trial of the spec is not a valid run: {error}") from None
    return [(entries[label][1][0], *grids[label]) for label in plan]


def _is_scored(run):
    steps, finished = zoo.trained_steps(run.directory)
    return finished and steps >= run.steps and (run.directory / "metrics.json").exists()


def trial_task(train_command, evaluate_command, cwd, log_path):
    """One trial, run inside a Ray task: train (resuming), then score. Returns the exit code."""
    with open(log_path, "a") as log:
        for command in (train_command, evaluate_command):
            code = subprocess.run(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                  check=False).returncode
            if code != 0:
                return code
    return 0


def _commands(run, spec, threads, python):
    train = zoo.train_command(run, python) + ([f"--threads={threads}"] if threads else [])
    evaluate = [python, "-m", "trainers.evaluate", f"--model_path={run.directory / 'model.keras'}",
                f"--metrics={spec.get('metrics', 'all')}", f"--seed={run.settings['seed']}",
                f"--dataset={spec.get('dataset', 'dsprites')}",
                *(f"--metric_arg={a}" for a in spec.get("metric_args", []))]
    if spec.get("data_source"):
        evaluate.append(f"--data_source={spec['data_source']}")
    return train, evaluate


def run_trials(trials, spec, address=None, python=sys.executable, log=print, poll_s=5.0):
    """Run every unscored trial on Ray. Returns {label: "done" | "failed (exit N), log P"}."""
    import ray

    resources = spec.get("resources") or {}
    cpus = int(resources.get("cpus_per_trial", 1))
    threads = int(resources.get("threads", cpus))
    status = {run.label: "done" for run, *_ in trials if _is_scored(run)}
    todo = [run for run, *_ in trials if run.label not in status]
    if status:
        log(f"{len(status)} of {len(trials)} trials already done; skipping them")
    if not todo:
        return status
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        # Ray runs its workers at niceness 15 by default; a sweep's trials are the work itself,
        # not background tasks, so they run at normal priority on the local Ray started here.
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=cpus)(trial_task)
        pending = {}
        for run in todo:
            run.directory.mkdir(parents=True, exist_ok=True)
            train, evaluate = _commands(run, spec, threads, python)
            pending[task.remote(train, evaluate, str(run.repo),
                                str(run.directory / "trial.log"))] = run
        started, total, last_line, last_time = time.time(), len(pending), None, 0.0
        while pending:
            ready, _ = ray.wait(list(pending), timeout=poll_s)
            for ref in ready:
                run = pending.pop(ref)
                code = ray.get(ref)
                status[run.label] = ("done" if code == 0 else
                                     f"failed (exit {code}), log {run.directory / 'trial.log'}")
            done = total - len(pending)
            failed = sum(s.startswith("failed") for s in status.values())
            line = (f"trials: {done - failed} done, {len(pending)} running or queued, "
                    f"{failed} failed")
            if done:
                line += f"; ETA {(time.time() - started) / done * len(pending) / 60:.1f} min"
            # Print when the counts change, and at least once a minute.
            counts = (done, failed, len(pending))
            if counts != last_line or time.time() - last_time > 60:
                log(line)
                last_line, last_time = counts, time.time()
    finally:
        ray.shutdown()
    return status


def result_rows(trials):
    """One row per scored trial: its settings, steps, wall time, loss terms and metrics."""
    rows = []
    for run, model, point, seed in trials:
        results = zoo._read_json(run.directory / "results.json")
        metrics = zoo._read_json(run.directory / "metrics.json")
        if not results or not metrics:
            continue
        row = {"trial": run.label, "model": model, "seed": seed, **point,
               "steps": results["steps"], "train_wall_time_s": results["train_wall_time_s"],
               **{f"loss/{k}": v for k, v in results["final_loss_terms"].items()}}
        row.update(zoo.headline_scores(metrics))
        rows.append(row)
    return rows


def udr_selection(trials, spec, seed=0):
    """UDR of every trial among the other seeds of its setting, the chosen trial per model, and
    Spearman's ρ between UDR and each supervised metric over the sweep (Duan et al. 2020)."""
    import numpy as np

    import zoo.data
    from zoo import models
    from zoo.metrics.udr import udr

    data = zoo.data.get(spec.get("dataset", "dsprites"), source=spec.get("data_source"))
    settings = {}
    for run, model, point, _ in trials:
        if (run.directory / "model.keras").exists():
            settings.setdefault((model, json.dumps(point, sort_keys=True)), []).append(run)
    scores = {}
    for (model, point), runs in settings.items():
        if len(runs) < 2:
            continue
        loaded = [models.load(run.directory / "model.keras") for run in runs]
        result = udr(data, loaded, np.random.default_rng(seed))
        scores.update({run.label: result[f"model_{k}"] for k, run in enumerate(runs)})
    return scores


def summarise(trials, spec, output_dir, log=print):
    """Write results.csv / results.jsonl, the UDR selection and the plots; return the table."""
    import pandas as pd

    output_dir = Path(output_dir)
    table = pd.DataFrame(result_rows(trials))
    if table.empty:
        log("no trial is scored yet")
        return table
    if spec.get("udr", True):
        udr_scores = udr_selection(trials, spec)
        table["udr"] = table["trial"].map(udr_scores)
        supervised = [c for c in table.columns if "/" in c and not c.startswith("loss/")]
        scored = table.dropna(subset=["udr"])
        correlations = {}
        for column in supervised:
            pair = scored[["udr", column]].dropna()
            if len(pair) >= 3 and pair[column].nunique() > 1 and pair["udr"].nunique() > 1:
                correlations[column] = float(pair.corr(method="spearman").iloc[0, 1])
        chosen = {model: group.loc[group["udr"].idxmax(), "trial"]
                  for model, group in scored.groupby("model")}
        selection = {"chosen_by_udr": chosen, "spearman_udr_vs_metric": correlations,
                     "note": "UDR of each trial among the other seeds of its setting"}
        (output_dir / "udr_selection.json").write_text(json.dumps(selection, indent=2))
        log(f"UDR chooses: {chosen}")
    table.to_csv(output_dir / "results.csv", index=False)
    table.to_json(output_dir / "results.jsonl", orient="records", lines=True)
    plot(table, spec, output_dir / "plots")
    return table


def plot(table, spec, directory):
    """One PNG per model and supervised metric: the metric against each grid key, seeds as points."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    directory.mkdir(parents=True, exist_ok=True)
    metrics = [c for c in table.columns if "/" in c and not c.startswith("loss/")] + (
        ["udr"] if "udr" in table else [])
    for model, group in table.groupby("model"):
        keys = sorted((spec["models"][model] or {}).get("grid") or {}) or ["seed"]
        for metric in metrics:
            if group[metric].isna().all():
                continue
            figure, axes = pyplot.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.8),
                                           squeeze=False)
            for axis, key in zip(axes[0], keys):
                axis.scatter(group[key].astype(str), group[metric], alpha=0.7)
                axis.set_xlabel(key)
                axis.set_ylabel(metric)
            figure.suptitle(f"{model}: {metric} (seeds as points)", fontsize=9)
            figure.tight_layout()
            figure.savefig(directory / f"{model}__{metric.replace('/', '__')}.png", dpi=80)
            pyplot.close(figure)


def one_trial_at_a_time(spec, cores=None):
    """`spec` with every trial given all `cores` (default: this machine's) as Ray CPUs and TF
    threads, so trials run one after another: the baseline a packed sweep is compared with."""
    cores = int(cores or os.cpu_count())
    return {**spec, "resources": {"cpus_per_trial": cores, "threads": cores}}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m trainers.sweep", description=__doc__.split("\n")[0])
    parser.add_argument("--spec", required=True, help="sweep spec (YAML or JSON)")
    parser.add_argument("--output_dir", default=None, help="default runs/sweeps/<name>")
    parser.add_argument("--address", default=None, help="a running Ray cluster (default: local Ray)")
    parser.add_argument("--one_at_a_time", action="store_true",
                        help="give each trial every core of this machine (trials run one after "
                             "another): the baseline of a sweep's throughput")
    args = parser.parse_args(argv)
    try:
        spec = load_spec(args.spec)
        if args.one_at_a_time:
            spec = one_trial_at_a_time(spec)
        output_dir = Path(args.output_dir or f"runs/sweeps/{spec['name']}").resolve()
        trials = expand(spec, output_dir)
    except SpecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        import ray  # noqa: F401
    except ImportError:
        print("error: sweeps run on Ray: pip install -e '.[sweep]'", file=sys.stderr)
        return 2
    print(f"{len(trials)} trials into {output_dir}")
    already_done = {run.label for run, *_ in trials if _is_scored(run)}
    started = time.time()
    status = run_trials(trials, spec, args.address)
    wall = time.time() - started
    table = summarise(trials, spec, output_dir)
    failed = {k: v for k, v in status.items() if v != "done"}
    for label, why in failed.items():
        print(f"{label}: {why}")
    print(f"{len(table)} trials in {output_dir / 'results.csv'}; {len(failed)} failed")
    ran_now = [label for label, s in status.items() if s == "done" and label not in already_done]
    if ran_now:
        # Throughput of this invocation: trials skipped as already done count nothing.
        trained = int(table.loc[table["trial"].isin(ran_now), "steps"].sum())
        print(f"wall time {wall:.0f} s for training and scoring; {trained} steps trained and "
              f"scored → {trained / wall:.2f} steps/s across the sweep "
              f"(resources {spec.get('resources') or 'default'})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
