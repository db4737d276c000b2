"""β-VAE (Higgins et al. 2017) and AnnealedVAE (Burgess et al. 2018), docs/methods.md §2."""
import keras
import tensorflow as tf

from zoo.models.base import VAE, non_negative
from zoo.models.schedules import linear_capacity


@keras.saving.register_keras_serializable(package="zoo")
class BetaVAE(VAE):
    """loss = recon + β·KL; β = 1 is the plain VAE. disentanglement_lib sweeps β ∈ {1, 2, 4, 6, 8, 16}."""

    def __init__(self, beta=4.0, **kwargs):
        super().__init__(**kwargs)
        self.beta = non_negative("beta", beta)

    def regularizer(self, kl, kl_per_dim, mean, logvar, z):
        return self.beta * kl, {}

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}


@keras.saving.register_keras_serializable(package="zoo")
class AnnealedVAE(VAE):
    """Capacity-controlled β-VAE: loss = recon + γ·|KL − C(t)|, C(t) = min(C_max, C_max·t/T).

    Defaults are disentanglement_lib's: γ = 1000, T = 100,000 iterations; C_max is swept over
    {5, 10, 25, 50, 75, 100} nats. t is the saved `global_step`.
    """

    regularizer_terms = ("capacity",)

    def __init__(self, gamma=1000.0, c_max=25.0, iteration_threshold=100_000, **kwargs):
        super().__init__(**kwargs)
        self.gamma = non_negative("gamma", gamma)
        self.c_max = non_negative("c_max", c_max)
        if int(iteration_threshold) < 1:
            raise ValueError(f"iteration_threshold must be ≥ 1, got {iteration_threshold!r}.")
        self.iteration_threshold = int(iteration_threshold)

    def capacity(self):
        return linear_capacity(self.global_step.value, self.c_max, self.iteration_threshold)

    def regularizer(self, kl, kl_per_dim, mean, logvar, z):
        capacity = self.capacity()
        return self.gamma * tf.abs(kl - capacity), {"capacity": capacity}

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "c_max": self.c_max,
                "iteration_threshold": self.iteration_threshold}
