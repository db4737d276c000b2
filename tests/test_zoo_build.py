"""The zoo build (trainers.zoo): the plan is checked key by key, runs are ordinary trainers.train
runs (phases chained by --init_from), unfinished runs are stashed and restored exactly."""
import json
import os
import shutil

import numpy as np
import pytest
import yaml

from trainers import zoo
from trainers.run_dir import latest_checkpoint

TINY = {"defaults": {"steps": 4, "batch_size": 8, "seed": 0},
        "models": {
            "tiny_beta_vae": {"model": "beta_vae", "model_args": {"beta": 4}, "latent_dim": 3,
                              "train_args": {"checkpoint_every": 2, "image_every": 2,
                                             "eval_batches": 1, "export": False}},
            "tiny_two_phases": {"model": "beta_vae", "latent_dim": 3, "learning_rate": 0.001,
                                "train_args": {"checkpoint_every": 2, "image_every": 2,
                                               "eval_batches": 1, "export": False},
                                "phases": [{"name": "first", "steps": 2, "model_args": {"beta": 1}},
                                           {"name": "second", "steps": 4}]}}}


def write_plan(tmp_path, plan):
    path = tmp_path / "zoo.yaml"
    path.write_text(yaml.safe_dump(plan))
    return path


def test_the_repositorys_plan_loads_and_covers_every_method():
    entries = zoo.load_plan()
    methods = {entry["model"] for entry, _ in entries.values()}
    assert {"beta_vae", "annealed_vae", "factor_vae", "beta_tcvae", "dip_vae_i", "dip_vae_ii",
            "joint_vae", "cascade_vae", "cascade_vae_c", "infogan", "decomposition_vae",
            "dc_ign"} <= methods
    for name, (entry, runs) in entries.items():
        assert runs[-1].steps >= 50_000, name
        assert entry.get("citation") and entry.get("hyperparameters_from"), name


@pytest.mark.parametrize("change, message", [
    (lambda p: p["models"]["tiny_beta_vae"].update(betta=4), r"tiny_beta_vae: unknown keys \['betta'\]"),
    (lambda p: p["models"]["tiny_beta_vae"].update(model="beta_vea"), "model 'beta_vea' is not one of"),
    (lambda p: p["models"]["tiny_beta_vae"]["train_args"].update(learnig_rate=1), "train_args key 'learnig_rate'"),
    (lambda p: p["models"].update({"../x": {"model": "vae"}}), r"model name '\.\./x' must match"),
    (lambda p: p["defaults"].update(stepz=3), r"unknown defaults keys \['stepz'\]"),
    (lambda p: p["models"]["tiny_two_phases"]["phases"][1].update(steps=1), "must end after step 2"),
    # Every run's settings are a trainers.train TrainConfig, checked before anything trains.
    (lambda p: p["models"]["tiny_beta_vae"]["train_args"].update(eval_every="often"),
     "tiny_beta_vae: eval_every must be an integer, got 'often'"),
    (lambda p: p["models"]["tiny_two_phases"]["phases"][0].update(learning_rate=-1),
     "tiny_two_phases/first: learning_rate must be a finite number > 0"),
    (lambda p: p["defaults"].update(data_source="web"), "data_source must be one of"),
])
def test_a_bad_plan_is_refused_naming_the_entry_and_key(tmp_path, change, message):
    plan = json.loads(json.dumps(TINY))
    change(plan)
    with pytest.raises(zoo.PlanError, match=message):
        zoo.load_plan(write_plan(tmp_path, plan), repo=tmp_path)


def test_an_entry_waits_for_the_entries_it_is_built_on(tmp_path):
    plan = json.loads(json.dumps(TINY))
    plan["models"]["tiny_beta_vae"]["after"] = "tiny_two_phases"
    entries = zoo.load_plan(write_plan(tmp_path, plan), repo=tmp_path)
    assert [r.label for r in zoo._runs_to_do(entries, ())] == ["tiny_two_phases/first"]
    for phase in ("first", "second"):
        directory = tmp_path / "runs/zoo/tiny_two_phases" / phase
        directory.mkdir(parents=True)
        (directory / "results.json").write_text(json.dumps({"steps": 2 if phase == "first" else 4}))
    assert [r.label for r in zoo._runs_to_do(entries, ())] == ["tiny_beta_vae"]
    plan["models"]["tiny_beta_vae"]["after"] = "nothing_of_that_name"
    with pytest.raises(zoo.PlanError, match="after names"):
        zoo.load_plan(write_plan(tmp_path, plan), repo=tmp_path)


