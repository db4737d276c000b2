"""The common distributions layer.

Keras layers turn features into distribution *parameters* (plain tensors, so they live in a Keras 3
graph and save with the model); the functions here build `tfp.distributions` objects from those
parameters, and every model computes its densities, KL terms and samples through them. No model
re-derives a density by hand.

`tfp.layers` are Keras-2 layers and cannot sit in a Keras 3 model, which is why the split between
parameter layers and distribution builders exists.
"""
import keras
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

POSTERIOR_PARAMETERIZATIONS = ("exp_half_logvar", "softplus")


# --------------------------------------------------------------------------------------------------
# Posterior and prior
# --------------------------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="zoo")
class GaussianPosteriorHead(keras.layers.Layer):
    """Maps encoder features to the mean and log-variance of a diagonal Gaussian q(z|x).

    parameterization:
      "exp_half_logvar": the second half of the Dense output *is* log σ² (σ = exp(½·logvar));
        β-VAE, FactorVAE and disentanglement_lib use it.
      "softplus": the second half is passed through softplus to give σ directly (CascadeVAE);
        a floor of 1e-6 keeps log σ² finite.
    Both return (mean, logvar) so that everything downstream is parameterisation-free.
    """

    def __init__(self, latent_dim, parameterization="exp_half_logvar", **kwargs):
        super().__init__(**kwargs)
        if parameterization not in POSTERIOR_PARAMETERIZATIONS:
            raise ValueError(
                f"Unknown posterior parameterization {parameterization!r}; "
                f"expected one of {POSTERIOR_PARAMETERIZATIONS}.")
        self.latent_dim = int(latent_dim)
        self.parameterization = parameterization
        self.dense = keras.layers.Dense(2 * self.latent_dim, name="posterior_params")

    def build(self, input_shape):
        if not self.dense.built:
            self.dense.build(input_shape)

    def call(self, features):
        params = self.dense(features)
        mean, raw = params[..., : self.latent_dim], params[..., self.latent_dim:]
        if self.parameterization == "exp_half_logvar":
            return mean, raw
        std = tf.nn.softplus(raw) + 1e-6
        return mean, 2.0 * tf.math.log(std)

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim,
                "parameterization": self.parameterization}


def diagonal_gaussian(mean, logvar):
    """Per-dimension Normal(mean, exp(½·logvar)); batch shape [..., d]."""
    return tfd.Normal(loc=mean, scale=tf.exp(0.5 * logvar))


def standard_normal_prior(latent_dim, dtype=tf.float32):
    """p(z) = N(0, I) as a distribution with event shape [latent_dim]."""
    return tfd.Independent(
        tfd.Normal(loc=tf.zeros([latent_dim], dtype), scale=tf.ones([latent_dim], dtype)),
        reinterpreted_batch_ndims=1)


def kl_to_standard_normal(mean, logvar):
    """KL(N(mean, σ²) ‖ N(0, 1)) per dimension, shape [..., d] (½(μ² + σ² − log σ² − 1))."""
    return tfd.kl_divergence(diagonal_gaussian(mean, logvar),
                             tfd.Normal(loc=tf.zeros_like(mean), scale=tf.ones_like(mean)))


def gaussian_log_density(z, mean, logvar):
    """log N(z; mean, σ²) per dimension, shape broadcast of the inputs."""
    return diagonal_gaussian(mean, logvar).log_prob(z)


def reparameterized_sample(mean, logvar, noise):
    """z = μ + σ·ε for a given standard-normal ε (drawn by the caller so a seed controls it)."""
    return mean + tf.exp(0.5 * logvar) * noise


# --------------------------------------------------------------------------------------------------
# Likelihoods p(x|z): the decoder outputs one parameter per pixel and channel
# --------------------------------------------------------------------------------------------------
class Likelihood(keras.layers.Layer):
    """Base of the decoder heads. `distribution(params)` has event shape = the image shape, so
    `log_prob(x)` is the per-example sum over pixels (METHODS §0: per-example sums, in nats)."""

    def distribution(self, params):
        raise NotImplementedError

    def log_prob(self, x, params):
        return self.distribution(params).log_prob(x)

    def mean(self, params):
        return self.distribution(params).mean()

    def call(self, params):
        return self.mean(params)


@keras.saving.register_keras_serializable(package="zoo")
class BernoulliLikelihood(Likelihood):
    """Bernoulli with logits; targets in [0, 1] are used as they are (not binarised), so
    −log p is the sigmoid cross-entropy summed over pixels."""

    def distribution(self, params):
        return tfd.Independent(tfd.Bernoulli(logits=params, dtype=params.dtype),
                               reinterpreted_batch_ndims=3)


@keras.saving.register_keras_serializable(package="zoo")
class GaussianLikelihood(Likelihood):
    """Gaussian with the decoder output as mean and a fixed scale, or a learned scalar log-scale."""

    def __init__(self, scale=1.0, learned=False, **kwargs):
        super().__init__(**kwargs)
        if not scale > 0:
            raise ValueError(f"Gaussian likelihood scale must be positive, got {scale}.")
        self.scale, self.learned = float(scale), bool(learned)
        self.log_scale = self.add_weight(
            shape=(), name="log_scale", trainable=self.learned,
            initializer=keras.initializers.Constant(float(tf.math.log(self.scale))))

    def distribution(self, params):
        scale = tf.exp(tf.cast(self.log_scale, params.dtype)) * tf.ones_like(params)
        return tfd.Independent(tfd.Normal(loc=params, scale=scale), reinterpreted_batch_ndims=3)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "learned": self.learned}


@keras.saving.register_keras_serializable(package="zoo")
class LaplaceLikelihood(Likelihood):
    """Laplace with the decoder output as location and a fixed scale (0.1 by default, as in the
    Fashion-MNIST sparsity experiment of Mathieu et al.)."""

    def __init__(self, scale=0.1, **kwargs):
        super().__init__(**kwargs)
        if not scale > 0:
            raise ValueError(f"Laplace likelihood scale must be positive, got {scale}.")
        self.scale = float(scale)

    def distribution(self, params):
        return tfd.Independent(tfd.Laplace(loc=params, scale=self.scale * tf.ones_like(params)),
                               reinterpreted_batch_ndims=3)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


LIKELIHOODS = {
    "bernoulli": BernoulliLikelihood,
    "gaussian": GaussianLikelihood,
    "gaussian_learned": lambda **kw: GaussianLikelihood(learned=True, **kw),
    "laplace": LaplaceLikelihood,
}


def get_likelihood(name, **kwargs):
    """A likelihood head by name (one of LIKELIHOODS)."""
    if name not in LIKELIHOODS:
        raise ValueError(f"Unknown likelihood {name!r}; expected one of {sorted(LIKELIHOODS)}.")
    return LIKELIHOODS[name](name="likelihood", **kwargs)
