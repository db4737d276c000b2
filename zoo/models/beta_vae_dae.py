"""β-VAE_DAE (Higgins et al. 2017, DARLA; Higgins et al. 2018, SCAN), docs/methods.md §14: a β-VAE whose
reconstruction term lives in the feature space of a denoising autoencoder trained beforehand.

Stage 1, `DenoisingAutoencoder` ("dae"): a deterministic autoencoder trained to restore clean
images from corrupted ones,

    loss = −log p(x | g(f(c(x))))          (the likelihood's reconstruction term, no KL)

with c a random corruption: "occlusion" (a square of side round(level·H) × round(level·W) at a
uniform position set to 0; default, level 0.25: 16 × 16 pixels on 64 × 64), "pixel_mask" (each
pixel set to 0 with probability level) or "gaussian" (x + level·ε, clipped to [0, 1]).

Stage 2, `BetaVAEDAE` ("beta_vae_dae"):

    loss = E_q ‖J(x̂) − J(x)‖² + β·KL(q(z|x) ‖ N(0, I))

with J the frozen DAE encoder's first `feature_depth` layers (for conv64: 1–4 the conv layers,
5 the flattened fourth conv layer, 6 its Dense(256)) and x̂ = E[x | z] the decoder's mean image for
one reparameterised sample z ~ q(z|x). (The seeds write x̂ ~ p(x|z); a Bernoulli draw has no
gradient, so the mean image stands in for it.) ‖·‖² is summed over the features and averaged over
the batch. The logged `recon` is this feature loss, `elbo` = −(recon + kl) is therefore not the
pixel ELBO, and `pixel_recon` is the pixel likelihood term −log p(x|z), monitored, not trained.

The DAE lives inside the model: `BetaVAEDAE(dae_path=...)` loads a saved "dae" model, copies its
encoder's weights into the model's frozen `dae_encoder` (non-trainable weights, so `model.save`
writes them and `keras.models.load_model` restores them; no file is needed at load time) and
records the file's sha256 in the config (`dae_sha256`, checked against a given value). Training
with `trainers.train`:

    python -m trainers.train --model=dae --steps=... --output_dir=runs/dae
    python -m trainers.train --model=beta_vae_dae --model_arg=dae_path=runs/dae/model.keras \
        --model_arg=feature_depth=4 --model_arg=beta=1 --output_dir=runs/beta_vae_dae

Defaults are choices of this project where the seeds are silent: the DAE's code size 100
(J reads lower layers; the code only has to let the decoder restore the image), feature_depth 4
(the last conv layer), β 1 (the feature loss's scale depends on J, so sweep β).
"""
import keras
import numpy as np
import tensorflow as tf

from zoo import networks
from zoo.models.base import VAE, _positive_int, load_checked, non_negative

CORRUPTIONS = ("occlusion", "pixel_mask", "gaussian")
_LEVELS = {"occlusion": "in (0, 1]", "pixel_mask": "in [0, 1]", "gaussian": "a finite number ≥ 0"}
_CORRUPTION = 2  # `training_seed` purpose of the corruption (0: reparameterisation)


def corrupt(x, kind, level, seed):
    """Corrupted copies of images x [B, H, W, C] in [0, 1] (module docstring); `seed` an int64 [2]
    stateless seed, so the corruption is a pure function of it."""
    if kind == "gaussian":
        return tf.clip_by_value(x + level * tf.random.stateless_normal(tf.shape(x), seed), 0.0, 1.0)
    shape = tf.shape(x)
    if kind == "pixel_mask":
        keep = tf.random.stateless_uniform(tf.concat([shape[:3], [1]], 0), seed) >= level
        return x * tf.cast(keep, x.dtype)
    height, width = x.shape[1], x.shape[2]
    side_h, side_w = max(1, round(level * height)), max(1, round(level * width))
    corner = tf.random.stateless_uniform([shape[0], 2], seed, minval=0,
                                         maxval=tf.int32.max, dtype=tf.int32)
    top = corner[:, 0] % (height - side_h + 1)
    left = corner[:, 1] % (width - side_w + 1)
    rows, cols = tf.range(height)[None, :], tf.range(width)[None, :]
    inside_rows = (rows >= top[:, None]) & (rows < top[:, None] + side_h)        # [B, H]
    inside_cols = (cols >= left[:, None]) & (cols < left[:, None] + side_w)      # [B, W]
    hole = inside_rows[:, :, None] & inside_cols[:, None, :]                     # [B, H, W]
    return x * tf.cast(~hole, x.dtype)[..., None]


