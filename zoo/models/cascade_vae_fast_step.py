"""CascadeVAE's discrete-stage training step reusing the unary pass (docs/methods.md §8, implementation
note); `CascadeVAE(reuse_unary_pass=True)`, the default, takes it when `supports(decoder)`.

The S·B decoder pass that computes the unary costs already holds the forward pass of the gradient
step: the rows (i, d*_i) of the chosen categories. This step keeps every decoder layer's input and
output on those rows and backpropagates through the decoder by hand, with the ops TensorFlow's
registered gradients of MatMul, BiasAdd, Relu and Conv2DBackpropInput use, then through the encoder
with the tape. It gives the loss and gradients of `CascadeVAE.autodiff_loss_and_gradients` (up to
float rounding) with one decoder forward pass fewer: the β-VAE step plus S − 1 decoder passes.

It needs a decoder of Dense / Conv2DTranspose / Reshape layers with ReLU or linear activations
(every decoder of `zoo.networks` so far); `supports` says whether a decoder is one.

The decoder's layers run as they are (`layer(inputs)`): `zoo.networks.Conv2DTranspose` already
computes the slow few-channel transposed convolution as a matmul plus an overlap-add.
"""
import keras
import tensorflow as tf

from zoo import networks
from zoo.models.base import zeros_for_none

_RELU, _LINEAR = keras.activations.get("relu"), keras.activations.get("linear")


def supports(decoder):
    """Whether this step can backpropagate through `decoder` by hand: Dense / Conv2DTranspose
    (2-D, channels last, no dilation or output padding) / Reshape layers, ReLU or linear."""
    for layer in decoder.layers:
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


class _RecordingDecoder:
    """Runs the decoder layer by layer and keeps each layer's (input, output)."""

    def __init__(self, decoder):
        self.layers = decoder.layers
        self.cache = []

    def __call__(self, hidden):
        for layer in self.layers:
            outputs = layer(hidden)
            self.cache.append((hidden, outputs))
            hidden = outputs
        return hidden


def _decoder_backward(layers, cache, gradient):
    """Backpropagate `gradient` (w.r.t. the decoder's output) through the decoder's `layers`,
    given each layer's (input, output) on the same rows. Returns ({variable id: gradient},
    gradient w.r.t. the decoder's input). Mirrors TensorFlow's registered gradients of
    MatMul, BiasAdd, Relu and Conv2DBackpropInput (= conv2d_transpose)."""
    grads = {}
    for layer, (inputs, outputs) in reversed(list(zip(layers, cache))):
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


def loss_and_gradients(model, x):
    """The discrete-stage step of CascadeVAE `model` on checked images x, reusing the unary pass:
    (loss terms, gradients of model.trainable_variables)."""
    variables = model.trainable_variables
    with tf.GradientTape() as tape:
        mean, logvar = model.posterior_parameters(x, training=True)
        z = model.latent_sample(mean, logvar, training=True)
        with tape.stop_recording():
            decoder = _RecordingDecoder(model.decoder)
            labels = model.assignment_labels(
                model.unary_costs(x, tf.stop_gradient(z), decoder=decoder))
            batch = tf.shape(z)[0]
            rows = labels * batch + tf.range(batch)       # row of (i, d*_i) in the S·B pass
            cache = [(tf.gather(a, rows), tf.gather(b, rows)) for a, b in decoder.cache]
            chosen = cache[-1][1]
            likelihood_variables = model.likelihood.trainable_variables
            with tf.GradientTape() as inner:
                inner.watch(chosen)
                recon = -tf.reduce_mean(model.likelihood.log_prob(x, chosen))
            inner_gradients = inner.gradient(recon, [chosen] + likelihood_variables)
            decoder_gradients, input_gradient = _decoder_backward(
                decoder.layers, cache, inner_gradients[0])
            for variable, gradient in zip(likelihood_variables, inner_gradients[1:]):
                decoder_gradients[id(variable)] = gradient
        kl, kl_per_dim = model.standard_kl(mean, logvar)
        weighted_kl = model.weighted_kl(kl_per_dim)
        decay = tf.add_n(model.losses) if model.losses else tf.constant(0.0)
        # d(recon)/dz arrives from the hand-made decoder backward pass.
        surrogate = (tf.reduce_sum(tf.stop_gradient(input_gradient[:, :model.latent_dim]) * z)
                     + weighted_kl + decay)
    gradients = zeros_for_none(tape.gradient(surrogate, variables), variables)
    gradients = [g + decoder_gradients[id(v)] if id(v) in decoder_gradients else g
                 for g, v in zip(gradients, variables)]
    return model.cascade_terms(recon, kl, weighted_kl), gradients
