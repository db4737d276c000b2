"""CascadeVAE and CascadeVAE-C (Jeong & Song, ICML 2019), docs/methods.md §8.

CascadeVAE learns m continuous latents z and one discrete code d (one-hot over S categories) that
has no encoder: d is inferred from the decoder's likelihood.

Information cascading. Every latent dimension's KL term starts at weight β_h; the dimensions are
relieved to β_l one at a time in a fixed order (dimension 0 first). With stage s = ⌊t/r⌋ and the
discrete code starting at stage s_d (t = s_d·r):

    relieved(t) = min(s + 1, m)   while s < s_d
                = min(s, m)       from s_d on (no new relief in the stage where d starts)

so at t = 0 one dimension is already at β_l. Defaults (m = 6, r = 20,000, s_d = 4): d starts at
80,000 and all six dimensions are relieved from 120,000. t is the model's saved `global_step`, so
`load_model` + `fit` (or a resumed `trainers.train` run) continues the same schedule.

Alternating step. The decoder reads concat(z, d); before the discrete stage d is the zero vector.
From the discrete stage on, each training iteration

1. encodes x and draws ε once (a pure function of seed and step): z = μ + σ·ε;
2. computes the unary costs u[i, k] = −log p(x_i | z_i, e_k) for all S categories in ONE decoder
   pass on an S·B batch (no gradient is recorded for it);
3. solves min_d Σ_i u[i, d_i] + λ'·Σ_k n_k(n_k − 1)/2 exactly (`zoo.assignment`: OR-Tools
   min-cost flow, or the scipy fallback) inside the training graph through `tf.numpy_function`;
4. takes the gradient step on the same x, ε and the assignment d* (a constant):
   loss = −log p(x | z, d*) + Σ_j β_j·KL_j + weight decay.

λ'·Σ pairs does not depend on the network's parameters given d*, so it only steers the assignment.

Speed. The S·B decoder pass already contains the forward pass of the gradient step (the rows of
d*). With `reuse_unary_pass=True` (default) and a decoder made of the layers that step supports,
the discrete-stage step backpropagates through the decoder by hand from those activations
(`zoo.models.cascade_vae_fast_step`): the β-VAE step plus S − 1 extra decoder forward passes. Any
other decoder, or `reuse_unary_pass=False`, takes a second forward pass on the B chosen rows under
the tape (automatic differentiation). Both give the same loss and gradients up to float rounding.

Many devices. Under a tf.distribute strategy (`trainers.train --strategy`) the assignment is
solved over the GLOBAL batch: the replicas' unary costs are gathered, each replica solves the same
problem and keeps its rows, so the run is the single-device run at the same global batch (the pair
penalty couples every row of the batch; per-replica solutions would be another objective). The
step function is then traced for the stage the run is in and traced again when the discrete stage
starts, instead of branching in the graph: tf.distribute cannot synchronise replicas inside a graph
conditional.

Evaluation. The code of an image is d̂(x) = argmin_k u(x, k) with z = μ(x) (ε = 0); `encode`
returns it ("category" [B, 1] int32, "discrete" one-hot [B, S]) and `representation(x)` is
concat(μ(x), d̂(x)) with the category index as its LAST column. Before the discrete stage the decoder
has only seen d = 0, so the code is reported as category 0 with d = 0 (no information).

Choices where the slides are silent (facts from the reference implementation, Jeong & Song's
TensorFlow code): softplus standard deviation; the unary uses the same sampled z as the gradient
step; L2 weight decay on every conv/dense kernel (encoder, posterior head, decoder) with the slim
convention penalty = weight_decay·½Σw²; Adam 1e-4 constant, restarted whenever a dimension is
relieved (the reference builds one Adam per set of KL weights, so each relief starts from fresh
moments and a fresh bias correction; the discrete start, which keeps the weights, does not);
conv and transposed-conv kernels drawn He-normal (slim's `variance_scaling_initializer`), dense
kernels Glorot uniform. β_l defaults to
1.0, the value of the seed's dSprites table (the reference code's default is 0.1).
"""
import keras
import numpy as np
import tensorflow as tf

