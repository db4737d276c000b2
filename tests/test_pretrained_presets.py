"""Preset tests (as keras-hub's): every published model's .keras file and SavedModel archive must
reproduce the numbers its registry entry recorded at publication on fixed inputs, so a published
model cannot change silently. The machinery itself is tested on a tiny model published into a
temporary registry (conftest.tiny_zoo)."""
import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from trainers import zoo
from zoo import pretrained

PUBLISHED = pretrained.available()
# With nothing published a parametrized test would pass vacuously: say so as a skip instead.
CASES = PUBLISHED or [pytest.param(None, marks=pytest.mark.skip(
    reason="no model is published in pretrained/registry.json yet (`python -m trainers.zoo "
           "publish`); no preset to check"))]


def check_presets(name, registry, directory):
    """Load `name`'s .keras and SavedModel and compare their preset numbers with the registry's."""
    record = pretrained.entry(name, registry)
    assert "presets" in record, (f"{name} was published without preset numbers; republish it "
                                 "with `python -m trainers.zoo publish --only={name}`")
    presets = record["presets"]
    shape = presets["input_shape"]
    saved = tf.saved_model.load(str(pretrained.extract_saved_model(name, directory, registry)))
    for artifact, model in (("keras", pretrained.load(name, registry)), ("saved_model", saved)):
        actual = pretrained.preset_numbers(model, shape)
        for key, expected in presets[artifact].items():
            np.testing.assert_allclose(
                actual[key], expected, rtol=pretrained.PRESET_RTOL, atol=pretrained.PRESET_ATOL,
                err_msg=f"{name}: the published {artifact} no longer gives its recorded {key}")


@pytest.mark.parametrize("name", CASES)
def test_a_published_model_reproduces_its_preset_numbers(name, tmp_path):
    check_presets(name, None, tmp_path)


def test_the_zoo_claims_no_model_the_registry_lacks():
    """Cards, the gallery page and the README describe exactly the registry's models."""
    readme = (zoo.REPO / "README.md").read_text(encoding="utf-8")
    cards = {p.stem for p in (zoo.REPO / "pretrained" / "cards").glob("*.md")}
    assert cards <= set(PUBLISHED), f"model cards without a registry entry: {cards - set(PUBLISHED)}"
    assert (zoo.REPO / "docs" / "zoo.md").read_text(encoding="utf-8") == zoo.gallery(), \
        "docs/zoo.md differs from the registry: run `python -m trainers.zoo gallery`"
    assert ("no models published yet" in readme) == (not PUBLISHED), \
        "the README's feature table says whether models are published; make it match the registry"


# ------------------------------------------------------------------ the machinery, on a tiny zoo
def test_publishing_records_agreeing_preset_numbers_of_both_artifacts(tiny_zoo):
    presets = pretrained.entry("tiny_beta_vae", tiny_zoo)["presets"]
    assert presets["input_shape"] == [64, 64, 1]
    keras_numbers, saved_numbers = presets["keras"], presets["saved_model"]
    assert np.shape(keras_numbers["representation"]) == (2, 3)  # 3 latents: all of them
    assert np.shape(keras_numbers["reconstruction_mean"]) == (2,)
    for key, value in keras_numbers.items():
        np.testing.assert_allclose(saved_numbers[key], value, rtol=1e-5, atol=1e-6)


def test_the_preset_check_passes_on_a_published_model(tiny_zoo, tmp_path):
    check_presets("tiny_beta_vae", tiny_zoo, tmp_path)


@pytest.mark.parametrize("artifact, key", [("keras", "representation"),
                                           ("saved_model", "reconstruction_mean")])
def test_the_preset_check_catches_a_changed_number(tiny_zoo, tmp_path, artifact, key):
    registry_dir = tmp_path / "registry"
    shutil.copytree(tiny_zoo.parent, registry_dir)
    registry = registry_dir / "registry.json"
    data = json.loads(registry.read_text())
    numbers = data["models"]["tiny_beta_vae"]["presets"][artifact][key]
    if key == "representation":
        numbers[0][0] += 0.01
    else:
        numbers[1] += 0.01
    registry.write_text(json.dumps(data))
    with pytest.raises(AssertionError, match=f"published {artifact} no longer gives its "
                                             f"recorded {key}"):
        check_presets("tiny_beta_vae", registry, tmp_path / "unpacked")


def test_preset_inputs_are_fixed():
    first = pretrained.preset_inputs((64, 64, 1))
    np.testing.assert_array_equal(first, pretrained.preset_inputs((64, 64, 1)))
    assert first.shape == (2, 64, 64, 1) and set(np.unique(first)) == {0.0, 1.0}
    # PCG64's stream is fixed by NumPy's compatibility policy; a change here would move every
    # recorded preset.
    assert int(first.sum()) == 854


def test_a_published_file_without_optimizer_state_loads_without_an_optimizer_warning(tiny_zoo):
    """The published .keras holds no optimizer slots on purpose; loading it must not warn about
    skipped optimizer variables (the warning is true of every published file and means nothing)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pretrained.load("tiny_beta_vae", tiny_zoo)
    assert not [w for w in caught if "optimizer" in str(w.message)], \
        [str(w.message) for w in caught]
