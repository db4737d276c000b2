"""SCAN, the Symbol-Concept Association Network (Higgins et al. 2018), METHODS §14.

On top of a trained visual model q(z_x|x), p(x|z_x) (a β-VAE, β-VAE_DAE or another model of the
VAE family with a continuous Gaussian code of K latents) that stays frozen, SCAN learns a symbol
VAE q(z_y|y), p(y|z_y) with dim z_y = K over k-hot symbols y (`zoo.symbols`: attribute words of
the data set's factors; a concept names some attributes and leaves the others unspecified):

    loss = −E_{q(z_y|y)} log p(y|z_y) + β·KL(q(z_y|y) ‖ N(0, I)) + λ·KL(q(z_x|x) ‖ q(z_y|y))

on (image, symbol) pairs, the symbol naming a random subset of the image's attributes (each
attribute named with probability `specify_probability`). p(y|z_y) is a Bernoulli per word. The
grounding term is the *forward* KL from the visual posterior to the symbol posterior, in closed
form for diagonal Gaussians (`forward_kl`):

    KL(N(μ_x, σ_x²) ‖ N(μ_y, σ_y²)) = Σ_k log(σ_y/σ_x) + (σ_x² + (μ_x − μ_y)²)/(2σ_y²) − ½

It is mode-covering: over the images of a concept, q(z_y|y) must cover every q(z_x|x), so latents
of attributes the concept leaves unspecified stay broad (near the prior) and specified ones narrow.

- sym2img: z ~ q(z_y|y) (μ_y + σ_y·ε for a given ε; ε = 0 gives the concept's mean), decoded by the
  visual decoder: `sym2img(y, noise)`.
- img2sym: μ_x(x) from the visual encoder, decoded by p(y|z): `img2sym(x)` → word probabilities.
- The recombination operator ψ(z_{y1}, z_{y2}, r) → z_r (r one-hot over AND, IN COMMON, IGNORE;
  `zoo.symbols.OPERATORS`) acts on each latent's (μ₁, σ₁, μ₂, σ₂) with weights shared over the
  latents (a 1×1 convolution over latents conditioned on r: Dense(hidden, ReLU) → Dense(2) giving
  (μ_r, log σ_r²)) — `recombine`. It is trained with KL(q(z_x|x) ‖ q_ψ(z_r|…)) for images x that
  match the recombined concept (`recombination_kl`) in a second stage, `stage="recombination"`,
  in which the symbol VAE is frozen as well (`training_stream` says how (x, y₁, y₂, r) are
  drawn).

Training, two stages, each from `training_stream` (with Keras: `fit(images, labels)`):

    python -m trainers.train --model=scan --model_arg=visual_path=runs/beta_vae/model.keras \
        --output_dir=runs/scan                                      # (images, symbols)
    python -m trainers.train --model=scan --model_arg=visual_path=runs/beta_vae/model.keras \
        --model_arg=stage=recombination --init_from=runs/scan/model.keras \
        --output_dir=runs/scan_recombination                        # (images, (y₁, y₂, r))

`evaluate` on images alone scores the empty concept (no word named; every image matches it); the
held-out terms `trainers.train` writes come from `evaluation_stream`, the stage's own pairs. The visual model's weights are copied into the model
(frozen; saved with it, so `load_model` needs no file) and its file's sha256 is recorded in the
config (`visual_sha256`). `encode`, `decode`, `call`, `representation` and `sample` are the visual
model's, so the zoo's tools (traversals, metrics, `zoo.export`) work on a SCAN; its own SavedModel
endpoints `sym2img`, `img2sym` (and `serving_default` = img2sym) are declared by
`serving_endpoints` and written with the standard ones by `zoo.export.export_saved_model`.

Defaults are this project's choices where the seeds are silent: symbol networks of two ReLU layers
of 100 units each way, β = 1, λ = 10, specify_probability 0.5.
"""
import keras
import numpy as np
import tensorflow as tf

from zoo import distributions, seeds
from zoo.models.base import (
    VAE,
    CodeLayout,
    TrainingState,
    _positive_int,
    default_optimizer,
    load_checked,
    non_negative,
    sample_count,
)
from zoo.models.beta_vae_dae import DenoisingAutoencoder
from zoo.symbols import (
    DSPRITES_ATTRIBUTES,
    DSPRITES_FACTOR_SIZES,
    OPERATORS,
    Vocabulary,
    recombination_triples,
)

STAGES = ("concepts", "recombination")


