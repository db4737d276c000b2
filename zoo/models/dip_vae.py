"""DIP-VAE-I and DIP-VAE-II (Kumar et al. 2018), docs/methods.md §6.

Both match a covariance C of the aggregate posterior to the identity:

    loss = recon + KL + λ_od·Σ_{i≠j} C_ij² + λ_d·Σ_i (C_ii − 1)²

with Cov = the covariance of the posterior means μ over the batch (centred over the batch axis,
divided by B) and
    DIP-VAE-I:  C = Cov[μ]
    DIP-VAE-II: C = Cov[μ] + mean over the batch of diag(σ²)   (the covariance of z under q(z)).
disentanglement_lib sweeps λ_od ∈ {1, 2, 5, 10, 20, 50} with λ_d = 10·λ_od (I) or λ_d = λ_od (II).
"""
import keras
import tensorflow as tf

from zoo.models.base import VAE, non_negative

VARIANTS = ("i", "ii")


def batch_covariance(x):
    """Covariance of the rows of x [B, d] over the batch axis (divided by B): [d, d]."""
    centred = x - tf.reduce_mean(x, axis=0, keepdims=True)
    return tf.matmul(centred, centred, transpose_a=True) / tf.cast(tf.shape(x)[0], x.dtype)


def dip_covariance(mean, logvar, variant):
    """C of DIP-VAE-I (Cov[μ]) or DIP-VAE-II (Cov[μ] + mean_batch diag σ²)."""
    covariance = batch_covariance(mean)
    if variant == "ii":
        covariance += tf.linalg.diag(tf.reduce_mean(tf.exp(logvar), axis=0))
    return covariance


def dip_penalty(covariance, lambda_od, lambda_d):
    """λ_od·Σ_{i≠j} C_ij² + λ_d·Σ_i (C_ii − 1)². Known answers (λ = 1, 10 × 10): ones → 90,
    zeros → 10, I → 0, 2I → 10."""
    diagonal = tf.linalg.diag_part(covariance)
    off_diagonal = covariance - tf.linalg.diag(diagonal)
    return (lambda_od * tf.reduce_sum(tf.square(off_diagonal))
            + lambda_d * tf.reduce_sum(tf.square(diagonal - 1.0)))


@keras.saving.register_keras_serializable(package="zoo")
class DIPVAE(VAE):
    """DIP-VAE (variant "i" or "ii").

    Args:
      variant: "i" (C = Cov[μ]) or "ii" (C = Cov[μ] + mean diag σ²).
      lambda_od: weight of the off-diagonal entries (default 10).
      lambda_d: weight of the diagonal; default 10·λ_od for DIP-VAE-I and λ_od for DIP-VAE-II.
      **kwargs: the base `VAE`'s arguments.
    """

    regularizer_terms = ("dip_penalty",)
    default_variant = "i"

    def __init__(self, lambda_od=10.0, lambda_d=None, variant=None, **kwargs):
        super().__init__(**kwargs)
        variant = self.default_variant if variant is None else str(variant).lower()
        if variant not in VARIANTS:
            raise ValueError(f"Unknown DIP-VAE variant {variant!r}; expected one of {VARIANTS}.")
        if type(self) is not DIPVAE and variant != self.default_variant:
            raise ValueError(f"{type(self).__name__} is variant {self.default_variant!r}; use "
                             f"DIPVAE(variant={variant!r}) for the other one.")
        self.variant = variant
        self.lambda_od = non_negative("lambda_od", lambda_od)
        if lambda_d is None:
            lambda_d = 10.0 * self.lambda_od if variant == "i" else self.lambda_od
        self.lambda_d = non_negative("lambda_d", lambda_d)

    def regularizer(self, kl, kl_per_dim, mean, logvar, z):
        penalty = dip_penalty(dip_covariance(mean, logvar, self.variant), self.lambda_od,
                              self.lambda_d)
        return kl + penalty, {"dip_penalty": penalty}

    def get_config(self):
        return {**super().get_config(), "lambda_od": self.lambda_od, "lambda_d": self.lambda_d,
                "variant": self.variant}


@keras.saving.register_keras_serializable(package="zoo")
class DIPVAEI(DIPVAE):
    """DIP-VAE-I: C = Cov[μ] over the batch; λ_d defaults to 10·λ_od."""

    default_variant = "i"


@keras.saving.register_keras_serializable(package="zoo")
class DIPVAEII(DIPVAE):
    """DIP-VAE-II: C = Cov[μ] + mean over the batch of diag σ²; λ_d defaults to λ_od."""

    default_variant = "ii"
