"""trainers.rotation_check: FastICA unmixing (fitted without labels) recovers factors that a
representation holds on rotated axes, and leaves an aligned representation aligned."""
import numpy as np
import scipy.fft
from metric_cases import GRID, codes

from trainers import rotation_check

# The orthonormal DCT: every axis mixes every factor.
ROTATION = scipy.fft.dct(np.eye(5), norm="ortho", axis=0)
MIG = {"mig": {"num_train": 2000}}


def test_unmixing_recovers_rotated_factors_and_keeps_aligned_ones():
    rotated = rotation_check.rotation_check(GRID, lambda x: codes(x) @ ROTATION, "mig", seed=0,
                                            num_fit=3000, log=None, **MIG)
    assert rotated["as_trained"]["mig"]["mig"] < 0.4
    assert rotated["unmixed"]["mig"]["mig"] > 0.8
    assert np.shape(rotated["unmixing"]) == (5, 5)
    aligned = rotation_check.rotation_check(GRID, codes, "mig", seed=0, num_fit=3000, log=None,
                                            **MIG)
    assert aligned["as_trained"]["mig"]["mig"] > 0.9
    assert aligned["unmixed"]["mig"]["mig"] > 0.8


def test_the_check_is_a_pure_function_of_its_seed():
    first, second = (rotation_check.rotation_check(GRID, lambda x: codes(x) @ ROTATION, "mig",
                                                   seed=1, num_fit=1000, log=None, **MIG)
                     for _ in range(2))
    assert first == second
