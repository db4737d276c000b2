"""Decomposition VAE (Mathieu et al., ICML 2019, "Disentangling Disentanglement in VAEs"),
docs/methods.md §11.

    loss = −E_q log p(x|z) + β·KL(q(z|x) ‖ p(z)) + α·D(q(z), p(z))

β controls the overlap of the encodings, α the match between the aggregate posterior
q(z) = E_x q(z|x) and a *structured* prior p(z), which carries the decomposition wanted:
independence (isotropic / anisotropic Gaussian, Student-t), clustering (a mixture of Gaussians) or
sparsity (a spike-and-slab). Units: recon and KL are per-example sums averaged over the batch; D is
a batch-level divergence estimate; all in nats.

- **KL** is analytic for the Gaussian priors (isotropic, anisotropic) and otherwise a one-sample
  Monte-Carlo estimate log q(z|x) − log p(z) at the reparameterised sample z that also feeds the
  decoder.
- **D = "mmd_imq"**: the unbiased estimate of MMD² between B prior samples y and the batch's
  posterior samples z (one per example), with the kernel k(a, b) = Σ_s Σ_j C_s / (C_s + (a_j −
  b_j)²), a sum of 1-D inverse-multiquadric kernels over latent dimensions and over
  C_s = 2·s, s ∈ {0.1, 0.2, 0.5, 1, 2, 5}:
  MMD² = Σ_{i≠j} k(y_i, y_j)/(B(B−1)) + Σ_{i≠j} k(z_i, z_j)/(B(B−1)) − 2 Σ_{i,j} k(y_i, z_j)/B²
  (`zoo.kernels.mmd_imq`, shared with InfoVAE).
- **D = "kl_inclusive"**: KL(p(z) ‖ q(z)) ≈ mean_j [log p(y_j) − log q̂(y_j)] with B prior samples
  y_j and log q̂(y_j) = logmeanexp_i log q(y_j | x_i) over the batch (the aggregate posterior
  estimated by the batch's posteriors).

Priors come from the common distributions layer (`zoo.distributions.StructuredPrior`):
"isotropic", "anisotropic" (variances from PCA, optionally learned), "student_t" (df 9),
"mixture" (the pinwheel prior: 4 Gaussians at (0, ±1), (±1, 0), std 0.173) and "spike_and_slab"
(γ·N(0, 0.05²) + (1 − γ)·N(0, 1) per dimension). The anisotropic variances are
σ² = d·softmax(log v): they keep the proportions of `prior_variances` (e.g. `pca_prior_variances`
of the data) and average 1, as in the authors' code.

Prior samples for D are drawn with stateless seeds from (seed, global_step), so training noise
stays a pure function of (seed, step, purpose). `sample(n)` decodes prior samples.
"""
import keras
import numpy as np
import tensorflow as tf

from zoo import distributions, seeds
from zoo.kernels import MMD_SCALES, imq_kernel, mmd_imq  # noqa: F401 (imq_kernel: re-exported)
from zoo.models.base import VAE, non_negative, sample_count

DIVERGENCES = ("mmd_imq", "kl_inclusive")
ANALYTIC_KL_PRIORS = ("isotropic", "anisotropic")
_PRIOR_SAMPLES = 1  # `training_noise` purpose of the prior samples (0: reparameterisation)


def aggregate_log_density(codes, mean, logvar):
    """log q̂(codes_j) = logmeanexp_i log q(codes_j | x_i) over the batch's posteriors
    N(mean_i, exp(logvar_i)): [n] for codes [n, d], mean/logvar [B, d]."""
    log_q = distributions.diagonal_gaussian_posterior(
        mean[None, :, :], logvar[None, :, :]).log_prob(codes[:, None, :])   # [n, B]
    return tf.reduce_logsumexp(log_q, axis=1) - tf.math.log(tf.cast(tf.shape(mean)[0], log_q.dtype))


def inclusive_kl(prior, prior_samples, mean, logvar):
    """KL(p ‖ q̂) ≈ mean_j [log p(y_j) − log q̂(y_j)] for prior samples y_j [n, d]."""
    return tf.reduce_mean(prior.log_prob(prior_samples)
                          - aggregate_log_density(prior_samples, mean, logvar))


def kl_to_prior(prior, mean, logvar, z=None, analytic=True):
    """Per-example KL(q(z|x) ‖ p(z)) [B]: analytic (`tfd.kl_divergence`) when `analytic`, else the
    one-sample Monte-Carlo estimate log q(z|x) − log p(z) at the sample z [B, d]."""
    posterior = distributions.diagonal_gaussian_posterior(mean, logvar)
    if analytic:
        return distributions.tfd.kl_divergence(posterior, prior)
    return posterior.log_prob(z) - prior.log_prob(z)


def pca_prior_variances(data, latent_dim, num_samples=10_000, seed=0):
    """The `latent_dim` largest PCA variances of `num_samples` observations of a ground-truth data
    set (the "PCA" anisotropic prior's `prior_variances`), as a list of floats."""
    _, observations = data.sample(int(num_samples), np.random.default_rng(seed))
    return [float(v) for v in distributions.pca_variances(observations, latent_dim)]