def test_status_shows_a_published_entrys_steps_from_the_registry_without_its_run(tmp_path):
    entries = zoo.load_plan(write_plan(tmp_path, TINY), repo=tmp_path)
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"models": {"tiny_beta_vae": {"steps": 4}}}))
    rows = {r["name"]: r for r in zoo.status_rows(entries, tmp_path / "stash", registry)}
    assert (rows["tiny_beta_vae"]["state"], rows["tiny_beta_vae"]["steps"]) == ("published", 4)
    assert (rows["tiny_two_phases"]["state"], rows["tiny_two_phases"]["steps"]) == ("missing", 0)


def test_the_train_command_is_an_ordinary_trainers_train_command(tmp_path):
    entries = zoo.load_plan(write_plan(tmp_path, TINY), repo=tmp_path)
    first, second = entries["tiny_two_phases"][1]
    command = zoo.train_command(second)
    assert command[:3] == ["python", "-m", "trainers.train"]
    assert "--init_from=runs/zoo/tiny_two_phases/first/model.keras" in command
    assert "--output_dir=runs/zoo/tiny_two_phases/second" in command
    assert "--model_arg=beta=1" in zoo.train_command(first)
    assert "--steps=4" in command and "--learning_rate=0.001" in command


@pytest.mark.slow  # three trainers.train processes: about a minute on an idle 2-core machine
def test_build_trains_every_entry_and_phase_then_stash_and_restore_resume_exactly(tmp_path):
    plan = write_plan(tmp_path, TINY)
    entries = zoo.load_plan(plan, repo=tmp_path)
    outcome = zoo.build(entries, parallel=2, threads=1, stash=tmp_path / "stash", poll_s=0.5,
                        log=lambda *_: None)
    assert outcome == {"tiny_beta_vae": 0, "tiny_two_phases/first": 0,
                       "tiny_two_phases/second": 0}, outcome
    second = json.loads((tmp_path / "runs/zoo/tiny_two_phases/second/results.json").read_text())
    assert second["steps"] == 4 and second["config"]["init_from"].endswith("first/model.keras")
    rows = {r["name"]: r for r in zoo.status_rows(entries, tmp_path / "stash", tmp_path / "reg.json")}
    assert rows["tiny_beta_vae"]["state"] == "trained" and rows["tiny_beta_vae"]["steps"] == 4

    # A run directory lost between sessions comes back from the stash, byte for byte.
    run = entries["tiny_beta_vae"][1][0]
    assert zoo.stash_run(run, tmp_path / "stash") == 4
    assert zoo.stash_run(run, tmp_path / "stash") is None  # nothing newer
    checkpoint = latest_checkpoint(run.directory)
    original = checkpoint.read_bytes()
    shutil.rmtree(run.directory)
    assert zoo.restore_run(run, tmp_path / "stash") == 4
    assert checkpoint.read_bytes() == original
    # A damaged stash is refused, naming the file.
    shutil.rmtree(run.directory)
    stashed = tmp_path / "stash" / "tiny_beta_vae" / checkpoint.name
    stashed.write_bytes(stashed.read_bytes()[:-10])
    with pytest.raises(ValueError, match=f"{checkpoint.name} does not match"):
        zoo.restore_run(run, tmp_path / "stash")


def test_stash_and_restore_keep_a_run_byte_for_byte_and_refuse_a_damaged_stash(tmp_path):
    from zoo import models

    entries = zoo.load_plan(write_plan(tmp_path, TINY), repo=tmp_path)
    run = entries["tiny_beta_vae"][1][0]
    stash = tmp_path / "stash"
    assert zoo.stash_run(run, stash) is None  # no checkpoint yet
    run.directory.mkdir(parents=True)
    model = models.get("beta_vae", latent_dim=3)
    model.compile()
    model.save(run.directory / "checkpoint.keras")
    (run.directory / "checkpoint_state.json").write_text('{"global_step": 2, "train_wall_time_s": 1}')
    (run.directory / "config.json").write_text("{}")
    assert zoo.stash_run(run, stash) == 2
    assert zoo.stash_run(run, stash) is None  # nothing newer
    original = {p.name: p.read_bytes() for p in run.directory.iterdir()}
    shutil.rmtree(run.directory)
    assert zoo.restore_run(run, stash) == 2
    assert {p.name: p.read_bytes() for p in run.directory.iterdir()} == original
    assert zoo.restore_run(run, stash) is None  # never over an existing checkpoint
    shutil.rmtree(run.directory)
    stashed = stash / "tiny_beta_vae" / "checkpoint.keras"
    stashed.write_bytes(stashed.read_bytes()[:-10])
    with pytest.raises(ValueError, match="checkpoint.keras does not match"):
        zoo.restore_run(run, stash)


