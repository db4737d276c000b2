"""The shared VAE: encoder → diagonal-Gaussian posterior → decoder → likelihood, with a
regulariser hook.

A β-VAE-like model is one method on top of this class:

    class MyVAE(VAE):
        def regularizer(self, kl, kl_per_dim, mean, logvar, z):
            return 3.0 * kl, {}

loss = recon + regularizer(...) + Σ layer losses (weight decay), with recon = −log p(x|z) summed
over pixels and KL summed over latent dimensions, both averaged over the batch, in nats (docs/methods.md §0).
`fit` logs loss, recon, kl, elbo and whatever the regulariser reports. A model whose loss is not
of that form overrides `compute_loss_terms` and builds it from the same pieces: `posterior_sample`
(q(z|x)'s parameters and a reparameterised z; `latent_sample` for a model with its own encoder
heads), `reconstruction_loss`, `standard_kl` and `loss_terms`. A model whose step needs more than
the batch (DC-IGN's active latent) calls `optimizer_step` from its own `train_step`.

Two mixins hold what the non-VAE models share with `VAE`: `TrainingState` (the step counter,
stateless training seeds, the evaluation seed generator and the logged-term trackers) and
`SecondOptimizer` (a `discriminator_optimizer` saved and restored with the model).

Every model declares its codes (`CodeLayout`): the sizes of its discrete codes, the columns of its
representation, and the decoder input that reconstructs an `encode` result; the metrics, the
pictures, the export and the tests read these declarations instead of guessing.

Construction (`VAE`) runs in three steps: each class's `__init__` stores and checks its own
arguments (after `super().__init__`), then `_build_layers()` creates the sub-layers (a subclass
adds its own after `super()._build_layers()`), then `build()` builds them.

Conventions every model keeps (DESIGN "The shape of a model"):
- every sub-layer is created and built during construction, so a model trained only through
  `train_step` is still built when saved, and `keras.models.load_model` restores all of its weights;
- schedules read `global_step`, a variable saved with the model, so save → load → fit continues
  them; it advances once per training iteration;
- training noise is a pure function of (seed, global_step, purpose): `training_noise` uses
  stateless random ops, so a run resumed from a checkpoint makes exactly the draws an uninterrupted
  run would make. (A `keras.random.SeedGenerator`'s state is not written by `model.save`, so it
  cannot carry a resumed run; evaluation and `sample` still use one, where resuming is irrelevant.)
"""
import keras
import numpy as np
import tensorflow as tf

from zoo import distributions, networks, replicas, seeds
from zoo.checks import check_int


def default_optimizer(learning_rate=1e-4):
    """Adam with docs/methods.md §0 settings: ε = 1e-8 (Keras' default 1e-7 differs)."""
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=0.9, beta_2=0.999,
                                 epsilon=1e-8)


