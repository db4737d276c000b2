"""Publishing and loading pretrained models through a registry with sha256 checks."""
import json

import numpy as np
import pytest

from zoo import models, pretrained


@pytest.fixture
def published(tmp_path, binary_images):
    model = models.BetaVAE(latent_dim=3, seed=1)
    source = tmp_path / "trained.keras"
    model.save(source)
    registry = tmp_path / "published" / "registry.json"
    pretrained.publish(source, "tiny_beta_vae", data_source="procedural dSprites (test)", steps=0,
                       seed=1, scores={"mig": 0.0}, registry=registry)
    return model, registry


def test_published_model_loads_with_identical_outputs(published, binary_images):
    model, registry = published
    loaded = pretrained.load("tiny_beta_vae", registry=registry)
    np.testing.assert_array_equal(loaded(binary_images).numpy(), model(binary_images).numpy())


def test_registry_records_config_source_steps_seed_and_scores(published):
    _, registry = published
    assert pretrained.available(registry) == ["tiny_beta_vae"]
    record = json.loads(registry.read_text())["models"]["tiny_beta_vae"]
    assert record["file"] == f"tiny_beta_vae.{record['sha256'][:12]}.keras"
    assert record["config"]["latent_dim"] == 3
    assert record["data_source"] == "procedural dSprites (test)"
    assert (record["steps"], record["seed"], record["scores"]) == (0, 1, {"mig": 0.0})
    assert len(record["sha256"]) == 64


def test_a_tampered_file_is_refused(published):
    _, registry = published
    path = registry.parent / pretrained.entry("tiny_beta_vae", registry)["file"]
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))
    with pytest.raises(ValueError, match="sha256.*corrupt or was modified"):
        pretrained.load("tiny_beta_vae", registry=registry)


def test_unknown_names_and_duplicates_are_refused(published, tmp_path):
    model, registry = published
    with pytest.raises(ValueError, match="No published model named 'nope'"):
        pretrained.load("nope", registry=registry)
    source = tmp_path / "again.keras"
    model.save(source)
    with pytest.raises(ValueError, match="already published"):
        pretrained.publish(source, "tiny_beta_vae", data_source="x", steps=0, seed=1,
                           registry=registry)


def test_the_repository_registry_is_well_formed():
    data = pretrained.read_registry()
    assert isinstance(data["models"], dict)
    for record in data["models"].values():
        assert {"file", "sha256", "config", "data_source", "steps", "seed", "scores"} <= set(record)


# ---------------------------------------------------------------- attacks on the registry (issue 24)
def _snapshot(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize("bad", [
    {"steps": "abc"}, {"seed": -1}, {"data_source": ""}, {"scores": {"mig": "high"}},
    {"model_path": "not_a_model.txt"},
])
def test_publish_with_a_bad_argument_changes_nothing_even_with_overwrite(published, tmp_path,
                                                                         bad):
    _, registry = published
    (tmp_path / "not_a_model.txt").write_text("hello")
    models.BetaVAE(latent_dim=2, seed=9).save(tmp_path / "other.keras")  # other bytes
    before = _snapshot(registry.parent)
    arguments = {"model_path": tmp_path / "other.keras", "data_source": "x", "steps": 1,
                 "seed": 1, **bad}
    if bad.get("model_path"):
        arguments["model_path"] = tmp_path / bad["model_path"]
    with pytest.raises((ValueError, TypeError)):
        pretrained.publish(arguments.pop("model_path"), "tiny_beta_vae", registry=registry,
                           overwrite=True, **arguments)
    assert _snapshot(registry.parent) == before
    pretrained.load("tiny_beta_vae", registry=registry)


@pytest.mark.parametrize("name", ["./tiny_beta_vae", "../x", "/tmp/x", ".", "..", "Tiny", "a/b",
                                  ".hidden", "", "a\\b"])
def test_names_that_are_paths_or_not_lowercase_are_refused(published, tmp_path, name):
    _, registry = published
    before = _snapshot(registry.parent)
    with pytest.raises(ValueError, match="Invalid model name"):
        pretrained.publish(tmp_path / "trained.keras", name, data_source="x", steps=0, seed=1,
                           registry=registry, overwrite=True)
    assert _snapshot(registry.parent) == before
    assert not (tmp_path / "x.keras").exists()


@pytest.mark.parametrize("file", ["../../etc/passwd", "/etc/passwd", "../trained.keras",
                                  "sub/../../trained.keras"])
def test_a_registry_entry_cannot_point_outside_the_registry_directory(published, tmp_path, file,
                                                                       monkeypatch):
    _, registry = published
    data = json.loads(registry.read_text())
    data["models"]["tiny_beta_vae"]["file"] = file
    registry.write_text(json.dumps(data))
    opened = []
    monkeypatch.setattr(pretrained, "sha256_of", lambda path: opened.append(path) or "0")
    with pytest.raises(ValueError, match="not a file of the registry's directory"):
        pretrained.load("tiny_beta_vae", registry=registry)
    assert opened == []


def test_the_bytes_hashed_are_the_bytes_loaded(published, monkeypatch):
    _, registry = published
    record = pretrained.entry("tiny_beta_vae", registry)
    published_file = registry.parent / record["file"]
    loaded_from = []
    original = pretrained.models.load

    def load(path):
        # The published file is swapped right after hashing: what loads is the hashed copy.
        published_file.write_bytes(b"swapped")
        loaded_from.append(path)
        assert pretrained.sha256_of(path) == record["sha256"]
        return original(path)

    monkeypatch.setattr(pretrained.models, "load", load)
    pretrained.load("tiny_beta_vae", registry=registry)
    assert loaded_from and loaded_from[0] != published_file


def test_overwriting_replaces_the_file_and_the_entry_together(published, tmp_path):
    _, registry = published
    old_file = pretrained.entry("tiny_beta_vae", registry)["file"]
    models.BetaVAE(latent_dim=2, seed=5).save(tmp_path / "other.keras")
    record = pretrained.publish(tmp_path / "other.keras", "tiny_beta_vae", data_source="x",
                                steps=3, seed=5, registry=registry, overwrite=True)
    assert record["file"] != old_file and not (registry.parent / old_file).exists()
    assert sorted(p.name for p in registry.parent.iterdir()) == sorted(
        ["registry.json", record["file"]])  # no temporary file left
    assert pretrained.load("tiny_beta_vae", registry=registry).latent_dim == 2


def test_a_damaged_registry_is_named(tmp_path):
    registry = tmp_path / "registry.json"
    registry.write_text('{"models": {')
    with pytest.raises(ValueError, match=f"registry {registry} is damaged"):
        pretrained.available(registry)
