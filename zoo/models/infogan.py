"""InfoGAN (Chen et al. 2016), docs/methods.md §10.

A GAN whose generator input is split into incompressible noise z and a structured code c: one
categorical code Cat(K) and `latent_dim` continuous codes U(−1, 1). An auxiliary head Q on the
discriminator's trunk predicts c from an image, and both players also maximise the variational
lower bound L_I = E[log Q(c | G(z, c))] of the mutual information I(c; G(z, c)).

Losses (non-saturating), per iteration (one `train_step`, one `global_step`):

    L_D = BCE(D(x), 1) + BCE(D(G(z, c)), 0) + λ·CE_cat + λ_cont·NLL_cont      (trunk, D head, Q head)
    L_G = BCE(D(G(z, c)), 1)               + λ·CE_cat + λ_cont·NLL_cont      (generator)

where CE_cat = −E log Q(c_cat | ·) (categorical cross-entropy, log K ≈ 2.303 nats for K = 10 at
initialisation) and NLL_cont = −E log N(c_cont; μ_Q(·), 1) (Q's continuous codes are Gaussian with
fixed std 1), so λ·CE_cat + λ_cont·NLL_cont is −L_I with the option, suggested by the paper, of a
smaller weight λ_cont for the continuous codes. Q is trained by the discriminator's update (its head
and the trunk it shares with D), the generator by its own. The discriminator step sees the fake
images as constants; the generator step reuses the same fake batch (one generator forward pass per
iteration) and scores it with the just-updated discriminator. Terms are per-example values averaged
over the batch, in nats.

D/Q see the real and the fake batch as ONE batch (concatenated), in both steps. Why: the trunk's
batch normalisation normalises each batch it is given by that batch's own statistics, so with
separate real and fake batches every feature has the same mean and spread in both, and D cannot
use a difference in first-order statistics (e.g. that fakes light half their pixels where dSprites
lights 4%). Measured on dSprites (infogan64, dense width 256, seed 0): with separate batches the
generator still drew pixel noise at 17,000 steps (half the pixels lit, D(fake) → 0.03); with one
batch it drew localised shapes (4-5% lit) within 200 steps. The generator step passes the real
batch through D again (only for the statistics; no gradient reaches it), about one more D forward
pass per iteration.

Optimisers (docs/methods.md §10): the generator's `model.optimizer` Adam(lr 1e-3, β1 0.5, β2 0.999, ε 1e-8)
and the discriminator/Q's `model.discriminator_optimizer` Adam(lr 2e-4, β1 0.5, β2 0.999, ε 1e-8);
both are saved with the model and restored by `keras.models.load_model` exactly as FactorVAE's two
optimisers are (attributes of the model + `get_compile_config` / `compile_from_config`). The
learning rates are model arguments, so `compile()` without arguments uses them (and
`trainers.train` does so for this model; see `owns_optimizer_settings`).

Networks (leaky ReLU slope 0.2; batch normalisation with momentum 0.9, ε 1e-5):

- "infogan28" (MNIST, 28×28×C; the paper's): G: Dense 1024 + BN + ReLU → Dense 7·7·128 + BN + ReLU
  → ConvT 64 k4 s2 + BN + ReLU → ConvT C k4 s2 → logits (sigmoid = the image). D/Q trunk:
  Conv 64 k4 s2 + leaky ReLU → Conv 128 k4 s2 + BN + leaky ReLU → Dense 1024 + BN + leaky ReLU.
- "infogan64" (dSprites-sized, 64×64×C; this project's variant, the 28×28 design extended with
  the channel widths of the standard conv64 pair so a step costs a few β-VAE steps): G: Dense 1024
  + BN + ReLU → Dense 4·4·64 + BN + ReLU → ConvT 64 k4 s2 + BN + ReLU (8×8) → ConvT 32 k4 s2 + BN +
  ReLU (16×16) → ConvT 32 k4 s2 + BN + ReLU (32×32) → ConvT C k4 s2 (64×64) → logits. D/Q trunk:
  Conv 32 k4 s2 + leaky ReLU → Conv 32 k4 s2 + BN + leaky ReLU → Conv 64 k4 s2 + BN + leaky ReLU →
  Conv 64 k4 s2 + BN + leaky ReLU → Flatten (1024) → Dense 1024 + BN + leaky ReLU. The two
  1024-unit dense layers (G's first, the trunk's last) are `hidden_units` wide.
- Heads (both): D: Dense 1 (logit). Q: Dense 128 + BN + leaky ReLU → Dense K (categorical logits,
  kernel initialised N(0, 0.05²) so that Q starts near the uniform categorical, CE ≈ log K) and
  Dense `latent_dim` (continuous means).

The generator's input is concat(c_cont [latent_dim], one-hot c_cat [K], z [noise_dim]), in this
order (`decoder_input_dim` columns). Public API as for the VAEs: `encode(x)` → {"mean": Q's
continuous means, "logvar": zeros (Q's fixed unit variance), "category": argmax of Q's categorical
logits [B, 1] int32, "discrete": its one-hot [B, K]}; `representation(x)` = concat(continuous means,
category index) with the category index as the LAST column; `decode(codes)` = generator logits for
the full input, for [cont, one-hot] (noise 0) or for bare continuous codes (category 0, noise 0);
`call(x)` = G(Q(x)) with noise 0; `sample(n)` = generator samples. The generator is the decoder of
the latent traversals.

All training randomness (codes and noise) is a pure function of (seed, global_step, purpose), so a
run resumed from a checkpoint repeats an uninterrupted one.
"""
import keras
import numpy as np
import tensorflow as tf