def check_images(x, image_shape):
    """Validate a batch of observations and return it as float32.

    Images (observation shape (H, W, C)) must lie in [0, 1]: uint8 is scaled by 1/255; other
    integer types, a wrong rank/shape/channel count, NaN/inf or values outside [0, 1] are errors.
    Vector observations (observation shape (D,), e.g. the pinwheel data) must be float, of shape
    [B, D] and finite; their values are not range-checked (they are not pixels). Shapes are checked
    when the function is traced; values are checked with a `ValueError` in eager mode and with graph
    assertions (InvalidArgumentError with the same message) inside `tf.function`, e.g. under `fit`.
    """
    x = tf.convert_to_tensor(x)
    expected = tuple(image_shape)
    is_image = len(expected) == 3
    if x.shape.rank != len(expected) + 1 or tuple(x.shape[1:]) != expected:
        if is_image and x.shape.rank == 4 and x.shape[1:3] == expected[:2] \
                and x.shape[3] != expected[2]:
            raise ValueError(f"Images have {x.shape[3]} channel(s), the model expects "
                             f"{expected[2]} (image shape {expected}).")
        kind = "images" if is_image else "observations"
        raise ValueError(f"Expected {kind} of shape (batch,) + {expected}, got {tuple(x.shape)}.")
    if is_image and x.dtype == tf.uint8:
        return tf.cast(x, tf.float32) / 255.0
    if not x.dtype.is_floating:
        if is_image:
            raise ValueError(f"Images must be float in [0, 1] or uint8, got dtype {x.dtype.name}.")
        raise ValueError(f"Observations must be float, got dtype {x.dtype.name}.")
    x = tf.cast(x, tf.float32)
    what = "Images" if is_image else "Observations"
    if tf.executing_eagerly():
        values = x.numpy()
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{what} contain NaN or infinite values.")
        if is_image and values.size and (values.min() < 0.0 or values.max() > 1.0):
            raise ValueError(f"Images must lie in [0, 1] (uint8 is scaled by 1/255); got values in "
                             f"[{values.min():.4g}, {values.max():.4g}].")
        return x
    checks = [tf.debugging.assert_all_finite(x, f"{what} contain NaN or infinite values.")]
    if is_image:
        checks += [
            tf.debugging.assert_greater_equal(x, 0.0, message="Images must lie in [0, 1]."),
            tf.debugging.assert_less_equal(x, 1.0, message="Images must lie in [0, 1]."),
        ]
    with tf.control_dependencies(checks):
        return tf.identity(x)


def _positive_int(name, value):
    return check_int(name, value, minimum=1)


def sample_count(n):
    """The number of samples asked of `sample(n)`: a positive integer (2.7 is refused, not cut)."""
    return _positive_int("n", n)


def check_codes(z):
    """Decoder inputs as float32; in eager mode (the public API) NaN or infinite codes are refused
    rather than decoded into NaN images. Inside training graphs they pass: the divergence guard
    deals with a diverged step."""
    z = tf.convert_to_tensor(z, tf.float32)
    if tf.executing_eagerly() and not np.all(np.isfinite(z.numpy())):
        raise ValueError("Codes z contain NaN or infinite values.")
    return z


def zeros_for_none(gradients, variables):
    """Gradients with zeros for the variables the loss does not reach (both branches of a
    `tf.cond` must return tensors; `unconnected_gradients=ZERO` fails on Keras variables, whose
    dtype is a string)."""
    return [tf.zeros(v.shape, v.dtype) if g is None else g for g, v in zip(gradients, variables)]


