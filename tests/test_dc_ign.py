"""DC-IGN (docs/methods.md §12): the clamp and its invariance gradient, the single-factor batches, the
clamped train_step, and training through trainers.train.

Save/load, fine-tuning and serving are covered by the shared harness (tests/test_models.py)."""
import json

import numpy as np
import pytest
import tensorflow as tf

import zoo.data
from zoo.data.synthetic import IdentityData
from zoo.models.dc_ign import (
    DCIGN,
    FREE,
    active_mask,
    assigned_latents,
    batch_type_weights,
    clamp_latents,
    single_factor_batch,
    single_factor_stream,
    single_factor_variation,
)

SMALL = {"latent_dim": 6, "seed": 3}


# ------------------------------------------------------------------------ the clamp
def test_clamp_forward_replaces_inactive_latents_by_their_batch_mean():
    z = tf.constant(np.random.default_rng(0).normal(size=(5, 4)), tf.float32)
    out = clamp_latents(z, active_mask(2, 4)).numpy()
    np.testing.assert_array_equal(out[:, 2], z.numpy()[:, 2])
    for j in (0, 1, 3):
        np.testing.assert_allclose(out[:, j], np.full(5, z.numpy()[:, j].mean()), rtol=1e-6)
    np.testing.assert_array_equal(clamp_latents(z, active_mask(FREE, 4)).numpy(), z.numpy())


def test_clamped_latents_get_exactly_the_difference_from_the_mean_and_the_active_the_normal():
    # The clamp is applied to the posterior parameters; any [B, d] tensor behaves the same.
    model = DCIGN(**SMALL)
    rng = np.random.default_rng(1)
    images = (rng.random((8, 64, 64, 1)) > 0.9).astype(np.float32)
    z = tf.constant(rng.normal(size=(8, 6)), tf.float32)
    active = active_mask(3, 6)

    def recon(codes):
        return -tf.reduce_mean(model.likelihood.log_prob(images, model.decode(codes)))

    with tf.GradientTape() as tape:
        tape.watch(z)
        loss = recon(clamp_latents(z, active))
    through_clamp = tape.gradient(loss, z).numpy()
    # The normal gradient: the same loss differentiated at the clamped codes themselves.
    clamped = tf.constant(clamp_latents(z, active))
    with tf.GradientTape() as tape:
        tape.watch(clamped)
        loss_at_clamped = recon(clamped)
    normal = tape.gradient(loss_at_clamped, clamped).numpy()
    assert float(loss) == pytest.approx(float(loss_at_clamped))
    np.testing.assert_array_equal(through_clamp[:, 3], normal[:, 3])
    assert np.abs(normal[:, 3]).max() > 0
    # Per example the difference from the batch mean; like every term of the batch-mean loss,
    # divided by the batch size.
    deviation = (z.numpy() - z.numpy().mean(axis=0, keepdims=True)) / 8
    for j in (0, 1, 2, 4, 5):
        np.testing.assert_array_equal(through_clamp[:, j], deviation[:, j])
    # invariance_weight scales the clamped latents' gradient only.
    with tf.GradientTape() as tape:
        tape.watch(z)
        weighted = tape.gradient(recon(clamp_latents(z, active, invariance_weight=10.0)), z).numpy()
    np.testing.assert_array_equal(weighted[:, 3], normal[:, 3])
    np.testing.assert_allclose(weighted[:, [0, 1, 2, 4, 5]], 10.0 * deviation[:, [0, 1, 2, 4, 5]],
                               rtol=1e-6)
    # A free batch: every latent gets its normal gradient.
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(z)
        free_loss = recon(clamp_latents(z, active_mask(FREE, 6)))
        plain_loss = recon(z)
    np.testing.assert_array_equal(tape.gradient(free_loss, z).numpy(),
                                  tape.gradient(plain_loss, z).numpy())
    assert float(free_loss) == pytest.approx(float(plain_loss))


