"""trainers.cascade_results: last and reference-selected models per seed, mean (std) and best."""
import json

import pytest

from trainers import cascade_results as cr


def write_history(run_dir, evaluations):
    run_dir.mkdir(parents=True)
    with open(run_dir / "metrics_history.jsonl", "w") as f:
        f.writelines(json.dumps({"step": step, "values": {cr.ACCURACY: accuracy, cr.SCORE: score}}) + "\n" for step, accuracy, score in evaluations)


def test_selection_takes_the_best_score_from_10k_on_and_the_last_evaluation(tmp_path):
    # step 0 has the best score but is not selectable (the reference starts at 10k); a resumed
    # run wrote step 20k twice: the last line counts.
    write_history(tmp_path / "a", [(0, 0.3, 0.99), (10_000, 0.5, 0.7), (20_000, 0.1, 0.2),
                                   (20_000, 0.6, 0.9), (30_000, 0.55, 0.8)])
    summary = cr.run_summary(tmp_path / "a")
    assert summary["last"] == {"step": 30_000, "accuracy": 0.55, "score": 0.8}
    assert summary["selected"] == {"step": 20_000, "accuracy": 0.6, "score": 0.9}


def test_groups_give_mean_sample_std_and_best_over_seeds(tmp_path):
    write_history(tmp_path / "s0", [(10_000, 0.4, 0.6)])
    write_history(tmp_path / "s1", [(10_000, 0.8, 1.0)])
    write_history(tmp_path / "t0", [(10_000, 0.5, 0.7)])
    groups = cr.collect([(1.0, tmp_path / "s0"), (1.0, tmp_path / "s1"), (0.1, tmp_path / "t0"),
                         (0.1, tmp_path / "missing")])
    accuracy = groups[1.0]["last"]["accuracy"]
    assert accuracy["mean"] == pytest.approx(0.6) and accuracy["best"] == 0.8
    assert accuracy["std"] == pytest.approx(0.2828427, rel=1e-6) and accuracy["seeds"] == 2
    assert groups[0.1]["selected"]["score"]["std"] is None  # one seed: no spread
    text = cr.table(groups)
    assert "| ours, selected model | 1.0 | 0.800 (0.283) / 1.000, 2 seed(s) |" in text
    assert "paper" in text


def test_runs_before_min_step_are_listed_but_not_in_the_means(tmp_path):
    write_history(tmp_path / "done", [(10_000, 0.5, 0.7), (300_000, 0.6, 0.8)])
    write_history(tmp_path / "young", [(10_000, 0.34, 0.5), (40_000, 0.34, 0.6)])
    groups = cr.collect([(1.0, tmp_path / "done"), (1.0, tmp_path / "young")], min_step=300_000)
    assert [s["counted"] for s in groups[1.0]["runs"]] == [True, False]
    assert groups[1.0]["last"]["accuracy"] == {"mean": 0.6, "std": None, "best": 0.6, "seeds": 1}
    assert groups[1.0]["selected"]["score"]["mean"] == pytest.approx(0.8)
    # no run old enough: the group is listed with empty cells
    young_only = cr.collect([(0.1, tmp_path / "young")], min_step=300_000)
    assert young_only[0.1]["last"]["score"] is None
    assert "| ours, last model | 0.1 | — | — |" in cr.table(young_only)


def test_a_negative_min_step_is_refused(capsys):
    assert cr.main(["--run_dirs", "1.0=nowhere", "--min_step=-1"]) == 2
    assert "--min_step" in capsys.readouterr().err


def test_the_plan_names_the_cascade_runs():
    from trainers import zoo

    runs = cr.plan_runs(zoo.DEFAULT_PLAN)
    assert {beta_low for beta_low, _ in runs} == {1.0, 0.1}


def test_a_published_run_without_its_directory_is_read_from_the_copy_beside_its_card(tmp_path):
    plan = tmp_path / "pretrained" / "zoo.yaml"
    plan.parent.mkdir()
    plan.write_text(
        "models:\n"
        "  c_s0: {model: cascade_vae, steps: 20000, model_args: {beta_low: 0.1}}\n"
        "  c_s1: {model: cascade_vae, steps: 20000, seed: 1, model_args: {beta_low: 1.0}}\n")
    write_history(tmp_path / "pretrained" / "cards" / "c_s0", [(10_000, 0.5, 0.7)])
    write_history(tmp_path / "runs" / "zoo" / "c_s1", [(10_000, 0.4, 0.6)])
    write_history(tmp_path / "pretrained" / "cards" / "c_s1", [(10_000, 0.9, 0.9)])
    runs = dict(cr.plan_runs(plan, repo=tmp_path))
    assert runs[0.1] == tmp_path / "pretrained" / "cards" / "c_s0"
    assert runs[1.0] == tmp_path / "runs" / "zoo" / "c_s1"  # the run directory comes first