def non_negative(name, value):
    """A hyperparameter that must be a finite number ≥ 0 (β, γ, C_max, ...)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number ≥ 0, got {value!r}.") from None
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number ≥ 0, got {value!r}.")
    return value


def load_checked(path, expected_sha256, name):
    """(the zoo model saved at `path`, the file's sha256) for a model argument `name` that
    points to another model (β-VAE_DAE's DAE, SCAN's visual model); a given `expected_sha256`
    must match."""
    from zoo.data.dsprites import sha256_of_file
    from zoo.models import load

    model = load(path)
    sha256 = sha256_of_file(path)
    if expected_sha256 is not None and expected_sha256 != sha256:
        raise ValueError(f"{name} {path} has sha256 {sha256}, not the expected "
                         f"{name.replace('_path', '')}_sha256 {expected_sha256}.")
    return model, sha256


class CodeLayout:
    """Mixin declaring a zoo model's codes, so that the tools using them (metrics, pictures, the
    SavedModel export, the tests) read them instead of guessing.

    `encode(x)` returns the continuous codes as "mean" [B, latent_dim] and, for a model with
    discrete codes, "category" [B, codes] (each code's category index, int32) and "discrete"
    [B, Σ sizes] (their one-hots, side by side). The defaults describe a model with continuous
    codes only (every Gaussian-code VAE): a model with discrete codes overrides
    `discrete_code_sizes`; one whose decoder reads more than its codes overrides `decoder_codes`
    (InfoGAN's generator also reads noise)."""

    @property
    def discrete_code_sizes(self):
        """The number of categories of each discrete code, in the order of `encode`'s "category"
        columns; () for a model without one."""
        return ()

    @property
    def discrete_columns(self):
        """The columns of `representation(x)` holding the discrete codes' category indices: the
        last ones, after the `latent_dim` continuous codes."""
        return tuple(range(self.latent_dim, self.latent_dim + len(self.discrete_code_sizes)))

    def representation_of(self, posterior):
        """The representation of an `encode` result: the continuous codes ("mean"), then each
        discrete code's category index (`discrete_columns`)."""
        mean = posterior["mean"]
        if not self.discrete_code_sizes:
            return mean
        return tf.concat([mean, tf.cast(posterior["category"], mean.dtype)], axis=-1)

    def representation(self, x):
        """The codes metrics use: `representation_of(encode(x))`."""
        return self.representation_of(self.encode(x))

    def decoder_codes(self, posterior):
        """The decoder's input [B, decoder_input_dim] that reconstructs an `encode` result: the
        continuous codes, then the discrete codes' one-hots."""
        if not self.discrete_code_sizes:
            return posterior["mean"]
        return tf.concat([posterior["mean"], posterior["discrete"]], axis=-1)

    def call(self, x, training=False):
        """Reconstruction: the decoder's mean image for the codes `encode` infers (z = μ)."""
        return self.decode_mean(self.decoder_codes(self.encode(x, training=training)))


class TrainingState:
    """Mixin of a zoo `keras.Model`'s training state: the saved step counter `global_step`,
    stateless training seeds, the evaluation seed generator and one `keras.metrics.Mean` tracker
    per name of `logged_terms` (the model's `metrics`, what `fit` logs). The model defines `seed`
    and `logged_terms` and calls `_create_training_state()` where it creates its layers."""

    #: `trainers.train` compiles a model that sets this with `compile()`, its own optimiser
    #: settings (InfoGAN's two Adams), instead of an Adam built from --learning_rate.
    owns_optimizer_settings = False
    #: batches of the data stream one training iteration consumes (FactorVAE's second batch: 2);
    #: `trainers.train` streams batch_size × this many images and `train_step` splits them.
    batches_per_step = 1

    def _create_training_state(self):
        self.global_step = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False, name="global_step",
            aggregation="only_first_replica")
        self.eval_seed_generator = keras.random.SeedGenerator(self.seed, name="eval_seed")
        self.trackers = [keras.metrics.Mean(name=name) for name in self.logged_terms]

    def fit(self, *args, **kwargs):
        try:
            return super().fit(*args, **kwargs)
        except Exception:
            # A fit whose first trace failed (e.g. a batch of the wrong shape) leaves Keras'
            # cached train function half made: the next fit would fail with "Creating variables
            # on a non-first call". Drop it, so the model can be fitted again.
            self.train_function = None
            raise

    def make_train_function(self, force=False):
        return self._with_step_axis("train_step", super().make_train_function, force)

    def make_test_function(self, force=False):
        return self._with_step_axis("test_step", super().make_test_function, force)

    def _with_step_axis(self, name, make, force):
        """Under MultiWorkerMirroredStrategy Keras averages a step's outputs over the workers along
        axis 0, which scalars lack: there the step's logged values get a leading axis of 1 (the
        average is then a scalar again). Elsewhere `make` as it is."""
        if not replicas.across_workers(self.distribute_strategy):
            return make(force)
        step = getattr(self, name)
        setattr(self, name, lambda data: {k: tf.expand_dims(v, 0)
                                          for k, v in step(data).items()})
        try:
            return make(force)
        finally:
            delattr(self, name)

    def evaluation_stream(self, data, batch_size, seed):
        """Held-out batches for `evaluate` (trainers.train's final loss terms), batch k a pure
        function of (seed, k): fresh i.i.d. observations. A model whose loss needs more than
        images (VFAE's sensitive factor, SCAN's symbols) gives them as its training stream does."""
        return data.stream(int(batch_size), seed=seed)

    def serving_endpoints(self):
        """The model's own SavedModel endpoints beside the standard ones (`zoo.export`):
        {name: (function, [tf.TensorSpec, ...])}; a name of the standard ones replaces it."""
        return {}

    def training_seed(self, purpose=0):
        """The int64 [2] stateless seed of the current training step's draw for `purpose`: a pure
        function of (seed, global_step, purpose), in the models' layout of `zoo.seeds`."""
        return seeds.training_seed(self.seed, self.global_step.value, purpose)

    @property
    def metrics(self):
        return list(self.trackers)

    @property
    def optimizers(self):
        """Every optimiser the model trains with ([] before `compile`)."""
        return [self.optimizer] if self.compiled else []

    def for_publication(self):
        """The model as `trainers.zoo` publishes it: itself, unless it has parts that only its
        training needs (FactorVAE leaves its discriminator out)."""
        return self

    def restore_training_parts(self):
        """Give a published model the parts `for_publication` left out, fresh, so that it can
        train (nothing for most models)."""

    def apply_finite_update(self, optimizer, gradients, variables, terms):
        """`optimizer.apply_gradients` unless a term of `terms` or a gradient is NaN or infinite:
        a diverged step never reaches the weights or the optimizer's slots (the divergence guard
        of `trainers.train`). Returns the step's int32 `nonfinite` mask: bit i set when logged
        term `nonfinite_names()[i]` is non-finite, the last bit for the gradients. Every optimiser
        update of a `train_step` goes through here; `end_training_step` takes the OR of the masks.

        Under a `tf.distribute` strategy the mask is the OR over the replicas (a term or gradient
        that is not finite on one replica makes the global one not finite), so every replica
        takes the same decision, and the gradients are each replica's share (`replica_share`):
        the optimizer sums them over the replicas."""
        names = self.nonfinite_names()
        bits = [tf.cast(tf.logical_not(tf.reduce_all(tf.math.is_finite(terms[name]))), tf.int32)
                * (1 << i) for i, name in enumerate(names[:-1]) if name in terms]
        # Each replica's share of the global batch mean's gradient: the optimizer sums them.
        pairs = [(replicas.replica_share(g), v) for g, v in zip(gradients, variables)
                 if g is not None]
        finite_gradients = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g, _ in pairs])
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            # Scaled float16 gradients overflow now and then by design: the wrapper then skips
            # the update itself and lowers its scale. That is not a divergence.
            finite_gradients = tf.constant(True)
        mask = tf.add_n(bits + [tf.cast(tf.logical_not(finite_gradients), tf.int32)
                                * (1 << (len(names) - 1))])
        mask = replicas.agree_on_flags(mask, width=len(names))
        if not optimizer.built:  # variables cannot be created inside the cond below
            optimizer.build(variables)
        connected = [v for _, v in pairs]

        def apply(gradients):
            optimizer.apply_gradients(zip(gradients, connected))

        replicas.run_if(tf.equal(mask, 0), apply, [g for g, _ in pairs],
                        name="divergence_guard_update")
        return mask

    def nonfinite_names(self):
        """The names the bits of a `nonfinite` mask stand for: the logged terms, then gradients."""
        return tuple(self.logged_terms) + ("gradients",)

    def _record(self, terms):
        for tracker in self.trackers:
            tracker.update_state(terms[tracker.name])
        return {tracker.name: tracker.result() for tracker in self.trackers}

    def begin_training_step(self):
        """The start of every `train_step`: a copy of the state the forward pass itself updates
        (batch-norm moving statistics: the float non-trainable weights), for `end_training_step`
        to put back when the step's update is refused."""
        return [(v, tf.identity(v.value)) for v in self.non_trainable_weights
                if v.dtype in ("float16", "bfloat16", "float32", "float64")]

    def end_training_step(self, terms, nonfinite, saved_state):
        """The end of every `train_step`: advance `global_step` and update the trackers with the
        step's terms. `nonfinite` is the OR of the step's `apply_finite_update` masks: a step whose
        update was refused gets its `begin_training_step` state back and is left out of the means,
        and the mask is returned as `nonfinite` beside them for the divergence guard. The counter
        waits on the mask, which depends on the batch's checks: a batch rejected by
        `check_images` does not count as a step."""
        variables = [variable for variable, _ in saved_state]

        def restore(values):
            for variable, value in zip(variables, values):
                variable.assign(value)

        if saved_state:
            replicas.run_if(tf.not_equal(nonfinite, 0), restore,
                            [value for _, value in saved_state], name="divergence_guard_restore")
        with tf.control_dependencies([nonfinite]):
            self.global_step.assign_add(1)
        finite = tf.equal(nonfinite, 0)
        for tracker in self.trackers:
            value = tf.convert_to_tensor(terms[tracker.name])
            tracker.update_state(tf.where(finite, value, tf.zeros_like(value)),
                                 sample_weight=tf.cast(finite, value.dtype))
        return {**{tracker.name: tracker.result() for tracker in self.trackers},
                "nonfinite": nonfinite}


