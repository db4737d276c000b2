"""InfoGAN (docs/methods.md §10): networks, codes, the information terms, the three-player train_step.

Save/load (both optimisers), fine-tuning and the SavedModel are covered by the shared harness
(tests/test_models.py, case "infogan")."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.models.infogan import InfoGAN, build_generator, build_trunk

MNIST = {"seed": 7}  # the docs/methods.md §10 MNIST configuration: 62 noise, Cat(10), 2 continuous


def _mnist_like_images(n=64, seed=0):
    """Ten simple binary 28×28 "digits" (a bar at a class-dependent position) with pixel noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = np.zeros((n, 28, 28, 1), np.float32)
    for i, label in enumerate(labels):
        images[i, 2 + 2 * label: 5 + 2 * label, 4:24, 0] = 1.0
    flip = rng.random(images.shape) < 0.02
    return np.where(flip, 1.0 - images, images).astype(np.float32)


def _layer_summary(model):
    return [(type(layer).__name__, getattr(layer, "units", getattr(layer, "filters", None)))
            for layer in model.layers]


def test_mnist_generator_and_trunk_are_the_methods_networks():
    generator = build_generator("infogan28", 74, (28, 28, 1))
    assert _layer_summary(generator) == [
        ("Dense", 1024), ("BatchNormalization", None), ("ReLU", None),
        ("Dense", 7 * 7 * 128), ("BatchNormalization", None), ("ReLU", None), ("Reshape", None),
        ("Conv2DTranspose", 64), ("BatchNormalization", None), ("ReLU", None),
        ("Conv2DTranspose", 1)]
    assert generator.output_shape == (None, 28, 28, 1)
    trunk = build_trunk("infogan28", (28, 28, 1))
    assert _layer_summary(trunk) == [
        ("Conv2D", 64), ("LeakyReLU", None),
        ("Conv2D", 128), ("BatchNormalization", None), ("LeakyReLU", None),
        ("Flatten", None), ("Dense", 1024), ("BatchNormalization", None), ("LeakyReLU", None)]
    assert all(layer.negative_slope == pytest.approx(0.2) for layer in trunk.layers
               if isinstance(layer, keras.layers.LeakyReLU))
    convs = [layer for layer in trunk.layers + generator.layers
             if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))]
    assert all(layer.kernel_size == (4, 4) and layer.strides == (2, 2) for layer in convs)


def test_the_64_variant_maps_64x64_images():
    model = InfoGAN(latent_dim=4, num_categories=3, noise_dim=8, input_shape=(64, 64, 1),
                    network="infogan64", seed=0)
    assert model.generator.output_shape == (None, 64, 64, 1)
    assert model.trunk.output_shape == (None, 1024)
    assert model.decoder_input_dim == 4 + 3 + 8
    with pytest.raises(ValueError, match="needs images of shape"):
        InfoGAN(input_shape=(64, 64, 1), network="infogan28")
    with pytest.raises(ValueError, match="Unknown InfoGAN network"):
        InfoGAN(network="conv64")


def test_q_head_and_optimisers_follow_methods():
    model = InfoGAN(**MNIST)
    assert [layer.units for layer in model.q_hidden.layers
            if isinstance(layer, keras.layers.Dense)] == [128]
    assert model.q_categorical.units == 10 and model.q_continuous.units == 2
    model.compile()
    g, d = model.optimizer, model.discriminator_optimizer
    assert float(g.learning_rate) == pytest.approx(1e-3)
    assert float(d.learning_rate) == pytest.approx(2e-4)
    assert g.beta_1 == d.beta_1 == 0.5 and g.epsilon == d.epsilon == 1e-8
    # The two players' variables partition the trainable variables.
    g_ids = {id(v) for v in model.generator_variables}
    d_ids = {id(v) for v in model.discriminator_variables}
    assert not g_ids & d_ids
    assert g_ids | d_ids == {id(v) for v in model.trainable_variables}


def test_information_terms_known_answers():
    model = InfoGAN(**MNIST)
    logits = tf.zeros([5, 10])
    continuous = tf.constant(np.random.default_rng(0).uniform(-1, 1, (5, 2)), tf.float32)
    ce, nll = model.information_terms(logits, continuous, tf.range(5), continuous)
    assert float(ce) == pytest.approx(np.log(10), rel=1e-6)           # uniform Q: log K
    assert float(nll) == pytest.approx(np.log(2 * np.pi), rel=1e-6)   # 2 dims at the mean
    _, nll_off = model.information_terms(logits, continuous + 1.0, tf.range(5), continuous)
    assert float(nll_off) == pytest.approx(np.log(2 * np.pi) + 1.0, rel=1e-6)  # + ½·Σ 1²