def test_a_factor_with_a_block_of_latents_has_all_of_them_active():
    np.testing.assert_array_equal(active_mask(2, 7, [1, 1, 2, 1, 1]).numpy(),
                                  [0, 0, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(active_mask(4, 7, [1, 1, 2, 1, 1]).numpy(),
                                  [0, 0, 0, 0, 0, 1, 0])  # latent 6 is unassigned: always clamped
    np.testing.assert_array_equal(active_mask(FREE, 7, [1, 1, 2, 1, 1]).numpy(), np.ones(7))
    model = DCIGN(latents_per_factor=[1, 1, 2, 1, 1], **SMALL)
    assert DCIGN.from_config(model.get_config()).latents_per_factor == [1, 1, 2, 1, 1]
    with pytest.raises(ValueError, match="latent_dim is 6"):
        DCIGN(latents_per_factor=[2, 2, 2, 1], **SMALL)
    with pytest.raises(ValueError, match="counts ≥ 1"):
        DCIGN(latents_per_factor=[1, 0], **SMALL)
    with pytest.raises(ValueError, match="one count per varying factor"):
        model.training_stream(IdentityData(factor_sizes=(3, 4)), 8, seed=0)


def test_the_clamp_acts_on_the_posterior_parameters_before_sampling():
    model = DCIGN(**SMALL)
    images = (np.random.default_rng(2).random((4, 64, 64, 1)) > 0.9).astype(np.float32)
    posterior = model.encode(images)
    active = active_mask(1, 6)
    clamped = model.compute_loss_terms(images, training=True, batch_type=1)
    free = model.compute_loss_terms(images, training=True)
    # The clamp changes only the decoder's input: the KL is that of the unclamped posterior.
    assert float(clamped["kl"]) == pytest.approx(float(free["kl"]))
    assert float(free["kl"]) == pytest.approx(
        float(model.standard_kl(posterior["mean"], posterior["logvar"])[0]), rel=1e-6)
    # The logged invariance: ½ (p − p̄)² of both parameters over the clamped latents, batch mean.
    expected = sum(0.5 * np.sum((p - p.mean(0)) ** 2 * (1 - active.numpy()), axis=1).mean()
                   for p in (posterior["mean"].numpy(), posterior["logvar"].numpy()))
    assert float(clamped["invariance"]) == pytest.approx(expected, rel=1e-5)
    assert float(free["invariance"]) == 0.0
    # Clamped latents get no reconstruction gradient, only the invariance gradient and the KL's:
    # for a batch of one image repeated (no deviation from the mean), exactly the KL's.
    same = np.repeat(images[:1], 4, axis=0)
    with tf.GradientTape(persistent=True) as tape:
        terms = model.compute_loss_terms(same, training=True, batch_type=1)
    # The posterior head's kernel: columns j → μ_j, columns d + j → log σ²_j.
    kernel_gradient = tape.gradient(terms["loss"], model.posterior_head.dense.kernel).numpy()
    kl_gradient = tape.gradient(terms["kl"], model.posterior_head.dense.kernel).numpy()
    d = model.latent_dim
    for j in (0, 2, 3, 4, 5):
        np.testing.assert_allclose(kernel_gradient[:, [j, d + j]], kl_gradient[:, [j, d + j]],
                                   rtol=1e-5, atol=1e-7)
    assert not np.allclose(kernel_gradient[:, [1, d + 1]], kl_gradient[:, [1, d + 1]])


# ------------------------------------------------------------------------ single-factor batches
def test_in_a_single_factor_batch_only_the_assigned_factor_varies():
    data = zoo.data.get("dsprites")
    assert assigned_latents(data) == {"shape": [0], "scale": [1], "orientation": [2], "posX": [3],
                                      "posY": [4]}
    assert assigned_latents(data, [1, 1, 2, 1, 1]) == {
        "shape": [0], "scale": [1], "orientation": [2, 3], "posX": [4], "posY": [5]}
    seen = set()
    for step in range(60):  # (free batches as frequent as the others: every type shows up)
        factors, active = single_factor_batch(data, 64, seed=5, step=step, free_batch_weight=1)
        seen.add(active)
        if active == FREE:
            assert all(len(np.unique(factors[:, k])) > 1 for k in range(5))
            continue
        for k in range(5):
            distinct = len(np.unique(factors[:, k]))
            assert (distinct > 1) if k == active else (distinct == 1), (step, active, k)
    assert seen == {FREE, 0, 1, 2, 3, 4}


# Slow (half a minute or more on 2 cores): `make test-all` runs it.
@pytest.mark.slow
def test_single_factor_variation_of_known_representations():
    data = IdentityData(factor_sizes=(3, 1, 8, 5))  # factor1 is constant: not a DC-IGN factor

    def factor_codes(images):  # a perfect representation: the varying factors themselves
        return images.reshape(len(images), -1)[:, [0, 2, 3]]

    result = single_factor_variation(factor_codes, data, seed=0, batches_per_factor=40)
    assert result["factor_names"] == ["factor0", "factor2", "factor3"]
    matrix = result["matrix"]
    # A factor's own code varies as much within its batches as over the data (the batch std of
    # 64 uniform draws is within a few % of the global one); the other codes do not move.
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=0.05)
    assert np.all(matrix[~np.eye(3, dtype=bool)] == 0.0)

    def mixed_codes(images):  # code 0 = factor0 + factor2: varies in both factors' batches
        flat = images.reshape(len(images), -1)
        return np.stack([flat[:, 0] + flat[:, 2], np.zeros(len(flat))], axis=1)

    matrix = single_factor_variation(mixed_codes, data, seed=0, batches_per_factor=40)["matrix"]
    assert matrix[0, 0] > 0.2 and matrix[1, 0] > 0.8 and matrix[2, 0] == 0.0
    assert np.all(matrix[:, 1] == 0.0)  # a constant code scores 0, not NaN
    again = single_factor_variation(mixed_codes, data, seed=0, batches_per_factor=40)["matrix"]
    np.testing.assert_array_equal(matrix, again)


def test_batch_types_follow_the_one_to_ten_ratio_and_are_a_function_of_seed_and_step():
    data = IdentityData(factor_sizes=(3, 4, 1, 5))  # the constant factor gets no latent
    assert batch_type_weights(data) == [1.0, 1.0, 1.0, 10.0]
    actives = [int(labels[0]) for _, labels in
               single_factor_stream(data, 16, seed=0).take(600).as_numpy_iterator()]
    free_fraction = np.mean(np.asarray(actives) == FREE)
    assert free_fraction == pytest.approx(10 / 13, abs=0.05)
    assert set(actives) == {FREE, 0, 1, 2}
    first = single_factor_batch(data, 16, seed=0, step=7)
    again = single_factor_batch(data, 16, seed=0, step=7)
    np.testing.assert_array_equal(first[0], again[0])
    assert first[1] == again[1]
    assert not np.array_equal(single_factor_batch(data, 16, seed=1, step=7)[0], first[0])
    only_factors = [int(labels[0]) for _, labels in single_factor_stream(
        data, 16, seed=0, free_batch_weight=0).take(50).as_numpy_iterator()]
    assert FREE not in only_factors


def test_factor_batch_weights_set_the_single_factor_batch_mix():
    data = IdentityData(factor_sizes=(3, 4, 1, 5))
    assert batch_type_weights(data, 0, [10, 1, 1]) == [10.0, 1.0, 1.0, 0.0]
    actives = np.asarray([int(labels[0]) for _, labels in single_factor_stream(
        data, 16, seed=0, free_batch_weight=0, factor_batch_weights=[10, 1, 1]).take(600)
        .as_numpy_iterator()])
    assert np.mean(actives == 0) == pytest.approx(10 / 12, abs=0.05)
    assert set(actives) == {0, 1, 2}
    with pytest.raises(ValueError, match="one weight per varying factor"):
        batch_type_weights(data, 10, [1, 1])
    with pytest.raises(ValueError, match="not all 0"):
        batch_type_weights(data, 0, [0, 0, 0])
    with pytest.raises(ValueError, match="factor_batch_weights"):
        DCIGN(factor_batch_weights=[1, -1, 1], **SMALL)


def test_the_stream_renders_the_batches_and_resumes_exactly():
    data = IdentityData(factor_sizes=(3, 4, 5))  # observations are the factors themselves
    stream = list(single_factor_stream(data, 8, seed=2).take(5).as_numpy_iterator())
    resumed = list(single_factor_stream(data, 8, seed=2, start_step=3).take(2)
                   .as_numpy_iterator())
    for (images, labels), step in zip(stream, range(5)):
        factors, active = single_factor_batch(data, 8, seed=2, step=step)
        np.testing.assert_array_equal(images[:, 0, 0, :], factors)
        np.testing.assert_array_equal(labels, np.full(8, active))
    for (a, la), (b, lb) in zip(stream[3:], resumed):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)