class SecondOptimizer:
    """Mixin of a model with a second optimiser, `discriminator_optimizer`, next to `optimizer`.

    Both are attributes of the model, so `model.save` writes both optimisers' variables (slots and
    iteration counts); `get_compile_config` records the second one and `compile_from_config`
    rebuilds both, so `keras.models.load_model` restores both. The model's `compile(optimizer=None,
    discriminator_optimizer=None, **kwargs)` calls `super().compile(...)` and then
    `_set_discriminator_optimizer`."""

    def _set_discriminator_optimizer(self, discriminator_optimizer, variables,
                                     discriminator_variables):
        """Keep the second optimiser and build each optimiser on its own variables, so a fresh
        model and a loaded one hold the same optimizer variables (load_model restores them by
        position)."""
        self.discriminator_optimizer = discriminator_optimizer
        if not self.optimizer.built:
            self.optimizer.build(variables)
        if not self.discriminator_optimizer.built:
            self.discriminator_optimizer.build(discriminator_variables)

    @property
    def optimizers(self):
        return super().optimizers + ([self.discriminator_optimizer] if self.compiled else [])

    def get_compile_config(self):
        config = super().get_compile_config()
        if config and self.discriminator_optimizer is not None:
            config["discriminator_optimizer"] = keras.saving.serialize_keras_object(
                self.discriminator_optimizer)
        return config

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))