from zoo import assignment, networks, replicas
from zoo.checks import check_int
from zoo.models import cascade_vae_fast_step as fast_step
from zoo.models.base import VAE, check_codes, non_negative, sample_count, zeros_for_none


def cascade_schedule(step, latent_dim=6, stage_steps=20_000, discrete_stage=4):
    """(number of relieved dimensions, discrete stage active) at training step `step`.

    Works on Python ints (returns ints and a bool) and on tensors (returns int64 and bool tensors).
    discrete_stage=None: no discrete stage (CascadeVAE-C), relieved = min(⌊t/r⌋ + 1, m).
    """
    if not tf.is_tensor(step):
        stage = int(step) // int(stage_steps)
        if discrete_stage is None or stage < discrete_stage:
            return min(stage + 1, latent_dim), False
        return min(stage, latent_dim), True
    stage = tf.cast(step, tf.int64) // int(stage_steps)
    before = tf.minimum(stage + 1, latent_dim)
    if discrete_stage is None:
        return before, tf.constant(False)
    active = stage >= int(discrete_stage)
    return tf.where(active, tf.minimum(stage, latent_dim), before), active


def restart_optimizer(optimizer):
    """Zero an optimizer's step count and slots (Adam's moments): the state of a freshly built
    optimizer of the same settings. The learning rate is kept."""
    learning_rate = optimizer.learning_rate  # its variable (a tensor for a schedule: no variable)
    for variable in optimizer.variables:
        if variable is not learning_rate:
            variable.assign(tf.zeros(variable.shape, variable.dtype))


