"""What a discrete code learned when it is not the factor it is scored against."""
import numpy as np

from zoo import assignment
from zoo.data.synthetic import IdentityData


def _code_of_factor(k):
    """A stand-in code function: factor `k` modulo 3 (the observations are the factors)."""
    def code(images):
        return np.rint(np.asarray(images)).astype(np.int64).reshape(len(images), -1)[:, k] % 3
    return code


def test_code_information_names_the_factor_the_code_follows():
    data = IdentityData(factor_sizes=(3, 9, 4))
    information = assignment.code_information(data, _code_of_factor(1), num_samples=3000)
    assert information["factor1"] > 0.99
    assert information["factor0"] < 0.01 and information["factor2"] < 0.01


def test_latent_information_finds_each_factor_in_the_latent_that_holds_it():
    data = IdentityData(factor_sizes=(3, 9, 4))

    def means(images):
        factors = np.asarray(images).reshape(len(images), -1)
        # latent 0 mixes factors 0 and 2 (as sprite area mixes shape and scale); latent 1 is
        # factor 1; latent 2 is constant.
        return np.stack([4 * factors[:, 0] + factors[:, 2], factors[:, 1],
                         np.zeros(len(factors))], axis=1)

    information = assignment.latent_information(data, means, num_samples=3000)
    assert len(information) == 3
    assert information[0]["factor0"] > 0.99 and information[0]["factor2"] > 0.99
    assert information[0]["factor1"] < 0.01
    assert information[1]["factor1"] > 0.99 and information[1]["factor0"] < 0.01
    assert information[2] == {"factor0": 0.0, "factor1": 0.0, "factor2": 0.0}


def test_sweep_shows_the_code_along_every_value_of_the_swept_factor():
    data = IdentityData(factor_sizes=(3, 9, 4))
    sweeps = assignment.code_sweep(data, _code_of_factor(1), "factor0", "factor1", bases=2)
    assert len(sweeps) == 2
    for entry in sweeps:
        assert entry["codes_along_factor1"] == {str(v): "012012012" for v in range(3)}
