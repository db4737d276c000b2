"""Encoder and decoder builders, selected by name (METHODS §1).

An encoder maps images to a feature vector (the posterior head on top lives in
`zoo.distributions`); a decoder maps a code vector to one likelihood parameter per pixel and
channel (logits for the Bernoulli likelihood). Both are built `keras.Sequential`s with an `Input`,
so their weights exist as soon as the model is constructed.
"""
import keras


def _conv64_encoder(input_shape, late_kernel):
    layers = [keras.Input(shape=input_shape)]
    for filters, kernel in ((32, 4), (32, 4), (64, late_kernel), (64, late_kernel)):
        layers.append(keras.layers.Conv2D(filters, kernel, strides=2, padding="same",
                                          activation="relu"))
    layers += [keras.layers.Flatten(), keras.layers.Dense(256, activation="relu")]
    return layers


def _deconv64_decoder(code_dim, output_shape):
    return [
        keras.Input(shape=(code_dim,)),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(1024, activation="relu"),
        keras.layers.Reshape((4, 4, 64)),
        keras.layers.Conv2DTranspose(64, 4, strides=2, padding="same", activation="relu"),
        keras.layers.Conv2DTranspose(32, 4, strides=2, padding="same", activation="relu"),
        keras.layers.Conv2DTranspose(32, 4, strides=2, padding="same", activation="relu"),
        keras.layers.Conv2DTranspose(output_shape[-1], 4, strides=2, padding="same"),
    ]


# name → (encoder layers(input_shape), decoder layers(code_dim, output_shape), supported H×W)
NETWORKS = {
    # The architecture as the β-VAE/FactorVAE papers and disentanglement_lib's table state it.
    "conv64": (lambda shape: _conv64_encoder(shape, late_kernel=4), _deconv64_decoder, (64, 64)),
    # disentanglement_lib's released code uses 2×2 kernels in encoder layers 3–4; use this variant
    # for exact comparisons with its models.
    "conv64_dlib": (lambda shape: _conv64_encoder(shape, late_kernel=2), _deconv64_decoder,
                    (64, 64)),
}


def _lookup(name, image_shape):
    if name not in NETWORKS:
        raise ValueError(f"Unknown network {name!r}; expected one of {sorted(NETWORKS)}.")
    encoder, decoder, spatial = NETWORKS[name]
    if tuple(image_shape[:2]) != spatial or len(image_shape) != 3:
        raise ValueError(f"Network {name!r} needs images of shape {spatial + ('C',)}, "
                         f"got {tuple(image_shape)}.")
    return encoder, decoder


def build_encoder(name, image_shape):
    """Images [B, H, W, C] → features [B, F]."""
    encoder, _ = _lookup(name, image_shape)
    return keras.Sequential(encoder(tuple(image_shape)), name="encoder")


def build_decoder(name, code_dim, image_shape):
    """Codes [B, code_dim] → likelihood parameters [B, H, W, C]."""
    _, decoder = _lookup(name, image_shape)
    return keras.Sequential(decoder(int(code_dim), tuple(image_shape)), name="decoder")
