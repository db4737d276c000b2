"""DC-IGN (Kulkarni et al. 2015, "Deep Convolutional Inverse Graphics Network"; supervised),
docs/methods.md §12.

A VAE (loss = recon + β·KL, β = 1) trained from batches in which ONE chosen factor varies and all
others are fixed. Latent j is assigned to the j-th factor of the data set that takes more than one
value (dSprites: shape, scale, orientation, posX, posY → latents 0–4); latents beyond the number
of such factors are unassigned. `latents_per_factor` gives a factor a block of consecutive latents
instead (as the paper's intrinsic properties had a group of latents): e.g. [1, 1, 2, 1, 1] gives
dSprites' orientation, a circle, which one real number can only cover with a jump, latents 2–3.

For a batch in which factor k varies (its assigned latent is the *active* one), the clamp acts on
the encoder's outputs, the posterior parameters (μ, log σ²), before the reparameterised sample, as
in the authors' implementation (willwhitney/dc-ign, where the clamp and gradient filter sit on the
encoder's mean and variance heads):

- forward: every latent except the active one has its μ and log σ² replaced by their batch means
  ("clamped"), so z_ij = μ̄_j + σ̄_j·ε_ij and the decoder can explain the batch's variation only
  through the active latent;
- backward: the active latent's parameters get their normal gradient; each clamped parameter p_ij
  gets invariance_weight · (p_ij − mean_i p_ij)/B instead (whatever the upstream gradient): the
  gradient of invariance_weight · mean_i ½ Σ_j (p_ij − p̄_j)² with p̄ held fixed. Per example that
  is exactly the paper's "difference from the batch mean"; the 1/B is the same batch averaging
  every other term of the loss gets (the authors summed the loss over the batch), so the
  invariance gradient stands to the reconstruction gradient as in the paper.

The KL term is that of each example's own (unclamped) posterior, so every latent is regularised
in every batch; the clamp changes only what the decoder is fed. (In the authors' code the gradient
filter also drops the KL gradient of the clamped latents; with it, nothing but a latent's own
batches, a fifth of all on dSprites, holds its posterior near the prior, and in our run the KL
kept growing.) The flip side: a latent's reconstruction gradient arrives in one batch type out
of K while its KL acts in all of them, so β = 1 weighs its KL K times as much as in a plain VAE;
β ≈ 1/K restores the plain VAE's balance (docs/results/dc_ign.md: 0.1–0.2 on dSprites). Clamping μ rather than the sample matters: clamping z would make the
invariance gradient pull the noise σ·ε towards its batch mean too and so shrink every posterior
σ, paying KL for no information.

Batch types (`single_factor_stream`): one type per varying factor, plus a "free" type standing in
for the paper's "intrinsic" batches, drawn with relative frequencies 1 : 1 : … : `free_batch_weight`
(the paper's ratio is about 1 : … : 10, factors : intrinsic; docs/methods.md §12). On
ground-truth data every variation belongs to a factor, so there is nothing left for intrinsic
batches to vary alone: the free batch draws all
factors i.i.d. and clamps no latent (an ordinary VAE update that keeps the autoencoder good on
general images); `free_batch_weight=0` trains from single-factor batches only. On dSprites the
two work best in sequence (docs/results/dc_ign.md): single-factor batches alone assign shape, scale and position
but leave the decoder drawing blobs, which have no orientation; continuing that model with free
batches mixed in (`trainers.train --init_from`) lets orientation's latent take the angle. Another reading of
the paper's split on dSprites: shape is the sprite's identity (intrinsic) and scale, orientation
and position are extrinsic transformations; `factor_batch_weights=[10, 1, 1, 1, 1]` with
`free_batch_weight=0` gives that 10 : 1 : 1 : 1 : 1 mix. In a single-factor
batch the fixed factors are one uniformly drawn combination and the varying factor takes i.i.d.
uniform values. Batch k of the stream is a pure function of (seed, start_step + k).

`trainers.train` trains this model from that stream through the `training_stream` hook. A batch
given without a batch type (e.g. `fit(images)`) is a free batch; `evaluate` scores the plain ELBO.
`representation(x)` is the posterior mean; `assigned_latents(data)` names the latents of each
factor.
"""
import keras
import numpy as np
import tensorflow as tf

from zoo import seeds
from zoo.models.base import VAE, non_negative

#: The active-latent label of a free batch (no latent clamped).
FREE = -1