def test_loss_terms_combine_as_specified():
    keras.utils.set_random_seed(0)
    images = _mnist_like_images(16)
    model = InfoGAN(info_weight=1.0, continuous_weight=0.1, **MNIST)
    terms = {k: float(v) for k, v in model.compute_loss_terms(images, training=True).items()}
    # Recompute every piece from the networks (training mode: batch statistics, so repeating the
    # forward passes gives the same numbers).
    continuous, category, noise = model.training_codes(16)
    fake = tf.sigmoid(model.generator(model.generator_input(continuous, category, noise),
                                      training=True))
    # D/Q score real and fake images as one batch (shared batch-norm statistics).
    logits, q_logits, q_mean = model.discriminate(tf.concat([images, fake], 0), training=True)
    real_logits, fake_logits = logits[:16], logits[16:]
    q_logits, q_mean = q_logits[16:], q_mean[16:]
    ce = np.mean(-tf.nn.log_softmax(q_logits).numpy()[np.arange(16), category.numpy()])
    nll = np.mean(np.sum(0.5 * (continuous - q_mean).numpy() ** 2 + 0.5 * np.log(2 * np.pi), -1))

    def softplus(v):  # BCE(l, 1) = softplus(−l), BCE(l, 0) = softplus(l)
        return np.logaddexp(0.0, v.numpy())

    info = ce + 0.1 * nll
    assert terms["info_categorical"] == pytest.approx(ce, rel=1e-5)
    assert terms["info_continuous"] == pytest.approx(nll, rel=1e-5)
    # L_D = BCE(real, 1) + BCE(fake, 0) + λ·CE + λ_cont·NLL; L_G = BCE(fake, 1) + the same.
    assert terms["discriminator_loss"] == pytest.approx(
        np.mean(softplus(-real_logits)) + np.mean(softplus(fake_logits)) + info, rel=1e-5)
    assert terms["generator_loss"] == pytest.approx(np.mean(softplus(-fake_logits)) + info,
                                                    rel=1e-5)
    assert terms["loss"] == pytest.approx(terms["discriminator_loss"] + terms["generator_loss"])


def test_categorical_cross_entropy_is_log_10_at_init_and_falls_when_g_and_q_train():
    keras.utils.set_random_seed(0)
    images = _mnist_like_images(64)
    model = InfoGAN(**MNIST)
    initial = float(model.compute_loss_terms(images, training=True)["info_categorical"])
    assert initial == pytest.approx(np.log(10), abs=0.15)  # small initial Q logits
    model.compile()
    history = model.fit(tf.data.Dataset.from_tensors(images).repeat(), steps_per_epoch=30,
                        epochs=1, verbose=0)
    assert int(model.global_step.numpy()) == 30
    # Q reads the category from G(z, c) well after 30 iterations (measured ≈ 0.7 nats).
    final = float(model.compute_loss_terms(images, training=True)["info_categorical"])
    assert final < 0.6 * np.log(10), (initial, final, history.history["info_categorical"])


def test_training_codes_are_a_function_of_seed_and_step():
    model = InfoGAN(**MNIST)
    first = [c.numpy() for c in model.training_codes(8)]
    again = [c.numpy() for c in InfoGAN(**MNIST).training_codes(8)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    continuous, category, noise = first
    assert continuous.shape == (8, 2) and noise.shape == (8, 62) and category.shape == (8,)
    assert np.abs(continuous).max() <= 1 and np.abs(noise).max() <= 1
    assert category.min() >= 0 and category.max() < 10
    model.global_step.assign_add(1)
    assert not np.array_equal(first[0], model.training_codes(8)[0].numpy())


def test_representation_is_continuous_means_then_category_and_decode_takes_three_widths():
    images = _mnist_like_images(6)
    model = InfoGAN(**MNIST)
    posterior = model.encode(images)
    assert set(posterior) == {"mean", "logvar", "category", "discrete"}
    representation = model.representation(images).numpy()
    assert representation.shape == (6, 3)
    np.testing.assert_array_equal(representation[:, :2], posterior["mean"].numpy())
    np.testing.assert_array_equal(representation[:, 2], posterior["category"].numpy()[:, 0])
    np.testing.assert_array_equal(posterior["logvar"].numpy(), 0.0)
    codes = model.decoder_codes(posterior)
    assert codes.shape == (6, model.decoder_input_dim)
    # Codes without noise and bare continuous codes decode as with zero noise (and category 0).
    short = tf.concat([posterior["mean"], posterior["discrete"]], axis=-1)
    np.testing.assert_allclose(model.decode(short), model.decode(codes), atol=1e-6)
    bare = model.decode(posterior["mean"])
    zero_category = tf.concat([posterior["mean"], tf.one_hot(tf.zeros(6, tf.int32), 10),
                               tf.zeros([6, 62])], axis=-1)
    np.testing.assert_allclose(bare, model.decode(zero_category), atol=1e-6)
    assert model.sample(3).shape == (3, 28, 28, 1)


def test_trains_on_mnist_through_its_stream_and_is_scored_by_the_accuracy_metric(tmp_path):
    # tfds cannot download here: the MNIST path runs on tfds' mock data (random images/labels).
    import tensorflow_datasets as tfds

    import zoo.data
    from zoo.metrics import unsupervised_accuracy

    with tfds.testing.mock_data(num_examples=40):
        mnist = zoo.data.get("mnist", data_dir=str(tmp_path))
    assert mnist.observation_shape == (28, 28, 1) and mnist.factor_sizes == (10,)
    model = InfoGAN(**MNIST)
    model.compile()
    model.fit(model.training_stream(mnist, 16, seed=0), steps_per_epoch=2, epochs=1, verbose=0)
    assert int(model.global_step.numpy()) == 2
    result = unsupervised_accuracy(mnist, model, rng=0, factor="class", num_points=200)
    assert 0.0 < result["accuracy"] <= 1.0


def test_discriminator_scores_real_and_fake_with_shared_batch_statistics():
    # With separate batches, batch normalisation hides a difference in mean brightness from D
    # (see the module docstring); in one batch, the fake images change the real images' logits.
    keras.utils.set_random_seed(0)
    images = _mnist_like_images(8)
    model = InfoGAN(**MNIST)
    dark, bright = tf.zeros_like(images), tf.ones_like(images)
    real_with_dark = model.discriminate_real_and_fake(images, dark, training=True)[0]
    real_with_bright = model.discriminate_real_and_fake(images, bright, training=True)[0]
    assert np.abs(real_with_dark.numpy() - real_with_bright.numpy()).max() > 1e-3
