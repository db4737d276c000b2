"""The survey's kernel regularisers on the VAE base (Tschannen et al. 2018, "Recent Advances in
Autoencoder-Based Representation Learning"; docs/methods.md §13). Estimators: `zoo.kernels`.

- **InfoVAE / MMD-VAE** (Zhao et al. 2017): loss = recon + β·KL + λ·MMD²(q(z), p(z)), the unbiased
  MMD² between the batch's posterior samples z_i ~ q(z|x_i) (samples of the aggregate posterior)
  and as many prior samples y_i ~ N(0, I). β = 0 is the published "MMD-VAE". With the IMQ kernel
  this is the decomposition VAE's isotropic-prior objective with α = λ (`DecompositionVAE(
  prior="isotropic", divergence="mmd_imq", beta=β, alpha=λ)`), here as one regulariser on the base.
- **HSIC-VAE** (Lopez et al. 2018): loss = recon + KL + λ·Σ_{a<b} HSIC(z_{G_a}, z_{G_b}) over the
  pairs of latent groups G (default: two halves of z), on the batch's posterior samples.
- **VFAE-style invariance** (Louizos et al. 2016): loss = recon + KL + λ·Σ_{k≥1} MMD²(q(z|s=k),
  q(z|s=0)) for a discrete sensitive factor s of the ground-truth data (dSprites' "shape" by
  default), so the code carries as little information about s as the reconstruction allows.

How s reaches the VFAE's train step: batches are (images, s) pairs, s an integer vector [B] of
the factor's value index. `trainers.train --model=vfae` gets them from the model's
`training_stream` (the data set's i.i.d. stream with its factors, the factor column picked by
name); with Keras directly, `fit(images, s)` or a `tf.data` stream of (images, s). Training on
images alone is refused with a clear error; `evaluate` on images alone reports `invariance` = 0,
i.e. not measured (the held-out loss terms `trainers.train` writes come from
`evaluation_stream`, with s, so they measure it).

Noise: prior samples (InfoVAE) are `training_noise` with their own purpose, a pure function of
(seed, global_step), in training and evaluation alike.

Defaults: the seeds give no λ in this project's units (per-example sums in nats), so λ's defaults
are a starting point to sweep (InfoVAE 100, as the decomposition VAE's Fashion-MNIST α; HSIC
1000, since HSIC with Gaussian kernels is below 1; VFAE 100).
"""
import keras
import tensorflow as tf

from zoo import kernels
from zoo.models.base import VAE, _positive_int, non_negative

_PRIOR_SAMPLES = 1  # `training_noise` purpose of InfoVAE's prior samples (0: reparameterisation)


class KernelChoice:
    """Mixin of a model with an MMD kernel: "imq" (sum of 1-D inverse multiquadrics over
    `mmd_scales`) or "rbf" (Gaussian, variance `rbf_variance`, default latent_dim)."""

    def _set_kernel(self, kernel, mmd_scales, rbf_variance):
        self.kernel, self.mmd_scales, self.rbf_variance = kernels.check_kernel(
            kernel, self.latent_dim, mmd_scales, rbf_variance)

    def kernel_fn(self, a, b):
        return kernels.kernel_matrix(self.kernel, a, b, self.mmd_scales, self.rbf_variance)

    def kernel_config(self):
        return {"kernel": self.kernel, "mmd_scales": self.mmd_scales,
                "rbf_variance": self.rbf_variance}


@keras.saving.register_keras_serializable(package="zoo")
class InfoVAE(KernelChoice, VAE):
    """recon + β·KL + λ·MMD²(batch posterior samples, prior samples) (module docstring).

    Args:
      beta: β, weight of KL (1; 0 gives the MMD-VAE).
      lambda_mmd: λ, weight of the MMD² (100).
      kernel, mmd_scales, rbf_variance: the MMD kernel ("imq" default, or "rbf").
      **kwargs: the base `VAE`'s arguments.
    """

    regularizer_terms = ("mmd",)

    def __init__(self, beta=1.0, lambda_mmd=100.0, kernel="imq", mmd_scales=kernels.MMD_SCALES,
                 rbf_variance=None, **kwargs):
        super().__init__(**kwargs)
        self.beta = non_negative("beta", beta)
        self.lambda_mmd = non_negative("lambda_mmd", lambda_mmd)
        self._set_kernel(kernel, mmd_scales, rbf_variance)

    def regularizer(self, kl, kl_per_dim, mean, logvar, z):
        prior_samples = self.training_noise(tf.shape(z), purpose=_PRIOR_SAMPLES)
        divergence = kernels.mmd(prior_samples, z, self.kernel_fn)
        return self.beta * kl + self.lambda_mmd * divergence, {"mmd": divergence}

    def get_config(self):
        return {**super().get_config(), "beta": self.beta, "lambda_mmd": self.lambda_mmd,
                **self.kernel_config()}


