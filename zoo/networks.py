"""Encoder and decoder builders, selected by name (docs/methods.md §1).

An encoder maps images to a feature vector (the posterior head on top lives in
`zoo.distributions`); a decoder maps a code vector to one likelihood parameter per pixel and
channel (logits for the Bernoulli likelihood). Both are built `keras.Sequential`s with an `Input`,
so their weights exist as soon as the model is constructed.

Each NETWORKS entry declares the observation shapes it accepts (`accepted_shapes(name)`):
images of a fixed height×width (conv64, conv64_dlib, conv28, dcgan32, tcvae_mlp) or vectors (D,)
(mlp, for the pinwheel's 2-D points); other shapes are refused with a clear error.

The transposed convolutions are `Conv2DTranspose` below: Keras' layer with the same weights, the
same saved form and the same numbers (to float rounding), computed faster on CPU where the output
has few channels (docs/performance.md).
"""
import contextlib

import keras
import tensorflow as tf


def _overlap_add_4x4_stride2(inputs, kernel):
    """conv2d_transpose(inputs, kernel, strides=2, padding="SAME") for a 4×4 kernel
    [4, 4, C_out, C_in], as one matmul and an overlap-add. Output pixel 2i + t − 1 receives input
    pixel i through kernel tap t (pad_before = 1); writing t = 2q + p, the taps with the same q land
    on one copy of the input grid shifted by q."""
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


@tf.custom_gradient
def _conv_transpose_4x4_stride2(inputs, kernel):
    """`_overlap_add_4x4_stride2` forward; backward by the two ops of TensorFlow's registered
    gradient of conv2d_transpose (Conv2D for the input, Conv2DBackpropFilter for the kernel), which
    run at full speed: the gradients are those of Keras' layer, bit for bit, given the same
    upstream gradient."""
    scope = tf.get_current_name_scope()

    def gradient(upstream):
        # Named as TensorFlow names the ops of a registered gradient (trainers.profile_step).
        with tf.name_scope(f"gradient_tape/{scope}/" if scope else None):
            return (tf.nn.conv2d(upstream, kernel, strides=2, padding="SAME"),
                    tf.raw_ops.Conv2DBackpropFilter(input=upstream, filter_sizes=tf.shape(kernel),
                                                    out_backprop=inputs, strides=[1, 2, 2, 1],
                                                    padding="SAME"))
    return _overlap_add_4x4_stride2(inputs, kernel), gradient


@keras.saving.register_keras_serializable(package="zoo")
class Conv2DTranspose(keras.layers.Conv2DTranspose):
    """`keras.layers.Conv2DTranspose` with the same kernel layout [h, w, out, in], arguments, weights
    and results, faster on CPU for a 4×4, stride-2, "same" layer whose output has at most a quarter
    as many channels as its input (the decoders' last layer, e.g. 32 → 1): TensorFlow's CPU
    conv2d_transpose runs such a layer at a few percent of the machine's matmul speed, so its
    forward pass is one matmul plus an overlap-add here (equal to ~1e-7 relative) and its backward
    pass is TensorFlow's own. Other configurations run Keras' computation unchanged.

    The class keeps Keras' class name on purpose: a `.keras` file addresses a layer's weights by
    the snake-cased class name (`conv2d_transpose`, `conv2d_transpose_1`, ...), so files written
    with either class load into the other."""

    def _overlap_add_applies(self, inputs):
        return (self.rank == 2 and self.data_format == "channels_last"
                and tuple(self.kernel_size) == (4, 4) and tuple(self.strides) == (2, 2)
                and self.padding == "same" and tuple(self.dilation_rate) == (1, 1)
                and self.output_padding is None and None not in tuple(inputs.shape[1:])
                and 4 * self.filters <= inputs.shape[-1])

    def call(self, inputs):
        if not self._overlap_add_applies(inputs):
            return super().call(inputs)
        outputs = _conv_transpose_4x4_stride2(inputs, tf.convert_to_tensor(self.kernel))
        if self.use_bias:  # as Keras' own call
            outputs = keras.ops.add(outputs, keras.ops.reshape(self.bias, (1, 1, 1, self.filters)))
        if self.activation is not None:
            return self.activation(outputs)
        return outputs


_conv_transpose_class = Conv2DTranspose  # what the builders use; see keras_conv_transpose()


def conv_transpose(*args, **kwargs):
    """A transposed-convolution layer (`Conv2DTranspose`'s arguments) for a network builder."""
    return _conv_transpose_class(*args, **kwargs)


