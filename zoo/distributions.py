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
        # float32 whatever the layers compute in: under a mixed_float16 policy the sampling, KL
        # and log-densities downstream need float32 parameters.
        params = tf.cast(self.dense(features), tf.float32)
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
# Categorical codes (JointVAE's discrete latents)
# --------------------------------------------------------------------------------------------------
def relaxed_one_hot_categorical(logits, temperature):
    """Gumbel-softmax / Concrete distribution over one-hot vectors [..., K]: a sample is
    softmax((logits + Gumbel noise)/τ). Sample it with a stateless seed (int32 [2]) so the draw is
    a function of the seed: `relaxed_one_hot_categorical(l, 0.67).sample(seed=seed)`."""
    return tfd.RelaxedOneHotCategorical(temperature=temperature, logits=logits)


def categorical_kl_to_uniform(logits):
    """KL(Cat(softmax(logits)) ‖ Uniform(K)) = log K + Σ_k α_k log α_k, shape [...]."""
    uniform = tf.zeros_like(logits)
    return tfd.kl_divergence(tfd.Categorical(logits=logits), tfd.Categorical(logits=uniform))


# --------------------------------------------------------------------------------------------------
# Likelihoods p(x|z): the decoder outputs one parameter per pixel and channel
# --------------------------------------------------------------------------------------------------
def _float32(params):
    """Decoder outputs as float32: a decoder under a mixed_float16 policy computes in float16, and
    the reconstruction term is summed over thousands of pixels."""
    return tf.cast(params, tf.float32)


class Likelihood(keras.layers.Layer):
    """Base of the decoder heads. `distribution(params)` has event shape = the observation shape
    (its last `event_ndims` axes: 3 for images, 1 for vector observations), so `log_prob(x)` is
    the per-example sum over pixels (docs/methods.md §0: per-example sums, in nats)."""

    def __init__(self, event_ndims=3, **kwargs):
        super().__init__(**kwargs)
        self.event_ndims = int(event_ndims)

    def get_config(self):
        return {**super().get_config(), "event_ndims": self.event_ndims}

    def distribution(self, params):
        raise NotImplementedError

    def log_prob(self, x, params):
        return self.distribution(_float32(params)).log_prob(x)

    def mean(self, params):
        return self.distribution(_float32(params)).mean()

    def call(self, params):
        return self.mean(params)


@keras.saving.register_keras_serializable(package="zoo")
class BernoulliLikelihood(Likelihood):
    """Bernoulli with logits; targets in [0, 1] are used as they are (not binarised), so
    −log p is the sigmoid cross-entropy summed over pixels."""

    def distribution(self, params):
        return tfd.Independent(tfd.Bernoulli(logits=params, dtype=params.dtype),
                               reinterpreted_batch_ndims=self.event_ndims)


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
        return tfd.Independent(tfd.Normal(loc=params, scale=scale),
                               reinterpreted_batch_ndims=self.event_ndims)

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
                               reinterpreted_batch_ndims=self.event_ndims)

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


# --------------------------------------------------------------------------------------------------
# Codes of a GAN (InfoGAN) and the structured priors of the decomposition VAE
# --------------------------------------------------------------------------------------------------
def categorical(logits):
    """Cat(softmax(logits)) over the last axis; `log_prob(k)` is −(cross-entropy) of class k."""
    return tfd.Categorical(logits=logits)


def bernoulli(logits):
    """Bernoulli(sigmoid(logits)) on {0., 1.}; `log_prob(1.)` is −BCE(logits, 1) (a GAN
    discriminator's "real" log-probability)."""
    return tfd.Bernoulli(logits=logits, dtype=logits.dtype)


def unit_scale_gaussian(mean):
    """N(mean, 1) per dimension, event shape [d] (InfoGAN's Q for continuous codes: fixed std 1)."""
    return tfd.Independent(tfd.Normal(loc=mean, scale=tf.ones_like(mean)),
                           reinterpreted_batch_ndims=1)


def diagonal_gaussian_posterior(mean, logvar):
    """q(z|x) = N(mean, diag(exp(logvar))) with event shape [d], so `log_prob(z)` sums over
    latent dimensions (the per-dimension form is `diagonal_gaussian`)."""
    return tfd.Independent(diagonal_gaussian(mean, logvar), reinterpreted_batch_ndims=1)


#: Component means and scale of the pinwheel clustering prior (Mathieu et al. 2019, docs/methods.md §11):
#: four Gaussians at (0, ±1), (±1, 0), each with variance 0.03 (std ≈ 0.173), equal weights.
PINWHEEL_MIXTURE_LOCS = ((0.0, -1.0), (0.0, 1.0), (1.0, 0.0), (-1.0, 0.0))
PINWHEEL_MIXTURE_SCALE = 0.03 ** 0.5