from zoo import distributions, networks, replicas, seeds
from zoo.checks import check_int
from zoo.models.base import (
    CodeLayout,
    SecondOptimizer,
    TrainingState,
    _positive_int,
    check_codes,
    check_images,
    non_negative,
    sample_count,
)

# `training_codes` purposes of the stateless draws.
_CONTINUOUS, _CATEGORICAL, _NOISE = 0, 1, 2

NETWORKS = ("infogan28", "infogan64")
_SPATIAL = {"infogan28": (28, 28), "infogan64": (64, 64)}
_LEAK = 0.2


def _batch_norm():
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)


def generator_adam(learning_rate=1e-3):
    """The generator's Adam (docs/methods.md §10): lr 1e-3, β1 0.5, β2 0.999, ε 1e-8."""
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=0.5, beta_2=0.999,
                                 epsilon=1e-8, name="generator_adam")


def discriminator_adam(learning_rate=2e-4):
    """The discriminator/Q Adam (docs/methods.md §10): lr 2e-4, β1 0.5, β2 0.999, ε 1e-8."""
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=0.5, beta_2=0.999,
                                 epsilon=1e-8, name="discriminator_adam")


def _check_network(network, image_shape):
    if network not in _SPATIAL:
        raise ValueError(f"Unknown InfoGAN network {network!r}; expected one of {NETWORKS}.")
    if len(image_shape) != 3 or tuple(image_shape[:2]) != _SPATIAL[network]:
        raise ValueError(f"Network {network!r} needs images of shape {_SPATIAL[network] + ('C',)}, "
                         f"got {tuple(image_shape)}.")


def build_generator(network, code_dim, image_shape, hidden_units=1024):
    """G: codes [B, code_dim] → logits [B, H, W, C] (see the module docstring for the layers;
    `hidden_units` is the width of its first dense layer)."""
    _check_network(network, image_shape)
    channels = image_shape[-1]
    if network == "infogan28":
        start, widths = (7, 7, 128), (64,)
    else:
        start, widths = (4, 4, 64), (64, 32, 32)
    layers = [keras.Input(shape=(int(code_dim),)),
              keras.layers.Dense(hidden_units), _batch_norm(), keras.layers.ReLU(),
              keras.layers.Dense(int(np.prod(start))), _batch_norm(), keras.layers.ReLU(),
              keras.layers.Reshape(start)]
    for width in widths:
        layers += [networks.conv_transpose(width, 4, strides=2, padding="same"),
                   _batch_norm(), keras.layers.ReLU()]
    layers.append(networks.conv_transpose(channels, 4, strides=2, padding="same", name="logits"))
    return keras.Sequential(layers, name="generator")


