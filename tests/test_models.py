"""β-VAE, AnnealedVAE and the shared VAE base: losses, schedules, input checks, saving."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import integrate, stats

from tests.model_harness import run_model_test
from zoo import models
from zoo.models.schedules import linear_capacity

SMALL = {"latent_dim": 4, "seed": 3}


# Every registered model runs through the shared harness: (registry name, constructor kwargs).
# A new model adds its case here (its own test file covers its losses).
MODEL_CASES = {
    "vae": ("vae", SMALL),
    "beta_vae": ("beta_vae", {**SMALL, "beta": 4.0}),
    "beta_vae_dlib_softplus": ("beta_vae", {**SMALL, "beta": 1.0, "network": "conv64_dlib",
                                            "posterior": "softplus"}),
    "annealed_vae": ("annealed_vae", {**SMALL, "c_max": 10.0, "iteration_threshold": 5}),
    # Compressed schedule: the discrete stage starts at step 1, so fit runs both kinds of step.
    "cascade_vae": ("cascade_vae", {**SMALL, "stage_steps": 1, "discrete_stage": 1}),
    "cascade_vae_c": ("cascade_vae_c", {**SMALL, "stage_steps": 2}),
    "joint_vae": ("joint_vae", {**SMALL, "cont_capacity": [0.0, 5.0, 4, 30.0],
                                "disc_capacity": [0.0, 1.1, 4, 30.0]}),
    # Two optimisers; fit's batches of 8 are split into two batches of 4 (second-batch default).
    # (FactorVAE's same-batch option and β-TCVAE's MSS estimator are covered in their own files.)
    "factor_vae": ("factor_vae", {**SMALL, "gamma": 10.0}),
    "beta_tcvae": ("beta_tcvae", {**SMALL, "beta": 6.0, "dataset_size": 1000}),
    "dip_vae_i": ("dip_vae_i", {**SMALL, "lambda_od": 10.0}),
    "dip_vae_ii": ("dip_vae_ii", {**SMALL, "lambda_od": 10.0}),
    # A GAN: generator + discriminator/Q with two optimisers; the 64×64 variant for these images.
    "infogan": ("infogan", {"latent_dim": 2, "num_categories": 3, "noise_dim": 4,
                            "input_shape": (64, 64, 1), "network": "infogan64", "seed": 3}),
    # MC KL (Student-t prior) and the inclusive-KL divergence; the other priors and the MMD are
    # covered in test_decomposition_vae.py.
    "decomposition_vae": ("decomposition_vae", {**SMALL, "prior": "student_t", "alpha": 1.0,
                                                "divergence": "kl_inclusive"}),
    # fit(images) gives free batches; clamped batches are covered in test_dc_ign.py.
    "dc_ign": ("dc_ign", SMALL),
    "info_vae": ("info_vae", {**SMALL, "lambda_mmd": 100.0}),
    "hsic_vae": ("hsic_vae", {**SMALL, "groups": [1, 3]}),
    "vfae": ("vfae", {**SMALL, "kernel": "imq"}),
    "dae": ("dae", SMALL),
    # The DAE encoder's architecture only (a new model copies a trained DAE's weights from a
    # file; that path is covered in test_beta_vae_dae.py).
    "beta_vae_dae": ("beta_vae_dae", {**SMALL, "dae_network": "conv64", "feature_depth": 2}),
    # On an untrained β-VAE given by its config (test_scan.py covers visual_path).
    "scan": ("scan", {"visual_model": {"module": "zoo.models.beta_vae", "class_name": "BetaVAE",
                                       "config": SMALL, "registered_name": "zoo>BetaVAE"},
                      "seed": 3}),
}
# Models trained on labelled batches: what fit gets with the images (VFAE: the sensitive factor).
# SCAN: one word per symbol.
MODEL_LABELS = {"vfae": np.arange(16) % 3, "scan": np.eye(16, dtype="float32")}


# Variants of a family the fast suite already runs through the harness (beta_vae) go to the slow
# suite, to keep `make test` under 15 minutes on 2 cores.
VARIANT_CASES = {"vae", "beta_vae_dlib_softplus"}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in VARIANT_CASES
                                  else c for c in sorted(MODEL_CASES)])
def test_model_api_saving_fine_tuning_and_serving(case, binary_images, tmp_path):
    name, kwargs = MODEL_CASES[case]
    run_model_test(models.MODELS[name], kwargs, binary_images, tmp_path, MODEL_LABELS.get(case))


def test_every_registered_model_is_covered_by_the_harness():
    assert {name for name, _ in MODEL_CASES.values()} == set(models.MODELS)


@pytest.mark.parametrize("t, expected", [(0, 0.0), (10, 10.0), (100, 100.0), (101, 100.0)])
def test_capacity_schedule_known_answers(t, expected):
    assert float(linear_capacity(t, c_max=100.0, num_steps=100)) == pytest.approx(expected)


def _terms(model, images):
    return {k: float(v) for k, v in model.compute_loss_terms(images, training=True).items()}


def test_beta_vae_loss_is_recon_plus_beta_kl(binary_images):
    model = models.BetaVAE(beta=6.0, **SMALL)
    terms = _terms(model, binary_images)
    assert terms["loss"] == pytest.approx(terms["recon"] + 6.0 * terms["kl"], rel=1e-6)
    # At initialisation the decoder is near zero logits: recon ≈ 4096·ln 2 ≈ 2839 nats.
    assert terms["recon"] == pytest.approx(4096 * np.log(2), rel=0.05)


def test_the_elbo_agrees_with_numerical_integration_over_a_one_dimensional_latent():
    """ELBO(x) = ∫ q(z|x) log p(x|z) dz − KL(q(z|x) ‖ N(0, 1)). With one latent dimension (an MLP
    VAE with a unit-variance Gaussian likelihood) both are 1-D integrals of the decoder's output;
    the logged elbo of a batch of copies of x, a one-sample estimate per copy, must agree within
    its standard error."""
    model = models.BetaVAE(beta=1.0, latent_dim=1, input_shape=(2,), network="mlp",
                           likelihood="gaussian", seed=3)
    x = np.array([[0.7, -1.2]], np.float32)
    posterior = model.encode(x)
    mean, std = float(posterior["mean"][0, 0]), float(np.exp(0.5 * posterior["logvar"][0, 0]))
    z = np.linspace(mean - 9 * std, mean + 9 * std, 4001, dtype=np.float32)
    density = stats.norm.pdf(z, mean, std)
    log_likelihood = stats.norm.logpdf(x, model.decode(z[:, None]).numpy(), 1.0).sum(axis=1)
    expected_log_likelihood = integrate.trapezoid(density * log_likelihood, z)
    spread = integrate.trapezoid(density * (log_likelihood - expected_log_likelihood) ** 2, z)
    kl = integrate.trapezoid(
        density * (stats.norm.logpdf(z, mean, std) - stats.norm.logpdf(z)), z)

    copies = 4000
    terms = model.compute_loss_terms(np.repeat(x, copies, axis=0), training=True)
    standard_error = np.sqrt(spread / copies)
    assert float(terms["elbo"]) == pytest.approx(expected_log_likelihood - kl,
                                                 abs=5 * standard_error + 1e-3)
    assert float(terms["kl"]) == pytest.approx(kl, rel=1e-4, abs=1e-5)


def test_annealed_vae_penalises_distance_to_the_scheduled_capacity(binary_images):
    model = models.AnnealedVAE(gamma=1000.0, c_max=20.0, iteration_threshold=10, **SMALL)
    model.global_step.assign(5)  # C = 10
    terms = _terms(model, binary_images)
    assert terms["capacity"] == pytest.approx(10.0)
    assert terms["loss"] == pytest.approx(
        terms["recon"] + 1000.0 * abs(terms["kl"] - 10.0), rel=1e-6)


def test_training_noise_is_a_function_of_seed_and_step():
    model = models.BetaVAE(**SMALL)
    first = model.training_noise((3, 4)).numpy()
    np.testing.assert_array_equal(first, model.training_noise((3, 4)).numpy())
    assert not np.array_equal(first, model.training_noise((3, 4), purpose=1).numpy())
    model.global_step.assign_add(1)
    assert not np.array_equal(first, model.training_noise((3, 4)).numpy())


def test_fit_advances_the_step_counter_once_per_iteration_and_logs_named_terms(binary_images):
    model = models.AnnealedVAE(c_max=5.0, iteration_threshold=100, **SMALL)
    model.compile()
    history = model.fit(binary_images, batch_size=4, epochs=2, verbose=0)
    assert int(model.global_step.numpy()) == 8
    assert {"loss", "recon", "kl", "elbo", "capacity"} <= set(history.history)


def test_compile_without_arguments_uses_the_methods_adam():
    model = models.BetaVAE(**SMALL)
    model.compile()
    optimizer = model.optimizer
    assert isinstance(optimizer, keras.optimizers.Adam)
    assert float(optimizer.learning_rate) == pytest.approx(1e-4)
    assert optimizer.epsilon == 1e-8 and optimizer.beta_1 == 0.9 and optimizer.beta_2 == 0.999


def test_uint8_images_are_scaled_by_1_over_255(binary_images):
    model = models.BetaVAE(**SMALL)
    as_uint8 = (binary_images * 255).astype(np.uint8)
    np.testing.assert_allclose(model.representation(as_uint8), model.representation(binary_images))


# ---------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def small_model():
    return models.BetaVAE(**SMALL)


@pytest.mark.parametrize("images, message", [
    (np.zeros((2, 32, 32, 1), np.float32), "shape"),
    (np.zeros((2, 64, 64, 3), np.float32), "3 channel"),
    (np.zeros((64, 64, 1), np.float32), "shape"),
    (np.full((2, 64, 64, 1), 1.5, np.float32), r"\[0, 1\]"),
    (np.full((2, 64, 64, 1), -0.1, np.float32), r"\[0, 1\]"),
    (np.full((2, 64, 64, 1), np.nan, np.float32), "NaN"),
    (np.zeros((2, 64, 64, 1), np.int32), "dtype"),
])
def test_bad_images_are_refused_with_a_clear_error(small_model, images, message):
    with pytest.raises(ValueError, match=message):
        small_model.encode(images)


def test_bad_images_inside_fit_fail_with_the_same_message(small_model):
    small_model.compile()
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[0, 1\]"):
        small_model.fit(np.full((4, 64, 64, 1), 2.0, np.float32), batch_size=4, verbose=0)


@pytest.mark.parametrize("kwargs, message", [
    ({"beta": -1.0}, "beta must be"),
    ({"beta": float("nan")}, "beta must be"),
    ({"latent_dim": -3}, "latent_dim must be"),
    ({"latent_dim": 0}, "latent_dim must be"),
    ({"latent_dim": 2.5}, "latent_dim must be"),
    ({"network": "vgg"}, "Unknown network"),
    ({"likelihood": "poisson"}, "Unknown likelihood"),
])
def test_bad_hyperparameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.BetaVAE(**kwargs)


def test_bad_annealed_vae_hyperparameters_are_refused():
    with pytest.raises(ValueError, match="gamma"):
        models.AnnealedVAE(gamma=-1.0)
    with pytest.raises(ValueError, match="iteration_threshold"):
        models.AnnealedVAE(iteration_threshold=0)


def test_unknown_model_name_is_refused():
    with pytest.raises(ValueError, match="Unknown model 'gan'.*beta_vae"):
        models.get("gan")


def test_truncated_or_foreign_model_files_are_refused(small_model, tmp_path):
    path = tmp_path / "model.keras"
    small_model.save(path)
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated, corrupt, or not a Keras model"):
        models.load(truncated)
    foreign = tmp_path / "notes.keras"
    foreign.write_text("not a model")
    with pytest.raises(ValueError, match="not a .keras archive"):
        models.load(foreign)
    with pytest.raises(FileNotFoundError, match="No model file"):
        models.load(tmp_path / "missing.keras")
