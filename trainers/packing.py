r"""How to pack training runs on this machine's cores: the machine's total steps/s of `runs`
concurrent `trainers.train` runs with `threads` TF threads each, for each packing, in one session.

    python -m trainers.packing                          # 1 run × 2 threads against 2 runs × 1 thread
    python -m trainers.packing --packings=1x4,2x2,4x1 --steps=3000 --rounds=2

Every run is an ordinary `trainers.train` run of the same model and steps (no export, no
checkpoints) in a fresh temporary directory; its speed is steps / its training wall time
(`train_wall_time_s` of results.json: `fit` alone, not the start-up or the final evaluation). A
packing's machine total is the sum over its concurrent runs. Packings alternate round by round, so
a burst of load from other processes does not favour one of them; run it on an otherwise idle
machine. The first packing is the reference of the printed ratios. Figures and commands:
docs/performance.md.
"""
import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def parse_packing(text):
    """"2x1" → (2 runs, 1 thread each)."""
    runs, _, threads = text.lower().partition("x")
    try:
        runs, threads = int(runs), int(threads)
    except ValueError:
        runs = threads = 0
    if runs < 1 or threads < 1:
        raise ValueError(f"A packing is RUNSxTHREADS with both ≥ 1, e.g. 2x1; got {text!r}.")
    return runs, threads


def train_command(directory, threads, model, model_args, dataset, steps):
    """One run's `trainers.train` command: no checkpoint, no SavedModel."""
    return [sys.executable, "-m", "trainers.train", f"--model={model}",
            *(f"--model_arg={a}" for a in model_args), f"--dataset={dataset}",
            f"--steps={steps}", f"--checkpoint_every={10 * steps}", "--noexport",
            f"--threads={threads}", f"--output_dir={directory}"]


def run_packing(runs, threads, **settings):
    """Steps/s of each of `runs` concurrent runs with `threads` threads (`settings`: the
    arguments of `train_command` after `threads`)."""
    scratch = Path(tempfile.mkdtemp(prefix="packing-"))
    try:
        with contextlib.ExitStack() as logs:
            processes = [subprocess.Popen(
                train_command(scratch / f"run{i}", threads, **settings), cwd=REPO,
                stdout=logs.enter_context(open(scratch / f"run{i}.log", "w")),
                stderr=subprocess.STDOUT) for i in range(runs)]
            codes = [process.wait() for process in processes]
        rates = []
        for i, code in enumerate(codes):
            if code != 0:
                tail = (scratch / f"run{i}.log").read_text()[-2000:]
                raise RuntimeError(f"trainers.train exited with {code}:\n{tail}")
            results = json.loads((scratch / f"run{i}" / "results.json").read_text())
            rates.append(results["steps"] / results["train_wall_time_s"])
        return rates
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m trainers.packing",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--packings", default="1x2,2x1",
                        help="comma-separated packings RUNSxTHREADS (the first is the reference)")
    parser.add_argument("--steps", type=int, default=3000, help="training steps of every run")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds of all packings")
    parser.add_argument("--model", default="beta_vae", help="model to train")
    parser.add_argument("--model_arg", action="append", default=None,
                        help="hyperparameter key=value of --model, repeatable (default beta=4)")
    parser.add_argument("--dataset", default="dsprites", help="data set")
    parser.add_argument("--output", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    args.packings = [p for p in args.packings.split(",") if p]
    args.model_arg = args.model_arg if args.model_arg is not None else ["beta=4"]
    try:
        packings = [parse_packing(p) for p in args.packings]
    except ValueError as error:
        parser.error(str(error))
    settings = {"model": args.model, "model_args": args.model_arg, "dataset": args.dataset,
                "steps": args.steps}
    load_before = os.getloadavg()
    rounds = {p: [] for p in args.packings}
    for _ in range(args.rounds):
        for name, (runs, threads) in zip(args.packings, packings):
            rounds[name].append(run_packing(runs, threads, **settings))
    totals = {name: [float(sum(r)) for r in per_round] for name, per_round in rounds.items()}
    reference = args.packings[0]
    result = {"model": args.model, "model_args": args.model_arg, "steps": args.steps,
              "cores": os.cpu_count(), "runs_steps_per_s": rounds, "machine_steps_per_s": totals,
              "ratio_to_first": {name: float(np.median(t) / np.median(totals[reference]))
                                 for name, t in totals.items()},
              "load_average_before": load_before, "load_average_after": os.getloadavg()}
    print(f"{args.model}, {args.steps} steps per run, {os.cpu_count()} cores, "
          f"{args.rounds} round(s); machine total = sum of the concurrent runs' steps/s")
    for name, (runs, threads) in zip(args.packings, packings):
        per_run = ", ".join(f"{r:.1f}" for r in rounds[name][-1])
        print(f"  {runs} run(s) × {threads} thread(s): machine total "
              f"{np.median(totals[name]):6.1f} steps/s (runs: {per_run}) → "
              f"{result['ratio_to_first'][name]:.2f}× {reference}")
    print(f"  load average {load_before[0]:.2f} before, {result['load_average_after'][0]:.2f} after")
    if args.output:
        from zoo.files import write_json

        write_json(args.output, result)


if __name__ == "__main__":
    main()
