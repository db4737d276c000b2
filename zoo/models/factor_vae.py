"""FactorVAE (Kim & Mnih 2018), docs/methods.md §4.

Each training iteration (one `train_step`, one `global_step`):

1. VAE update on the first batch x: loss = recon + KL + γ·TĈ, where TĈ = mean over the batch of
   logit₀(z) − logit₁(z) from the discriminator D (class 0 = "a code from q(z)", class 1 = "a code
   with its dimensions permuted"); only the VAE's variables move.
2. Discriminator update: D sees the stop-gradient codes z of step 1 as class 0 and
   `permute_dims(z')` as class 1, loss ½[CE(D(z), 0) + CE(D(permute_dims(z')), 1)]. By default z' is
   encoded (with the VAE already updated) from a second, independent batch x' (the paper's
   Algorithm 2); `same_batch=True` permutes z itself, as disentanglement_lib does.

With the second batch, `batches_per_step` is 2: `trainers.train` streams 2 × batch_size images per
step and `train_step` splits them into x and x' (an odd count drops its last image).

The step counter advances once per iteration; disentanglement_lib advances it twice (once per
optimiser), so its "300k steps" are 150k iterations here.

Two Adam optimisers: the VAE's (`model.optimizer`, Adam(1e-4, 0.9, 0.999, ε 1e-8)) and the
discriminator's (`model.discriminator_optimizer`, Adam(1e-4, β1 0.5, β2 0.9, ε 1e-8)). Both are
attributes of the model, so `model.save` writes both optimisers' variables (slots and iteration
counts); `get_compile_config` / `compile_from_config` record and rebuild the discriminator's
optimizer, so `keras.models.load_model` (and a resumed `trainers.train` run) restores both.

All training randomness — the reparameterisation noise of both batches and the permutation — is a
pure function of (seed, global_step, purpose), so a resumed run repeats an uninterrupted one.

A published model leaves the discriminator out (`without_discriminator`): its 5M weights would make
the `.keras` file 23 MB, and it is a training device, not part of the representation. Such a model
has an unbuilt discriminator (no weights saved, none expected when loading) and builds a fresh one,
with its optimizer, before its first training or evaluation step, as fine-tuning starts a fresh
optimizer; its config's `discriminator_built` is False until then.
"""
import keras
import tensorflow as tf

from zoo import distributions, replicas
from zoo.models.base import VAE, SecondOptimizer, non_negative

# `training_noise` purposes (0 is the base class's noise for the first batch).
_SECOND_BATCH_NOISE, _PERMUTATION_NOISE = 1, 2


def default_discriminator_optimizer(learning_rate=1e-4):
    """Adam with the FactorVAE discriminator's settings (docs/methods.md §4): β1 0.5, β2 0.9, ε 1e-8."""
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=0.5, beta_2=0.9,
                                 epsilon=1e-8, name="discriminator_adam")


def build_discriminator(latent_dim, units=1000, num_hidden=6, name="discriminator", built=True):
    """D: codes [B, d] → 2 logits. docs/methods.md §4: 6 × Dense(1000) with leaky ReLU (slope 0.2), then
    Dense(2); about 5.0M parameters for d = 10. With built=False it has no weights until
    `build((None, d))` or its first call."""
    layers = [keras.Input(shape=(int(latent_dim),))] if built else []
    for _ in range(int(num_hidden)):
        layers += [keras.layers.Dense(int(units)), keras.layers.LeakyReLU(negative_slope=0.2)]
    layers.append(keras.layers.Dense(2, name="logits"))
    return keras.Sequential(layers, name=name)


def permute_dims(z, noise):
    """Shuffle every latent column of z [B, d] independently across the batch.

    The permutation of column j is the argsort of noise[:, j], so any [B, d] tensor of i.i.d.
    continuous random values (e.g. `model.training_noise`, a function of seed and step) gives
    independent uniform permutations, and the same noise gives the same permutation. Each column
    keeps its multiset of values; the dependence between columns is destroyed.
    """
    order = tf.argsort(noise, axis=0, stable=True)                          # [B, d]
    columns = tf.gather(tf.transpose(z), tf.transpose(order), batch_dims=1)  # [d, B]
    return tf.transpose(columns)


def tc_estimate(logits):
    """The density-ratio estimate of TC: mean over the batch of logit₀ − logit₁."""
    return tf.reduce_mean(logits[:, 0] - logits[:, 1])