@contextlib.contextmanager
def keras_conv_transpose():
    """Networks (and models) built inside this context use `keras.layers.Conv2DTranspose` itself:
    the reference the faster layer is tested and timed against (`trainers.benchmark
    --baseline_keras_layers`)."""
    global _conv_transpose_class
    previous, _conv_transpose_class = _conv_transpose_class, keras.layers.Conv2DTranspose
    try:
        yield
    finally:
        _conv_transpose_class = previous


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
        conv_transpose(64, 4, strides=2, padding="same", activation="relu"),
        conv_transpose(32, 4, strides=2, padding="same", activation="relu"),
        conv_transpose(32, 4, strides=2, padding="same", activation="relu"),
        conv_transpose(output_shape[-1], 4, strides=2, padding="same"),
    ]


def _mlp_encoder(input_shape):
    return [keras.Input(shape=input_shape), keras.layers.Dense(100, activation="relu")]


def _mlp_decoder(code_dim, output_shape):
    return [
        keras.Input(shape=(code_dim,)),
        keras.layers.Dense(100, activation="relu"),
        keras.layers.Dense(output_shape[0]),
    ]


def _tcvae_mlp_encoder(input_shape):
    return [
        keras.Input(shape=input_shape),
        keras.layers.Flatten(),
        keras.layers.Dense(1200, activation="relu"),
        keras.layers.Dense(1200, activation="relu"),
    ]


def _tcvae_mlp_decoder(code_dim, output_shape):
    pixels = output_shape[0] * output_shape[1] * output_shape[2]
    return [
        keras.Input(shape=(code_dim,)),
        keras.layers.Dense(1200, activation="tanh"),
        keras.layers.Dense(1200, activation="tanh"),
        keras.layers.Dense(1200, activation="tanh"),
        keras.layers.Dense(pixels),
        keras.layers.Reshape(tuple(output_shape)),
    ]


def _dcgan32_encoder(input_shape):
    layers = [keras.Input(shape=input_shape)]
    for filters in (64, 128, 256):
        layers += [keras.layers.Conv2D(filters, 4, strides=2, padding="same"),
                   keras.layers.LeakyReLU(negative_slope=0.2)]
    return layers + [keras.layers.Flatten()]


def _dcgan32_decoder(code_dim, output_shape):
    return [
        keras.Input(shape=(code_dim,)),
        keras.layers.Dense(4 * 4 * 256, activation="relu"),
        keras.layers.Reshape((4, 4, 256)),
        conv_transpose(128, 4, strides=2, padding="same", activation="relu"),
        conv_transpose(64, 4, strides=2, padding="same", activation="relu"),
        conv_transpose(output_shape[-1], 4, strides=2, padding="same"),
    ]