# ------------------------------------------------------------------------ training
def test_fit_on_single_factor_batches_and_the_latent_count_check():
    data = zoo.data.get("dsprites")
    model = DCIGN(**SMALL)
    model.compile()
    history = model.fit(model.training_stream(data, 8, seed=0), steps_per_epoch=4, epochs=1,
                        verbose=0)
    assert int(model.global_step.numpy()) == 4
    assert {"loss", "recon", "kl", "elbo", "invariance"} <= set(history.history)
    with pytest.raises(ValueError, match="latent_dim ≥ 5"):
        DCIGN(latent_dim=3, seed=0).training_stream(data, 8, seed=0)


@pytest.mark.slow  # a whole trainers.train run (about 40 s on 2 cores); the stream itself is tested above
def test_trainers_train_uses_the_model_stream(tmp_path):
    from trainers import train
    from trainers.config import TrainConfig

    config = TrainConfig(model="dc_ign", latent_dim=6, steps=3, batch_size=8,
                         checkpoint_every=3, eval_batches=1, export=False,
                         output_dir=str(tmp_path), verbose=0)
    results = train.run(config)
    assert results["steps"] == 3
    assert "invariance" in results["final_loss_terms"]
    assert json.loads((tmp_path / "results.json").read_text())["model_config"]["latent_dim"] == 6


