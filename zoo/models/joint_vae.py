"""JointVAE (Dupont 2018), docs/methods.md §7: continuous and categorical latents with Gumbel-softmax.

The encoder gives μ, log σ² of the continuous code z and, for each categorical code j with K_j
categories, probabilities α_j = softmax(logits_j). The decoder reads concat(z, c_1, …, c_J).

- Training: z = μ + σ·ε and c_j = softmax((log α_j + g)/τ), g ~ Gumbel, τ = 0.67 (a relaxed
  one-hot sample, `zoo.distributions.relaxed_one_hot_categorical`); all noise is a pure function of
  (seed, global_step), so a resumed run makes the same draws.
- Evaluation: c_j = one_hot(argmax α_j) (hard), z = μ for `call`/`representation`/`encode`.
- KL_z = Σ_d KL(q(z_d|x) ‖ N(0, 1)); KL_c = Σ_j (log K_j + Σ_k α_jk log α_jk) (KL to uniform),
  both averaged over the batch.
- loss = recon + γ_z·|KL_z − C_z(t)| + γ_c·|KL_c − C_c(t)|, each C(t) linear from C_min to C_max over
  T iterations (then constant); C_c is also capped at Σ_j log K_j, the largest KL a categorical can
  have. t is the saved `global_step`.

Presets (docs/methods.md §7; capacities as [C_min, C_max, T, γ]):

    dsprites       6 continuous + [3];   cont [0, 40, 300k, 150], disc [0, 1.1, 300k, 150]
    mnist          10 continuous + [10]; cont [0, 5, 25k, 30],    disc [0, 5, 25k, 30]
    fashion_mnist  10 continuous + [10]; cont [0, 5, 50k, 100],   disc [0, 10, 50k, 100]

all with Adam lr 5e-4 (`compile()` without an optimizer uses the preset's rate, and so does
`trainers.train` without --learning_rate). The latent sizes of the MNIST presets are Dupont's
(docs/methods.md §7, §18); MNIST-sized (28×28) images take `network="conv28"`.
Explicit arguments override the preset.

`representation(x)` = concat(μ(x), argmax α_j(x) for each code) — the categorical indices are the
last columns (one per code).
"""
import keras
import numpy as np
import tensorflow as tf

from zoo import distributions, seeds
from zoo.checks import check_int
from zoo.models.base import (
    VAE,
    check_codes,
    default_optimizer,
    non_negative,
    sample_count,
)
from zoo.models.schedules import linear_capacity

PRESETS = {
    "dsprites": {"latent_dim": 6, "categorical_dims": [3],
                 "cont_capacity": [0.0, 40.0, 300_000, 150.0],
                 "disc_capacity": [0.0, 1.1, 300_000, 150.0], "learning_rate": 5e-4},
    "mnist": {"latent_dim": 10, "categorical_dims": [10],
              "cont_capacity": [0.0, 5.0, 25_000, 30.0],
              "disc_capacity": [0.0, 5.0, 25_000, 30.0], "learning_rate": 5e-4},
    "fashion_mnist": {"latent_dim": 10, "categorical_dims": [10],
                      "cont_capacity": [0.0, 5.0, 50_000, 100.0],
                      "disc_capacity": [0.0, 10.0, 50_000, 100.0], "learning_rate": 5e-4},
}


def _capacity_setting(name, value):
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise ValueError(f"{name} must be [C_min, C_max, T, gamma], got {value!r}.")
    c_min, c_max = non_negative(f"{name} C_min", value[0]), non_negative(f"{name} C_max", value[1])
    steps, gamma = check_int(f"{name} T", value[2], 1), non_negative(f"{name} gamma", value[3])
    if c_min > c_max:
        raise ValueError(f"{name} needs C_min ≤ C_max, got {c_min} > {c_max}.")
    return [c_min, c_max, int(steps), gamma]


