"""Publishing a SCAN (trainers.zoo with trainers.scan_report): SCAN's own scores on its card and
in the registry, the published visual model it sits on, its sym2img picture, its endpoints'
preset numbers, and the stash removed."""
import json
import shutil

import pytest
import yaml

from tests.conftest import TINY_PLAN
from trainers import scan_report, zoo
from zoo.models.scan import default_vocabulary

SCAN_ENTRY = {"model": "scan", "after": "tiny_beta_vae", "latent_dim": 3,
              "model_args": {"visual_path": "runs/zoo/tiny_beta_vae/model.keras",
                             "held_out_concepts": [["heart", "small"]]},
              "learning_rate": 0.001,
              "train_args": {"checkpoint_every": 2, "image_every": 2, "eval_batches": 1,
                             "export": False},
              "phases": [{"name": "concepts", "steps": 2},
                         {"name": "recombination", "steps": 4,
                          "model_args": {"stage": "recombination"}}],
              "citation": "Higgins et al. 2018", "hyperparameters_from": "tests"}
TINY_SETTINGS = {"num_samples": 20, "num_concepts": 3, "samples_per_concept": 2,
                 "classifier_steps": 2}


def _result():
    """A scan_report result as `report` writes it (shape and keys), with known numbers."""
    accuracy = {"shape": 0.5, "scale": 0.6, "orientation": 0.3, "posX": 0.9, "posY": 0.8}
    spread = dict.fromkeys(accuracy, 0.75)
    operators = {op: {"accuracy": {k: v - 0.1 for k, v in accuracy.items()},
                      "spread": spread, "concepts": 3, "operator": op}
                 for op in ("and", "in_common", "ignore")}
    operators["ignore"]["accuracy"].pop("orientation")  # no IGNORE result named it
    held_out = {"accuracy": {}, "spread": {}, "concepts": 1, "per_concept": [
        {"concept": ["heart", "small"], "scores": {**spread, "shape": 0.25, "scale": 1.0}}]}
    return {"classifier_accuracy": accuracy, "img2sym_accuracy": accuracy,
            "sym2img": {"accuracy": accuracy, "spread": spread, "concepts": 3},
            "recombination": operators, "sym2img_held_out": held_out,
            "recombination_held_out": held_out}


def test_the_scan_tables_have_every_operator_column_and_the_held_out_rows():
    lines = scan_report.tables(_result(), default_vocabulary())
    header = lines[0]
    for column in ("classifier on real images", "img2sym", "sym2img", "AND", "IN COMMON",
                   "IGNORE"):
        assert f"| {column} |" in header, column
    rows = {}  # the accuracy table's rows (the spread table's come later)
    for line in lines:
        rows.setdefault(line.split(" | ")[0], line)
    assert rows["| shape"].startswith("| shape | 0.50 | 0.50 | 0.50 | 0.40 | 0.40 | 0.40 |")
    assert rows["| orientation"].endswith("| 0.20 | 0.20 | — |")  # IGNORE named none
    held_out = [line for line in lines if line.startswith("| {heart, small}")]
    assert len(held_out) == 2  # asked directly and as {heart} AND {small}
    assert "| 0.25 | 1.00 | 0.75 (spread) |" in held_out[0]


def test_flat_scores_and_the_command():
    scores = scan_report.flat_scores(_result())
    assert scores["img2sym/shape"] == 0.5 and scores["in_common/scale"] == pytest.approx(0.5)
    assert scores["ignore_spread/posY"] == 0.75 and "ignore/orientation" not in scores
    assert scores["held_out/heart+small/shape"] == 0.25
    assert scores["held_out_and/heart+small/scale"] == 1.0
    assert scan_report.command("runs/x/model.keras", 0, **TINY_SETTINGS) == (
        "python -m trainers.scan_report --model_path=runs/x/model.keras --seed=0 "
        "--num_samples=20 --num_concepts=3 --samples_per_concept=2 --classifier_steps=2")