def clamp_latents(params, active, invariance_weight=1.0):
    """DC-IGN's clamp with its invariance gradient, for one [B, d] tensor of posterior parameters
    (μ or log σ²).

    active: [d] mask (1 for the active latent(s), 0 for clamped ones).
    Forward: active columns pass unchanged, clamped columns become their batch mean.
    Backward: the upstream gradient for the active columns; invariance_weight · (p − batch mean)/B
    for the clamped columns, independent of the upstream gradient (module docstring).
    """
    active = tf.cast(active, params.dtype)
    invariance_weight = tf.cast(invariance_weight, params.dtype)

    @tf.custom_gradient
    def _clamp(values):
        batch_mean = tf.reduce_mean(values, axis=0, keepdims=True)
        clamped = active * values + (1.0 - active) * batch_mean
        batch_size = tf.cast(tf.shape(values)[0], values.dtype)

        def gradient(upstream):
            return (active * upstream
                    + invariance_weight * (1.0 - active) * (values - batch_mean) / batch_size)

        return clamped, gradient

    return _clamp(params)


def invariance_term(params, active):
    """mean_i ½ Σ_j (1 − active_j)(p_ij − p̄_j)²: the quantity whose gradient `clamp_latents`
    gives the clamped columns (for logging)."""
    deviation = params - tf.reduce_mean(params, axis=0, keepdims=True)
    return tf.reduce_mean(tf.reduce_sum(0.5 * (1.0 - active) * tf.square(deviation), axis=-1))


def latent_groups(latents_per_factor):
    """The latents of each batch type: consecutive blocks of the given sizes, e.g.
    [1, 1, 2] → [[0], [1], [2, 3]]."""
    groups, start = [], 0
    for count in latents_per_factor:
        groups.append(list(range(start, start + count)))
        start += count
    return groups


def active_mask(batch_type, latent_dim, latents_per_factor=None):
    """[d] mask of the active latents of a batch of type `batch_type` (the j-th varying factor
    varies): latent j, or the j-th block of `latents_per_factor`; all ones for a free batch
    (batch_type = FREE)."""
    batch_type = tf.cast(batch_type, tf.int32)
    counts = [1] * latent_dim if latents_per_factor is None else latents_per_factor
    masks = np.zeros((len(counts), latent_dim), np.float32)
    for row, group in enumerate(latent_groups(counts)):
        masks[row, group] = 1.0
    return tf.where(batch_type < 0, tf.ones([latent_dim]),
                    tf.gather(masks, tf.maximum(batch_type, 0)))


def varying_factors(data):
    """Indices of the data set's factors with more than one value, in order (batch type j ↔ the
    j-th)."""
    return [k for k, size in enumerate(data.factor_sizes) if size > 1]


def assigned_latents(data, latents_per_factor=None):
    """{factor name: [latent indices]} of DC-IGN's assignment on `data`."""
    varying = varying_factors(data)
    counts = [1] * len(varying) if latents_per_factor is None else latents_per_factor
    return {data.factor_names[k]: group for k, group in zip(varying, latent_groups(counts))}


def batch_type_weights(data, free_batch_weight=10.0, factor_batch_weights=None):
    """Relative frequencies of the batch types: one per varying factor (`factor_batch_weights`,
    default 1 each), then the free type (`free_batch_weight`)."""
    count = len(varying_factors(data))
    factor_weights = [1.0] * count if factor_batch_weights is None else [
        float(w) for w in factor_batch_weights]
    if len(factor_weights) != count:
        names = [data.factor_names[k] for k in varying_factors(data)]
        raise ValueError(f"factor_batch_weights needs one weight per varying factor of "
                         f"{data.name} ({count}: {names}), got {len(factor_weights)}.")
    weights = factor_weights + [float(free_batch_weight)]
    if not all(np.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"batch type weights must be finite, ≥ 0 and not all 0; got factor "
                         f"weights {factor_weights} and free_batch_weight {free_batch_weight!r}.")
    return weights


