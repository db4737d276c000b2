"""The survey's kernel regularisers (docs/methods.md §13): the MMD and HSIC estimators' known answers, and
the InfoVAE, HSIC-VAE and VFAE losses. Save/load, fine-tuning and serving are covered by the
shared harness (tests/test_models.py)."""
import numpy as np
import pytest
import tensorflow as tf

from trainers import train
from trainers.config import TrainConfig
from zoo import data, kernels, models
from zoo.key_values import parse_key_values

SMALL = {"latent_dim": 4, "seed": 3}


def _constant(x):
    return tf.constant(np.asarray(x), tf.float32)


def _rbf(a, b):
    return kernels.rbf_kernel(a, b, 2.0)


# ------------------------------------------------------------------------ kernels and MMD
def test_rbf_kernel_known_answer():
    a, b = _constant([[0.0, 0.0]]), _constant([[1.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(kernels.rbf_kernel(a, b, 1.0).numpy(), [[np.exp(-1.0), 1.0]],
                               rtol=1e-6)


def _brute_force_rbf_mmd(y, z, variance=2.0):
    def k(a, b):
        return np.exp(-np.sum((a - b) ** 2) / (2 * variance))

    n, m = len(y), len(z)
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    zz = sum(k(z[i], z[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    return yy + zz - 2 * sum(k(a, b) for a in y for b in z) / (n * m)


def test_mmd_matches_the_unbiased_estimator_written_out():
    rng = np.random.default_rng(0)
    y, z = rng.normal(size=(6, 3)), rng.normal(0.5, 1.5, size=(5, 3))
    value = float(kernels.mmd(_constant(y), _constant(z), _rbf))
    assert value == pytest.approx(_brute_force_rbf_mmd(y, z), rel=1e-5)


@pytest.mark.parametrize("name", ["rbf", "imq"])
def test_mmd_is_zero_in_expectation_for_one_distribution_and_grows_with_a_shift(name):
    def kernel(a, b):
        return kernels.kernel_matrix(name, a, b, variance=3.0)

    mmd = tf.function(lambda y, z: kernels.mmd(y, z, kernel))
    rng = np.random.default_rng(1)
    repeats, n, d = 100, 64, 3
    same = [float(mmd(_constant(rng.normal(size=(n, d))), _constant(rng.normal(size=(n, d)))))
            for _ in range(repeats)]
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(repeats)
    shifted = [float(mmd(_constant(rng.normal(size=(n, d))),
                         _constant(rng.normal(shift, 1.0, size=(n, d)))))
               for shift in (0.5, 1.0, 2.0)]
    assert 0 < shifted[0] < shifted[1] < shifted[2]
    assert shifted[0] > np.mean(same) + 5 * np.std(same)


def _biased_mmd(y, z, kernel):
    return float(np.mean(kernel(y, y)) + np.mean(kernel(z, z)) - 2 * np.mean(kernel(y, z)))


def test_group_mmd_sums_the_biased_mmd_of_each_group_to_group_zero():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(12, 3)).astype(np.float32)
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 0, 1, 2, 2, 2])
    expected = sum(_biased_mmd(_constant(z[labels == k]), _constant(z[labels == 0]), _rbf)
                   for k in (1, 2))
    value = float(kernels.group_mmd(_constant(z), labels, 3, _rbf))
    assert value == pytest.approx(expected, rel=1e-5)
    # A value of the factor absent from the batch (3 of 4 here) contributes nothing.
    assert float(kernels.group_mmd(_constant(z), labels, 4, _rbf)) == pytest.approx(expected,
                                                                                   rel=1e-5)


def test_group_mmd_is_zero_for_identical_groups_and_grows_with_a_shift():
    rng = np.random.default_rng(3)
    points = rng.normal(size=(10, 2))
    labels = np.repeat([0, 1], 10)
    same = np.concatenate([points, points])
    assert float(kernels.group_mmd(_constant(same), labels, 2, _rbf)) == pytest.approx(0, abs=1e-6)
    values = [float(kernels.group_mmd(_constant(np.concatenate([points, points + shift])),
                                      labels, 2, _rbf)) for shift in (0.25, 0.5, 1.0, 2.0)]
    assert 0 < values[0] < values[1] < values[2] < values[3]


# ------------------------------------------------------------------------ HSIC
def test_median_heuristic_known_answer():
    # Distances 1, 2, 3 between the points 0, 1, 3: median 2, σ² = 4.
    assert float(kernels.median_heuristic_variance(_constant([[0.0], [1.0], [3.0]]))) == 4.0


def _written_out_hsic(x, y):
    n = len(x)

    def gram(a):
        squared = ((a[:, None, :] - a[None, :, :]) ** 2).sum(-1)
        median = np.median(np.sqrt(squared[np.triu_indices(n, 1)]))
        return np.exp(-squared / (2 * median ** 2))

    h = np.eye(n) - np.ones((n, n)) / n
    return np.trace(gram(x) @ h @ gram(y) @ h) / (n - 1) ** 2


def test_hsic_matches_the_trace_formula_written_out():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(9, 2))
    y = x[:, :1] ** 2 + 0.3 * rng.normal(size=(9, 1))
    assert float(kernels.hsic(_constant(x), _constant(y))) == pytest.approx(
        _written_out_hsic(x, y), rel=1e-4)


def test_hsic_is_zero_for_a_constant_near_zero_for_independence_and_grows_with_dependence():
    hsic = tf.function(kernels.hsic)
    rng = np.random.default_rng(5)
    n = 200
    x = rng.normal(size=(n, 2))
    assert float(hsic(_constant(x), _constant(np.ones((n, 1))))) == pytest.approx(0, abs=1e-7)
    independent = [float(hsic(_constant(rng.normal(size=(n, 2))), _constant(rng.normal(size=(n, 2)))))
                   for _ in range(10)]
    dependent = []
    for rho in (0.3, 0.6, 0.9, 1.0):
        a = rng.normal(size=(n, 2))
        b = rho * a + np.sqrt(1 - rho ** 2) * rng.normal(size=(n, 2))
        dependent.append(float(hsic(_constant(a), _constant(b))))
    # The biased estimate is O(1/n) for independent samples.
    assert 0 <= np.mean(independent) < 0.01
    assert np.mean(independent) < dependent[0] < dependent[1] < dependent[2] < dependent[3]


# ------------------------------------------------------------------------ the models' losses
def _terms(model, images, **kwargs):
    terms = model.compute_loss_terms(images, training=True, **kwargs)
    return {k: float(v) for k, v in terms.items()}


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_info_vae_loss_is_recon_plus_beta_kl_plus_lambda_mmd_to_prior_samples(kernel,
                                                                              binary_images):
    model = models.get("info_vae", beta=0.5, lambda_mmd=30.0, kernel=kernel, **SMALL)
    terms = _terms(model, binary_images)
    assert terms["loss"] == pytest.approx(
        terms["recon"] + 0.5 * terms["kl"] + 30.0 * terms["mmd"], rel=1e-6)
    posterior = model.encode(binary_images)
    z = posterior["mean"] + tf.exp(0.5 * posterior["logvar"]) * model.training_noise((16, 4))
    prior_samples = model.training_noise((16, 4), purpose=1)
    expected = kernels.mmd(prior_samples, z, model.kernel_fn)
    assert terms["mmd"] == pytest.approx(float(expected), rel=1e-4, abs=1e-5)
    if kernel == "imq":  # the decomposition VAE's estimator
        assert terms["mmd"] == pytest.approx(float(kernels.mmd_imq(prior_samples, z)), rel=1e-4,
                                             abs=1e-5)
    assert model.rbf_variance == 4.0  # default: latent_dim


def test_hsic_vae_loss_sums_hsic_over_pairs_of_groups(binary_images):
    model = models.get("hsic_vae", lambda_hsic=50.0, groups=[1, 1, 2], **SMALL)
    terms = _terms(model, binary_images)
    assert terms["loss"] == pytest.approx(terms["recon"] + terms["kl"] + 50.0 * terms["hsic"],
                                          rel=1e-6)
    posterior = model.encode(binary_images)
    z = posterior["mean"] + tf.exp(0.5 * posterior["logvar"]) * model.training_noise((16, 4))
    a, b, c = z[:, :1], z[:, 1:2], z[:, 2:]
    expected = kernels.hsic(a, b) + kernels.hsic(a, c) + kernels.hsic(b, c)
    assert terms["hsic"] == pytest.approx(float(expected), rel=1e-4)
    assert models.HSICVAE(**SMALL).groups == [2, 2]


def test_vfae_loss_penalises_the_groups_of_the_sensitive_factor(binary_images):
    model = models.get("vfae", lambda_invariance=20.0, num_sensitive_values=3, **SMALL)
    s = np.arange(16) % 3
    terms = _terms(model, binary_images, sensitive=s)
    assert terms["loss"] == pytest.approx(
        terms["recon"] + terms["kl"] + 20.0 * terms["invariance"], rel=1e-6)
    posterior = model.encode(binary_images)
    z = posterior["mean"] + tf.exp(0.5 * posterior["logvar"]) * model.training_noise((16, 4))
    expected = kernels.group_mmd(z, s, 3, model.kernel_fn)
    assert terms["invariance"] == pytest.approx(float(expected), rel=1e-4) and expected > 0
    # Without labels (evaluate on a plain image stream) the invariance is not measured.
    assert _terms(model, binary_images)["invariance"] == 0.0


def test_vfae_refuses_training_on_images_alone_and_bad_labels(binary_images):
    model = models.VFAE(**SMALL)
    model.compile()
    with pytest.raises(ValueError, match=r"VFAE trains on \(images, sensitive labels\)"):
        model.fit(binary_images, batch_size=8, verbose=0)
    with pytest.raises(ValueError, match="must be integers"):
        model.compute_loss_terms(binary_images, True, sensitive=np.zeros(16, np.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"lie in \[0, 3\)"):
        model.compute_loss_terms(binary_images, True, sensitive=np.full(16, 3))
    with pytest.raises(tf.errors.InvalidArgumentError, match="one per image"):
        model.compute_loss_terms(binary_images, True, sensitive=np.zeros(15, np.int64))


def test_the_stream_with_factors_has_the_same_images_and_their_factors():
    dsprites = data.get("dsprites")
    plain = next(iter(dsprites.stream(4, seed=7, start_step=3)))
    images, factors = next(iter(dsprites.stream(4, seed=7, start_step=3, with_factors=True)))
    np.testing.assert_array_equal(images.numpy(), plain.numpy())
    np.testing.assert_array_equal(factors.numpy(), dsprites.stream_factors(4, seed=7, step=3))


def test_vfae_training_stream_yields_images_and_the_sensitive_factor():
    dsprites = data.get("dsprites")
    model = models.VFAE(sensitive_factor="scale", num_sensitive_values=6, **SMALL)
    images, s = next(iter(model.training_stream(dsprites, 4, seed=7, start_step=3)))
    np.testing.assert_array_equal(images.numpy(),
                                  next(iter(dsprites.stream(4, seed=7, start_step=3))).numpy())
    column = dsprites.factor_names.index("scale")
    np.testing.assert_array_equal(s.numpy(), dsprites.stream_factors(4, seed=7, step=3)[:, column])
    with pytest.raises(ValueError, match="'colour' is not a factor"):
        models.VFAE(sensitive_factor="colour", **SMALL).training_stream(dsprites, 4, seed=0)
    with pytest.raises(ValueError, match="has 3 values.*num_sensitive_values=4"):
        models.VFAE(num_sensitive_values=4, **SMALL).training_stream(dsprites, 4, seed=0)


def test_vfae_held_out_batches_carry_the_sensitive_factor():
    dsprites = data.get("dsprites")
    model = models.VFAE(num_sensitive_values=3, **SMALL)
    model.compile()
    batch = next(iter(model.evaluation_stream(dsprites, 8, seed=3)))
    x, s = batch
    assert x.shape[0] == 8 and s.shape == (8,)
    terms = model.evaluate(model.evaluation_stream(dsprites, 8, seed=3), steps=1,
                           return_dict=True, verbose=0)
    assert terms["invariance"] > 0.0


@pytest.mark.slow  # a trainers.train run (about a minute); the model harness covers VFAE's fit
def test_trainers_train_runs_vfae_on_labelled_batches(tmp_path):
    config = TrainConfig(model="vfae", latent_dim=4, steps=2, batch_size=8,
                         checkpoint_every=2, image_every=2, eval_batches=1,
                         export=False, output_dir=str(tmp_path), verbose=0)
    results = train.run(config)
    assert results["steps"] == 2
    assert results["model_config"]["sensitive_factor"] == "shape"
    # The held-out terms come from the model's evaluation stream, with s: measured, not 0.
    assert results["final_loss_terms"]["invariance"] > 0.0


@pytest.mark.parametrize("name, args", [("info_vae", ["lambda_mmd=10", "kernel=rbf"]),
                                        ("hsic_vae", ["groups=[3,7]"]),
                                        ("vfae", ["sensitive_factor=scale",
                                                  "num_sensitive_values=6"])])
def test_model_args_of_trainers_train_reach_the_models(name, args):
    config = TrainConfig(model=name, model_args=parse_key_values(args))
    model = train.build_model(config, (64, 64, 1))
    assert type(model) is models.MODELS[name]
    for key, value in parse_key_values(args).items():
        assert getattr(model, key) == value


@pytest.mark.parametrize("name, kwargs, message", [
    ("info_vae", {"lambda_mmd": -1.0}, "lambda_mmd must be"),
    ("info_vae", {"kernel": "laplace"}, "Unknown kernel 'laplace'"),
    ("info_vae", {"kernel": "rbf", "rbf_variance": 0.0}, "rbf_variance must be"),
    ("info_vae", {"mmd_scales": []}, "mmd_scales must be"),
    ("hsic_vae", {"groups": [2, 3]}, "summing to latent_dim=4"),
    ("hsic_vae", {"groups": [4]}, "≥ 2 group sizes"),
    ("hsic_vae", {"groups": [0, 4]}, "groups entry must be"),
    ("hsic_vae", {"lambda_hsic": float("nan")}, "lambda_hsic must be"),
    ("vfae", {"num_sensitive_values": 1}, "num_sensitive_values must be ≥ 2"),
    ("vfae", {"lambda_invariance": -2.0}, "lambda_invariance must be"),
])
def test_bad_hyperparameters_are_refused(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.get(name, **{**SMALL, **kwargs})