@keras.saving.register_keras_serializable(package="zoo")
class DenoisingAutoencoder(VAE):
    """Stage 1 of β-VAE_DAE: corrupted image → code → clean image (module docstring).

    Deterministic: `encode` returns the code as "mean" and logvar = 0 only so the zoo's interface
    (export endpoints, traversals, metrics) applies; it is not a posterior and no KL is trained
    (the logged kl is 0, elbo = −recon). `sample(n)` decodes N(0, I) codes, which is not a
    generative model. The base class's posterior head is unused (frozen); the code comes from
    `code_head`.

    Args:
      latent_dim: code size (100).
      corruption: "occlusion" (default), "pixel_mask" or "gaussian".
      corruption_level: occluded side fraction, drop probability or noise std (0.25).
      **kwargs: the base `VAE`'s arguments (network, input_shape, likelihood, ...).
    """

    def __init__(self, latent_dim=100, corruption="occlusion", corruption_level=0.25, **kwargs):
        super().__init__(latent_dim=latent_dim, **kwargs)
        if corruption not in CORRUPTIONS:
            raise ValueError(f"Unknown corruption {corruption!r}; expected one of {CORRUPTIONS}.")
        self.corruption = corruption
        level = float(corruption_level)
        valid = {"occlusion": 0.0 < level <= 1.0, "pixel_mask": 0.0 <= level <= 1.0,
                 "gaussian": 0.0 <= level < np.inf}[corruption]
        if not valid:
            raise ValueError(f"corruption_level must be {_LEVELS[corruption]} for corruption "
                             f"{corruption!r}, got {corruption_level!r}.")
        self.corruption_level = level
        if corruption != "gaussian" and len(self.image_shape) != 3:
            raise ValueError(f"corruption {corruption!r} needs images (H, W, C); use 'gaussian' "
                             "for vector observations.")

    def _build_layers(self):
        super()._build_layers()
        self.code_head = keras.layers.Dense(self.latent_dim, name="code")
        self.posterior_head.trainable = False

    def build(self, input_shape=None):
        if not self.code_head.built:
            self.code_head.build(self.encoder.output_shape)
        super().build(input_shape)

    def get_config(self):
        return {**super().get_config(), "corruption": self.corruption,
                "corruption_level": self.corruption_level}

    def encode(self, x, training=False):
        """{"mean": the code [B, d], "logvar": zeros [B, d]} (see the class docstring)."""
        code = self.code_head(self.encoder(self.check_images(x), training=training))
        return {"mean": code, "logvar": tf.zeros_like(code)}

    def corrupt(self, x):
        """The step's corruption of x: a pure function of (seed, global_step), in training and in
        evaluation."""
        return corrupt(x, self.corruption, self.corruption_level, self.training_seed(_CORRUPTION))

    def compute_loss_terms(self, x, training):
        x = self.check_images(x)
        code = self.encode(self.corrupt(x), training=training)["mean"]
        recon = self.reconstruction_loss(x, code, training)
        return self.loss_terms(recon, recon, tf.constant(0.0))