def _single_factor_batch_fn(data, batch_size, seed, free_batch_weight, factor_batch_weights):
    """step → (factors int64 [B, K], batch type int32 scalar), a pure function of
    (seed, step)."""
    varying = varying_factors(data)
    if not varying:
        raise ValueError(f"{data.name} has no factor with more than one value.")
    weights = np.asarray(batch_type_weights(data, free_batch_weight, factor_batch_weights))
    log_weights = tf.constant(np.log(np.maximum(weights, 1e-30))[None], tf.float32)
    free_type = len(varying)
    factor_of_type = tf.constant(varying + [0], tf.int64)
    sizes = tf.constant(data.factor_sizes, tf.int64)
    columns = tf.range(data.num_factors, dtype=tf.int64)

    def make(step):
        draw_seeds = [seeds.derive(seed, step, seeds.DC_IGN_BATCHES, i) for i in range(4)]
        batch_type = tf.cast(tf.random.stateless_categorical(
            log_weights, 1, draw_seeds[0], dtype=tf.int32)[0, 0], tf.int32)
        free = data.sample_factors_tf(batch_size, draw_seeds[1])
        fixed = tf.tile(data.sample_factors_tf(1, draw_seeds[2]), [batch_size, 1])
        factor = factor_of_type[batch_type]
        values = tf.random.stateless_uniform([batch_size], draw_seeds[3], minval=0,
                                             maxval=sizes[factor], dtype=tf.int64)
        single = tf.where(columns[None, :] == factor, values[:, None], fixed)
        is_free = tf.equal(batch_type, free_type)
        factors = tf.where(is_free, free, single)
        return factors, tf.where(is_free, FREE, batch_type)

    return make


def single_factor_batch(data, batch_size, seed, step, free_batch_weight=10.0,
                        factor_batch_weights=None):
    """(factors [B, K] int64, batch type) of batch `step` of `single_factor_stream` (numpy)."""
    factors, batch_type = _single_factor_batch_fn(
        data, int(batch_size), int(seed), free_batch_weight,
        factor_batch_weights)(tf.constant(step, tf.int64))
    return factors.numpy(), int(batch_type)