class BuiltAfterInit(type):
    """Metaclass of `VAE`: `Model(...)` runs the `__init__` chain (which only stores and checks
    arguments), then `_build_layers()`, then `build()`. So a subclass's arguments are set before
    any layer is made from them, although its `__init__` sets them after `super().__init__`
    (Keras locks a model's state once it is built: no layer can be added after that)."""

    def __call__(cls, *args, **kwargs):
        model = super().__call__(*args, **kwargs)
        model._build_layers()
        model.build((None,) + model.image_shape)
        return model


@keras.saving.register_keras_serializable(package="zoo")
class VAE(CodeLayout, TrainingState, keras.Model, metaclass=BuiltAfterInit):
    """Plain VAE (β = 1) and the base of every VAE-family model.

    Args:
      latent_dim: number of continuous latent dimensions d.
      input_shape: observation shape: images (H, W, C), (64, 64, 1) for dSprites, or vectors (D,)
        (the pinwheel points: (2,), with network "mlp").
      network: encoder/decoder pair from `zoo.networks.NETWORKS` ("conv64", "conv64_dlib").
      likelihood: decoder head from `zoo.distributions.LIKELIHOODS` ("bernoulli", ...).
      posterior: "exp_half_logvar" (default) or "softplus" standard deviation.
      seed: seed of the model's random draws (reparameterisation noise, prior samples).
    """

    #: names of the extra terms the regulariser reports (logged by `fit`).
    regularizer_terms = ()

    def __init__(self, latent_dim=10, input_shape=(64, 64, 1), network="conv64",
                 likelihood="bernoulli", posterior="exp_half_logvar", seed=None, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = _positive_int("latent_dim", latent_dim)
        self.image_shape = tuple(int(s) for s in input_shape)
        self.network, self.likelihood_name, self.posterior = network, likelihood, posterior
        self.seed = seeds.resolve(seed)

    # ---------------------------------------------------------------- construction and config
    def _build_layers(self):
        """Create the sub-layers from the stored arguments (once, after every `__init__`; see
        `BuiltAfterInit`). A subclass creates its own after `super()._build_layers()`: the
        order in which layers are created fixes the order of the weights (and of the optimizer's
        slots, which `load_model` restores by position)."""
        self.encoder = networks.build_encoder(self.network, self.image_shape)
        self.posterior_head = distributions.GaussianPosteriorHead(
            self.latent_dim, self.posterior, name="posterior_head")
        self.decoder = networks.build_decoder(self.network, self.decoder_input_dim,
                                              self.image_shape)
        # The likelihood's event is the whole observation: 3 axes for images, 1 for vectors.
        self.likelihood = distributions.get_likelihood(self.likelihood_name,
                                                       event_ndims=len(self.image_shape))
        self._create_training_state()

    @property
    def decoder_input_dim(self):
        """Width of the decoder's input (models with a discrete code widen it)."""
        return self.latent_dim

    @property
    def logged_terms(self):
        return ("loss", "recon", "kl", "elbo") + tuple(self.regularizer_terms)

    def build(self, input_shape=None):
        # Sub-networks are Sequentials with an Input (built at creation); the rest is built here,
        # idempotently, because load_model calls build() again from the saved build config.
        # A subclass builds its own layers that need it before `super().build()`.
        if not self.posterior_head.built:
            self.posterior_head.build(self.encoder.output_shape)
        if not self.likelihood.built:
            self.likelihood.build((None,) + self.image_shape)
        self.built = True

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim,
                "input_shape": list(self.image_shape), "network": self.network,
                "likelihood": self.likelihood_name, "posterior": self.posterior,
                "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def compile(self, optimizer=None, **kwargs):
        """`compile()` with no optimizer uses Adam(1e-4, ε=1e-8), the docs/methods.md §0 default."""
        super().compile(optimizer=optimizer or default_optimizer(), **kwargs)

    def compile_from_config(self, config):
        # Keras skips this for models that override compile(); do it so load_model restores the
        # optimizer with its state (slots and iteration count).
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    # ---------------------------------------------------------------- public API
    def check_images(self, x):
        return check_images(x, self.image_shape)

    def encode(self, x, training=False):
        """Posterior parameters {"mean", "logvar"} of q(z|x), each [B, d]."""
        x = self.check_images(x)
        mean, logvar = self.posterior_head(self.encoder(x, training=training))
        return {"mean": mean, "logvar": logvar}

    def decode(self, z, training=False):
        """Likelihood parameters (logits for Bernoulli) [B, H, W, C] for codes z [B, d]."""
        return self.decoder(check_codes(z), training=training)

    def decode_mean(self, z):
        """Mean image E[x|z] (sigmoid of the logits for Bernoulli)."""
        return self.likelihood.mean(self.decode(z))

    def sample(self, n):
        """n images decoded from prior samples z ~ N(0, I)."""
        z = keras.random.normal((sample_count(n), self.latent_dim), seed=self.eval_seed_generator)
        return self.decode_mean(z)

    def training_stream(self, data, batch_size, seed, start_step=0):
        """The `tf.data` stream `trainers.train` feeds to `fit`: batch k is a pure function of
        (seed, start_step + k). By default the data set's i.i.d. stream of
        batch_size × `batches_per_step` observations per step; models that train from structured
        batches (DC-IGN's single-factor batches) override this."""
        return data.stream(int(batch_size) * self.batches_per_step, seed=seed,
                           start_step=start_step)

    # ---------------------------------------------------------------- losses
    def training_noise(self, shape, purpose=0, dtype=tf.float32):
        """Standard-normal noise for the current training step: a pure function of
        (seed, global_step, purpose). Use a distinct `purpose` for each independent draw. The first
        axis is the batch: under a `tf.distribute` strategy a replica gets its rows of the draw for
        the global batch (`zoo.replicas.global_draw`), the noise one device gives those examples."""
        seed = self.training_seed(purpose)
        return replicas.global_draw(
            lambda full: tf.random.stateless_normal(full, seed=seed, dtype=dtype), shape)

    def latent_sample(self, mean, logvar, training):
        """The reparameterised sample z = μ + σ·ε [B, d] of q(z|x): ε is the training noise
        (purpose 0) when training, else drawn from the evaluation seed generator."""
        if training:
            noise = self.training_noise(tf.shape(mean))
        else:
            noise = keras.random.normal(tf.shape(mean), seed=self.eval_seed_generator)
        return distributions.reparameterized_sample(mean, logvar, noise)

    def posterior_sample(self, x, training):
        """(mean, logvar, z) for observations x: the parameters of q(z|x) and `latent_sample`."""
        posterior = self.encode(x, training=training)
        mean, logvar = posterior["mean"], posterior["logvar"]
        return mean, logvar, self.latent_sample(mean, logvar, training)

    def reconstruction_loss(self, x, decoder_input, training):
        """recon = −log p(x | decoder_input), summed over the observation, batch mean."""
        return -tf.reduce_mean(self.likelihood.log_prob(x, self.decode(decoder_input,
                                                                       training=training)))

    @staticmethod
    def standard_kl(mean, logvar):
        """(kl, kl_per_dim): KL(q(z|x) ‖ N(0, I)) per dimension averaged over the batch [d], and
        its sum over dimensions."""
        kl_per_dim = tf.reduce_mean(distributions.kl_to_standard_normal(mean, logvar), axis=0)
        return tf.reduce_sum(kl_per_dim), kl_per_dim

    def loss_terms(self, loss, recon, kl, extra=None):
        """The logged terms {"loss", "recon", "kl", "elbo", **extra}: `loss` (recon plus the
        method's penalties) plus the layer losses (weight decay); elbo = −(recon + kl)."""
        if self.losses:
            loss += tf.add_n(self.losses)
        return {"loss": loss, "recon": recon, "kl": kl, "elbo": -(recon + kl), **(extra or {})}

    def regularizer(self, kl, kl_per_dim, mean, logvar, z):
        """The method-specific term added to recon; returns (penalty, {name: value}).

        kl: batch mean of Σ_d KL (scalar); kl_per_dim: batch mean per dimension [d];
        mean, logvar, z: [B, d]. The plain VAE returns kl.
        """
        return kl, {}

    def compute_loss_terms(self, x, training):
        """All named loss terms for one batch (training noise when training, else eval noise)."""
        x = self.check_images(x)
        mean, logvar, z = self.posterior_sample(x, training)
        recon = self.reconstruction_loss(x, z, training)
        kl, kl_per_dim = self.standard_kl(mean, logvar)
        penalty, extra = self.regularizer(kl, kl_per_dim, mean, logvar, z)
        return self.loss_terms(recon + penalty, recon, kl, extra)

    def optimizer_step(self, compute_terms):
        """One training iteration: `compute_terms()` under a gradient tape, one step of
        `optimizer` on its "loss" over all trainable variables, `global_step` + 1; returns the
        logged results."""
        saved_state = self.begin_training_step()
        with tf.GradientTape() as tape:
            terms = compute_terms()
            # Under a mixed_float16 policy `compile` wraps the optimizer in a LossScaleOptimizer:
            # the scaled loss keeps float16 gradients from underflowing, and the wrapper unscales
            # them. Any other optimizer returns the loss as it is.
            scaled_loss = self.optimizer.scale_loss(terms["loss"])
        variables = self.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        nonfinite = self.apply_finite_update(self.optimizer, gradients, variables, terms)
        return self.end_training_step(terms, nonfinite, saved_state)

    def train_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.optimizer_step(lambda: self.compute_loss_terms(x, training=True))

    def test_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._record(self.compute_loss_terms(x, training=False))
