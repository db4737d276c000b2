"""SavedModel export for TF Serving.

Keras 3's `load_model` reads `.keras` files only, so every published model has two artifacts: the
`.keras` file (load, fine-tune) and a SavedModel written here with fixed input signatures and the
endpoints `encode`, `decode`, `reconstruct`, `representation` and `serving_default`
(= reconstruct), plus the model's own (`serving_endpoints()`: SCAN adds `sym2img` and `img2sym`
and serves `img2sym` by default).
"""
import keras
import tensorflow as tf

ENDPOINTS = ("encode", "decode", "reconstruct", "representation", "serving_default")  # of every model


def checked(x, spec):
    """x, after checking at run time that its shape is (batch,) + spec's (a restored SavedModel
    function does not enforce its signature's shape, and the layers would fail far from the cause,
    e.g. "grouped convolutions" for 3 channels); the error says what the endpoint expects.
    Codes must also be finite (a NaN code decodes to a NaN image)."""
    expected = tuple(spec.shape[1:])
    message = (f"{spec.name} must have shape (batch,) + {expected} "
               f"({'height, width, channels' if len(expected) == 3 else 'code size'})")
    # The signature's static shape makes rank checks constant: compare the run-time shape, padded
    # or cut to the expected length (a missing batch axis then differs too).
    actual = tf.concat([tf.shape(x)[1:], tf.zeros([len(expected)], tf.int32)], 0)[:len(expected)]
    checks = [tf.debugging.assert_equal(actual, tf.constant(expected, tf.int32), message=message)]
    if spec.name == "z":
        checks.append(tf.debugging.assert_all_finite(x, "z contains NaN or infinite values"))
    with tf.control_dependencies(checks):
        return tf.identity(x)


def _with_checked_inputs(function, signature):
    return lambda *inputs: function(*(checked(x, spec) for x, spec in zip(inputs, signature)))


def endpoints_of(model):
    """{name: (function, input signature)} of every endpoint `export_saved_model` writes."""
    images = tf.TensorSpec((None,) + tuple(model.image_shape), tf.float32, name="images")
    codes = tf.TensorSpec((None, model.decoder_input_dim), tf.float32, name="z")

    def reconstruct(x):
        return {"reconstruction": model(x)}

    endpoints = {
        "encode": (model.encode, [images]),
        "decode": (lambda z: {"params": model.decode(z), "mean": model.decode_mean(z)}, [codes]),
        "reconstruct": (reconstruct, [images]),
        "representation": (lambda x: {"representation": model.representation(x)}, [images]),
        "serving_default": (reconstruct, [images]),
    }
    endpoints.update(model.serving_endpoints())
    return endpoints


def export_saved_model(model, path):
    """Write `model` as a SavedModel at `path` and return the path."""
    archive = keras.export.ExportArchive()
    # No archive.track(model): on the TF backend it stores every variable a second time beside
    # the ones the endpoints capture (keras-team/keras#23553), doubling the SavedModel; the
    # endpoints' traced functions track every variable they use.
    for name, (function, signature) in endpoints_of(model).items():
        archive.add_endpoint(name, _with_checked_inputs(function, signature),
                             input_signature=signature)
    archive.write_out(str(path), verbose=False)
    return path