# ------------------------------------------------------------------------ its own criteria
def test_the_report_scores_each_factor_against_its_assigned_latent():
    from trainers import dc_ign_report

    data = IdentityData(factor_sizes=(3, 1, 8, 5))  # factor1 is constant: no latent

    def encoder(order):  # posterior means = the varying factors in `order`, unit variances
        def encode(images):
            means = images.reshape(len(images), -1)[:, order].astype(np.float64)
            return {"mean": means, "logvar": np.zeros_like(means)}
        return encode

    result = dc_ign_report.report(encoder([0, 2, 3]), data, seed=0, num_points=2000,
                                  batches_per_factor=5)
    assert result["assigned_latents"] == {"factor0": [0], "factor2": [1], "factor3": [2]}
    for name, values in (("factor0", 3), ("factor2", 8), ("factor3", 5)):
        row = result["per_factor"][name]
        # The assigned latent is a function of its factor (η = |ρ| = 1) and carries its variation
        # in its batches; the others are independent of it (η ≈ √((values − 1)/n)) and stay put.
        assert row["correlation_ratio"] == 1.0 and row["spearman_abs"] == 1.0
        assert row["max_other_latent_correlation_ratio"] < 0.15
        assert row["within_batch_variation"] == pytest.approx(1.0, abs=0.15)
        assert row["max_other_latent_within_batch_variation"] == 0.0
        # KL of N(μ, 1) to N(0, 1) is μ²/2; μ uniform on 0 … values − 1.
        expected_kl = np.mean(np.arange(values) ** 2) / 2
        assert row["kl"] == pytest.approx(expected_kl, rel=0.1)
    scores = dc_ign_report.flat_scores(result)
    assert scores["dc_ign/factor2/correlation_ratio"] == 1.0 and len(scores) == 3 * 5
    assert len(dc_ign_report.table(result)) == 2 + 3

    # Latents 0 and 1 swapped: each factor is scored against the latent DC-IGN assigned to it,
    # so factor0 and factor2 now fail (their information sits in the other's latent).
    swapped = dc_ign_report.report(encoder([2, 0, 3]), data, seed=0, num_points=2000,
                                   batches_per_factor=5)["per_factor"]
    for name in ("factor0", "factor2"):
        assert swapped[name]["correlation_ratio"] < 0.15
        assert swapped[name]["max_other_latent_correlation_ratio"] == 1.0
        assert swapped[name]["within_batch_variation"] == 0.0
    assert swapped["factor3"]["correlation_ratio"] == 1.0