def check_groups(groups, latent_dim):
    """Latent group sizes (default: two halves) as a list of ≥ 2 positive ints summing to d."""
    if groups is None:
        if latent_dim < 2:
            raise ValueError(f"HSIC-VAE needs latent_dim ≥ 2 (two groups), got {latent_dim}.")
        return [latent_dim // 2, latent_dim - latent_dim // 2]
    sizes = [_positive_int("groups entry", g) for g in groups]
    if len(sizes) < 2 or sum(sizes) != latent_dim:
        raise ValueError(f"groups must be ≥ 2 group sizes summing to latent_dim={latent_dim}, got "
                         f"{list(groups)!r}.")
    return sizes


@keras.saving.register_keras_serializable(package="zoo")
class HSICVAE(VAE):
    """recon + KL + λ·Σ_{a<b} HSIC(z_{G_a}, z_{G_b}) (module docstring).

    Args:
      lambda_hsic: λ (1000).
      groups: sizes of consecutive latent groups, summing to latent_dim (default two halves).
      **kwargs: the base `VAE`'s arguments.
    """

    regularizer_terms = ("hsic",)

    def __init__(self, lambda_hsic=1000.0, groups=None, **kwargs):
        super().__init__(**kwargs)
        self.lambda_hsic = non_negative("lambda_hsic", lambda_hsic)
        self.groups = check_groups(groups, self.latent_dim)

    def group_dependence(self, z):
        """Σ over pairs of groups of HSIC between their columns of z [B, d]."""
        parts = tf.split(z, self.groups, axis=1)
        return tf.add_n([kernels.hsic(parts[a], parts[b])
                         for a in range(len(parts)) for b in range(a + 1, len(parts))])

    def regularizer(self, kl, kl_per_dim, mean, logvar, z):
        dependence = self.group_dependence(z)
        return kl + self.lambda_hsic * dependence, {"hsic": dependence}

    def get_config(self):
        return {**super().get_config(), "lambda_hsic": self.lambda_hsic, "groups": self.groups}


@keras.saving.register_keras_serializable(package="zoo")
class VFAE(KernelChoice, VAE):
    """recon + KL + λ·Σ_{k≥1} MMD²(q(z|s=k), q(z|s=0)) for a sensitive factor s (module
    docstring; batches are (images, s)).

    Args:
      lambda_invariance: λ (100).
      sensitive_factor: name of the ground-truth factor s ("shape"); `training_stream` picks it.
      num_sensitive_values: number of values of s (3, dSprites' shapes).
      kernel, mmd_scales, rbf_variance: the MMD kernel ("rbf" default, as Louizos et al.; or
        "imq").
      **kwargs: the base `VAE`'s arguments.
    """

    regularizer_terms = ("invariance",)

    def __init__(self, lambda_invariance=100.0, sensitive_factor="shape", num_sensitive_values=3,
                 kernel="rbf", mmd_scales=kernels.MMD_SCALES, rbf_variance=None, **kwargs):
        super().__init__(**kwargs)
        self.lambda_invariance = non_negative("lambda_invariance", lambda_invariance)
        self.sensitive_factor = str(sensitive_factor)
        self.num_sensitive_values = _positive_int("num_sensitive_values", num_sensitive_values)
        if self.num_sensitive_values < 2:
            raise ValueError(f"num_sensitive_values must be ≥ 2, got {num_sensitive_values!r}.")
        self._set_kernel(kernel, mmd_scales, rbf_variance)

    def get_config(self):
        return {**super().get_config(), "lambda_invariance": self.lambda_invariance,
                "sensitive_factor": self.sensitive_factor,
                "num_sensitive_values": self.num_sensitive_values, **self.kernel_config()}

    def training_stream(self, data, batch_size, seed, start_step=0):
        """The data set's i.i.d. stream as (images, s) with s its `sensitive_factor` column."""
        names = tuple(getattr(data, "factor_names", ()))
        if self.sensitive_factor not in names:
            raise ValueError(f"sensitive_factor {self.sensitive_factor!r} is not a factor of "
                             f"{data.name} (factors: {names}).")
        column = names.index(self.sensitive_factor)
        if data.factor_sizes[column] != self.num_sensitive_values:
            raise ValueError(f"{data.name}'s factor {self.sensitive_factor!r} has "
                             f"{data.factor_sizes[column]} values; the model was built with "
                             f"num_sensitive_values={self.num_sensitive_values}.")
        return data.stream(int(batch_size), seed=seed, start_step=start_step,
                           with_factors=True).map(lambda x, f: (x, f[:, column]))

    def evaluation_stream(self, data, batch_size, seed):
        return self.training_stream(data, batch_size, seed)

    def check_sensitive(self, s, batch_size):
        """s as int32 [B]: integer values in [0, num_sensitive_values), one per image."""
        s = tf.convert_to_tensor(s)
        if not s.dtype.is_integer:
            raise ValueError(f"Sensitive labels must be integers, got dtype {s.dtype.name}.")
        s = tf.cast(tf.reshape(s, [-1]), tf.int32)
        message = (f"Sensitive labels must lie in [0, {self.num_sensitive_values}) with one per "
                   "image.")
        checks = [tf.debugging.assert_equal(tf.size(s), batch_size, message=message),
                  tf.debugging.assert_non_negative(s, message=message),
                  tf.debugging.assert_less(s, self.num_sensitive_values, message=message)]
        with tf.control_dependencies(checks):
            return tf.identity(s)

    def compute_loss_terms(self, x, training, sensitive=None):
        """Loss terms of a batch; `sensitive` (s [B]) None: the invariance is not measured (0)."""
        x = self.check_images(x)
        mean, logvar, z = self.posterior_sample(x, training)
        recon = self.reconstruction_loss(x, z, training)
        kl, _ = self.standard_kl(mean, logvar)
        invariance = tf.constant(0.0)
        if sensitive is not None:
            s = self.check_sensitive(sensitive, tf.shape(x)[0])
            invariance = kernels.group_mmd(z, s, self.num_sensitive_values, self.kernel_fn)
        return self.loss_terms(recon + kl + self.lambda_invariance * invariance, recon, kl,
                               {"invariance": invariance})

    def train_step(self, data):
        x, s, _ = keras.utils.unpack_x_y_sample_weight(data)
        if s is None:
            raise ValueError("VFAE trains on (images, sensitive labels) batches: fit(images, s), "
                             "or trainers.train, whose stream (training_stream) yields them; got "
                             "images only.")
        return self.optimizer_step(lambda: self.compute_loss_terms(x, True, sensitive=s))

    def test_step(self, data):
        x, s, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._record(self.compute_loss_terms(x, False, sensitive=s))
