"""The discrete-code report: what a code learned when it is not the factor it is scored against."""
import numpy as np
import tensorflow as tf

from trainers import discrete_accuracy
from zoo.data.synthetic import IdentityData


class _CodeOfFactor:
    """A stand-in model whose discrete code is factor `k` modulo 3 (observations = factors)."""

    def __init__(self, k):
        self.k = k

    def encode(self, images):
        factors = np.rint(np.asarray(images)).astype(np.int32).reshape(len(images), -1)
        return {"category": tf.constant(factors[:, self.k:self.k + 1] % 3)}


def test_code_information_names_the_factor_the_code_follows():
    data = IdentityData(factor_sizes=(3, 9, 4))
    information = discrete_accuracy.code_information(_CodeOfFactor(1), data, num_samples=3000)
    assert information["factor1"] > 0.99
    assert information["factor0"] < 0.01 and information["factor2"] < 0.01


def test_sweep_shows_the_code_along_every_value_of_the_swept_factor():
    data = IdentityData(factor_sizes=(3, 9, 4))
    sweeps = discrete_accuracy.sweep(_CodeOfFactor(1), data, "factor0", "factor1", bases=2)
    assert len(sweeps) == 2
    for entry in sweeps:
        assert entry["codes_along_factor1"] == {str(v): "012012012" for v in range(3)}
