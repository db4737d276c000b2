"""Shared test fixtures. Tests run on the CPU with TF's log noise turned down."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np
import pytest


@pytest.fixture
def binary_images():
    """A small batch of sparse binary 64×64×1 images (dSprites-like statistics)."""
    rng = np.random.default_rng(0)
    return (rng.random((16, 64, 64, 1)) > 0.9).astype("float32")


# A tiny published zoo (trains 4 steps and publishes through trainers.zoo, about half a minute):
# the preset and demo tests load from it as they would from the repository's registry.
TINY_PLAN = {"defaults": {"steps": 4, "batch_size": 8, "seed": 0},
             "models": {"tiny_beta_vae": {
                 "model": "beta_vae", "model_args": {"beta": 4}, "latent_dim": 3,
                 "metrics": "mig", "metric_args": ["mig.num_train=2000"],
                 "train_args": {"checkpoint_every": 2, "image_every": 2, "eval_batches": 1,
                                "export": False}}}}


@pytest.fixture(scope="session")
def tiny_zoo(tmp_path_factory):
    """The registry.json of a directory where trainers.zoo published `tiny_beta_vae` (a 3-latent
    β-VAE after 4 steps): .keras, SavedModel archive, card, scores and preset numbers. Tests that
    change it must work on a copy."""
    import yaml

    from trainers import train, zoo

    root = tmp_path_factory.mktemp("tiny_zoo")
    plan = root / "zoo.yaml"
    plan.write_text(yaml.safe_dump(TINY_PLAN))
    entry, runs = zoo.load_plan(plan, repo=root)["tiny_beta_vae"]
    train.run(runs[0].config(verbose=0))
    zoo.publish_entry("tiny_beta_vae", entry, runs, root / "pretrained", log=lambda *_: None)
    return root / "pretrained" / "registry.json"
