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


def regularize_kernels(layers, regularizer):
    """Attach `regularizer` (e.g. `keras.regularizers.L2`) to the kernel of every layer inside
    `layers` (layers or models, searched recursively) that has one: conv, transposed conv and dense
    kernels, not biases. Their penalties then appear in `model.losses`, which the VAE base adds to
    the loss. Works for any network of NETWORKS, so a builder needs no per-layer argument."""
    for layer in layers:
        for sub in layer._flatten_layers(include_self=True):
            kernel = getattr(sub, "kernel", None)
            if kernel is not None and kernel.trainable:
                kernel.regularizer = regularizer
    return layers


def build_encoder(name, image_shape, kernel_regularizer=None):
    """Images [B, H, W, C] → features [B, F]; `kernel_regularizer` (optional) goes on every
    conv/dense kernel (weight decay, e.g. CascadeVAE's)."""
    encoder, _ = _lookup(name, image_shape)
    model = keras.Sequential(encoder(tuple(image_shape)), name="encoder")
    if kernel_regularizer is not None:
        regularize_kernels([model], kernel_regularizer)
    return model


def build_decoder(name, code_dim, image_shape, kernel_regularizer=None):
    """Codes [B, code_dim] → likelihood parameters [B, H, W, C]; `kernel_regularizer` as for
    `build_encoder`."""
    _, decoder = _lookup(name, image_shape)
    model = keras.Sequential(decoder(int(code_dim), tuple(image_shape)), name="decoder")
    if kernel_regularizer is not None:
        regularize_kernels([model], kernel_regularizer)
    return model