def isotropic_gaussian_prior(latent_dim, scale=1.0, dtype=tf.float32):
    """p(z) = N(0, scale²·I), event shape [latent_dim]."""
    return tfd.Independent(tfd.Normal(loc=tf.zeros([latent_dim], dtype),
                                      scale=tf.fill([latent_dim], tf.cast(scale, dtype))),
                           reinterpreted_batch_ndims=1)


def anisotropic_scales(log_weights, mean_variance=1.0):
    """Standard deviations σ_j = √(mean_variance · d · softmax(log_weights)_j): variances
    proportional to exp(log_weights), normalised so their mean is `mean_variance` (the total
    variance then equals that of N(0, mean_variance·I), as in Mathieu et al.'s reference)."""
    log_weights = tf.convert_to_tensor(log_weights)
    d = tf.cast(tf.shape(log_weights)[-1], log_weights.dtype)
    return tf.sqrt(mean_variance * d * tf.nn.softmax(log_weights, axis=-1))


def anisotropic_gaussian_prior(scales):
    """p(z) = N(0, diag(scales²)), event shape [d]."""
    scales = tf.convert_to_tensor(scales)
    return tfd.Independent(tfd.Normal(loc=tf.zeros_like(scales), scale=scales),
                           reinterpreted_batch_ndims=1)


def student_t_prior(latent_dim, df=9.0, scale=1.0, dtype=tf.float32):
    """p(z) = Π_j Student-t(z_j; df, 0, scale), event shape [latent_dim] (df 9 in Mathieu et al.)."""
    return tfd.Independent(tfd.StudentT(df=tf.cast(df, dtype), loc=tf.zeros([latent_dim], dtype),
                                        scale=tf.fill([latent_dim], tf.cast(scale, dtype))),
                           reinterpreted_batch_ndims=1)


def gaussian_mixture_prior(locs, scale, weights=None):
    """p(z) = Σ_k w_k N(z; locs[k], scale²·I): a mixture of K isotropic Gaussians in d dims
    (locs [K, d]; equal weights by default), event shape [d]."""
    locs = tf.convert_to_tensor(locs, tf.float32)
    logits = tf.zeros(tf.shape(locs)[:1]) if weights is None else tf.math.log(
        tf.convert_to_tensor(weights, tf.float32))
    return tfd.MixtureSameFamily(
        mixture_distribution=tfd.Categorical(logits=logits),
        components_distribution=tfd.MultivariateNormalDiag(
            loc=locs, scale_diag=tf.fill(tf.shape(locs), tf.cast(scale, tf.float32))))


def spike_and_slab_prior(latent_dim, spike_weight=0.8, spike_scale=0.05, slab_scale=1.0):
    """p(z) = Π_j [γ·N(z_j; 0, spike_scale²) + (1 − γ)·N(z_j; 0, slab_scale²)], event shape
    [latent_dim]; γ = `spike_weight` ∈ [0, 1] (Mathieu et al.'s sparsity prior: γ ∈ {0, 0.8},
    spike std 0.05)."""
    gamma = float(spike_weight)
    probs = tf.broadcast_to(tf.constant([gamma, 1.0 - gamma], tf.float32), [latent_dim, 2])
    scales = tf.broadcast_to(tf.constant([spike_scale, slab_scale], tf.float32), [latent_dim, 2])
    per_dim = tfd.MixtureSameFamily(
        mixture_distribution=tfd.Categorical(probs=probs),
        components_distribution=tfd.Normal(loc=tf.zeros_like(scales), scale=scales))
    return tfd.Independent(per_dim, reinterpreted_batch_ndims=1)


def pca_variances(observations, num_components):
    """The `num_components` largest principal-component variances (eigenvalues of the covariance)
    of observations [n, ...] flattened to vectors, in decreasing order; float64 numpy. They set
    the anisotropic prior's variances ("PCA" prior of Mathieu et al.)."""
    import numpy as np

    x = np.asarray(observations, np.float64).reshape(len(observations), -1)
    x = x - x.mean(axis=0)
    singular = np.linalg.svd(x, full_matrices=False, compute_uv=False)
    variances = singular ** 2 / max(len(x) - 1, 1)
    if len(variances) < num_components:
        variances = np.concatenate([variances, np.zeros(num_components - len(variances))])
    return np.maximum(variances[:num_components], 1e-12)


PRIORS = ("isotropic", "anisotropic", "student_t", "mixture", "spike_and_slab")


