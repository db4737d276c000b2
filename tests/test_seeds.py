"""The seed scheme of `zoo.seeds` gives the numbers every stored run was made with.

Training draws must not change: a run resumed from its checkpoint has to make the draws it made
before it was stopped. The numbers below were taken from the data streams and the seed formulas as
they stood before the derivations moved into `zoo.seeds`; a change of any derivation fails here.
"""
import numpy as np
import pytest
import tensorflow as tf

from zoo import data, seeds


def _fold_in_auto(seed, purpose):
    """The fold DC-IGN and SCAN were written with: TF's default algorithm, not a named one."""
    return tf.random.experimental.stateless_fold_in(seed, purpose).numpy()


@pytest.mark.parametrize("seed, step, purpose", [(0, 0, 0), (7, 11, 3), (2**31 - 1, 5, 1008)])
def test_model_training_seeds_keep_their_layout(seed, step, purpose):
    assert seeds.training_seed(seed, step, purpose).numpy().tolist() == [
        seed * 1009 + purpose, step]


def test_the_tfp_seed_of_a_training_draw_is_the_int32_pair_joint_vae_used():
    seed, step = 123_456_789, 40
    for j in range(3):
        old = [(seed * 1009 + 1 + j) % (2**31 - 1), step]  # JointVAE's relaxed code j
        new = seeds.as_tfp_seed(seeds.training_seed(seed, step, 1 + j))
        assert new.dtype == tf.int32 and new.numpy().tolist() == old


def test_dc_ign_and_scan_seeds_equal_their_first_derivations():
    seed, step = 11, 7
    pair = tf.constant([seed, step], tf.int64)
    for i in range(4):
        old = _fold_in_auto(_fold_in_auto(pair, 0x0DC16), i)
        new = seeds.derive(seed, step, seeds.DC_IGN_BATCHES, i).numpy()
        np.testing.assert_array_equal(new, old)
    salted = tf.constant([seed ^ 0x5CA1, step], tf.int64)
    for k in (0, 1, 2, 10, 11, 20):
        np.testing.assert_array_equal(seeds.derive(seed ^ seeds.SCAN_SYMBOLS, step, k).numpy(),
                                      _fold_in_auto(salted, k))


def _first_batch(dataset, batch_size, **kwargs):
    return next(iter(dataset.stream(batch_size, seed=11, start_step=7, **kwargs)))


def test_data_streams_give_their_recorded_batches():
    dsprites = data.get("dsprites")
    assert dsprites.stream_factors(3, seed=11, step=7).tolist() == [
        [2, 1, 24, 31, 5], [1, 4, 33, 30, 26], [1, 0, 10, 5, 17]]
    assert float(tf.reduce_sum(_first_batch(dsprites, 3))) == 386.0
    for name, total in (("noisy_dsprites", 12782.544398546219),
                        ("color_dsprites", 758.8923642039299)):
        images = _first_batch(data.get(name), 2)
        assert float(tf.reduce_sum(tf.cast(images, tf.float64))) == pytest.approx(
            total, rel=1e-9), name
    np.testing.assert_allclose(_first_batch(data.get("pinwheel"), 3).numpy(), [
        [-0.6571031212806702, -0.7263584136962891], [0.6501350402832031, 0.30700719356536865],
        [-0.605768620967865, 0.7905512452125549]], rtol=1e-6)
    images, factors = _first_batch(data.get("digits"), 3, with_factors=True)
    assert factors.numpy().tolist() == [[0], [0], [5]]
    assert float(tf.reduce_sum(images)) == pytest.approx(709.10595703125, rel=1e-6)
    pixels = np.arange(40, dtype=np.uint8).reshape(10, 2, 2, 1)
    stored = data.ArrayImageData(pixels, name="t", data_source="t")
    assert stored.stream_rows(5, seed=11, step=7).tolist() == [0, 6, 2, 8, 8]


def test_dc_ign_single_factor_batches_are_the_recorded_ones():
    from zoo.models.dc_ign import _single_factor_batch_fn

    make = _single_factor_batch_fn(data.get("dsprites"), 4, 11, 10.0, None)
    factors, batch_type = make(tf.constant(7, tf.int64))
    assert factors.numpy().tolist() == [[0, 0, 2, 2, 0], [0, 0, 23, 2, 0], [0, 0, 17, 2, 0],
                                        [0, 0, 27, 2, 0]]
    assert int(batch_type) == 2


def test_derive_folds_its_purposes_in_order():
    pair = tf.constant([5, 9], tf.int64)
    expected = tf.random.experimental.stateless_fold_in(
        tf.random.experimental.stateless_fold_in(pair, 1, alg="philox"), 2, alg="philox")
    np.testing.assert_array_equal(seeds.derive(5, 9, 1, 2).numpy(), expected.numpy())
    np.testing.assert_array_equal(seeds.derive(5, 9).numpy(), [5, 9])
    assert not np.array_equal(seeds.derive(5, 9, 1, 2).numpy(), seeds.derive(5, 9, 2, 1).numpy())


def test_resolve_keeps_a_given_seed_and_draws_a_fresh_one_for_none():
    assert seeds.resolve(42) == 42 and seeds.resolve(np.int64(3)) == 3
    drawn = {seeds.resolve(None) for _ in range(4)}
    assert all(0 <= s < 2**31 for s in drawn) and len(drawn) > 1