@keras.saving.register_keras_serializable(package="zoo")
class BetaVAEDAE(VAE):
    """β-VAE with the DAE feature loss E_q‖J(x̂) − J(x)‖² + β·KL (module docstring).

    Args:
      beta: β (1).
      feature_depth: layers of the DAE encoder that make J (4; 1 … number of encoder layers).
      dae_path: a saved "dae" model (.keras) whose encoder weights are copied in (stage 2 of
        training); its input shape must be this model's.
      dae_sha256: the expected sha256 of dae_path (optional; checked); recorded in the config.
      dae_network: the DAE encoder's network; taken from dae_path when given. Without dae_path
        (what `load_model` does) the DAE encoder is built from it with placeholder weights that
        the saved model's weights replace; a new model needs dae_path.
      dae_source: where the DAE came from, for the record (default: dae_path as given).
      **kwargs: the base `VAE`'s arguments.
    """

    regularizer_terms = ("pixel_recon",)

    def __init__(self, beta=1.0, feature_depth=4, dae_path=None, dae_sha256=None,
                 dae_network=None, dae_source=None, **kwargs):
        super().__init__(**kwargs)
        self.beta = non_negative("beta", beta)
        self.feature_depth = _positive_int("feature_depth", feature_depth)
        # The DAE encoder's trained weights, copied in by `_build_layers` (None: load_model's
        # placeholders, which the saved weights replace).
        self._dae_weights = None
        if dae_path is not None:
            dae, sha256 = _load_dae(dae_path, dae_sha256, self.image_shape)
            dae_network, dae_sha256 = dae.network, sha256
            dae_source = str(dae_path) if dae_source is None else dae_source
            self._dae_weights = dae.encoder.get_weights()
        elif dae_network is None:
            raise ValueError("beta_vae_dae needs dae_path=<a trained 'dae' model .keras file> "
                             "(stage 1; see zoo.models.beta_vae_dae).")
        self.dae_network, self.dae_sha256, self.dae_source = dae_network, dae_sha256, dae_source

    def _build_layers(self):
        super()._build_layers()
        self.dae_encoder = networks.build_encoder(self.dae_network, self.image_shape)
        self.dae_encoder.trainable = False
        depth = len(self.dae_encoder.layers)
        if self.feature_depth > depth:
            raise ValueError(f"feature_depth must be in [1, {depth}] for the DAE network "
                             f"{self.dae_network!r} (its encoder's layers), got "
                             f"{self.feature_depth}.")
        if self._dae_weights is not None:
            self.dae_encoder.set_weights(self._dae_weights)
            self._dae_weights = None

    def get_config(self):
        return {**super().get_config(), "beta": self.beta, "feature_depth": self.feature_depth,
                "dae_network": self.dae_network, "dae_sha256": self.dae_sha256,
                "dae_source": self.dae_source}

    def dae_features(self, x):
        """J(x): the frozen DAE encoder's first `feature_depth` layers, flattened [B, N]."""
        for layer in self.dae_encoder.layers[:self.feature_depth]:
            x = layer(x, training=False)
        return keras.ops.reshape(x, (tf.shape(x)[0], -1))

    def feature_loss(self, x_hat, x):
        """‖J(x̂) − J(x)‖² summed over features, batch mean (0 for x̂ = x)."""
        return tf.reduce_mean(tf.reduce_sum(
            tf.square(self.dae_features(x_hat) - self.dae_features(x)), axis=1))

    def compute_loss_terms(self, x, training):
        x = self.check_images(x)
        mean, logvar, z = self.posterior_sample(x, training)
        params = self.decode(z, training=training)
        recon = self.feature_loss(self.likelihood.mean(params), x)
        pixel_recon = -tf.reduce_mean(self.likelihood.log_prob(x, params))
        kl, _ = self.standard_kl(mean, logvar)
        return self.loss_terms(recon + self.beta * kl, recon, kl,
                               {"pixel_recon": tf.stop_gradient(pixel_recon)})


def _load_dae(path, expected_sha256, image_shape):
    """(the DenoisingAutoencoder saved at `path`, the file's sha256), checked."""
    dae, sha256 = load_checked(path, expected_sha256, "dae_path")
    if type(dae) is not DenoisingAutoencoder:
        raise ValueError(f"dae_path {path} holds a {type(dae).__name__}, not a "
                         "DenoisingAutoencoder ('dae' model).")
    if dae.image_shape != tuple(image_shape):
        raise ValueError(f"The DAE at {path} takes input shape {dae.image_shape}; this model's is "
                         f"{tuple(image_shape)}.")
    return dae, sha256
