r"""The CascadeVAE dSprites table over seeds: ours beside the paper's (docs/results/cascade_vae.md).

    python -m trainers.cascade_results [--plan=pretrained/zoo.yaml] [--min_step=300000]
        [--output=docs/results/cascade_vae.json]

Reads every `cascade_vae` entry of the zoo plan (or `--run_dirs`), groups the runs by β_l, and
for each run takes from its periodic evaluations (`metrics_history.jsonl`: shape accuracy of the
discrete code, Hungarian-matched, and the FactorVAE score in the reference's protocol, every 10k
steps):

* the **last** evaluation (the last model), and
* the **selected** one: the best FactorVAE score from 10k steps on, as the reference selects its
  checkpoint (the same evaluation's accuracy is reported with it).

Per β_l it prints mean (std) and best over seeds of both, next to the paper's row (Jeong and Song
2019, Table 1: CascadeVAE score 90.49 ± 5.28, best 99.50; accuracy 78.84 ± 15.65, best 99.66), and
writes the figures as JSON. Runs still training are included with the step they have reached,
unless `--min_step` leaves out of the means every run whose last evaluation is earlier (a run at
40k beside finished ones would pull a mean down and say nothing about the method): they are still
listed, marked as left out.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from zoo.key_values import split_key_value

ACCURACY = "unsupervised_accuracy/accuracy"
SCORE = "factor_vae_score_cascade/eval_accuracy"
PAPER = {"score": {"mean": 0.9049, "std": 0.0528, "best": 0.9950},
         "accuracy": {"mean": 0.7884, "std": 0.1565, "best": 0.9966}}
FIRST_SELECTABLE_STEP = 10_000
HISTORY = "metrics_history.jsonl"


def history(run_dir):
    """[(step, values)] of a run's periodic evaluations, one per step (a resumed run may have
    written a step twice: the last line wins)."""
    path = Path(run_dir) / HISTORY
    if not path.exists():
        return []
    by_step = {}
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            by_step[int(record["step"])] = record["values"]
    return sorted(by_step.items())


def run_summary(run_dir):
    """{"step", "last": {...}, "selected": {...}} of one run, or None without evaluations."""
    evaluations = [(step, v) for step, v in history(run_dir) if ACCURACY in v or SCORE in v]
    if not evaluations:
        return None
    step, values = evaluations[-1]
    last = {"step": step, "accuracy": values.get(ACCURACY), "score": values.get(SCORE)}
    scored = [(s, v) for s, v in evaluations if s >= FIRST_SELECTABLE_STEP and SCORE in v]
    selected = None
    if scored:
        s, v = max(scored, key=lambda item: (item[1][SCORE], -item[0]))  # earliest of ties
        selected = {"step": s, "accuracy": v.get(ACCURACY), "score": v[SCORE]}
    return {"run_dir": str(run_dir), "step": step, "last": last, "selected": selected}


def aggregate(summaries, which, key):
    values = [s[which][key] for s in summaries if s[which] and s[which][key] is not None]
    if not values:
        return None
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1
            else None, "best": float(np.max(values)), "seeds": len(values)}


def table(groups):
    """Markdown rows: per β_l and selection, score and accuracy as mean (std) / best over seeds."""
    def cell(stats):
        if stats is None:
            return "—"
        spread = f" ({stats['std']:.3f})" if stats["std"] is not None else ""
        return f"{stats['mean']:.3f}{spread} / {stats['best']:.3f}, {stats['seeds']} seed(s)"

    rows = ["| model | β_l | FactorVAE score: mean (std) / best | shape accuracy: mean (std) / best |",
            "|---|---|---|---|",
            (f"| paper (Jeong and Song 2019, Table 1) | 1.0 | {PAPER['score']['mean']:.3f} "
            f"({PAPER['score']['std']:.3f}) / {PAPER['score']['best']:.3f} | "
            f"{PAPER['accuracy']['mean']:.3f} ({PAPER['accuracy']['std']:.3f}) / "
            f"{PAPER['accuracy']['best']:.3f} |")]
    for beta_low, figures in sorted(groups.items()):
        for which in ("last", "selected"):
            rows.append(f"| ours, {which} model | {beta_low} | {cell(figures[which]['score'])} | "
                        f"{cell(figures[which]['accuracy'])} |")
    return "\n".join(rows)


def collect(runs, min_step=0):
    """runs: [(β_l, run_dir)] → {β_l: {"runs": [...], "last"/"selected": {score, accuracy}}}.

    Every run with evaluations is listed under "runs" (with "counted": whether it reached
    `min_step`); only the counted ones enter the means."""
    groups = {}
    for beta_low, run_dir in runs:
        summary = run_summary(run_dir)
        if summary is not None:
            summary["counted"] = summary["step"] >= min_step
            groups.setdefault(beta_low, []).append(summary)
    return {beta_low: {"runs": summaries,
                       **{which: {key: aggregate([s for s in summaries if s["counted"]], which, key)
                                  for key in ("score", "accuracy")}
                          for which in ("last", "selected")}}
            for beta_low, summaries in groups.items()}


def plan_runs(plan_path, repo=None):
    """[(β_l, directory holding the run's metrics_history.jsonl)] of the plan's cascade_vae
    entries: the run directory, or, for a published run whose directory is not on this machine,
    the copy of its history kept beside its card (`trainers.zoo publish`)."""
    from trainers import zoo

    runs = []
    for name, (entry, entry_runs) in zoo.load_plan(plan_path, repo=repo or zoo.REPO).items():
        if entry["model"] == "cascade_vae":
            run = entry_runs[-1]
            directory = run.directory
            published = Path(plan_path).parent / "cards" / name
            if not (directory / HISTORY).exists() and (published / HISTORY).exists():
                directory = published
            runs.append((float(run.settings["model_args"].get("beta_low", 1.0)), directory))
    return runs


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m trainers.cascade_results",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--plan", default=None, help="zoo plan (default pretrained/zoo.yaml)")
    parser.add_argument("--run_dirs", nargs="*", default=None,
                        help="instead of the plan: β_l=run_dir pairs, e.g. 1.0=runs/cascade_s0")
    parser.add_argument("--min_step", type=int, default=0,
                        help="leave runs whose last evaluation is before this step out of the means")
    parser.add_argument("--output", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.min_step < 0:
        print(f"error: --min_step must be 0 or more, got {args.min_step}", file=sys.stderr)
        return 2
    if args.run_dirs:
        runs = []
        for pair in args.run_dirs:  # pairs, not a mapping: seeds of one β_l share the key
            try:
                beta_low, run_dir = split_key_value(pair, "--run_dirs")
                runs.append((float(beta_low), Path(run_dir)))
            except ValueError:
                print(f"error: --run_dirs takes β_l=run_dir pairs with a number β_l, got "
                      f"{pair!r}", file=sys.stderr)
                return 2
    else:
        from trainers import zoo

        runs = plan_runs(args.plan or zoo.DEFAULT_PLAN)
    groups = collect(runs, args.min_step)
    for beta_low, figures in sorted(groups.items()):
        for summary in figures["runs"]:
            left_out = "" if summary["counted"] else f" (before step {args.min_step}: not in the means)"
            print(f"β_l {beta_low}: {summary['run_dir']} at step {summary['step']}{left_out}: last "
                  f"{summary['last']}, selected {summary['selected']}")
    print(table(groups))
    if args.output:
        Path(args.output).write_text(json.dumps(groups, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