def _conv28_encoder(input_shape):
    return [
        keras.Input(shape=input_shape),
        keras.layers.Conv2D(32, 4, strides=2, padding="same", activation="relu"),
        keras.layers.Conv2D(64, 4, strides=2, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(256, activation="relu"),
    ]


def _conv28_decoder(code_dim, output_shape):
    return [
        keras.Input(shape=(code_dim,)),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(7 * 7 * 64, activation="relu"),
        keras.layers.Reshape((7, 7, 64)),
        conv_transpose(32, 4, strides=2, padding="same", activation="relu"),
        conv_transpose(output_shape[-1], 4, strides=2, padding="same"),
    ]


class ImageShapes:
    """Accepted input shapes: images (height, width, C), C any or fixed."""

    def __init__(self, height, width, channels=None):
        self.height, self.width, self.channels = int(height), int(width), channels

    def accepts(self, shape):
        shape = tuple(shape)
        return (len(shape) == 3 and shape[:2] == (self.height, self.width)
                and shape[2] >= 1 and (self.channels is None or shape[2] == self.channels))

    def describe(self):
        channels = "C" if self.channels is None else self.channels
        return f"images of shape {(self.height, self.width, channels)}"

    def example(self):
        return (self.height, self.width, self.channels or 1)


class VectorShapes:
    """Accepted input shapes: vectors (D,), D any (or fixed)."""

    def __init__(self, size=None):
        self.size = size

    def accepts(self, shape):
        shape = tuple(shape)
        return len(shape) == 1 and shape[0] >= 1 and self.size in (None, shape[0])

    def describe(self):
        return f"vectors of shape ({'D' if self.size is None else self.size},)"

    def example(self):
        return (self.size or 2,)


def accepted_shapes(name):
    """The shape spec (`ImageShapes`/`VectorShapes`) of network `name`; a plain (H, W) tuple in
    NETWORKS means images H×W with any number of channels."""
    if name not in NETWORKS:
        raise ValueError(f"Unknown network {name!r}; expected one of {sorted(NETWORKS)}.")
    spec = NETWORKS[name][2]
    return ImageShapes(*spec) if isinstance(spec, tuple) else spec


# name → (encoder layers(input_shape), decoder layers(code_dim, output_shape), accepted shapes:
# a (H, W) tuple = images H×W×C for any C, or an ImageShapes/VectorShapes spec).
NETWORKS = {
    # The architecture as the β-VAE/FactorVAE papers and disentanglement_lib's table state it.
    "conv64": (lambda shape: _conv64_encoder(shape, late_kernel=4), _deconv64_decoder, (64, 64)),
    # disentanglement_lib's released code uses 2×2 kernels in encoder layers 3–4; use this variant
    # for exact comparisons with its models.
    "conv64_dlib": (lambda shape: _conv64_encoder(shape, late_kernel=2), _deconv64_decoder,
                    (64, 64)),
    # Pinwheel (docs/methods.md §1, §11): one hidden layer of 100 ReLU units each way, for vector
    # observations (D,). Encoder: Dense(100, ReLU) → features 100. Decoder: Dense(100, ReLU) →
    # Dense(D) linear (the likelihood's location).
    "mlp": (_mlp_encoder, _mlp_decoder, VectorShapes()),
    # β-TCVAE's MLP (Chen et al. 2018) for 64×64×1: encoder Flatten(4096) → Dense(1200, ReLU) →
    # Dense(1200, ReLU) → features 1200; decoder Dense(1200, tanh) ×3 → Dense(4096) linear →
    # Reshape(64, 64, 1).
    "tcvae_mlp": (_tcvae_mlp_encoder, _tcvae_mlp_decoder, ImageShapes(64, 64, channels=1)),
    # DCGAN-style pair for 32×32×C (MNIST/Fashion-MNIST padded to 32, see zoo.data's pad_to):
    # encoder Conv(64,k4,s2) → Conv(128,k4,s2) → Conv(256,k4,s2), each "same" + LeakyReLU(0.2),
    # → Flatten → features 4·4·256 = 4096; decoder Dense(4096, ReLU) → Reshape(4,4,256) →
    # ConvT(128,k4,s2, ReLU) → ConvT(64,k4,s2, ReLU) → ConvT(C,k4,s2) linear = logits.
    # No batch normalisation (unlike the DCGAN GAN), so a VAE behaves the same in training
    # and inference.
    "dcgan32": (_dcgan32_encoder, _dcgan32_decoder, (32, 32)),
    # 28×28×C (MNIST/Fashion-MNIST): encoder Conv(32,k4,s2,ReLU) → 14×14 → Conv(64,k4,s2,ReLU)
    # → 7×7 → Flatten(3136) → Dense(256, ReLU) → features 256; decoder Dense(256, ReLU) →
    # Dense(3136, ReLU) → Reshape(7,7,64) → ConvT(32,k4,s2,ReLU) → ConvT(C,k4,s2) linear.
    "conv28": (_conv28_encoder, _conv28_decoder, (28, 28)),
}


def _lookup(name, image_shape):
    if name not in NETWORKS:
        raise ValueError(f"Unknown network {name!r}; expected one of {sorted(NETWORKS)}.")
    encoder, decoder, _ = NETWORKS[name]
    spec = accepted_shapes(name)
    if not spec.accepts(image_shape):
        raise ValueError(f"Network {name!r} needs {spec.describe()}, got {tuple(image_shape)}.")
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


def initialize_conv_kernels(layers, initializer_name):
    """Draw new values for the kernel of every Conv2D / Conv2DTranspose inside `layers` (layers or
    models, searched recursively) from the Keras initializer named `initializer_name` (e.g.
    "he_normal"); dense kernels and biases keep theirs. Each kernel gets a fresh initializer
    instance: an unseeded Keras 3 initializer fixes its seed when created, so reusing one would
    give kernels of equal shape equal values. The draws follow Keras' global seed
    (`keras.utils.set_random_seed`), like the layers' own initialisation. A Conv2DTranspose kernel
    is [h, w, out, in], so fan-in counts the OUTPUT channels, as in TF1 slim's
    `variance_scaling_initializer`."""
    if not isinstance(initializer_name, str):
        raise TypeError(f"initializer_name must be a Keras initializer's name, got "
                        f"{initializer_name!r}.")
    keras.initializers.get(initializer_name)  # an unknown name fails here, before any change
    for layer in layers:
        for sub in layer._flatten_layers(include_self=True):
            if isinstance(sub, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
                initializer = keras.initializers.get(initializer_name)
                sub.kernel.assign(initializer(sub.kernel.shape, dtype=sub.kernel.dtype))
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