@keras.saving.register_keras_serializable(package="zoo")
class DecompositionVAE(VAE):
    """recon + β·KL(q(z|x) ‖ p(z)) + α·D(q(z), p(z)) with a structured prior p(z).

    Args:
      beta: β, weight of the per-example KL to the prior (1).
      alpha: α, weight of the divergence D between aggregate posterior and prior (0).
      divergence: "mmd_imq" (default) or "kl_inclusive".
      prior: "isotropic", "anisotropic", "student_t", "mixture" or "spike_and_slab".
      prior_variances: the anisotropic prior's relative variances (d positive numbers; default
        all equal, i.e. isotropic); e.g. `pca_prior_variances(data, d)`.
      learn_prior: learn the anisotropic prior's variances (their log-weights are trained with the
        model; they keep averaging 1).
      prior_df: Student-t degrees of freedom (9).
      mixture_locs, mixture_scale: the mixture prior's component means [K, d] and std (default the
        2-D pinwheel prior).
      spike_weight, spike_scale: γ and the spike's std of the spike-and-slab prior (0.8, 0.05).
      mmd_scales: the s of the IMQ kernel scales C = 2·s.
      **kwargs: the base `VAE`'s arguments (latent_dim, input_shape, network, likelihood, ...).

    Logged terms: loss, recon, kl (to this prior), elbo (= −(recon + kl)), divergence (D, also
    when α = 0).
    """

    regularizer_terms = ("divergence",)

    def __init__(self, beta=1.0, alpha=0.0, divergence="mmd_imq", prior="isotropic",
                 prior_variances=None, learn_prior=False, prior_df=9.0, mixture_locs=None,
                 mixture_scale=distributions.PINWHEEL_MIXTURE_SCALE, spike_weight=0.8,
                 spike_scale=0.05, mmd_scales=MMD_SCALES, **kwargs):
        super().__init__(**kwargs)
        self.beta = non_negative("beta", beta)
        self.alpha = non_negative("alpha", alpha)
        if divergence not in DIVERGENCES:
            raise ValueError(f"Unknown divergence {divergence!r}; expected one of {DIVERGENCES}.")
        self.divergence = divergence
        self.mmd_scales = [float(s) for s in mmd_scales]
        if not self.mmd_scales or min(self.mmd_scales) <= 0:
            raise ValueError(f"mmd_scales must be positive numbers, got {mmd_scales!r}.")
        self.prior_kind = prior
        self.prior_kwargs = {
            "variances": None if prior_variances is None else [float(v) for v in prior_variances],
            "learned": bool(learn_prior), "df": float(prior_df),
            "mixture_locs": None if mixture_locs is None else [[float(v) for v in loc]
                                                               for loc in mixture_locs],
            "mixture_scale": float(mixture_scale), "spike_weight": float(spike_weight),
            "spike_scale": float(spike_scale)}
        # Validate the prior before the networks are built (a clear error, early).
        distributions.StructuredPrior(prior, self.latent_dim, **self.prior_kwargs)

    def _build_layers(self):
        super()._build_layers()
        self.prior = distributions.StructuredPrior(self.prior_kind, self.latent_dim, name="prior",
                                                   **self.prior_kwargs)

    def build(self, input_shape=None):
        if not self.prior.built:
            self.prior.build()
        super().build(input_shape)

    def get_config(self):
        kw = self.prior_kwargs
        return {**super().get_config(), "beta": self.beta, "alpha": self.alpha,
                "divergence": self.divergence, "prior": self.prior_kind,
                "prior_variances": kw["variances"], "learn_prior": kw["learned"],
                "prior_df": kw["df"], "mixture_locs": kw["mixture_locs"],
                "mixture_scale": kw["mixture_scale"], "spike_weight": kw["spike_weight"],
                "spike_scale": kw["spike_scale"], "mmd_scales": self.mmd_scales}

    # ---------------------------------------------------------------- prior
    def prior_distribution(self):
        """p(z) as a `tfp.distributions` object (event shape [latent_dim])."""
        return self.prior.distribution()

    @property
    def analytic_kl(self):
        return self.prior_kind in ANALYTIC_KL_PRIORS

    def _tfp_seed(self, training, purpose):
        """An int32 [2] seed for TFP sampling: (seed, global_step, purpose) when training, the
        evaluation seed generator otherwise."""
        if training:
            return seeds.as_tfp_seed(self.training_seed(purpose))
        return tf.cast(keras.random.randint((2,), 0, 2**31 - 1, seed=self.eval_seed_generator),
                       tf.int32)

    def divergence_estimate(self, prior, prior_samples, mean, logvar, z):
        """D(q(z), p(z)) on one batch (see the module docstring)."""
        if self.divergence == "mmd_imq":
            return mmd_imq(prior_samples, z, self.mmd_scales)
        return inclusive_kl(prior, prior_samples, mean, logvar)

    def sample(self, n):
        """n observations decoded from prior samples z ~ p(z)."""
        z = self.prior_distribution().sample(sample_count(n), seed=self._tfp_seed(False, 0))
        return self.decode_mean(z)

    # ---------------------------------------------------------------- losses
    def compute_loss_terms(self, x, training):
        x = self.check_images(x)
        mean, logvar, z = self.posterior_sample(x, training)
        recon = self.reconstruction_loss(x, z, training)
        prior = self.prior_distribution()
        kl = tf.reduce_mean(kl_to_prior(prior, mean, logvar, z, analytic=self.analytic_kl))
        prior_samples = prior.sample(tf.shape(mean)[0],
                                     seed=self._tfp_seed(training, _PRIOR_SAMPLES))
        divergence = self.divergence_estimate(prior, prior_samples, mean, logvar, z)
        return self.loss_terms(recon + self.beta * kl + self.alpha * divergence, recon, kl,
                               {"divergence": divergence})