def forward_kl(mean_x, logvar_x, mean_y, logvar_y):
    """KL(N(μ_x, σ_x²) ‖ N(μ_y, σ_y²)) per dimension (diagonal Gaussians), shape [..., K]."""
    return 0.5 * (logvar_y - logvar_x
                  + (tf.exp(logvar_x) + tf.square(mean_x - mean_y)) / tf.exp(logvar_y) - 1.0)


def default_vocabulary():
    return Vocabulary(tuple(DSPRITES_FACTOR_SIZES), tuple(DSPRITES_FACTOR_SIZES.values()),
                      DSPRITES_ATTRIBUTES)


def _mlp(input_dim, hidden_units, output_dim, name):
    layers = [keras.Input(shape=(input_dim,))]
    layers += [keras.layers.Dense(hidden_units, activation="relu") for _ in range(2)]
    if output_dim:
        layers.append(keras.layers.Dense(output_dim))
    return keras.Sequential(layers, name=name)


@keras.saving.register_keras_serializable(package="zoo")
class SCAN(CodeLayout, TrainingState, keras.Model):
    """SCAN on a frozen visual model (module docstring).

    Args:
      visual_path: a saved visual model (.keras of the VAE family: β-VAE, β-VAE_DAE, ...) whose
        weights are copied in.
      visual_sha256: the expected sha256 of visual_path (optional; checked); recorded.
      visual_model: the visual model's serialized config; taken from visual_path when given (what
        `load_model` uses: the saved model's weights replace the placeholders).
      visual_source: where the visual model came from, for the record (default visual_path).
      vocabulary: `zoo.symbols.Vocabulary` config (default: dSprites' words).
      beta: β, weight of KL(q(z_y|y) ‖ N(0, I)) (1).
      grounding_weight: λ, weight of the forward KL to the visual posterior (10).
      hidden_units: width of the symbol networks' two hidden layers (100).
      specify_probability: probability that a training symbol names each attribute (0.5).
      held_out_concepts: word combinations (lists of ≥ 2 words, e.g. [["heart", "small"]]) that
        no training symbol or recombined result names in full, to test generalisation to them.
      latent_dim, input_shape, network: if given (as `trainers.train` does), they must be the
        visual model's.
      seed: seed of the model's random draws.
    """

    def __init__(self, visual_path=None, visual_sha256=None, visual_model=None,
                 visual_source=None, vocabulary=None, stage="concepts", beta=1.0,
                 grounding_weight=10.0, hidden_units=100, specify_probability=0.5,
                 held_out_concepts=(), latent_dim=None, input_shape=None, network=None,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        if stage not in STAGES:
            raise ValueError(f"Unknown SCAN stage {stage!r}; expected one of {STAGES}.")
        self.stage = stage
        self.beta = non_negative("beta", beta)
        self.grounding_weight = non_negative("grounding_weight", grounding_weight)
        self.hidden_units = _positive_int("hidden_units", hidden_units)
        self.specify_probability = float(specify_probability)
        if not 0.0 <= self.specify_probability <= 1.0:
            raise ValueError(f"specify_probability must be in [0, 1], got {specify_probability!r}.")
        self.vocabulary = (default_vocabulary() if vocabulary is None
                           else Vocabulary.from_config(vocabulary))
        self.held_out_concepts = [[str(w) for w in concept] for concept in held_out_concepts]
        self.held_out_symbols()  # validates them
        self.seed = seeds.resolve(seed)
        weights = None
        if visual_path is not None:
            source, visual_sha256 = load_checked(visual_path, visual_sha256, "visual_path")
            _check_visual(source, visual_path)
            # The architecture only: no optimizer (the visual model is frozen here) or build state.
            visual_model = {k: v for k, v in keras.saving.serialize_keras_object(source).items()
                            if k in ("module", "class_name", "config", "registered_name")}
            visual_source = str(visual_path) if visual_source is None else visual_source
            weights = source.get_weights()
        elif visual_model is None:
            raise ValueError("scan needs visual_path=<a trained visual model .keras file> (a "
                             "β-VAE or β-VAE_DAE; see zoo.models.scan).")
        self.visual_model, self.visual_sha256 = visual_model, visual_sha256
        self.visual_source = visual_source
        self.visual = keras.saving.deserialize_keras_object(visual_model)
        _check_visual(self.visual, "visual_model")
        if weights is not None:
            self.visual.set_weights(weights)
        self.visual.trainable = False
        for name, given, own in (("latent_dim", latent_dim, self.visual.latent_dim),
                                 ("input_shape", input_shape, self.visual.image_shape),
                                 ("network", network, self.visual.network)):
            if given is not None and (tuple(given) if name == "input_shape" else given) != own:
                raise ValueError(f"{name}={given!r} does not match the visual model's {own!r}.")

        size, k = self.vocabulary.size, self.latent_dim
        self.symbol_encoder = _mlp(size, self.hidden_units, 0, "symbol_encoder")
        self.symbol_posterior = distributions.GaussianPosteriorHead(k, name="symbol_posterior")
        self.symbol_decoder = _mlp(k, self.hidden_units, size, "symbol_decoder")
        self.recombiner = keras.Sequential(
            [keras.Input(shape=(k, 4 + len(OPERATORS))),
             keras.layers.Dense(self.hidden_units, activation="relu"), keras.layers.Dense(2)],
            name="recombiner")
        # Each stage trains its own part; the other one (and the visual model) stays frozen.
        training_recombiner = stage == "recombination"
        self.recombiner.trainable = training_recombiner
        for layer in (self.symbol_encoder, self.symbol_posterior, self.symbol_decoder):
            layer.trainable = not training_recombiner
        self._create_training_state()
        self.build((None,) + self.image_shape)

    # ---------------------------------------------------------------- construction and config
    @property
    def logged_terms(self):
        if self.stage == "recombination":
            return ("loss", "recombination_kl")
        return ("loss", "recon", "kl", "elbo", "grounding")

    @property
    def latent_dim(self):
        return self.visual.latent_dim

    @property
    def image_shape(self):
        return self.visual.image_shape

    @property
    def decoder_input_dim(self):
        return self.visual.decoder_input_dim

    def build(self, input_shape=None):
        if not self.symbol_posterior.built:
            self.symbol_posterior.build((None, self.hidden_units))
        self.built = True

    def get_config(self):
        return {**super().get_config(), "visual_model": self.visual_model,
                "visual_sha256": self.visual_sha256, "visual_source": self.visual_source,
                "vocabulary": self.vocabulary.get_config(), "stage": self.stage, "beta": self.beta,
                "grounding_weight": self.grounding_weight, "hidden_units": self.hidden_units,
                "specify_probability": self.specify_probability,
                "held_out_concepts": self.held_out_concepts, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def held_out_symbols(self):
        """k-hot [H, V] of `held_out_concepts` (each combining ≥ 2 words)."""
        held_out = self.vocabulary.parse(self.held_out_concepts) if self.held_out_concepts \
            else np.zeros((0, self.vocabulary.size), np.float32)
        self.vocabulary.held_out_parts(held_out)
        return held_out

    def compile(self, optimizer=None, **kwargs):
        """`compile()` with no optimizer uses Adam(1e-4, ε=1e-8), the METHODS default."""
        super().compile(optimizer=optimizer or default_optimizer(), **kwargs)
        # Built on the stage's variables here, so a fresh and a loaded model hold the same
        # optimizer variables (and a failed first trace leaves no half-built optimizer).
        if not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))

    # ---------------------------------------------------------------- the visual model's API
    def check_images(self, x):
        return self.visual.check_images(x)

    def encode(self, x, training=False):
        """The visual posterior q(z_x|x): {"mean", "logvar"} [B, K]."""
        return self.visual.encode(x, training=False)

    def decode(self, z, training=False):
        return self.visual.decode(z, training=False)

    def decode_mean(self, z):
        return self.visual.decode_mean(z)

    def call(self, x, training=False):
        return self.visual(x, training=False)

    def sample(self, n):
        return self.visual.sample(n)

    # ---------------------------------------------------------------- symbols
    def check_symbols(self, y):
        return self.vocabulary.check(y)

    def encode_symbols(self, y, training=False):
        """q(z_y|y): {"mean", "logvar"} [B, K] for k-hot symbols y [B, V]."""
        mean, logvar = self.symbol_posterior(
            self.symbol_encoder(self.check_symbols(y), training=training))
        return {"mean": mean, "logvar": logvar}

    def symbol_logits(self, z, training=False):
        """p(y|z)'s Bernoulli logits over the words [B, V]."""
        return self.symbol_decoder(z, training=training)

    def sym2img(self, y, noise=None):
        """Images decoded from z = μ_y + σ_y·ε ([B, H, W, C] means); ε [B, K] (default 0: each
        concept's mean)."""
        posterior = self.encode_symbols(y)
        z = posterior["mean"]
        if noise is not None:
            z = distributions.reparameterized_sample(z, posterior["logvar"], noise)
        return self.visual.decode_mean(z)

    def sample_concepts(self, y, n):
        """n images per concept [B, n, H, W, C] from z ~ q(z_y|y) (evaluation seeds; eager)."""
        n = sample_count(n)
        posterior = self.encode_symbols(y)
        mean = tf.repeat(posterior["mean"], n, axis=0)
        logvar = tf.repeat(posterior["logvar"], n, axis=0)
        noise = keras.random.normal(tuple(mean.shape), seed=self.eval_seed_generator)
        images = self.visual.decode_mean(distributions.reparameterized_sample(mean, logvar, noise))
        return tf.reshape(images, (-1, n) + tuple(self.image_shape))

    def img2sym(self, x):
        """Word probabilities p(y|μ_x(x)) [B, V]."""
        return tf.sigmoid(self.symbol_logits(self.visual.encode(x)["mean"]))

    def describe(self, x):
        """The most probable word of every attribute for each image: a list of lists of words."""
        probabilities = self.img2sym(x).numpy()
        vocabulary = self.vocabulary
        return [[vocabulary.words[vocabulary.offsets[a]
                                  + int(np.argmax(row[vocabulary.attribute_of_word == a]))]
                 for a in range(vocabulary.num_attributes)] for row in probabilities]

    # ---------------------------------------------------------------- recombination
    def recombine(self, first, second, operator):
        """q_ψ(z_r | q(z_y|y₁), q(z_y|y₂), r) for symbols y₁, y₂ [B, V] and `operator` (a name
        of `OPERATORS` or one-hot r [B, 3]): {"mean", "logvar"} [B, K]."""
        a, b = self.encode_symbols(first), self.encode_symbols(second)
        if isinstance(operator, str):
            if operator not in OPERATORS:
                raise ValueError(f"Unknown operator {operator!r}; expected one of {OPERATORS}.")
            operator = tf.one_hot(tf.fill(tf.shape(a["mean"])[:1], OPERATORS.index(operator)),
                                  len(OPERATORS))
        r = tf.broadcast_to(tf.cast(operator, tf.float32)[:, None, :],
                            tf.concat([tf.shape(a["mean"]), [len(OPERATORS)]], 0))
        features = tf.stack([a["mean"], tf.exp(0.5 * a["logvar"]),
                             b["mean"], tf.exp(0.5 * b["logvar"])], axis=-1)   # [B, K, 4]
        out = self.recombiner(tf.concat([features, r], axis=-1))                # [B, K, 2]
        return {"mean": out[..., 0], "logvar": out[..., 1]}

    def recombination_kl(self, x, first, second, operator):
        """KL(q(z_x|x) ‖ q_ψ(z_r|…)) summed over latents, batch mean, for images x that match
        the recombined concept."""
        visual, recombined = self.visual.encode(x), self.recombine(first, second, operator)
        return tf.reduce_mean(tf.reduce_sum(forward_kl(visual["mean"], visual["logvar"],
                                                       recombined["mean"],
                                                       recombined["logvar"]), axis=1))

    # ---------------------------------------------------------------- training
    def serving_endpoints(self):
        """SavedModel endpoints (`zoo.export`): `sym2img` (symbols [B, V], noise [B, K] → images,
        mean, logvar), `img2sym` (images → word probabilities), and `serving_default` = img2sym."""
        symbols = tf.TensorSpec((None, self.vocabulary.size), tf.float32, name="symbols")
        noise = tf.TensorSpec((None, self.latent_dim), tf.float32, name="noise")
        images = tf.TensorSpec((None,) + tuple(self.image_shape), tf.float32, name="images")

        def sym2img(y, eps):
            return {"images": self.sym2img(y, eps), **self.encode_symbols(y)}

        def img2sym(x):
            return {"probabilities": self.img2sym(x)}

        return {"sym2img": (sym2img, [symbols, noise]), "img2sym": (img2sym, [images]),
                "serving_default": (img2sym, [images])}

    def training_stream(self, data, batch_size, seed, start_step=0):
        """The stage's batches from the data set's i.i.d. stream; batch k is a pure function of
        (seed, start_step + k).

        "concepts": (images, symbols), each symbol naming each of its image's attributes with
        `specify_probability`. "recombination": (images, (y₁, y₂, r)) with r a uniform one-hot
        operator and the image matching y₁ <r> y₂ (`zoo.symbols.recombination_triples`, with
        masks u₁, u₂, u₃ over the attributes each true with `specify_probability`). In both
        stages no symbol (nor recombined result) names a `held_out_concepts` combination in full.
        """
        self.vocabulary.check_data(data)
        batch_size, vocabulary = int(batch_size), self.vocabulary
        held_out = self.held_out_symbols()
        probability = self.specify_probability
        images = data.stream(batch_size, seed=seed, start_step=start_step, with_factors=True)
        steps = tf.data.Dataset.counter(start=start_step, dtype=tf.int64)

        symbol_seed = int(seed) ^ seeds.SCAN_SYMBOLS

        def masks(step, count):
            return [vocabulary.random_specified(
                batch_size, seeds.derive(symbol_seed, step, k), probability)
                for k in range(count)]

        def concepts(batch, step):
            x, factors = batch
            symbols = vocabulary.symbols(factors, masks(step, 1)[0])
            return x, vocabulary.withhold(symbols, held_out) if len(held_out) else symbols

        def recombinations(batch, step):
            x, factors = batch
            others = [data.sample_factors_tf(batch_size, seeds.derive(symbol_seed, step, 10 + k))
                      for k in range(2)]
            operator = tf.random.stateless_uniform(
                [batch_size], seeds.derive(symbol_seed, step, 20), 0, len(OPERATORS), tf.int32)
            return x, recombination_triples(vocabulary, factors, others, masks(step, 3),
                                            operator, held_out)

        make = recombinations if self.stage == "recombination" else concepts
        return tf.data.Dataset.zip((images, steps)).map(make).prefetch(tf.data.AUTOTUNE)

    def evaluation_stream(self, data, batch_size, seed):
        return self.training_stream(data, batch_size, seed)

    def compute_loss_terms(self, x, y, training):
        """The SCAN terms for images x and their symbols y (module docstring)."""
        visual = self.visual.encode(x)
        y = self.check_symbols(y)
        posterior = self.encode_symbols(y, training=training)
        mean, logvar = posterior["mean"], posterior["logvar"]
        if training:
            noise = tf.random.stateless_normal(tf.shape(mean), self.training_seed(0))
        else:
            noise = keras.random.normal(tf.shape(mean), seed=self.eval_seed_generator)
        z = distributions.reparameterized_sample(mean, logvar, noise)
        logits = self.symbol_logits(z, training=training)
        recon = tf.reduce_mean(tf.reduce_sum(
            tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits), axis=1))
        kl = tf.reduce_mean(tf.reduce_sum(
            distributions.kl_to_standard_normal(mean, logvar), axis=1))
        grounding = tf.reduce_mean(tf.reduce_sum(
            forward_kl(visual["mean"], visual["logvar"], mean, logvar), axis=1))
        loss = recon + self.beta * kl + self.grounding_weight * grounding
        if self.losses:
            loss += tf.add_n(self.losses)
        return {"loss": loss, "recon": recon, "kl": kl, "elbo": -(recon + kl),
                "grounding": grounding}

    def stage_loss_terms(self, x, y, training):
        """The logged terms of the model's stage; y: symbols ("concepts") or (y₁, y₂, r)."""
        if self.stage == "recombination":
            first, second, operator = y
            kl = self.recombination_kl(x, first, second, operator)
            return {"loss": kl, "recombination_kl": kl}
        return self.compute_loss_terms(x, y, training)

    def train_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if y is None:
            raise ValueError("SCAN trains on labelled batches: (images, symbols) in the "
                             "'concepts' stage, (images, (y1, y2, r)) in the 'recombination' "
                             "stage; fit(images, labels), or trainers.train, whose stream "
                             "(training_stream) yields them; got images only.")
        saved_state = self.begin_training_step()
        with tf.GradientTape() as tape:
            terms = self.stage_loss_terms(x, y, training=True)
        variables = self.trainable_variables
        nonfinite = self.apply_finite_update(self.optimizer, tape.gradient(terms["loss"], variables),
                                             variables, terms)
        return self.end_training_step(terms, nonfinite, saved_state)

    def test_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if y is None:  # the empty concept (no word named), which every image matches
            empty = tf.zeros([tf.shape(x)[0], self.vocabulary.size])
            y = (empty, empty, tf.one_hot(tf.zeros_like(empty[:, 0], tf.int32), len(OPERATORS))) \
                if self.stage == "recombination" else empty
        return self._record(self.stage_loss_terms(x, y, training=False))


def _check_visual(model, where):
    if not isinstance(model, VAE) or model.discrete_code_sizes \
            or isinstance(model, DenoisingAutoencoder):
        raise ValueError(f"{where} holds a {type(model).__name__}; SCAN needs a visual model of "
                         "the VAE family with a continuous Gaussian code only (β-VAE, "
                         "β-VAE_DAE, ...).")