class InformationCascade(VAE):
    """What CascadeVAE and CascadeVAE-C share: information cascading (per-dimension KL weights
    β_h, relieved to β_l one dimension per stage), weight decay, He-normal conv kernels and the
    optimiser restart at each relief (module docstring). Its decoder reads z only; `CascadeVAE`
    adds the discrete code.

    Args:
      latent_dim: m, continuous dimensions.
      beta_high, beta_low: β_h (10) before a dimension is relieved, β_l (1.0) after.
      stage_steps: r, iterations per cascade stage (20,000; make it small for short runs).
      weight_decay: L2 on conv/dense kernels, penalty weight_decay·½Σw² (4e-5).
      conv_initializer: Keras initializer name for the conv and transposed-conv kernels
        ("he_normal", the reference's slim `variance_scaling_initializer`: truncated normal,
        variance 2/fan_in); dense kernels keep Glorot uniform, as in the reference.
      restart_optimizer_on_relief: zero the optimizer's moments and step count at the step where
        a dimension is relieved, as the reference's one-Adam-per-stage training does (True).
      posterior: "softplus" (the reference's std parameterisation); other VAE args as in `VAE`.
    """

    regularizer_terms = ("weighted_kl", "relieved_dims", "discrete_active")
    #: s_d, the stage in which the discrete code starts; None: no discrete code.
    discrete_stage = None

    def __init__(self, latent_dim, beta_high=10.0, beta_low=1.0, stage_steps=20_000,
                 weight_decay=4e-5, conv_initializer="he_normal",
                 restart_optimizer_on_relief=True, posterior="softplus", **kwargs):
        super().__init__(latent_dim=latent_dim, posterior=posterior, **kwargs)
        self.beta_high = non_negative("beta_high", beta_high)
        self.beta_low = non_negative("beta_low", beta_low)
        self.stage_steps = check_int("stage_steps", stage_steps, 1)
        self.weight_decay = non_negative("weight_decay", weight_decay)
        if not isinstance(restart_optimizer_on_relief, bool):
            raise TypeError("restart_optimizer_on_relief must be True or False, got "
                            f"{restart_optimizer_on_relief!r}.")
        self.restart_optimizer_on_relief = restart_optimizer_on_relief
        self.conv_initializer = conv_initializer

    def _build_layers(self):
        super()._build_layers()
        networks.initialize_conv_kernels([self.encoder, self.decoder], self.conv_initializer)

    def build(self, input_shape=None):
        super().build(input_shape)
        if self.weight_decay > 0:
            # Once every kernel exists (the posterior head's is made by the base build).
            # slim's l2_regularizer(w) = w·½Σθ²; Keras' L2(l2) = l2·Σθ².
            networks.regularize_kernels(
                [self.encoder, self.posterior_head, self.decoder],
                keras.regularizers.L2(self.weight_decay / 2))

    def get_config(self):
        return {**super().get_config(), "beta_high": self.beta_high, "beta_low": self.beta_low,
                "stage_steps": self.stage_steps, "weight_decay": self.weight_decay,
                "conv_initializer": self.conv_initializer,
                "restart_optimizer_on_relief": self.restart_optimizer_on_relief}

    # ---------------------------------------------------------------- schedule
    def schedule(self, step=None):
        """(relieved dimensions, discrete active) at `step` (default: the saved global_step)."""
        step = self.global_step.value if step is None else step
        return cascade_schedule(step, self.latent_dim, self.stage_steps, self.discrete_stage)

    def kl_weights(self, step=None):
        """Per-dimension KL weights [m]: β_l for the relieved dimensions 0 … relieved−1, else β_h."""
        relieved, _ = self.schedule(step)
        index = tf.range(self.latent_dim, dtype=tf.int64)
        return tf.where(index < tf.cast(relieved, tf.int64), self.beta_low, self.beta_high)

    def relief_step(self, step=None):
        """Whether a dimension is relieved at `step` (default: the saved global_step), i.e. the
        number of relieved dimensions differs from the previous step's (bool tensor)."""
        step = tf.cast(self.global_step.value if step is None else step, tf.int64)
        now, _ = self.schedule(step)
        before, _ = self.schedule(tf.maximum(step - 1, 0))
        return tf.not_equal(now, before)

    # ---------------------------------------------------------------- losses
    def posterior_parameters(self, x, training=False):
        """(μ, log σ²) of q(z|x) for checked images x (no discrete code)."""
        return self.posterior_head(self.encoder(x, training=training))

    def weighted_kl(self, kl_per_dim):
        """Σ_j β_j(t)·KL_j for the batch mean KL of each dimension [m]."""
        return tf.reduce_sum(tf.cast(self.kl_weights(), kl_per_dim.dtype) * kl_per_dim)

    def cascade_terms(self, recon, kl, weighted_kl):
        """The logged terms of a step: loss = recon + weighted_kl (+ weight decay)."""
        relieved, active = self.schedule()
        return self.loss_terms(recon + weighted_kl, recon, kl, {
            "weighted_kl": weighted_kl, "relieved_dims": tf.cast(relieved, tf.float32),
            "discrete_active": tf.cast(active, tf.float32)})

    def decoder_input(self, x, z, mean, training):
        """What the decoder reads in the loss for samples z [B, m]: z itself here; CascadeVAE
        appends its discrete code."""
        return z

    def compute_loss_terms(self, x, training):
        x = self.check_images(x)
        mean, logvar = self.posterior_parameters(x, training)
        z = self.latent_sample(mean, logvar, training)
        recon = -tf.reduce_mean(self.likelihood.log_prob(
            x, self.decoder(self.decoder_input(x, z, mean, training), training=training)))
        kl, kl_per_dim = self.standard_kl(mean, logvar)
        return self.cascade_terms(recon, kl, self.weighted_kl(kl_per_dim))

    # ---------------------------------------------------------------- training step
    def autodiff_loss_and_gradients(self, x):
        """Loss terms and gradients of one step by automatic differentiation (any stage)."""
        with tf.GradientTape() as tape:
            terms = self.compute_loss_terms(x, training=True)
        variables = self.trainable_variables
        return terms, zeros_for_none(tape.gradient(terms["loss"], variables), variables)

    def loss_and_gradients(self, x):
        """Loss terms and gradients of the training step on checked images x."""
        return self.autodiff_loss_and_gradients(x)

    def train_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        saved_state = self.begin_training_step()
        terms, gradients = self.loss_and_gradients(self.check_images(x))
        if self.restart_optimizer_on_relief:
            if not self.optimizer.built:
                self.optimizer.build(self.trainable_variables)
            replicas.run_if(self.relief_step(), lambda: restart_optimizer(self.optimizer),
                            cross_replica=True)
        nonfinite = self.apply_finite_update(self.optimizer, gradients, self.trainable_variables,
                                             terms)
        return self.end_training_step(terms, nonfinite, saved_state)