def test_a_model_saved_without_optimizer_is_smaller_and_gives_the_same_outputs(tmp_path):
    import keras

    from zoo import models

    model = models.get("beta_vae", latent_dim=3)
    model.compile()
    images = np.random.default_rng(0).random((8, 64, 64, 1)).astype("float32")
    model.fit(images, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "full.keras")
    zoo.save_without_optimizer(tmp_path / "full.keras", tmp_path / "slim.keras")
    assert (tmp_path / "slim.keras").stat().st_size < 0.5 * (tmp_path / "full.keras").stat().st_size
    slim = keras.models.load_model(tmp_path / "slim.keras")
    np.testing.assert_array_equal(slim.encode(images)["mean"], model.encode(images)["mean"])
    slim.fit(images, epochs=1, batch_size=8, verbose=0)  # a fresh optimizer fine-tunes


def test_publish_scores_exports_draws_and_registers_a_trained_entry(tmp_path):
    from trainers import train
    from zoo import pretrained

    plan = json.loads(json.dumps(TINY))
    plan["models"]["tiny_beta_vae"]["metrics"] = "mig,sap"
    entries = zoo.load_plan(write_plan(tmp_path, plan), repo=tmp_path)
    entry, runs = entries["tiny_beta_vae"]
    train.run(runs[0].config(verbose=0))
    # The run's periodic evaluations are kept beside the card (run directories are not kept).
    history = '{"step": 2, "values": {"mig/mig": 0.1}}\n'
    (runs[0].directory / "metrics_history.jsonl").write_text(history)
    registry_dir = tmp_path / "pretrained"
    record = zoo.publish_entry("tiny_beta_vae", entry, runs, registry_dir, log=lambda *_: None)
    card = (registry_dir / "cards" / "tiny_beta_vae.md").read_text()
    assert (registry_dir / "cards/tiny_beta_vae/metrics_history.jsonl").read_text() == history
    for text in ("python -m trainers.train", "--model_arg=beta=4", "procedural dSprites v2",
                 "| mig |", "| sap |", "traversals.gif", record["file"],
                 "(tiny_beta_vae/metrics_history.jsonl)",
                 record["saved_model"]["file"], "Known limitations"):
        assert text in card, text
    for picture in ("traversals.gif", "traversals.png", "reconstructions.png"):
        assert (registry_dir / "cards" / "tiny_beta_vae" / picture).stat().st_size > 0
    assert "mig/mig" in record["scores"] and record["card"]["path"] == "cards/tiny_beta_vae.md"
    for published in (record, record["saved_model"]):
        path = registry_dir / published["file"]
        assert path.stat().st_size <= zoo.MAX_ARTIFACT_BYTES
        assert pretrained.sha256_of(path) == published["sha256"]
    assert sorted(p.name for p in registry_dir.iterdir() if p.is_file()) == sorted(
        [record["file"], record["saved_model"]["file"], "registry.json"])  # one copy of each
    loaded = pretrained.load("tiny_beta_vae", registry=registry_dir / "registry.json")
    assert loaded.latent_dim == 3


# Slow (a tiny training and a publication, about as long as the test above): `make test-all`.
@pytest.mark.slow
def test_a_dc_ign_is_published_with_its_own_criteria(tmp_path, monkeypatch):
    from trainers import dc_ign_report, train

    # Fewer points and batches than a real publication (the numbers of an untrained model).
    monkeypatch.setattr(dc_ign_report, "PUBLISH_SETTINGS",
                        {"num_points": 500, "batches_per_factor": 2})
    plan = json.loads(json.dumps(TINY))
    plan["models"] = {"tiny_dc_ign": {
        "model": "dc_ign", "latent_dim": 5, "metrics": "mig",
        "model_args": {"free_batch_weight": 1, "beta": 0.1},
        "train_args": {"checkpoint_every": 2, "image_every": 2, "eval_batches": 1,
                       "export": False}}}
    entries = zoo.load_plan(write_plan(tmp_path, plan), repo=tmp_path)
    entry, runs = entries["tiny_dc_ign"]
    train.run(runs[0].config(verbose=0))
    record = zoo.publish_entry("tiny_dc_ign", entry, runs, tmp_path / "pretrained",
                               log=lambda *_: None)
    card = (tmp_path / "pretrained" / "cards" / "tiny_dc_ign.md").read_text()
    assert "## DC-IGN's own criteria" in card and "| mig |" in card
    assert ("python -m trainers.dc_ign_report --model_path=runs/zoo/tiny_dc_ign/model.keras "
            "--seed=0 --num_points=500 --batches_per_factor=2") in card
    for factor in ("shape", "scale", "orientation", "posX", "posY"):
        assert f"| {factor} | z" in card
        assert 0.0 <= record["scores"][f"dc_ign/{factor}/correlation_ratio"] <= 1.0
    assert record["card"]["dc_ign_report"]["num_points"] == 500
    written = json.loads((runs[0].directory / "dc_ign_scores.json").read_text())
    assert written["per_factor"] == record["card"]["dc_ign_report"]["per_factor"]


