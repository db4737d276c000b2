"""One harness for every model class (in the style of keras-hub's `run_model_saving_test`).

A model's test file supplies only constructor arguments and an input batch; the harness checks the
public API's shapes, the codes the model declares, the config and Keras serialization round trips,
save → load → identical outputs (also for a model that was only trained through `fit`),
fine-tuning after loading with the optimizer state and step counter restored, and the SavedModel
endpoints.
"""

import keras
import numpy as np
import tensorflow as tf

from zoo import export, models


def check_api_shapes(model, images):
    n = len(images)
    posterior = model.encode(images)
    assert posterior["mean"].shape == (n, model.latent_dim)
    assert posterior["logvar"].shape == (n, model.latent_dim)
    assert model.representation(images).shape[0] == n
    assert model.decode(posterior["mean"]).shape == images.shape
    reconstruction = model(images).numpy()
    assert reconstruction.shape == images.shape
    assert reconstruction.min() >= 0 and reconstruction.max() <= 1
    assert model.sample(3).shape == (3,) + images.shape[1:]


def check_declared_codes(model, images):
    """The codes the model declares (`CodeLayout`) are the ones its `encode` returns: the
    representation is the continuous codes and then each discrete code's category index, and
    `decoder_codes` is a decoder input that reconstructs as `call` does."""
    n, sizes = len(images), tuple(model.discrete_code_sizes)
    posterior = model.encode(images)
    representation = model.representation(images).numpy()
    columns = list(model.discrete_columns)
    assert representation.shape == (n, model.latent_dim + len(sizes))
    assert columns == list(range(model.latent_dim, model.latent_dim + len(sizes)))
    np.testing.assert_array_equal(representation[:, :model.latent_dim], posterior["mean"].numpy())
    if sizes:
        category = posterior["category"].numpy()
        assert category.shape == (n, len(sizes))
        assert np.all((category >= 0) & (category < np.array(sizes)))
        np.testing.assert_array_equal(representation[:, columns], category)
        assert posterior["discrete"].shape == (n, sum(sizes))
    else:
        assert "category" not in posterior and "discrete" not in posterior
    codes = model.decoder_codes(posterior)
    assert codes.shape == (n, model.decoder_input_dim)
    np.testing.assert_array_equal(model.decode_mean(codes).numpy(), model(images).numpy())


def check_config_round_trip(model):
    clone = type(model).from_config(model.get_config())
    assert clone.get_config() == model.get_config()


def check_serialization_round_trip(model):
    """`keras.saving.serialize_keras_object` → `deserialize_keras_object` rebuilds the class with
    the same config (what `load_model` and a nested model's config, SCAN's, rely on)."""
    serialized = keras.saving.serialize_keras_object(model)
    assert serialized["registered_name"] == f"zoo>{type(model).__name__}"
    clone = keras.saving.deserialize_keras_object(serialized)
    assert type(clone) is type(model)
    assert clone.get_config() == model.get_config()


def train_briefly(model, images, epochs=1, labels=None):
    model.compile()
    return model.fit(images, labels, batch_size=8, epochs=epochs, verbose=0)


def optimizers_of(model):
    """{attribute name: optimizer} of every optimizer the model holds as an attribute (`optimizer`,
    and e.g. `discriminator_optimizer` of a two-optimiser model); Keras' saving writes them all."""
    return {name: value for name, value in sorted(vars(model).items())
            if isinstance(value, keras.optimizers.Optimizer)}


def check_save_load_and_fine_tune(model, images, tmp_path, labels=None):
    """Train only through fit, save, load: identical outputs; then fit continues from the restored
    optimizer slots and step counter. `labels`: what a model trained on labelled batches gets
    with the images (fit(images, labels)); None for the others."""
    train_briefly(model, images, labels=labels)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = models.load(path)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded(images).numpy(), model(images).numpy())
    np.testing.assert_array_equal(loaded.representation(images).numpy(),
                                  model.representation(images).numpy())
    loaded_posterior, posterior = loaded.encode(images), model.encode(images)
    assert set(loaded_posterior) == set(posterior)
    for key in posterior:  # including a discrete code, where the model has one
        np.testing.assert_array_equal(loaded_posterior[key].numpy(), posterior[key].numpy(), key)
    assert int(loaded.global_step.numpy()) == int(model.global_step.numpy()) > 0
    # Every optimizer the model holds (a second one, e.g. FactorVAE's discriminator optimizer,
    # included) comes back with its slots and iteration count.
    original_optimizers, loaded_optimizers = optimizers_of(model), optimizers_of(loaded)
    assert "optimizer" in original_optimizers
    assert list(original_optimizers) == list(loaded_optimizers)
    for name, optimizer in original_optimizers.items():
        original_slots = [v.numpy() for v in optimizer.variables]
        loaded_slots = [v.numpy() for v in loaded_optimizers[name].variables]
        assert len(loaded_slots) == len(original_slots) > 1, name
        assert int(loaded_optimizers[name].iterations.numpy()) > 0, name
        for a, b in zip(original_slots, loaded_slots):
            np.testing.assert_array_equal(a, b, err_msg=name)
    # Fine-tuning: one more epoch on both gives the same weights only if the optimizer state,
    # the step counter (schedules, noise) and the weights were all restored.
    model.fit(images, labels, batch_size=8, epochs=1, verbose=0, shuffle=False)
    loaded.fit(images, labels, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)
    return loaded


def check_saved_model(model, images, tmp_path):
    """The SavedModel's endpoints give the Keras model's numbers and are serving signatures."""
    directory = tmp_path / "saved_model"
    export.export_saved_model(model, directory)
    served = tf.saved_model.load(str(directory))
    x = tf.constant(images)
    posterior = model.encode(images)
    served_posterior = served.encode(x)
    assert set(served_posterior) == set(posterior)
    for key in posterior:  # including a discrete code, where the model has one
        np.testing.assert_allclose(served_posterior[key].numpy(), posterior[key].numpy(),
                                   rtol=1e-5, atol=1e-6, err_msg=key)
    np.testing.assert_allclose(served.reconstruct(x)["reconstruction"].numpy(),
                               model(images).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(served.representation(x)["representation"].numpy(),
                               model.representation(images).numpy(), rtol=1e-5, atol=1e-6)
    z = model.decoder_codes(posterior)
    np.testing.assert_allclose(served.decode(z)["params"].numpy(), model.decode(z).numpy(),
                               rtol=1e-5, atol=1e-5)
    # The signature defs TF Serving reads (saved_model_cli's listing of them, a subprocess of
    # several seconds, is checked once in test_train.py's export-command test).
    assert set(export.ENDPOINTS) <= set(served.signatures)


def saved_briefly_trained(model, directory, name):
    """(path, model): `model` after one epoch of fit on 8 sparse binary images, saved as
    `directory`/`name` (a model file that another model's arguments point to)."""
    keras.utils.set_random_seed(0)
    model.compile()
    images = (np.random.default_rng(0).random((8, 64, 64, 1)) > 0.9).astype("float32")
    model.fit(images, batch_size=4, epochs=1, verbose=0)
    path = directory / name
    model.save(path)
    return path, model


def run_model_test(model_class, init_kwargs, images, tmp_path, labels=None):
    keras.utils.set_random_seed(0)
    model = model_class(**init_kwargs)
    check_api_shapes(model, images)
    check_declared_codes(model, images)
    check_config_round_trip(model)
    check_serialization_round_trip(model)
    check_save_load_and_fine_tune(model, images, tmp_path, labels)
    check_saved_model(model, images, tmp_path)