def single_factor_stream(data, batch_size, seed, start_step=0, free_batch_weight=10.0,
                         factor_batch_weights=None):
    """Infinite `tf.data` stream of (images [B, H, W, C], batch type [B] int32) batches: in a
    batch of type j the j-th varying factor varies and the others are fixed (its latents are the
    active ones); a free batch (type FREE = −1) draws all factors i.i.d. Types are drawn with
    frequencies `batch_type_weights`; batch k is a pure function of (seed, start_step + k)."""
    batch_size, seed, start_step = int(batch_size), int(seed), int(start_step)
    if batch_size < 2:
        raise ValueError("DC-IGN batches need at least 2 observations (a batch mean to clamp to).")
    make = _single_factor_batch_fn(data, batch_size, seed, free_batch_weight, factor_batch_weights)
    shape = (batch_size,) + tuple(data.observation_shape)

    def batch(step):
        factors, active = make(step)
        images = tf.ensure_shape(data.images_from_factors_tf(factors), shape)
        return images, tf.fill([batch_size], active)

    options = tf.data.Options()
    options.deterministic = True
    return (tf.data.Dataset.counter(start=start_step, dtype=tf.int64)
            .map(batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .with_options(options).prefetch(tf.data.AUTOTUNE))


def single_factor_variation(representation_fn, data, seed=0, batches_per_factor=50,
                            batch_size=64, num_global=5000):
    """How much each code varies when one factor varies alone: DC-IGN's own criterion.

    For each varying factor k: `batches_per_factor` batches of type k of `single_factor_batch`
    (factor k takes i.i.d. uniform values, the others one uniformly drawn combination). Entry [k, j] is the mean over those batches of code j's within-batch standard
    deviation divided by its standard deviation over `num_global` i.i.d. points (0 for a constant
    code). A trained DC-IGN should show a dominant diagonal: in factor k's batches its assigned
    latent carries the variation and the clamped ones stay put. A pure function of
    (data, representation_fn, seed).

    Returns {"factor_names": the varying factors, "matrix": [K_varying, d] array}.
    """
    rng = np.random.default_rng(seed)
    varying = varying_factors(data)
    codes = np.asarray(representation_fn(data.images_from_factors(data.sample_factors(
        num_global, rng), rng)))
    global_std = codes.std(axis=0)
    matrix = np.zeros((len(varying), codes.shape[1]))
    for row in range(len(varying)):
        only_this_type = np.eye(len(varying))[row]
        for step in range(batches_per_factor):
            factors, _ = single_factor_batch(data, batch_size, seed, step, free_batch_weight=0,
                                             factor_batch_weights=only_this_type)
            batch_std = np.asarray(representation_fn(data.images_from_factors(factors, rng))).std(0)
            matrix[row] += np.divide(batch_std, global_std, out=np.zeros_like(batch_std),
                                     where=global_std > 0)
    return {"factor_names": [data.factor_names[k] for k in varying],
            "matrix": matrix / batches_per_factor}


@keras.saving.register_keras_serializable(package="zoo")
class DCIGN(VAE):
    """DC-IGN: a VAE trained from single-factor batches with clamped latents (module docstring).

    Args:
      beta: KL weight (1: the VAE objective of the paper; see the module docstring for 1/K).
      free_batch_weight: relative frequency of free batches against 1 per factor (10).
      factor_batch_weights: relative frequencies of the single-factor batch types, one per
        varying factor of the training data in order (None: 1 each). E.g. [10, 1, 1, 1, 1] with
        free_batch_weight=0 on dSprites treats shape as the paper's intrinsic property (the
        sprite's identity; scale, orientation and position are the extrinsic transformations).
      invariance_weight: factor on the clamped parameters' gradient (p − p̄)/B (1: the paper's
        rule).
      latents_per_factor: how many consecutive latents each varying factor gets, in order (None:
        1 each).
      **kwargs: the base `VAE`'s arguments. latent_dim must be at least the number of latents
        assigned on the data set it is trained on.

    Logged terms: loss, recon, kl (of the unclamped posterior), elbo, invariance (`invariance_term`
    of μ plus that of log σ²: the quantity whose gradient, times invariance_weight, the clamped
    parameters receive; 0 for free batches).
    """

    regularizer_terms = ("invariance",)

    def __init__(self, beta=1.0, free_batch_weight=10.0, invariance_weight=1.0,
                 factor_batch_weights=None, latents_per_factor=None, **kwargs):
        super().__init__(**kwargs)
        self.beta = non_negative("beta", beta)
        self.free_batch_weight = non_negative("free_batch_weight", free_batch_weight)
        self.factor_batch_weights = (None if factor_batch_weights is None else
                                     [non_negative("factor_batch_weights", w)
                                      for w in factor_batch_weights])
        self.invariance_weight = non_negative("invariance_weight", invariance_weight)
        if latents_per_factor is not None:
            latents_per_factor = [int(count) for count in latents_per_factor]
            if not latents_per_factor or min(latents_per_factor) < 1:
                raise ValueError(f"latents_per_factor must list counts ≥ 1, got "
                                 f"{latents_per_factor}.")
            if sum(latents_per_factor) > self.latent_dim:
                raise ValueError(f"latents_per_factor {latents_per_factor} assigns "
                                 f"{sum(latents_per_factor)} latents but latent_dim is "
                                 f"{self.latent_dim}.")
        self.latents_per_factor = latents_per_factor

    def get_config(self):
        return {**super().get_config(), "beta": self.beta,
                "free_batch_weight": self.free_batch_weight,
                "invariance_weight": self.invariance_weight,
                "factor_batch_weights": self.factor_batch_weights,
                "latents_per_factor": self.latents_per_factor}

    def training_stream(self, data, batch_size, seed, start_step=0):
        """`single_factor_stream` of `data` (the `trainers.train` hook)."""
        count = len(varying_factors(data))
        if self.latents_per_factor is None and self.latent_dim < count:
            raise ValueError(f"DC-IGN assigns one latent per varying factor: {data.name} needs "
                             f"latent_dim ≥ {count}, got {self.latent_dim}.")
        if self.latents_per_factor is not None and len(self.latents_per_factor) != count:
            raise ValueError(f"latents_per_factor needs one count per varying factor of "
                             f"{data.name} ({count}), got {self.latents_per_factor}.")
        return single_factor_stream(data, batch_size * self.batches_per_step, seed, start_step,
                                    self.free_batch_weight, self.factor_batch_weights)

    def compute_loss_terms(self, x, training, batch_type=FREE):
        """Loss terms with the posterior clamped for a batch of type `batch_type` (the j-th
        varying factor varies; FREE: nothing clamped, the plain β-VAE terms)."""
        posterior = self.encode(x, training=training)
        active = active_mask(batch_type, self.latent_dim, self.latents_per_factor)
        mean, logvar = (clamp_latents(posterior[key], active, self.invariance_weight)
                        for key in ("mean", "logvar"))
        recon = self.reconstruction_loss(x, self.latent_sample(mean, logvar, training), training)
        kl, _ = self.standard_kl(posterior["mean"], posterior["logvar"])
        invariance = (invariance_term(posterior["mean"], active)
                      + invariance_term(posterior["logvar"], active))
        return self.loss_terms(recon + self.beta * kl, recon, kl,
                               {"invariance": tf.stop_gradient(invariance)})

    def train_step(self, data):
        x, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        batch_type = FREE if labels is None else tf.reshape(labels, [-1])[0]
        return self.optimizer_step(
            lambda: self.compute_loss_terms(x, training=True, batch_type=batch_type))