def test_the_readme_zoo_table_matches_the_registry():
    from zoo import pretrained

    readme = (zoo.REPO / "README.md").read_text()
    start, end = zoo.README_TABLE_MARKERS
    table = readme.split(start, 1)[1].split(end, 1)[0].strip()
    assert table == zoo.zoo_table()
    for name in pretrained.available():
        assert f"[{name}](pretrained/cards/{name}.md)" in table
        assert (zoo.REPO / "pretrained" / "cards" / f"{name}.md").exists()
        method = pretrained.entry(name)["card"]["method"]  # the plan's name, not Keras's
        assert f"[{name}](pretrained/cards/{name}.md) | {method} |" in table


def test_the_stash_keeps_only_the_newest_checkpoint_and_resumes_from_it(tmp_path):
    from trainers.run_dir import CheckpointStore
    from zoo import models

    entries = zoo.load_plan(write_plan(tmp_path, TINY), repo=tmp_path)
    run = entries["tiny_beta_vae"][1][0]
    run.directory.mkdir(parents=True)
    model = models.get("beta_vae", latent_dim=3)
    model.compile()
    store = CheckpointStore(run.directory, keep=2)
    for step in (2, 4):
        model.global_step.assign(step)
        store.save(model, identity={"model": "beta_vae"}, elapsed=1.0)
    assert len(store.manifest()["checkpoints"]) == 2
    newest = latest_checkpoint(run.directory)
    stash = tmp_path / "stash"
    assert zoo.stash_run(run, stash) == 4
    stashed = sorted(p.name for p in (stash / "tiny_beta_vae").glob("checkpoint-*.keras"))
    assert stashed == [newest.name]  # the fallback checkpoint stays behind
    shutil.rmtree(run.directory)
    assert zoo.restore_run(run, stash) == 4
    restored, entry = CheckpointStore(run.directory).restore(models.load, warn=lambda *_: None)
    assert entry["step"] == 4 and int(restored.global_step.numpy()) == 4


def test_the_stash_keeps_the_best_model_bytes_while_its_record_is_unchanged(tmp_path):
    """A stash re-saves best.keras without optimizer state only when best.json changed: otherwise
    every session's stash would commit new bytes (a new save date) of the same model."""
    from trainers.run_dir import CheckpointStore
    from zoo import models

    entries = zoo.load_plan(write_plan(tmp_path, TINY), repo=tmp_path)
    run = entries["tiny_beta_vae"][1][0]
    run.directory.mkdir(parents=True)
    model = models.get("beta_vae", latent_dim=3, seed=1)
    model.compile()
    store, stash = CheckpointStore(run.directory, keep=2), tmp_path / "stash"
    stashed_best = stash / "tiny_beta_vae" / "best.keras"
    images = np.zeros((2, 64, 64, 1), "float32")

    def train_to(step, best_step, best_model):
        model.global_step.assign(step)
        store.save(model, identity={"model": "beta_vae"}, elapsed=1.0)
        best_model.save(run.directory / "best.keras")
        (run.directory / "best.json").write_text(json.dumps({"step": best_step, "value": 0.5}))
        assert zoo.stash_run(run, stash) == step

    first = models.get("beta_vae", latent_dim=3, seed=2)
    first.compile()
    train_to(2, 2, first)
    kept = stashed_best.read_bytes()
    # The run's best.keras is rewritten (here with other weights, to tell the files apart) while
    # best.json says the best is still step 2: the stash keeps the bytes it has.
    other = models.get("beta_vae", latent_dim=3, seed=3)
    other.compile()
    train_to(4, 2, other)
    assert stashed_best.read_bytes() == kept
    # A new best (best.json changed): the stash takes the run's model.
    train_to(6, 6, other)
    assert stashed_best.read_bytes() != kept
    np.testing.assert_array_equal(models.load(stashed_best)(images).numpy(), other(images).numpy())
    manifest = json.loads((stash / "tiny_beta_vae" / "manifest.json").read_text())
    assert manifest["sha256"]["best.keras"] == zoo.sha256_of(stashed_best)


