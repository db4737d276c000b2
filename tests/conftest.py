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