@keras.saving.register_keras_serializable(package="zoo")
class JointVAE(VAE):
    """JointVAE with Gumbel-softmax categorical codes and two capacity schedules.

    Args:
      preset: "dsprites" (default), "mnist", "fashion_mnist" or None (then give every setting).
      latent_dim: continuous dimensions.
      categorical_dims: categories of each categorical code, e.g. [3].
      temperature: Gumbel-softmax τ (0.67).
      cont_capacity, disc_capacity: [C_min, C_max, T, γ] of the continuous / categorical KL.
      learning_rate: Adam learning rate `compile()` uses when no optimizer is given.
    """

    regularizer_terms = ("kl_cont", "kl_disc", "capacity_cont", "capacity_disc")

    def __init__(self, preset="dsprites", latent_dim=None, categorical_dims=None, temperature=0.67,
                 cont_capacity=None, disc_capacity=None, learning_rate=None, **kwargs):
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"Unknown JointVAE preset {preset!r}; expected one of "
                             f"{sorted(PRESETS)} or None.")
        settings = dict(PRESETS.get(preset, {}))
        given = {"latent_dim": latent_dim, "categorical_dims": categorical_dims,
                 "cont_capacity": cont_capacity, "disc_capacity": disc_capacity,
                 "learning_rate": learning_rate}
        settings.update({k: v for k, v in given.items() if v is not None})
        missing = sorted(set(given) - set(settings))
        if missing:
            raise ValueError(f"JointVAE without a preset needs {missing}.")
        super().__init__(latent_dim=settings["latent_dim"], **kwargs)
        self.preset = preset
        dims = settings["categorical_dims"]
        if not isinstance(dims, (list, tuple)) or not dims:
            raise ValueError(f"categorical_dims must be a non-empty list of integers ≥ 2, got "
                             f"{dims!r}.")
        self.categorical_dims = [check_int("each of categorical_dims", k, 2) for k in dims]
        self.temperature = float(temperature)
        if not np.isfinite(self.temperature) or self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}.")
        self.cont_capacity = _capacity_setting("cont_capacity", settings["cont_capacity"])
        self.disc_capacity = _capacity_setting("disc_capacity", settings["disc_capacity"])
        self.learning_rate = float(settings["learning_rate"])
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}.")

    def _build_layers(self):
        super()._build_layers()
        self.categorical_head = keras.layers.Dense(sum(self.categorical_dims),
                                                   name="categorical_head")

    def build(self, input_shape=None):
        if not self.categorical_head.built:
            self.categorical_head.build(self.encoder.output_shape)
        super().build(input_shape)

    # ---------------------------------------------------------------- config
    @property
    def decoder_input_dim(self):
        return self.latent_dim + sum(self.categorical_dims)

    @property
    def discrete_code_sizes(self):
        return tuple(self.categorical_dims)

    def get_config(self):
        return {**super().get_config(), "preset": self.preset,
                "categorical_dims": list(self.categorical_dims), "temperature": self.temperature,
                "cont_capacity": list(self.cont_capacity),
                "disc_capacity": list(self.disc_capacity), "learning_rate": self.learning_rate}

    def compile(self, optimizer=None, **kwargs):
        """`compile()` with no optimizer uses Adam(learning_rate of the preset, ε = 1e-8)."""
        super().compile(optimizer=optimizer or default_optimizer(self.learning_rate), **kwargs)

    # ---------------------------------------------------------------- schedules
    def capacities(self, step=None):
        """(C_z(t), C_c(t)) at `step` (default: the saved global_step)."""
        step = self.global_step.value if step is None else step
        c_min, c_max, steps, _ = self.cont_capacity
        cont = linear_capacity(step, c_max, steps, c_min)
        c_min, c_max, steps, _ = self.disc_capacity
        cap = float(np.sum(np.log(self.categorical_dims)))
        disc = tf.minimum(linear_capacity(step, c_max, steps, c_min), cap)
        return cont, disc

    # ---------------------------------------------------------------- codes
    def _split(self, flat):
        return tf.split(flat, self.categorical_dims, axis=-1)

    def _heads(self, x, training=False):
        features = self.encoder(x, training=training)
        mean, logvar = self.posterior_head(features)
        return mean, logvar, self.categorical_head(features)

    def _hard_codes(self, logits):
        categories = [tf.argmax(l, axis=-1, output_type=tf.int32) for l in self._split(logits)]
        one_hot = [tf.one_hot(c, k, dtype=logits.dtype)
                   for c, k in zip(categories, self.categorical_dims)]
        return tf.stack(categories, axis=-1), tf.concat(one_hot, axis=-1)

    def _relaxed_codes(self, logits):
        samples = []
        for j, code_logits in enumerate(self._split(logits)):
            seed = seeds.as_tfp_seed(self.training_seed(1 + j))
            samples.append(distributions.relaxed_one_hot_categorical(
                tf.nn.log_softmax(code_logits), self.temperature).sample(seed=seed))
        return tf.concat(samples, axis=-1)

    # ---------------------------------------------------------------- public API
    def encode(self, x, training=False):
        """{"mean", "logvar"} of q(z|x); "probs" α [B, ΣK] (softmax per code); "category"
        [B, codes] int32 (argmax per code) and "discrete" [B, ΣK] (their hard one-hot)."""
        x = self.check_images(x)
        mean, logvar, logits = self._heads(x, training)
        probs = tf.concat([tf.nn.softmax(l) for l in self._split(logits)], axis=-1)
        category, one_hot = self._hard_codes(logits)
        return {"mean": mean, "logvar": logvar, "probs": probs, "category": category,
                "discrete": one_hot}

    def decode(self, z, training=False):
        """Likelihood parameters for decoder inputs [B, m + ΣK]; bare z [B, m] gets category 0 of
        every code."""
        z = check_codes(z)
        if z.shape[-1] == self.latent_dim:
            batch = tf.shape(z)[0]
            codes = [tf.one_hot(tf.zeros([batch], tf.int32), k, dtype=z.dtype)
                     for k in self.categorical_dims]
            z = tf.concat([z] + codes, axis=-1)
        return self.decoder(z, training=training)

    def sample(self, n):
        """n images from z ~ N(0, I) and uniformly drawn categories."""
        z = keras.random.normal((sample_count(n), self.latent_dim), seed=self.eval_seed_generator)
        codes = [tf.one_hot(keras.random.randint((sample_count(n),), 0, k, seed=self.eval_seed_generator),
                            k) for k in self.categorical_dims]
        return self.decode_mean(tf.concat([z] + codes, axis=-1))

    # ---------------------------------------------------------------- losses
    def compute_loss_terms(self, x, training):
        x = self.check_images(x)
        mean, logvar, logits = self._heads(x, training)
        z = self.latent_sample(mean, logvar, training)
        codes = self._relaxed_codes(logits) if training else self._hard_codes(logits)[1]
        recon = -tf.reduce_mean(self.likelihood.log_prob(
            x, self.decoder(tf.concat([z, codes], axis=-1), training=training)))
        kl_cont, _ = self.standard_kl(mean, logvar)
        kl_disc = tf.add_n([tf.reduce_mean(distributions.categorical_kl_to_uniform(l))
                            for l in self._split(logits)])
        cap_cont, cap_disc = self.capacities()
        gamma_cont, gamma_disc = self.cont_capacity[3], self.disc_capacity[3]
        loss = (recon + gamma_cont * tf.abs(kl_cont - cap_cont)
                + gamma_disc * tf.abs(kl_disc - cap_disc))
        return self.loss_terms(loss, recon, kl_cont + kl_disc, {
            "kl_cont": kl_cont, "kl_disc": kl_disc, "capacity_cont": cap_cont,
            "capacity_disc": cap_disc})