@keras.saving.register_keras_serializable(package="zoo")
class StructuredPrior(keras.layers.Layer):
    """p(z) of the decomposition VAE as a layer: it holds the prior's parameters (saved with the
    model; the anisotropic variances can be learned) and `distribution()` builds the
    `tfp.distributions` object every density, sample and KL goes through.

    kind:
      "isotropic": N(0, I).
      "anisotropic": N(0, diag(σ²)), σ² = d·softmax(log v) with v = `variances` (e.g. the data's
        PCA variances, `pca_variances`): the variances keep the proportions of v and average 1.
        `learned=True` makes log v trainable.
      "student_t": independent Student-t with `df` degrees of freedom (9), scale 1.
      "mixture": equal-weight mixture of isotropic Gaussians at `mixture_locs` with std
        `mixture_scale` (default: the pinwheel prior, 4 components at (0, ±1), (±1, 0), std 0.173,
        for d = 2).
      "spike_and_slab": per dimension γ·N(0, spike_scale²) + (1 − γ)·N(0, 1), γ = `spike_weight`.
    """

    def __init__(self, kind="isotropic", latent_dim=10, variances=None, learned=False, df=9.0,
                 mixture_locs=None, mixture_scale=PINWHEEL_MIXTURE_SCALE, spike_weight=0.8,
                 spike_scale=0.05, **kwargs):
        super().__init__(**kwargs)
        if kind not in PRIORS:
            raise ValueError(f"Unknown prior {kind!r}; expected one of {PRIORS}.")
        self.kind, self.latent_dim = kind, int(latent_dim)
        self.learned = bool(learned)
        if self.learned and kind != "anisotropic":
            raise ValueError("Only the anisotropic prior can be learned (learned=True).")
        self.variances = None if variances is None else [float(v) for v in variances]
        if self.variances is not None and (len(self.variances) != self.latent_dim
                                           or min(self.variances) <= 0):
            raise ValueError(f"variances must be {self.latent_dim} positive numbers, got "
                             f"{variances!r}.")
        self.df = float(df)
        if not self.df > 0:
            raise ValueError(f"df must be positive, got {df!r}.")
        if mixture_locs is None:
            mixture_locs = PINWHEEL_MIXTURE_LOCS
            if kind == "mixture" and self.latent_dim != 2:
                raise ValueError("The default mixture prior (the pinwheel prior) is 2-dimensional; "
                                 f"give mixture_locs for latent_dim={self.latent_dim}.")
        self.mixture_locs = [[float(v) for v in loc] for loc in mixture_locs]
        if kind == "mixture" and any(len(loc) != self.latent_dim for loc in self.mixture_locs):
            raise ValueError(f"mixture_locs must be [K, {self.latent_dim}], got {mixture_locs!r}.")
        self.mixture_scale = float(mixture_scale)
        self.spike_weight, self.spike_scale = float(spike_weight), float(spike_scale)
        if not 0.0 <= self.spike_weight <= 1.0:
            raise ValueError(f"spike_weight must lie in [0, 1], got {spike_weight!r}.")
        if not (self.mixture_scale > 0 and self.spike_scale > 0):
            raise ValueError("mixture_scale and spike_scale must be positive.")
        self.log_variances = None
        if kind == "anisotropic":
            initial = [0.0] * self.latent_dim if self.variances is None else [
                float(tf.math.log(v)) for v in self.variances]
            self.log_variances = self.add_weight(
                shape=(self.latent_dim,), name="log_variances", trainable=self.learned,
                initializer=keras.initializers.Constant(initial))

    def build(self, input_shape=None):
        self.built = True

    def scales(self):
        """Per-dimension standard deviations of the anisotropic prior."""
        return anisotropic_scales(self.log_variances)

    def distribution(self):
        """The prior as a `tfp.distributions.Distribution` with event shape [latent_dim]."""
        if self.kind == "isotropic":
            return isotropic_gaussian_prior(self.latent_dim)
        if self.kind == "anisotropic":
            return anisotropic_gaussian_prior(self.scales())
        if self.kind == "student_t":
            return student_t_prior(self.latent_dim, self.df)
        if self.kind == "mixture":
            return gaussian_mixture_prior(self.mixture_locs, self.mixture_scale)
        return spike_and_slab_prior(self.latent_dim, self.spike_weight, self.spike_scale)

    def call(self, z):
        """log p(z) for codes z [..., d]."""
        return self.distribution().log_prob(z)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "latent_dim": self.latent_dim,
                "variances": self.variances, "learned": self.learned, "df": self.df,
                "mixture_locs": self.mixture_locs, "mixture_scale": self.mixture_scale,
                "spike_weight": self.spike_weight, "spike_scale": self.spike_scale}
