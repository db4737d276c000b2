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
    assert record["file"] == "tiny_beta_vae.keras"
    assert record["config"]["latent_dim"] == 3
    assert record["data_source"] == "procedural dSprites (test)"
    assert (record["steps"], record["seed"], record["scores"]) == (0, 1, {"mig": 0.0})
    assert len(record["sha256"]) == 64


def test_a_tampered_file_is_refused(published):
    _, registry = published
    path = registry.parent / "tiny_beta_vae.keras"
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
