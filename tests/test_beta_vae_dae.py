"""β-VAE_DAE (docs/methods.md §14): the corruptions, the DAE, the feature loss's known answers, the DAE
inside the saved model, the two training stages through trainers.train. Save/load, fine-tuning and
serving of both models are covered by the shared harness (tests/test_models.py)."""
import json

import numpy as np
import pytest
import tensorflow as tf

from tests.model_harness import saved_briefly_trained
from trainers import train
from trainers.config import TrainConfig
from zoo import models
from zoo.data.dsprites import sha256_of_file
from zoo.key_values import parse_key_values
from zoo.models.beta_vae_dae import corrupt

SMALL = {"latent_dim": 4, "seed": 3}
SEED = tf.constant([5, 9], tf.int64)


# ------------------------------------------------------------------------ corruptions
def test_occlusion_zeroes_one_square_of_the_given_side_per_image():
    x = tf.ones((5, 64, 64, 1))
    corrupted = corrupt(x, "occlusion", 0.25, SEED).numpy()
    for image in corrupted[..., 0]:
        rows, cols = np.nonzero(image == 0)
        assert len(rows) == 16 * 16
        assert rows.max() - rows.min() == 15 and cols.max() - cols.min() == 15
    # Positions differ between images and are a function of the seed.
    assert len({np.argmin(image) for image in corrupted[..., 0]}) > 1
    np.testing.assert_array_equal(corrupt(x, "occlusion", 0.25, SEED).numpy(), corrupted)


def test_pixel_mask_and_gaussian_corruptions():
    x = tf.fill((4, 64, 64, 1), 0.5)
    masked = corrupt(x, "pixel_mask", 0.3, SEED).numpy()
    assert set(np.unique(masked)) == {0.0, 0.5}
    assert np.mean(masked == 0) == pytest.approx(0.3, abs=0.02)
    noisy = corrupt(x, "gaussian", 0.1, SEED).numpy()
    assert 0.0 <= noisy.min() and noisy.max() <= 1.0
    assert np.std(noisy - 0.5) == pytest.approx(0.1, rel=0.05)
    np.testing.assert_array_equal(corrupt(x, "gaussian", 0.0, SEED).numpy(), x.numpy())


# ------------------------------------------------------------------------ the DAE
def test_dae_reconstructs_the_clean_image_from_the_corrupted_one(binary_images):
    model = models.get("dae", corruption="pixel_mask", corruption_level=0.5, **SMALL)
    terms = {k: float(v) for k, v in model.compute_loss_terms(binary_images, True).items()}
    corrupted = model.corrupt(tf.constant(binary_images))
    code = model.encode(corrupted)["mean"]
    expected = -tf.reduce_mean(model.likelihood.log_prob(binary_images, model.decode(code)))
    assert terms["recon"] == pytest.approx(float(expected), rel=1e-6)
    assert terms["loss"] == terms["recon"] and terms["kl"] == 0.0
    # Deterministic code: encode(x)'s logvar is a placeholder 0, and the posterior head is frozen.
    assert not np.any(model.encode(binary_images)["logvar"].numpy())
    assert not model.posterior_head.trainable


# ------------------------------------------------------------------------ the feature loss
@pytest.fixture(scope="module")
def dae_file(tmp_path_factory):
    """A briefly trained DAE saved as a .keras file."""
    return saved_briefly_trained(models.get("dae", **SMALL), tmp_path_factory.mktemp("dae"),
                                 "dae.keras")


@pytest.mark.parametrize("depth", [1, 4, 6])
def test_feature_loss_is_zero_for_identical_images_and_grows_with_a_perturbation(depth, dae_file,
                                                                                 binary_images):
    model = models.get("beta_vae_dae", dae_path=str(dae_file[0]), feature_depth=depth, **SMALL)
    x = tf.constant(binary_images)
    assert float(model.feature_loss(x, x)) == 0.0
    noise = tf.random.stateless_uniform(x.shape, [1, 2])
    losses = [float(model.feature_loss(tf.clip_by_value(x + eps * noise, 0.0, 1.0), x))
              for eps in (0.05, 0.2, 0.8)]
    assert 0 < losses[0] < losses[1] < losses[2]


def test_features_are_the_dae_encoders_layers_up_to_the_depth(dae_file, binary_images):
    _, dae = dae_file
    model = models.get("beta_vae_dae", dae_path=str(dae_file[0]), feature_depth=2, **SMALL)
    expected = dae.encoder.layers[1](dae.encoder.layers[0](binary_images)).numpy()
    np.testing.assert_allclose(model.dae_features(binary_images).numpy(),
                               expected.reshape(len(binary_images), -1), rtol=1e-6)


def test_loss_is_feature_loss_plus_beta_kl_at_the_decoders_mean_image(dae_file, binary_images):
    model = models.get("beta_vae_dae", dae_path=str(dae_file[0]), beta=3.0, **SMALL)
    terms = {k: float(v) for k, v in model.compute_loss_terms(binary_images, True).items()}
    assert terms["loss"] == pytest.approx(terms["recon"] + 3.0 * terms["kl"], rel=1e-6)
    posterior = model.encode(binary_images)
    z = posterior["mean"] + tf.exp(0.5 * posterior["logvar"]) * model.training_noise((16, 4))
    x_hat = model.decode_mean(z)
    assert terms["recon"] == pytest.approx(float(model.feature_loss(x_hat, binary_images)),
                                           rel=1e-5)
    assert terms["pixel_recon"] == pytest.approx(float(model.reconstruction_loss(
        binary_images, z, False)), rel=1e-5)


