"""docs/adding_a_model.md's code runs as written: its L1-VAE class goes through the shared model
harness, its layer example builds and saves, and its known-answer test passes."""
import re
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.model_harness import run_model_test
from zoo import models

PAGE = Path(__file__).resolve().parent.parent / "docs" / "adding_a_model.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.DOTALL)


def _block(starting_with):
    blocks = [b for b in _python_blocks() if b.startswith(starting_with)]
    assert len(blocks) == 1, f"docs/adding_a_model.md: one python block starting {starting_with!r}"
    return blocks[0]


def _run(source, namespace):
    """Execute code shown on the page (trusted: it is this repository's own documentation)."""
    exec(compile(source, str(PAGE), "exec"), namespace)  # noqa: S102
    return namespace


@pytest.fixture(scope="module")
def l1_vae():
    """The page's module `zoo/models/l1_vae.py`, executed as written (it registers `zoo>L1VAE`)."""
    return _run(_block("import keras"), {"__name__": "l1_vae_from_docs"})


@pytest.mark.slow  # the whole model harness on the page's model (about a minute on 2 cores); test_models runs it on every zoo model
def test_the_l1_vae_passes_the_shared_harness(l1_vae, binary_images, tmp_path):
    run_model_test(l1_vae["L1VAE"], {"latent_dim": 4, "seed": 3, "l1_weight": 0.1},
                   binary_images, tmp_path)


def test_the_layer_example_builds_and_saves(l1_vae, binary_images, tmp_path):
    # The page's `_build_layers` / `build` methods, on top of its L1-VAE.
    source = ("@keras.saving.register_keras_serializable(package='zoo_docs')\n"
              "class L1VAEWithHead(L1VAE):\n" + _block("    def _build_layers"))
    model = _run(source, dict(l1_vae))["L1VAEWithHead"](latent_dim=4, seed=3)
    assert model.extra_head.built
    model.save(tmp_path / "head.keras")
    loaded = keras.models.load_model(tmp_path / "head.keras")
    for name in ("extra_head", "encoder", "decoder"):
        for saved, restored in zip(getattr(model, name).weights, getattr(loaded, name).weights,
                                   strict=True):
            np.testing.assert_array_equal(saved.numpy(), restored.numpy())


def test_the_known_answer_test_of_the_page_passes(l1_vae, monkeypatch):
    # Section 3 registers the class under "l1_vae"; the page's test then builds it by name.
    monkeypatch.setitem(models.MODELS, "l1_vae", l1_vae["L1VAE"])
    page_test = _run(_block("import pytest"), {"__name__": "test_l1_vae_from_docs"})
    page_test["test_l1_penalty_known_answer"]()