def build_trunk(network, image_shape, hidden_units=1024):
    """The D/Q shared trunk: images [B, H, W, C] → features [B, hidden_units]."""
    _check_network(network, image_shape)
    widths = (64, 128) if network == "infogan28" else (32, 32, 64, 64)
    layers = [keras.Input(shape=tuple(image_shape))]
    for i, width in enumerate(widths):
        layers.append(keras.layers.Conv2D(width, 4, strides=2, padding="same"))
        if i > 0:  # no batch normalisation on the first layer
            layers.append(_batch_norm())
        layers.append(keras.layers.LeakyReLU(negative_slope=_LEAK))
    layers += [keras.layers.Flatten(), keras.layers.Dense(hidden_units), _batch_norm(),
               keras.layers.LeakyReLU(negative_slope=_LEAK)]
    return keras.Sequential(layers, name="trunk")


def _build_q_hidden(features):
    return keras.Sequential([keras.Input(shape=(features,)), keras.layers.Dense(128), _batch_norm(),
                             keras.layers.LeakyReLU(negative_slope=_LEAK)], name="q_hidden")


@keras.saving.register_keras_serializable(package="zoo")
class InfoGAN(CodeLayout, SecondOptimizer, TrainingState, keras.Model):
    """InfoGAN with one categorical and `latent_dim` continuous codes (module docstring).

    Args:
      latent_dim: number of continuous codes U(−1, 1) (MNIST: 2).
      num_categories: K of the categorical code (MNIST: 10; dSprites shape: 3).
      noise_dim: incompressible noise U(−1, 1) (MNIST: 62).
      input_shape: image shape: (28, 28, C) with "infogan28", (64, 64, C) with "infogan64"
        (default: one channel).
      network: "infogan28" or "infogan64".
      hidden_units: width of the generator's first dense layer and of the trunk's dense layer
        (1024, the paper's; the zoo's dSprites model uses 256, the width of the conv64 VAE's
        dense layer, which keeps its published files under 5 MB).
      info_weight: λ, weight of the categorical code's information term (1).
      continuous_weight: λ_cont, weight of the continuous codes' term (1; the paper suggests a
        smaller value, e.g. 0.1, when the continuous codes should capture less).
      generator_learning_rate, discriminator_learning_rate: the Adam learning rates `compile()`
        uses by default (1e-3 and 2e-4).
      seed: seed of the training codes/noise and of `sample`.

    Logged terms: loss (= discriminator_loss + generator_loss, a progress indicator only),
    discriminator_loss, generator_loss, info_categorical (CE_cat, nats), info_continuous
    (NLL_cont, nats), real_probability and fake_probability (mean D(x), D(G(z, c))).
    Read real_probability and fake_probability from the training log: at evaluation
    (`evaluate`, `training=False`) the batch normalisation uses moving statistics instead of the
    batch's, and D's outputs there are not calibrated (the digits experiment: real 0.005, fake
    1e-5 in evaluation mode after a run whose training log ends at 0.81 and 0.19). Q's codes,
    which the representation uses, are scored in evaluation mode (the digits experiment's
    accuracy).
    """

    logged_terms = ("loss", "discriminator_loss", "generator_loss", "info_categorical",
                    "info_continuous", "real_probability", "fake_probability")
    #: `trainers.train` compiles this model with `compile()` (its own two Adams) instead of the
    #: VAE default built from --learning_rate.
    owns_optimizer_settings = True

    def __init__(self, latent_dim=2, num_categories=10, noise_dim=62, input_shape=None,
                 network="infogan28", info_weight=1.0, continuous_weight=1.0,
                 generator_learning_rate=1e-3, discriminator_learning_rate=2e-4, seed=None,
                 hidden_units=1024, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = _positive_int("latent_dim", latent_dim)
        self.num_categories = check_int("num_categories", num_categories, 2)
        self.noise_dim = check_int("noise_dim", noise_dim, 0)
        if network not in _SPATIAL:
            raise ValueError(f"Unknown InfoGAN network {network!r}; expected one of {NETWORKS}.")
        if input_shape is None:
            input_shape = _SPATIAL[network] + (1,)
        self.image_shape = tuple(int(s) for s in input_shape)
        self.network = network
        _check_network(network, self.image_shape)
        self.info_weight = non_negative("info_weight", info_weight)
        self.continuous_weight = non_negative("continuous_weight", continuous_weight)
        self.generator_learning_rate = float(generator_learning_rate)
        self.discriminator_learning_rate = float(discriminator_learning_rate)
        if not (self.generator_learning_rate > 0 and self.discriminator_learning_rate > 0):
            raise ValueError("Learning rates must be positive.")
        self.seed = seeds.resolve(seed)
        self.hidden_units = _positive_int("hidden_units", hidden_units)

        self.generator = build_generator(network, self.decoder_input_dim, self.image_shape,
                                         self.hidden_units)
        self.trunk = build_trunk(network, self.image_shape, self.hidden_units)
        self.d_head = keras.layers.Dense(1, name="d_head")
        self.q_hidden = _build_q_hidden(self.hidden_units)
        # Small initial logits: Q starts near the uniform categorical, CE ≈ log K + 0.1 (with
        # Glorot initialisation the initial CE is about 0.5 nats above log K); a smaller scale
        # would slow down how fast G and Q learn to communicate the code.
        self.q_categorical = keras.layers.Dense(
            self.num_categories, name="q_categorical",
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.05))
        self.q_continuous = keras.layers.Dense(self.latent_dim, name="q_continuous")
        self._create_training_state()
        self.discriminator_optimizer = None
        self.build((None,) + self.image_shape)

    # ---------------------------------------------------------------- construction and config
    @property
    def decoder_input_dim(self):
        """Width of the generator input: continuous codes + one-hot category + noise."""
        return self.latent_dim + self.num_categories + self.noise_dim

    @property
    def discrete_code_sizes(self):
        return (self.num_categories,)

    def build(self, input_shape=None):
        for layer, shape in ((self.d_head, (None, self.hidden_units)), (self.q_categorical, (None, 128)),
                             (self.q_continuous, (None, 128))):
            if not layer.built:
                layer.build(shape)
        self.built = True

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim,
                "num_categories": self.num_categories, "noise_dim": self.noise_dim,
                "input_shape": list(self.image_shape), "network": self.network,
                "info_weight": self.info_weight, "continuous_weight": self.continuous_weight,
                "generator_learning_rate": self.generator_learning_rate,
                "discriminator_learning_rate": self.discriminator_learning_rate,
                "seed": self.seed, "hidden_units": self.hidden_units}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @property
    def generator_variables(self):
        return self.generator.trainable_variables

    @property
    def discriminator_variables(self):
        """Trunk, D head and Q head: everything the discriminator/Q optimiser moves."""
        return (self.trunk.trainable_variables + self.d_head.trainable_variables
                + self.q_hidden.trainable_variables + self.q_categorical.trainable_variables
                + self.q_continuous.trainable_variables)

    # ---------------------------------------------------------------- two optimisers
    def compile(self, optimizer=None, discriminator_optimizer=None, **kwargs):
        """`optimizer` is the generator's, `discriminator_optimizer` the discriminator/Q's; both
        default to the docs/methods.md §10 Adams with this model's learning rates. They are built here on
        their own variables, so a fresh model and a loaded one hold the same optimizer variables
        (load_model restores them by position)."""
        super().compile(optimizer=optimizer or generator_adam(self.generator_learning_rate),
                        **kwargs)
        self._set_discriminator_optimizer(
            discriminator_optimizer or discriminator_adam(self.discriminator_learning_rate),
            self.generator_variables, self.discriminator_variables)

    # ---------------------------------------------------------------- codes
    def check_images(self, x):
        return check_images(x, self.image_shape)

    def generator_input(self, continuous, category, noise):
        """concat(c_cont, one-hot(c_cat), z): continuous [B, latent_dim], category int [B],
        noise [B, noise_dim]."""
        one_hot = tf.one_hot(category, self.num_categories, dtype=continuous.dtype)
        return tf.concat([continuous, one_hot, noise], axis=-1)

    def training_codes(self, batch_size):
        """(continuous, category, noise) of the current training step: a pure function of
        (seed, global_step)."""
        # Under a tf.distribute strategy each replica takes its rows of the global batch's codes.
        def uniform(purpose, width, *bounds):
            seed = self.training_seed(purpose)
            shape = [batch_size] if width is None else [batch_size, width]
            return replicas.global_draw(
                lambda full: tf.random.stateless_uniform(full, seed, *bounds), shape)

        continuous = uniform(_CONTINUOUS, self.latent_dim, -1.0, 1.0)
        category = uniform(_CATEGORICAL, None, 0, self.num_categories, tf.int32)
        noise = uniform(_NOISE, self.noise_dim, -1.0, 1.0)
        return continuous, category, noise

    def random_codes(self, batch_size):
        """(continuous, category, noise) from the evaluation seed generator (not for training)."""
        continuous = keras.random.uniform((batch_size, self.latent_dim), -1.0, 1.0,
                                          seed=self.eval_seed_generator)
        category = keras.random.randint((batch_size,), 0, self.num_categories,
                                        seed=self.eval_seed_generator)
        noise = keras.random.uniform((batch_size, self.noise_dim), -1.0, 1.0,
                                     seed=self.eval_seed_generator)
        return continuous, tf.cast(category, tf.int32), noise

    # ---------------------------------------------------------------- public API
    def discriminate(self, x, training=False):
        """(D logits [B], Q categorical logits [B, K], Q continuous means [B, latent_dim])."""
        features = self.trunk(x, training=training)
        hidden = self.q_hidden(features, training=training)
        return (self.d_head(features)[:, 0], self.q_categorical(hidden),
                self.q_continuous(hidden))

    def encode(self, x, training=False):
        """Q's code for images x: {"mean", "logvar" (zeros), "category" [B, 1], "discrete"}."""
        x = self.check_images(x)
        _, logits, mean = self.discriminate(x, training=training)
        category = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {"mean": mean, "logvar": tf.zeros_like(mean), "category": category[:, None],
                "discrete": tf.one_hot(category, self.num_categories, dtype=mean.dtype)}

    def decoder_codes(self, posterior):
        """The generator input for an `encode` result: Q's codes with noise 0."""
        mean = posterior["mean"]
        noise = tf.zeros([tf.shape(mean)[0], self.noise_dim], mean.dtype)
        return tf.concat([mean, tf.cast(posterior["discrete"], mean.dtype), noise], axis=-1)

    def decode(self, z, training=False):
        """Generator logits for inputs [B, decoder_input_dim]; [B, latent_dim + K] (codes without
        noise) and bare continuous codes [B, latent_dim] (category 0) get noise 0."""
        z = check_codes(z)
        width = z.shape[-1]
        batch = tf.shape(z)[0]
        if width == self.latent_dim:
            z = tf.concat([z, tf.one_hot(tf.zeros([batch], tf.int32), self.num_categories)], -1)
            width += self.num_categories
        if width == self.latent_dim + self.num_categories and self.noise_dim:
            z = tf.concat([z, tf.zeros([batch, self.noise_dim])], axis=-1)
        return self.generator(z, training=training)

    def decode_mean(self, z):
        """Generated images (sigmoid of the generator logits)."""
        return distributions.bernoulli(self.decode(z)).mean()

    def sample(self, n):
        """n generated images with random codes and noise."""
        return distributions.bernoulli(self.generator(
            self.generator_input(*self.random_codes(sample_count(n))))).mean()

    def training_stream(self, data, batch_size, seed, start_step=0):
        """The i.i.d. image stream of the data set (`trainers.train` hook, as in the VAE base)."""
        return data.stream(int(batch_size), seed=seed, start_step=start_step)

    # ---------------------------------------------------------------- losses
    def information_terms(self, q_logits, q_mean, category, continuous):
        """(CE_cat, NLL_cont): batch means of −log Q(c_cat) and −log N(c_cont; μ_Q, 1)."""
        ce = -tf.reduce_mean(distributions.categorical(q_logits).log_prob(category))
        nll = -tf.reduce_mean(distributions.unit_scale_gaussian(q_mean).log_prob(continuous))
        return ce, nll

    def information_penalty(self, ce, nll):
        """λ·CE_cat + λ_cont·NLL_cont (= −λ·L_I with a separate continuous weight)."""
        return self.info_weight * ce + self.continuous_weight * nll

    def discriminate_real_and_fake(self, x, fake, training):
        """D/Q on the real and the fake batch as one batch (shared batch-norm statistics; see the
        module docstring): (real D logits, fake D logits, fake Q categorical logits, fake Q
        continuous means)."""
        count = tf.shape(x)[0]
        d_logits, q_logits, q_mean = self.discriminate(tf.concat([x, fake], axis=0),
                                                       training=training)
        return d_logits[:count], d_logits[count:], q_logits[count:], q_mean[count:]

    def discriminator_terms(self, x, fake, codes, training):
        continuous, category, _ = codes
        real_logits, fake_logits, q_logits, q_mean = self.discriminate_real_and_fake(
            x, fake, training)
        ce, nll = self.information_terms(q_logits, q_mean, category, continuous)
        bce_real = -tf.reduce_mean(distributions.bernoulli(real_logits).log_prob(1.0))
        bce_fake = -tf.reduce_mean(distributions.bernoulli(fake_logits).log_prob(0.0))
        return {"discriminator_loss": bce_real + bce_fake + self.information_penalty(ce, nll),
                "info_categorical": ce, "info_continuous": nll,
                "real_probability": tf.reduce_mean(tf.sigmoid(real_logits)),
                "fake_probability": tf.reduce_mean(tf.sigmoid(fake_logits))}

    def generator_terms(self, x, fake, codes, training):
        continuous, category, _ = codes
        _, fake_logits, q_logits, q_mean = self.discriminate_real_and_fake(
            tf.stop_gradient(x), fake, training)
        ce, nll = self.information_terms(q_logits, q_mean, category, continuous)
        non_saturating = -tf.reduce_mean(distributions.bernoulli(fake_logits).log_prob(1.0))
        return {"generator_loss": non_saturating + self.information_penalty(ce, nll),
                "generator_info_categorical": ce}

    def train_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        saved_state = self.begin_training_step()
        x = self.check_images(x)
        codes = self.training_codes(tf.shape(x)[0])
        g_variables, d_variables = self.generator_variables, self.discriminator_variables
        with tf.GradientTape() as g_tape:
            fake = distributions.bernoulli(
                self.generator(self.generator_input(*codes), training=True)).mean()
            # 1. Discriminator/Q step on the fake batch as a constant.
            with g_tape.stop_recording():
                with tf.GradientTape() as d_tape:
                    d_terms = self.discriminator_terms(x, tf.stop_gradient(fake), codes, True)
                gradients = d_tape.gradient(d_terms["discriminator_loss"], d_variables)
                d_nonfinite = self.apply_finite_update(self.discriminator_optimizer, gradients,
                                                       d_variables, d_terms)
            # 2. Generator step against the updated discriminator/Q.
            g_terms = self.generator_terms(x, fake, codes, True)
        gradients = g_tape.gradient(g_terms["generator_loss"], g_variables)
        g_nonfinite = self.apply_finite_update(self.optimizer, gradients, g_variables, g_terms)
        terms = {**d_terms, "generator_loss": g_terms["generator_loss"]}
        terms["loss"] = terms["discriminator_loss"] + terms["generator_loss"]
        return self.end_training_step(terms, tf.bitwise.bitwise_or(d_nonfinite, g_nonfinite),
                                      saved_state)

    def compute_loss_terms(self, x, training=False):
        """Every logged term for real images x and fresh codes, without an optimiser step
        (training-step codes and batch statistics when `training`, else the evaluation seed
        generator's codes and the moving statistics)."""
        x = self.check_images(x)
        batch = tf.shape(x)[0]
        codes = self.training_codes(batch) if training else self.random_codes(batch)
        fake = distributions.bernoulli(
            self.generator(self.generator_input(*codes), training=training)).mean()
        terms = self.discriminator_terms(x, fake, codes, training)
        terms["generator_loss"] = self.generator_terms(x, fake, codes, training)["generator_loss"]
        terms["loss"] = terms["discriminator_loss"] + terms["generator_loss"]
        return terms

    def test_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._record(self.compute_loss_terms(x, training=False))
