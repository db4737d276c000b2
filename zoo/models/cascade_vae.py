"""CascadeVAE and CascadeVAE-C (Jeong & Song, ICML 2019), METHODS §8.

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
d*). When the decoder is a stack of Dense / Conv2DTranspose / Reshape layers with ReLU or linear
activations (every decoder of `zoo.networks` so far), the step reuses those activations: it
gathers the chosen rows of every layer's input and output and backpropagates through the decoder
by hand (the same ops TensorFlow's registered gradients use), then through the encoder with the
tape. A discrete-stage step then costs the β-VAE step plus S − 1 extra decoder forward passes. Any
other decoder falls back to a second forward pass on the B chosen rows under the tape. In that
S·B pass, the decoder's last layer (a 4×4 stride-2 transposed convolution to 1–3 channels, which
TensorFlow runs several times slower than its FLOPs on CPU) is computed as one matmul plus an
overlap-add: the same linear map, equal to ~1e-7 relative.

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

from zoo import assignment, distributions, networks
from zoo.checks import check_int
from zoo.models.base import VAE, check_codes, non_negative, sample_count

_RELU, _LINEAR = keras.activations.get("relu"), keras.activations.get("linear")


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


def _conv_transpose_4x4_stride2(inputs, kernel):
    """conv2d_transpose(inputs, kernel, strides=2, padding="SAME") for a 4×4 kernel
    [4, 4, C_out, C_in], as one matmul and an overlap-add. Output pixel 2i + t − 1 receives input
    pixel i through kernel tap t (pad_before = 1); writing t = 2q + p, the taps with the same q land
    on one shifted copy of the input grid."""
    batch = tf.shape(inputs)[0]
    height, width, channels_in = inputs.shape[1], inputs.shape[2], inputs.shape[3]
    channels_out = kernel.shape[2]
    taps = tf.reshape(tf.transpose(kernel, [3, 0, 1, 2]), [channels_in, 16 * channels_out])
    patches = tf.reshape(tf.matmul(tf.reshape(inputs, [-1, channels_in]), taps),
                         [batch, height, width, 2, 2, 2, 2, channels_out])  # (qy, py, qx, px)
    summed = 0.0
    for qy in (0, 1):
        for qx in (0, 1):
            summed += tf.pad(patches[:, :, :, qy, :, qx, :, :],
                             [[0, 0], [qy, 1 - qy], [qx, 1 - qx], [0, 0], [0, 0], [0, 0]])
    full = tf.reshape(tf.transpose(summed, [0, 1, 3, 2, 4, 5]),
                      [batch, 2 * height + 2, 2 * width + 2, channels_out])
    return full[:, 1:2 * height + 1, 1:2 * width + 1, :]


def _layer_forward(layer, inputs):
    """`layer(inputs)`, except that a 4×4, stride-2, "same" Conv2DTranspose with at most a quarter
    as many output as input channels (the decoders' last layer: 32 → 1 channel) is computed by
    `_conv_transpose_4x4_stride2`, the same linear map: TensorFlow's conv2d_transpose runs several
    times slower than its FLOPs on CPU when the output has few channels."""
    if (isinstance(layer, keras.layers.Conv2DTranspose) and tuple(layer.kernel_size) == (4, 4)
            and tuple(layer.strides) == (2, 2) and layer.padding == "same"
            and 4 * layer.filters <= inputs.shape[-1]):
        outputs = _conv_transpose_4x4_stride2(inputs, layer.kernel.value)
        if layer.use_bias:
            outputs = outputs + layer.bias.value
        return layer.activation(outputs)
    return layer(inputs)


def _zeros_for_none(gradients, variables):
    """Zero gradients for unconnected variables (both branches of the step's tf.cond must return
    tensors; `unconnected_gradients=ZERO` fails on Keras variables, whose dtype is a string)."""
    return [tf.zeros(v.shape, v.dtype) if g is None else g for g, v in zip(gradients, variables)]


def restart_optimizer(optimizer):
    """Zero an optimizer's step count and slots (Adam's moments): the state of a freshly built
    optimizer of the same settings. The learning rate is kept."""
    learning_rate = getattr(optimizer, "_learning_rate", None)  # a variable unless a schedule
    for variable in optimizer.variables:
        if variable is not learning_rate:
            variable.assign(tf.zeros(variable.shape, variable.dtype))


@keras.saving.register_keras_serializable(package="zoo")
class CascadeVAE(VAE):
    """CascadeVAE: information cascading + alternating discrete/continuous optimisation.

    Args:
      latent_dim: m, continuous dimensions (6).
      num_categories: S, categories of the discrete code (3 for dSprites' shape).
      beta_high, beta_low: β_h (10) before a dimension is relieved, β_l (1.0) after.
      stage_steps: r, iterations per cascade stage (20,000; make it small for short runs).
      discrete_stage: s_d, the stage in which the discrete code starts (4: t = 80,000).
      lambda_prime: λ', penalty per unordered same-category pair in the assignment (0.001).
      weight_decay: L2 on conv/dense kernels, penalty weight_decay·½Σw² (4e-5).
      conv_initializer: Keras initializer name for the conv and transposed-conv kernels
        ("he_normal", the reference's slim `variance_scaling_initializer`: truncated normal,
        variance 2/fan_in); dense kernels keep Glorot uniform, as in the reference.
      solver: assignment solver, "auto" (OR-Tools if installed), "min_cost_flow" or
        "linear_sum_assignment".
      restart_optimizer_on_relief: zero the optimizer's moments and step count at the step where
        a dimension is relieved, as the reference's one-Adam-per-stage training does (True).
      posterior: "softplus" (the reference's std parameterisation); other VAE args as in `VAE`.
    """

    regularizer_terms = ("weighted_kl", "relieved_dims", "discrete_active")
    #: CascadeVAE-C sets this: no discrete code at all.
    continuous_only = False

    def __init__(self, latent_dim=6, num_categories=3, beta_high=10.0, beta_low=1.0,
                 stage_steps=20_000, discrete_stage=4, lambda_prime=0.001, weight_decay=4e-5,
                 conv_initializer="he_normal", solver="auto", restart_optimizer_on_relief=True,
                 posterior="softplus", **kwargs):
        self.beta_high = non_negative("beta_high", beta_high)
        self.beta_low = non_negative("beta_low", beta_low)
        self.stage_steps = check_int("stage_steps", stage_steps, 1)
        self.weight_decay = non_negative("weight_decay", weight_decay)
        if self.continuous_only:
            self.num_categories, self.discrete_stage = 0, None
        else:
            self.num_categories = check_int("num_categories", num_categories, 2)
            self.discrete_stage = check_int("discrete_stage", discrete_stage, 0)
        self.lambda_prime = non_negative("lambda_prime", lambda_prime)
        if solver != "auto" and solver not in assignment.SOLVERS:
            raise ValueError(f"Unknown assignment solver {solver!r}; expected 'auto' or one of "
                             f"{assignment.SOLVERS}.")
        self.solver = solver
        if not isinstance(restart_optimizer_on_relief, bool):
            raise TypeError("restart_optimizer_on_relief must be True or False, got "
                             f"{restart_optimizer_on_relief!r}.")
        self.restart_optimizer_on_relief = restart_optimizer_on_relief
        self.conv_initializer = conv_initializer
        super().__init__(latent_dim=latent_dim, posterior=posterior, **kwargs)
        networks.initialize_conv_kernels([self.encoder, self.decoder], conv_initializer)
        if self.weight_decay > 0:
            # slim's l2_regularizer(w) = w·½Σθ²; Keras' L2(l2) = l2·Σθ².
            networks.regularize_kernels(
                [self.encoder, self.posterior_head, self.decoder],
                keras.regularizers.L2(self.weight_decay / 2))

    # ---------------------------------------------------------------- config
    @property
    def decoder_input_dim(self):
        return self.latent_dim + self.num_categories

    def get_config(self):
        return {**super().get_config(), "num_categories": self.num_categories,
                "beta_high": self.beta_high, "beta_low": self.beta_low,
                "stage_steps": self.stage_steps, "discrete_stage": self.discrete_stage,
                "lambda_prime": self.lambda_prime, "weight_decay": self.weight_decay,
                "conv_initializer": self.conv_initializer, "solver": self.solver,
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

    def _discrete_active(self):
        if self.continuous_only:
            return tf.constant(False)
        return self.schedule()[1]

    # ---------------------------------------------------------------- discrete code
    def unary_costs(self, x, z):
        """u[i, k] = −log p(x_i | z_i, e_k) for every category k, [B, S], from one decoder pass
        on the S·B batch concat(tile(z), e_k)."""
        x = tf.convert_to_tensor(x, tf.float32)
        z = tf.convert_to_tensor(z, tf.float32)
        s = self.num_categories
        batch = tf.shape(z)[0]
        codes = tf.repeat(tf.eye(s, dtype=z.dtype), batch, axis=0)        # [S·B, S], k-major
        params = self.decoder(tf.concat([tf.tile(z, [s, 1]), codes], axis=-1))
        params = tf.reshape(params, tf.concat([[s, batch], tf.shape(params)[1:]], axis=0))
        return -tf.transpose(self.likelihood.log_prob(x, params))          # [S, B] → [B, S]

    def _solve(self, unary):
        # A diverged step's costs are not finite, and the solver refuses them: solve zeros instead
        # (some assignment); the step's loss is not finite either, so the divergence guard drops
        # the step (`apply_finite_update`).
        unary = np.where(np.isfinite(unary), unary, 0.0)
        labels = assignment.assign_labels(unary, self.lambda_prime, self.solver)
        return labels.astype(np.int32)

    def assign(self, x, z):
        """The training assignment d* [B, S] (one-hot, constant): the exact solution of the inner
        problem on the unary costs at z."""
        unary = tf.stop_gradient(self.unary_costs(x, z))
        labels = tf.numpy_function(self._solve, [unary], tf.int32, stateful=False,
                                   name="assignment")
        labels.set_shape(unary.shape[:1])
        return tf.one_hot(labels, self.num_categories, dtype=z.dtype)

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
    def _posterior(self, x, training=False):
        return self.posterior_head(self.encoder(x, training=training))

    def encode(self, x, training=False):
        """{"mean", "logvar"} of q(z|x) and, with a discrete code, "category" [B, 1] int32 (the
        argmin-unary code at z = μ) and "discrete" [B, S] (its one-hot, 0 before the discrete
        stage)."""
        x = self.check_images(x)
        mean, logvar = self._posterior(x, training)
        out = {"mean": mean, "logvar": logvar}
        if self.num_categories:
            category, one_hot = self.infer_code(x, mean)
            out.update(category=category[:, None], discrete=one_hot)
        return out

    def decode(self, z, training=False):
        """Likelihood parameters for decoder inputs [B, m + S] = concat(z, d); bare z [B, m] gets
        `default_code`."""
        z = check_codes(z)
        if self.num_categories and z.shape[-1] == self.latent_dim:
            z = tf.concat([z, self.default_code(tf.shape(z)[0], z.dtype)], axis=-1)
        return self.decoder(z, training=training)

    def _decoder_codes(self, posterior):
        if not self.num_categories:
            return posterior["mean"]
        return tf.concat([posterior["mean"], posterior["discrete"]], axis=-1)

    def call(self, x, training=False):
        """Reconstruction at z = μ and the inferred discrete code."""
        return self.decode_mean(self._decoder_codes(self.encode(x, training=training)))

    def representation(self, x):
        """concat(μ(x), d̂(x)) [B, m + 1]: the category index is the last column (CascadeVAE-C:
        μ(x) only)."""
        posterior = self.encode(x)
        if not self.num_categories:
            return posterior["mean"]
        return tf.concat([posterior["mean"], tf.cast(posterior["category"], tf.float32)], -1)

    def sample(self, n):
        """n images from z ~ N(0, I) and (in the discrete stage) a uniformly drawn category."""
        z = keras.random.normal((sample_count(n), self.latent_dim), seed=self.eval_seed_generator)
        if self.num_categories:
            category = keras.random.randint((sample_count(n),), 0, self.num_categories,
                                            seed=self.eval_seed_generator)
            one_hot = tf.one_hot(category, self.num_categories)
            d = tf.where(self._discrete_active(), one_hot, tf.zeros_like(one_hot))
            z = tf.concat([z, d], axis=-1)
        return self.decode_mean(z)

    # ---------------------------------------------------------------- losses
    def compute_loss_terms(self, x, training):
        x = self.check_images(x)
        mean, logvar = self._posterior(x, training)
        z = self.latent_sample(mean, logvar, training)
        relieved, active = self.schedule()
        decoder_input = z
        if self.num_categories:
            if training:
                zeros = tf.zeros([tf.shape(z)[0], self.num_categories], z.dtype)
                d = tf.cond(active, lambda: self.assign(x, tf.stop_gradient(z)), lambda: zeros)
            else:
                d = self.infer_code(x, mean)[1]
            decoder_input = tf.concat([z, tf.stop_gradient(d)], axis=-1)
        recon = -tf.reduce_mean(self.likelihood.log_prob(
            x, self.decoder(decoder_input, training=training)))
        kl, kl_per_dim = self.standard_kl(mean, logvar)
        weighted_kl = tf.reduce_sum(tf.cast(self.kl_weights(), kl_per_dim.dtype) * kl_per_dim)
        return self.loss_terms(recon + weighted_kl, recon, kl, {
            "weighted_kl": weighted_kl, "relieved_dims": tf.cast(relieved, tf.float32),
            "discrete_active": tf.cast(active, tf.float32)})


    # ---------------------------------------------------------------- training step
    def _loss_and_gradients(self, x):
        """Loss terms and gradients of one step by automatic differentiation (any stage)."""
        with tf.GradientTape() as tape:
            terms = self.compute_loss_terms(x, training=True)
        variables = self.trainable_variables
        return terms, _zeros_for_none(tape.gradient(terms["loss"], variables), variables)

    def reuses_unary_pass(self):
        """Whether the discrete-stage step backpropagates through the activations of the unary
        pass (decoder of Dense / Conv2DTranspose / Reshape layers, ReLU or linear activations)."""
        for layer in self.decoder.layers:
            if isinstance(layer, keras.layers.Reshape):
                continue
            if type(layer) not in (keras.layers.Dense, keras.layers.Conv2DTranspose,
                                   networks.Conv2DTranspose):
                return False
            if layer.activation not in (_RELU, _LINEAR):
                return False
            if isinstance(layer, keras.layers.Conv2DTranspose) and (
                    layer.rank != 2 or layer.data_format != "channels_last"
                    or tuple(layer.dilation_rate) != (1, 1) or layer.output_padding is not None):
                return False
        return True

    def _decoder_backward(self, cache, gradient):
        """Backpropagate `gradient` (w.r.t. the decoder's output) through the decoder's layers,
        given each layer's (input, output) on the same rows. Returns ({variable id: gradient},
        gradient w.r.t. the decoder's input). Mirrors TensorFlow's registered gradients of
        MatMul, BiasAdd, Relu and Conv2DBackpropInput (= conv2d_transpose)."""
        grads = {}
        for layer, (inputs, outputs) in reversed(list(zip(self.decoder.layers, cache))):
            if isinstance(layer, keras.layers.Reshape):
                gradient = tf.reshape(gradient, tf.shape(inputs))
                continue
            if layer.activation is _RELU:
                gradient = gradient * tf.cast(outputs > 0, gradient.dtype)
            kernel = layer.kernel.value
            if isinstance(layer, keras.layers.Dense):
                grads[id(layer.kernel)] = tf.matmul(inputs, gradient, transpose_a=True)
                if layer.use_bias:
                    grads[id(layer.bias)] = tf.reduce_sum(gradient, axis=0)
                gradient = tf.matmul(gradient, kernel, transpose_b=True)
            else:  # Conv2DTranspose, channels_last
                strides = [1, *layer.strides, 1]
                padding = layer.padding.upper()
                grads[id(layer.kernel)] = tf.raw_ops.Conv2DBackpropFilter(
                    input=gradient, filter_sizes=tf.shape(kernel), out_backprop=inputs,
                    strides=strides, padding=padding)
                if layer.use_bias:
                    grads[id(layer.bias)] = tf.reduce_sum(gradient, axis=[0, 1, 2])
                gradient = tf.nn.conv2d(gradient, kernel, strides=strides, padding=padding)
        return grads, gradient

    def _discrete_loss_and_gradients(self, x):
        """The discrete-stage step reusing the unary pass (see the module docstring): same
        loss and gradients as `_loss_and_gradients`, one decoder forward pass fewer."""
        s, m = self.num_categories, self.latent_dim
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            mean, logvar = self._posterior(x, training=True)
            z = distributions.reparameterized_sample(mean, logvar,
                                                     self.training_noise(tf.shape(mean)))
            with tape.stop_recording():
                batch = tf.shape(z)[0]
                codes = tf.repeat(tf.eye(s, dtype=z.dtype), batch, axis=0)       # k-major
                hidden = tf.concat([tf.tile(tf.stop_gradient(z), [s, 1]), codes], axis=-1)
                cache = []
                for layer in self.decoder.layers:
                    outputs = _layer_forward(layer, hidden)
                    cache.append((hidden, outputs))
                    hidden = outputs
                params = tf.reshape(hidden, tf.concat([[s, batch], tf.shape(hidden)[1:]], 0))
                unary = tf.stop_gradient(-tf.transpose(self.likelihood.log_prob(x, params)))
                labels = tf.numpy_function(self._solve, [unary], tf.int32, stateful=False,
                                           name="assignment")
                labels.set_shape(unary.shape[:1])
                rows = labels * batch + tf.range(batch)       # row of (i, d*_i) in the S·B pass
                cache = [(tf.gather(a, rows), tf.gather(b, rows)) for a, b in cache]
                chosen = cache[-1][1]
                likelihood_variables = self.likelihood.trainable_variables
                with tf.GradientTape() as inner:
                    inner.watch(chosen)
                    recon = -tf.reduce_mean(self.likelihood.log_prob(x, chosen))
                inner_gradients = inner.gradient(recon, [chosen] + likelihood_variables)
                decoder_gradients, input_gradient = self._decoder_backward(
                    cache, inner_gradients[0])
                for variable, gradient in zip(likelihood_variables, inner_gradients[1:]):
                    decoder_gradients[id(variable)] = gradient
            kl_per_dim = tf.reduce_mean(distributions.kl_to_standard_normal(mean, logvar), 0)
            kl = tf.reduce_sum(kl_per_dim)
            weighted_kl = tf.reduce_sum(tf.cast(self.kl_weights(), kl.dtype) * kl_per_dim)
            decay = tf.add_n(self.losses) if self.losses else tf.constant(0.0)
            # d(recon)/dz arrives from the hand-made decoder backward pass.
            surrogate = (tf.reduce_sum(tf.stop_gradient(input_gradient[:, :m]) * z)
                         + weighted_kl + decay)
        gradients = _zeros_for_none(tape.gradient(surrogate, variables), variables)
        gradients = [g + decoder_gradients[id(v)] if id(v) in decoder_gradients else g
                     for g, v in zip(gradients, variables)]
        relieved, active = self.schedule()
        terms = {"loss": recon + weighted_kl + decay, "recon": recon, "kl": kl,
                 "elbo": -(recon + kl), "weighted_kl": weighted_kl,
                 "relieved_dims": tf.cast(relieved, tf.float32),
                 "discrete_active": tf.cast(active, tf.float32)}
        return terms, gradients

    def train_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        saved_state = self.begin_training_step()
        x = self.check_images(x)
        if self.num_categories and self.reuses_unary_pass():
            terms, gradients = tf.cond(self._discrete_active(),
                                       lambda: self._discrete_loss_and_gradients(x),
                                       lambda: self._loss_and_gradients(x))
        else:
            terms, gradients = self._loss_and_gradients(x)
        if self.restart_optimizer_on_relief:
            if not self.optimizer.built:
                self.optimizer.build(self.trainable_variables)

            def restart():
                restart_optimizer(self.optimizer)
                return tf.constant(True)

            tf.cond(self.relief_step(), restart, lambda: tf.constant(False))
        nonfinite = self.apply_finite_update(self.optimizer, gradients, self.trainable_variables,
                                             terms)
        return self.end_training_step(terms, nonfinite, saved_state)


@keras.saving.register_keras_serializable(package="zoo")
class CascadeVAEC(CascadeVAE):
    """CascadeVAE-C: information cascading only (no discrete code), m = 10 by default; one more
    dimension is relieved every `stage_steps` iterations, starting with one at t = 0."""

    continuous_only = True

    def __init__(self, latent_dim=10, beta_high=10.0, beta_low=1.0, stage_steps=20_000,
                 weight_decay=4e-5, posterior="softplus", **kwargs):
        super().__init__(latent_dim=latent_dim, beta_high=beta_high, beta_low=beta_low,
                         stage_steps=stage_steps, weight_decay=weight_decay, posterior=posterior,
                         **kwargs)

    def get_config(self):
        config = super().get_config()
        for key in ("num_categories", "discrete_stage", "lambda_prime", "solver"):
            config.pop(key)
        return config