@pytest.mark.slow  # builds and exports every plan entry: about 3 minutes on a busy 2-core machine
@pytest.mark.parametrize("name", list(zoo.load_plan()))
def test_every_plan_entry_publishes_files_within_the_size_limit(name, tmp_path):
    """The untrained model of each entry, with its plan settings, saved as publishing saves it
    (sizes do not depend on training)."""
    from trainers import train
    from zoo import data

    entries = zoo.load_plan()
    config = entries[name][1][-1].config()
    # Entries built on another entry's model get an untrained stand-in of it.
    for key, other in (("dae_path", "dae_dsprites"), ("visual_path", "beta_vae_dsprites")):
        if key in config.model_args:
            other_config = entries[other][1][-1].config()
            train.build_model(other_config, data.get("dsprites").observation_shape).save(
                tmp_path / "stand_in.keras")
            config = config.replace(
                model_args={**config.model_args, key: str(tmp_path / "stand_in.keras")})
    dataset = data.get(config.dataset, source=config.data_source)
    train.build_model(config, dataset.observation_shape).save(tmp_path / "full.keras")
    zoo.save_without_optimizer(tmp_path / "full.keras", tmp_path / "slim.keras")
    archive = zoo.export_archive(tmp_path / "slim.keras", tmp_path / "saved_model.tar.gz")
    for path in (tmp_path / "slim.keras", archive):
        assert path.stat().st_size <= zoo.MAX_ARTIFACT_BYTES, (path.name, path.stat().st_size)


def test_committed_stashes_name_no_absolute_paths():
    """A stash is committed: its settings must not carry the training machine's directories."""
    for path in (zoo.REPO / "pretrained" / "in_progress").glob("*/**/*.json"):
        text = path.read_text(encoding="utf-8")
        for value in json.loads(text).values() if text.lstrip().startswith("{") else ():
            if isinstance(value, str):
                assert not os.path.isabs(value), (path, value)


def test_limitations_measured_after_publishing_are_appended_to_the_card_once(tmp_path):
    card = tmp_path / "card.md"
    card.write_text("# m\n\n## Scores\n\nx\n\n## Known limitations\n\n- Trained for 50,000 steps.\n")
    entry = {"limitations": ["Trained for 50,000 steps.", "Hearts share a category with squares."]}
    assert zoo.sync_card_limitations(card, entry) == ["- Hearts share a category with squares."]
    text = card.read_text()
    assert text.endswith("- Trained for 50,000 steps.\n- Hearts share a category with squares.\n")
    assert zoo.sync_card_limitations(card, entry) == [] and card.read_text() == text
    card.write_text("# m\n\n## Known limitations\n\n- a\n\n## Files\n")
    with pytest.raises(ValueError, match="not the card's last section"):
        zoo.sync_card_limitations(card, entry)
    card.write_text("# m\n")
    with pytest.raises(ValueError, match="no '## Known limitations' section"):
        zoo.sync_card_limitations(card, entry)


def test_every_published_card_states_its_plan_entrys_limitations():
    """`python -m trainers.zoo gallery` brings limitations added to zoo.yaml into the cards."""
    from zoo import pretrained

    entries = zoo.load_plan()
    for name in pretrained.available():
        card = (zoo.DEFAULT_PLAN.parent / pretrained.entry(name)["card"]["path"]).read_text()
        section = card.split(zoo.LIMITATIONS_HEADING, 1)[1]
        for text in entries[name][0].get("limitations", []):
            assert f"- {text}" in section, (name, text[:60])


def test_a_plan_that_says_published_false_is_never_published(tmp_path, capsys):
    """The experiment plan, and a copy of it anywhere, is refused by publish and gallery;
    `published` takes only true or false."""
    copy = tmp_path / "copy.yaml"
    copy.write_text(zoo.EXPERIMENT_PLAN.read_text())
    assert zoo.is_published() and not zoo.is_published(copy)
    for plan in (zoo.EXPERIMENT_PLAN, copy):
        for command in ("publish", "gallery"):
            assert zoo.main([command, f"--plan={plan}"]) == 2
            assert "published: false" in capsys.readouterr().err
    copy.write_text("published: no-thanks\nmodels: {}\n")
    with pytest.raises(zoo.PlanError, match="published must be true or false, got 'no-thanks'"):
        zoo.load_plan(copy)
