"""SavedModel export for TF Serving.

Keras 3's `load_model` reads `.keras` files only, so every published model has two artifacts: the
`.keras` file (load, fine-tune) and a SavedModel written here with fixed input signatures and the
endpoints `encode`, `decode`, `reconstruct`, `representation` and `serving_default`
(= reconstruct).
"""
import keras
import tensorflow as tf

ENDPOINTS = ("encode", "decode", "reconstruct", "representation", "serving_default")


def export_saved_model(model, path):
    """Write `model` as a SavedModel at `path` and return the path."""
    images = tf.TensorSpec((None,) + tuple(model.image_shape), tf.float32, name="images")
    codes = tf.TensorSpec((None, model.decoder_input_dim), tf.float32, name="z")
    archive = keras.export.ExportArchive()
    archive.track(model)

    def reconstruct(x):
        return {"reconstruction": model(x)}

    archive.add_endpoint("encode", lambda x: model.encode(x), input_signature=[images])
    archive.add_endpoint(
        "decode", lambda z: {"params": model.decode(z), "mean": model.decode_mean(z)},
        input_signature=[codes])
    archive.add_endpoint("reconstruct", reconstruct, input_signature=[images])
    archive.add_endpoint("representation", lambda x: {"representation": model.representation(x)},
                         input_signature=[images])
    archive.add_endpoint("serving_default", reconstruct, input_signature=[images])
    archive.write_out(str(path), verbose=False)
    return path