@keras.saving.register_keras_serializable(package="zoo")
class CascadeVAE(InformationCascade):
    """CascadeVAE: information cascading + alternating discrete/continuous optimisation.

    Args:
      latent_dim: m, continuous dimensions (6).
      num_categories: S, categories of the discrete code (3 for dSprites' shape).
      beta_high, beta_low, stage_steps, weight_decay, conv_initializer,
        restart_optimizer_on_relief, posterior: as in `InformationCascade`.
      discrete_stage: s_d, the stage in which the discrete code starts (4: t = 80,000).
      lambda_prime: λ', penalty per unordered same-category pair in the assignment (0.001).
      solver: assignment solver, "auto" (OR-Tools if installed), "min_cost_flow" or
        "linear_sum_assignment".
      reuse_unary_pass: whether a discrete-stage step backpropagates through the activations of
        the unary pass (`zoo.models.cascade_vae_fast_step`) when the decoder allows it (True), or
        always by automatic differentiation through a second decoder pass (False).
    """

    def __init__(self, latent_dim=6, num_categories=3, beta_high=10.0, beta_low=1.0,
                 stage_steps=20_000, discrete_stage=4, lambda_prime=0.001, weight_decay=4e-5,
                 conv_initializer="he_normal", solver="auto", restart_optimizer_on_relief=True,
                 posterior="softplus", reuse_unary_pass=True, **kwargs):
        super().__init__(latent_dim=latent_dim, beta_high=beta_high, beta_low=beta_low,
                         stage_steps=stage_steps, weight_decay=weight_decay,
                         conv_initializer=conv_initializer,
                         restart_optimizer_on_relief=restart_optimizer_on_relief,
                         posterior=posterior, **kwargs)
        self.num_categories = check_int("num_categories", num_categories, 2)
        self.discrete_stage = check_int("discrete_stage", discrete_stage, 0)
        self.lambda_prime = non_negative("lambda_prime", lambda_prime)
        if solver != "auto" and solver not in assignment.SOLVERS:
            raise ValueError(f"Unknown assignment solver {solver!r}; expected 'auto' or one of "
                             f"{assignment.SOLVERS}.")
        self.solver = solver
        if not isinstance(reuse_unary_pass, bool):
            raise TypeError(f"reuse_unary_pass must be True or False, got {reuse_unary_pass!r}.")
        self.reuse_unary_pass = reuse_unary_pass
        self._traced_stage_is_discrete = None

    # ---------------------------------------------------------------- config
    @property
    def decoder_input_dim(self):
        return self.latent_dim + self.num_categories

    @property
    def discrete_code_sizes(self):
        return (self.num_categories,)

    def get_config(self):
        return {**super().get_config(), "num_categories": self.num_categories,
                "discrete_stage": self.discrete_stage, "lambda_prime": self.lambda_prime,
                "solver": self.solver, "reuse_unary_pass": self.reuse_unary_pass}

    def _discrete_active(self):
        return self.schedule()[1]

    def _in_discrete_stage(self, discrete, continuous):
        """`discrete()` in the discrete stage, else `continuous()`. On one device a graph
        conditional on the step; under a tf.distribute strategy the step function is traced for
        the stage the run is in (`make_train_function`; `fit` traces it again when the stage
        starts), because the discrete branch synchronises the replicas (the assignment is solved
        over the global batch) and tf.distribute cannot do that inside a graph conditional."""
        if replicas.in_replicas():
            return discrete() if self._traced_stage_is_discrete else continuous()
        return tf.cond(self._discrete_active(), discrete, continuous)

    def _stage_at_current_step(self):
        return bool(self.schedule(int(self.global_step.numpy()))[1])

    def make_train_function(self, force=False):
        if self.distribute_strategy.num_replicas_in_sync == 1:
            return super().make_train_function(force)
        if self.train_function is not None and not force \
                and self._traced_stage_is_discrete == self._stage_at_current_step():
            return self.train_function
        self._traced_stage_is_discrete = self._stage_at_current_step()
        return super().make_train_function(force=True)

    def fit(self, *args, callbacks=None, **kwargs):
        """`fit`; under a tf.distribute strategy it traces the step again when the discrete stage
        starts (`_in_discrete_stage`)."""
        callbacks = list(callbacks or [])
        if self.distribute_strategy.num_replicas_in_sync > 1:
            callbacks.insert(0, _RetraceAtDiscreteStart())
        return super().fit(*args, callbacks=callbacks, **kwargs)

    # ---------------------------------------------------------------- discrete code
    def unary_costs(self, x, z, decoder=None):
        """u[i, k] = −log p(x_i | z_i, e_k) for every category k, [B, S], from one decoder pass
        on the S·B batch concat(tile(z), e_k). `decoder`: what runs that pass (default the
        decoder itself; the fast step's records the activations)."""
        x = tf.convert_to_tensor(x, tf.float32)
        z = tf.convert_to_tensor(z, tf.float32)
        s = self.num_categories
        batch = tf.shape(z)[0]
        codes = tf.repeat(tf.eye(s, dtype=z.dtype), batch, axis=0)        # [S·B, S], k-major
        params = (decoder or self.decoder)(tf.concat([tf.tile(z, [s, 1]), codes], axis=-1))
        params = tf.reshape(params, tf.concat([[s, batch], tf.shape(params)[1:]], axis=0))
        return -tf.transpose(self.likelihood.log_prob(x, params))          # [S, B] → [B, S]

    def _solve(self, unary):
        # A diverged step's costs are not finite, and the solver refuses them: solve zeros instead
        # (some assignment); the step's loss is not finite either, so the divergence guard drops
        # the step (`apply_finite_update`).
        unary = np.where(np.isfinite(unary), unary, 0.0)
        labels = assignment.assign_labels(unary, self.lambda_prime, self.solver)
        return labels.astype(np.int32)

    def assignment_labels(self, unary):
        """d*_i [B] int32: the exact solution of the inner problem on the unary costs [B, S] (a
        constant: no gradient flows through it)."""
        unary = tf.stop_gradient(unary)
        # Under a tf.distribute strategy: solved over the global batch (every replica solves the
        # same problem on the gathered costs and keeps its rows), as on one device.
        everyone = replicas.gather_batch(unary)
        labels = tf.numpy_function(self._solve, [everyone], tf.int32, stateful=False,
                                   name="assignment")
        labels.set_shape(everyone.shape[:1])
        mine = replicas.my_rows(labels, tf.shape(unary)[0])
        mine.set_shape(unary.shape[:1])
        return mine

    def assign(self, x, z):
        """The training assignment d* [B, S] (one-hot, constant) at z."""
        return tf.one_hot(self.assignment_labels(self.unary_costs(x, z)), self.num_categories,
                          dtype=z.dtype)

    def infer_code(self, x, mean):
        """Evaluation code: (category [B] int32, one-hot d [B, S]) with d̂ = argmin_k u(x, k) at
        z = μ; category 0 and d = 0 before the discrete stage."""
        category = tf.argmin(self.unary_costs(x, mean), axis=-1, output_type=tf.int32)
        active = self._discrete_active()
        category = tf.where(active, category, tf.zeros_like(category))
        one_hot = tf.one_hot(category, self.num_categories, dtype=mean.dtype)
        return category, tf.where(active, one_hot, tf.zeros_like(one_hot))

    def default_code(self, batch, dtype=tf.float32):
        """d used when a caller decodes bare z [B, m]: 0 before the discrete stage, e_0 after."""
        one_hot = tf.one_hot(tf.zeros([batch], tf.int32), self.num_categories, dtype=dtype)
        return tf.where(self._discrete_active(), one_hot, tf.zeros_like(one_hot))

    # ---------------------------------------------------------------- public API
    def encode(self, x, training=False):
        """{"mean", "logvar"} of q(z|x), "category" [B, 1] int32 (the argmin-unary code at
        z = μ) and "discrete" [B, S] (its one-hot, 0 before the discrete stage)."""
        x = self.check_images(x)
        mean, logvar = self.posterior_parameters(x, training)
        category, one_hot = self.infer_code(x, mean)
        return {"mean": mean, "logvar": logvar, "category": category[:, None],
                "discrete": one_hot}

    def decode(self, z, training=False):
        """Likelihood parameters for decoder inputs [B, m + S] = concat(z, d); bare z [B, m] gets
        `default_code`."""
        z = check_codes(z)
        if z.shape[-1] == self.latent_dim:
            z = tf.concat([z, self.default_code(tf.shape(z)[0], z.dtype)], axis=-1)
        return self.decoder(z, training=training)

    def sample(self, n):
        """n images from z ~ N(0, I) and (in the discrete stage) a uniformly drawn category."""
        z = keras.random.normal((sample_count(n), self.latent_dim), seed=self.eval_seed_generator)
        category = keras.random.randint((sample_count(n),), 0, self.num_categories,
                                        seed=self.eval_seed_generator)
        one_hot = tf.one_hot(category, self.num_categories)
        d = tf.where(self._discrete_active(), one_hot, tf.zeros_like(one_hot))
        return self.decode_mean(tf.concat([z, d], axis=-1))

    # ---------------------------------------------------------------- losses
    def decoder_input(self, x, z, mean, training):
        """concat(z, d): in training d is the assignment d* at z (0 before the discrete stage),
        in evaluation the inferred code at μ."""
        if training:
            zeros = tf.zeros([tf.shape(z)[0], self.num_categories], z.dtype)
            d = self._in_discrete_stage(lambda: self.assign(x, tf.stop_gradient(z)),
                                        lambda: zeros)
        else:
            d = self.infer_code(x, mean)[1]
        return tf.concat([z, tf.stop_gradient(d)], axis=-1)

    def loss_and_gradients(self, x):
        """In the discrete stage the step reusing the unary pass where `reuse_unary_pass` and the
        decoder allow it; otherwise automatic differentiation."""
        if not (self.reuse_unary_pass and fast_step.supports(self.decoder)):
            return self.autodiff_loss_and_gradients(x)
        return self._in_discrete_stage(lambda: fast_step.loss_and_gradients(self, x),
                                       lambda: self.autodiff_loss_and_gradients(x))


class _RetraceAtDiscreteStart(keras.callbacks.Callback):
    """Under a tf.distribute strategy: trace CascadeVAE's step again when the discrete stage
    starts (see `CascadeVAE._in_discrete_stage`)."""

    def on_train_batch_begin(self, batch, logs=None):
        model = self.model
        if model._traced_stage_is_discrete != model._stage_at_current_step():
            model.make_train_function()


@keras.saving.register_keras_serializable(package="zoo")
class CascadeVAEC(InformationCascade):
    """CascadeVAE-C: information cascading only (no discrete code), m = 10 by default; one more
    dimension is relieved every `stage_steps` iterations, starting with one at t = 0."""

    def __init__(self, latent_dim=10, beta_high=10.0, beta_low=1.0, stage_steps=20_000,
                 weight_decay=4e-5, posterior="softplus", **kwargs):
        super().__init__(latent_dim=latent_dim, beta_high=beta_high, beta_low=beta_low,
                         stage_steps=stage_steps, weight_decay=weight_decay, posterior=posterior,
                         **kwargs)