# Trains a SCAN 2 + 2 steps, exports and scores it: about a minute, so `make test-all` runs it.
@pytest.mark.slow
def test_publishing_a_scan_scores_it_by_its_own_criteria(tiny_zoo, tmp_path, monkeypatch):
    import keras
    import tensorflow as tf

    from tests.test_pretrained_presets import check_presets
    from trainers import train
    from zoo import pretrained

    root = tmp_path / "zoo"
    shutil.copytree(tiny_zoo.parent.parent, root)
    plan = json.loads(json.dumps(TINY_PLAN))
    plan["models"]["tiny_scan"] = json.loads(json.dumps(SCAN_ENTRY))
    (root / "zoo.yaml").write_text(yaml.safe_dump(plan))
    monkeypatch.chdir(root)  # the plan's paths are relative to its repository
    monkeypatch.setattr(scan_report, "PUBLISH_SETTINGS", TINY_SETTINGS)
    entry, runs = zoo.load_plan(root / "zoo.yaml", repo=root)["tiny_scan"]
    for run in runs:
        train.run(run.config(verbose=0))
    registry_dir, stash = root / "pretrained", root / "stash"
    (stash / "tiny_scan" / "concepts").mkdir(parents=True)
    record = zoo.publish_entry("tiny_scan", entry, runs, registry_dir, log=lambda *_: None,
                               stash=stash)
    assert not (stash / "tiny_scan").exists()  # a published model's stash goes

    visual = pretrained.entry("tiny_beta_vae", registry_dir / "registry.json")
    card = (registry_dir / "cards" / "tiny_scan.md").read_text()
    for text in ("| IN COMMON | IGNORE |", "{heart, small}", visual["sha256"], "tiny_beta_vae",
                 ("python -m trainers.scan_report --model_path=runs/zoo/tiny_scan/recombination/"
                 "model.keras --seed=0 --num_samples=20"), "](tiny_scan/sym2img.png)",
                 record["file"], record["saved_model"]["file"], "no traversal of its own"):
        assert text in card, text
    assert str(root) not in card  # commands are relative to the repository
    assert (registry_dir / "cards" / "tiny_scan" / "sym2img.png").stat().st_size > 0
    assert not (registry_dir / "cards" / "tiny_scan" / "traversals.gif").exists()
    for key in ("img2sym/shape", "sym2img/scale", "and/posX", "in_common/posY",
                "ignore_spread/scale", "held_out/heart+small/scale"):
        assert key in record["scores"], key
    assert record["card"]["visual_model"]["sha256"] == visual["sha256"]
    assert record["card"]["picture"] == "cards/tiny_scan/sym2img.png"
    assert "img2sym" in record["presets"]["keras"] and "sym2img_mean" in record["presets"]["keras"]
    check_presets("tiny_scan", registry_dir / "registry.json", tmp_path / "presets")
    assert json.loads((runs[-1].directory / "scan_scores.json").read_text())["seed"] == 0

    loaded = pretrained.load("tiny_scan", registry_dir / "registry.json")
    again = keras.models.load_model(registry_dir / record["file"])
    y = loaded.vocabulary.parse([["heart"]])
    assert tf.reduce_all(loaded.sym2img(y) == again.sym2img(y))
    saved = tf.saved_model.load(str(pretrained.extract_saved_model(
        "tiny_scan", tmp_path / "served", registry_dir / "registry.json")))
    assert {"sym2img", "img2sym"} <= set(saved.signatures)
    assert "![tiny_scan sym2img](../pretrained/cards/tiny_scan/sym2img.png)" in zoo.gallery(
        registry_dir / "registry.json")


def test_a_scan_on_an_unpublished_visual_model_is_refused(tiny_zoo):
    """The card must name the published visual model the SCAN sits on: none, no card."""
    from zoo import models

    visual = models.get("beta_vae", latent_dim=3)  # not the published tiny_beta_vae's weights
    scan = type("Scan", (), {"visual": visual, "visual_sha256": "0" * 64})()
    with pytest.raises(ValueError, match="publish that model first"):
        zoo.published_visual_model(scan, {"after": ["tiny_beta_vae"]}, tiny_zoo)