def discriminator_terms(discriminator, codes, permuted_codes, training=False):
    """D's loss ½[CE(D(z), 0) + CE(D(z̃), 1)] and its accuracy over both halves."""
    logits_true = discriminator(codes, training=training)
    logits_permuted = discriminator(permuted_codes, training=training)
    ce = keras.losses.sparse_categorical_crossentropy
    zeros = tf.zeros(tf.shape(logits_true)[:1], tf.int32)
    ones = tf.ones(tf.shape(logits_permuted)[:1], tf.int32)
    loss = 0.5 * (tf.reduce_mean(ce(zeros, logits_true, from_logits=True))
                  + tf.reduce_mean(ce(ones, logits_permuted, from_logits=True)))
    correct = tf.concat([tf.cast(logits_true[:, 0] > logits_true[:, 1], tf.float32),
                         tf.cast(logits_permuted[:, 1] >= logits_permuted[:, 0], tf.float32)], 0)
    return {"discriminator_loss": loss, "discriminator_accuracy": tf.reduce_mean(correct)}


@keras.saving.register_keras_serializable(package="zoo")
class FactorVAE(SecondOptimizer, VAE):
    """FactorVAE: recon + KL + γ·TĈ with an adversarially trained density-ratio discriminator.

    Args:
      gamma: weight γ of the TC estimate. disentanglement_lib sweeps {10, 20, 30, 40, 50, 100};
        Kim & Mnih's best dSprites value is about 35–40 (default 35).
      same_batch: permute the codes of the VAE batch (disentanglement_lib) instead of those of a
        second, independent batch (the paper; default False).
      discriminator_units, discriminator_layers: D's hidden width and depth (1000, 6).
      discriminator_built: False for a model whose discriminator has no weights yet (a published
        file: see the module docstring); it gets fresh ones before the first training step.
      **kwargs: the base `VAE`'s arguments.

    Logged terms: loss, recon, kl, elbo, tc_estimate, discriminator_loss, discriminator_accuracy
    (in evaluation the discriminator terms compare the batch's codes with their permutation).
    """

    regularizer_terms = ("tc_estimate", "discriminator_loss", "discriminator_accuracy")

    def __init__(self, gamma=35.0, same_batch=False, discriminator_units=1000,
                 discriminator_layers=6, discriminator_built=True, **kwargs):
        super().__init__(**kwargs)
        self.gamma = non_negative("gamma", gamma)
        self._discriminator_built = bool(discriminator_built)  # read by _build_layers
        self.same_batch = bool(same_batch)
        self.discriminator_units = int(discriminator_units)
        self.discriminator_layers = int(discriminator_layers)
        if self.discriminator_units < 1 or self.discriminator_layers < 0:
            raise ValueError("discriminator_units must be ≥ 1 and discriminator_layers ≥ 0, got "
                             f"{discriminator_units!r} and {discriminator_layers!r}.")
        self.discriminator_optimizer = None

    def _build_layers(self):
        super()._build_layers()
        self.discriminator = build_discriminator(
            self.latent_dim, self.discriminator_units, self.discriminator_layers,
            built=self._discriminator_built)

    @property
    def batches_per_step(self):
        """2 with the second batch (default), 1 with same_batch."""
        return 1 if self.same_batch else 2

    def get_config(self):
        # discriminator_built says whether a saved file holds the discriminator's weights.
        return {**super().get_config(), "gamma": self.gamma, "same_batch": self.same_batch,
                "discriminator_units": self.discriminator_units,
                "discriminator_layers": self.discriminator_layers,
                "discriminator_built": self.discriminator.built}

    # ---------------------------------------------------------------- a published copy
    def without_discriminator(self):
        """This model with an unbuilt discriminator (compiled alike when this one is compiled):
        what is published, a third of the size. Everything else is copied, weights and step
        counter included."""
        copy = type(self).from_config({**self.get_config(), "discriminator_built": False})
        excluded = {id(v) for v in self.discriminator.weights}
        weights = [v for v in self.weights if id(v) not in excluded]
        if [tuple(v.shape) for v in weights] != [tuple(v.shape) for v in copy.weights]:
            raise ValueError("FactorVAE.without_discriminator: the copy's weights do not line up "
                             "with this model's")
        copy.set_weights([v.numpy() for v in weights])
        if self.compiled:
            copy.compile_from_config(self.get_compile_config())
        return copy

    def ensure_discriminator(self):
        """Give an unbuilt discriminator (a published model's) fresh weights, and its optimizer
        its slots; nothing when it is built. Runs before the first training or evaluation step,
        outside the traced step function, so the new variables are made eagerly."""
        if not self.discriminator.built:
            with self.distribute_strategy.scope():
                self.discriminator.build((None, self.latent_dim))
        if self.discriminator_optimizer is not None:
            self._set_discriminator_optimizer(self.discriminator_optimizer, self.vae_variables,
                                              self.discriminator.trainable_variables)

    def for_publication(self):
        return self.without_discriminator()

    def restore_training_parts(self):
        self.ensure_discriminator()

    def make_train_function(self, force=False):
        self.ensure_discriminator()
        return super().make_train_function(force)

    def make_test_function(self, force=False):
        self.ensure_discriminator()
        return super().make_test_function(force)

    # ---------------------------------------------------------------- two optimisers
    @property
    def vae_variables(self):
        """Trainable variables of the VAE (everything but the discriminator)."""
        excluded = {id(v) for v in self.discriminator.trainable_variables}
        return [v for v in self.trainable_variables if id(v) not in excluded]

    def compile(self, optimizer=None, discriminator_optimizer=None, **kwargs):
        """Both optimisers default to the docs/methods.md §4 settings (`default_optimizer`,
        `default_discriminator_optimizer`).

        They are built here, each on its own variables, so a fresh model and a loaded one hold the
        same optimizer variables (load_model restores them by position)."""
        super().compile(optimizer=optimizer, **kwargs)
        discriminator_optimizer = discriminator_optimizer or default_discriminator_optimizer()
        if self.discriminator.built:
            self._set_discriminator_optimizer(discriminator_optimizer, self.vae_variables,
                                              self.discriminator.trainable_variables)
        else:
            # Not built here: load_model compiles before it loads the weights, and an unbuilt
            # discriminator must stay so until then (ensure_discriminator builds both).
            self.discriminator_optimizer = discriminator_optimizer
            if not self.optimizer.built:
                self.optimizer.build(self.vae_variables)

    # ---------------------------------------------------------------- losses
    def regularizer(self, kl, kl_per_dim, mean, logvar, z):
        tc = tc_estimate(self.discriminator(z))
        # "_codes" hands the sampled codes to `_vae_terms`; it is not a loss term.
        return kl + self.gamma * tc, {"tc_estimate": tc, "_codes": z}

    def _vae_terms(self, x, training):
        """The base class's loss terms (with γ·TĈ) and the sampled codes z they used."""
        terms = super().compute_loss_terms(x, training)
        return terms, terms.pop("_codes")

    def compute_loss_terms(self, x, training):
        """The VAE's terms; in evaluation also the discriminator's loss and accuracy on the batch's
        codes against their permutation (training computes those in `train_step`)."""
        terms, codes = self._vae_terms(x, training)
        if not training:
            noise = keras.random.normal(tf.shape(codes), seed=self.eval_seed_generator)
            terms.update(discriminator_terms(self.discriminator, codes,
                                             permute_dims(codes, noise)))
        return terms

    def split_batches(self, x):
        """(x, x') for one iteration: the two halves of x, or (x, None) with same_batch."""
        if self.same_batch:
            return x, None
        half = tf.shape(x)[0] // 2
        return x[:half], x[half:2 * half]

    def train_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        saved_state = self.begin_training_step()
        x, x_other = self.split_batches(x)

        # 1. VAE step (the discriminator's weights are constants here).
        variables = self.vae_variables
        with tf.GradientTape() as tape:
            terms, codes = self._vae_terms(x, training=True)
        gradients = tape.gradient(terms["loss"], variables)
        vae_nonfinite = self.apply_finite_update(self.optimizer, gradients, variables, terms)

        # 2. Discriminator step on stop-gradient codes.
        codes = tf.stop_gradient(codes)
        if self.same_batch:
            other = codes
        else:
            posterior = self.encode(x_other, training=True)
            other = tf.stop_gradient(distributions.reparameterized_sample(
                posterior["mean"], posterior["logvar"],
                self.training_noise(tf.shape(posterior["mean"]), purpose=_SECOND_BATCH_NOISE)))
        # Permuted over the global batch: under a tf.distribute strategy the replicas' codes are
        # gathered, permuted as one device permutes them, and each replica keeps its rows.
        everyone = replicas.gather_batch(other)
        permuted = replicas.my_rows(
            permute_dims(everyone, tf.random.stateless_normal(
                tf.shape(everyone), seed=self.training_seed(_PERMUTATION_NOISE))),
            tf.shape(other)[0])
        d_variables = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            d_terms = discriminator_terms(self.discriminator, codes, permuted, training=True)
        gradients = tape.gradient(d_terms["discriminator_loss"], d_variables)
        d_nonfinite = self.apply_finite_update(self.discriminator_optimizer, gradients,
                                               d_variables, d_terms)

        return self.end_training_step({**terms, **d_terms},
                                      tf.bitwise.bitwise_or(vae_nonfinite, d_nonfinite),
                                      saved_state)