# ------------------------------------------------------------------------ the DAE in the model
@pytest.mark.slow  # trains, saves and reloads (about 20 s on 2 cores)
def test_the_dae_is_copied_in_frozen_recorded_and_saved_with_the_model(dae_file, binary_images,
                                                                       tmp_path):
    path, dae = dae_file
    model = models.get("beta_vae_dae", dae_path=str(path), **SMALL)
    assert model.dae_sha256 == sha256_of_file(path)
    assert model.get_config()["dae_sha256"] == model.dae_sha256
    assert "dae_path" not in model.get_config()
    for ours, theirs in zip(model.dae_encoder.get_weights(), dae.encoder.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    frozen = [w.numpy() for w in model.dae_encoder.weights]
    model.compile()
    model.fit(binary_images, batch_size=8, epochs=1, verbose=0)
    for before, after in zip(frozen, model.dae_encoder.weights):
        np.testing.assert_array_equal(before, after.numpy())
    # The DAE file is not needed to load the model: its weights are in the .keras archive.
    saved = tmp_path / "model.keras"
    model.save(saved)
    path.rename(path.with_suffix(".moved"))
    try:
        loaded = models.load(saved)
    finally:
        path.with_suffix(".moved").rename(path)
    for ours, theirs in zip(loaded.dae_encoder.get_weights(), dae.encoder.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    x = tf.constant(binary_images)
    assert float(loaded.feature_loss(loaded(x), x)) == float(model.feature_loss(model(x), x))


def test_bad_dae_settings_are_refused(dae_file, tmp_path):
    path = str(dae_file[0])
    with pytest.raises(ValueError, match="needs dae_path"):
        models.BetaVAEDAE(**SMALL)
    with pytest.raises(ValueError, match="not the expected dae_sha256 abc"):
        models.BetaVAEDAE(dae_path=path, dae_sha256="abc", **SMALL)
    with pytest.raises(ValueError, match="feature_depth must be in \\[1, 6\\]"):
        models.BetaVAEDAE(dae_path=path, feature_depth=7, **SMALL)
    with pytest.raises(ValueError, match="feature_depth must be a positive integer"):
        models.BetaVAEDAE(dae_path=path, feature_depth=0, **SMALL)
    with pytest.raises(ValueError, match="takes input shape"):
        models.BetaVAEDAE(dae_path=path, input_shape=(64, 64, 3), **SMALL)
    other = tmp_path / "beta_vae.keras"
    models.BetaVAE(**SMALL).save(other)
    with pytest.raises(ValueError, match="holds a BetaVAE, not a DenoisingAutoencoder"):
        models.BetaVAEDAE(dae_path=str(other), **SMALL)
    with pytest.raises(FileNotFoundError):
        models.BetaVAEDAE(dae_path=str(tmp_path / "missing.keras"), **SMALL)


@pytest.mark.parametrize("kwargs, message", [
    ({"corruption": "blur"}, "Unknown corruption 'blur'"),
    ({"corruption": "occlusion", "corruption_level": 0.0}, r"corruption_level must be in \(0, 1\]"),
    ({"corruption": "pixel_mask", "corruption_level": 1.5}, r"corruption_level must be in \[0, 1\]"),
    ({"corruption": "gaussian", "corruption_level": float("nan")}, "corruption_level must be a"),
])
def test_bad_dae_hyperparameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.get("dae", **{**SMALL, **kwargs})


# ------------------------------------------------------------------------ the two stages
# Slow (about a minute or more on 2 cores): `make test-all` runs it.
@pytest.mark.slow
def test_two_training_stages_through_trainers_train(tmp_path):
    common = {"latent_dim": 4, "steps": 2, "batch_size": 8, "checkpoint_every": 2,
              "image_every": 2, "eval_batches": 1, "export": False, "verbose": 0}
    stage1 = train.run(TrainConfig(model="dae", output_dir=str(tmp_path / "dae"),
                                   **common))
    assert stage1["steps"] == 2 and stage1["final_loss_terms"]["kl"] == 0.0
    dae_path = tmp_path / "dae" / "model.keras"
    model_args = parse_key_values([f"dae_path={dae_path}", "feature_depth=3"])
    stage2 = train.run(TrainConfig(model="beta_vae_dae", model_args=model_args,
                                   output_dir=str(tmp_path / "vae"), **common))
    assert stage2["model_config"]["dae_sha256"] == sha256_of_file(dae_path)
    assert stage2["model_config"]["feature_depth"] == 3
    assert "pixel_recon" in stage2["final_loss_terms"]
    saved = json.loads((tmp_path / "vae" / "results.json").read_text())
    assert saved["model_config"]["dae_source"] == str(dae_path)
    model, dae = models.load(tmp_path / "vae" / "model.keras"), models.load(dae_path)
    for ours, theirs in zip(model.dae_encoder.get_weights(), dae.encoder.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
