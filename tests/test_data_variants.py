"""Tests of the dSprites variants (docs/methods.md §17) and the pinwheel generator (docs/methods.md §17)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from zoo import data, seeds
from zoo.data import ColorDSprites, NoisyDSprites, Pinwheel, ScreamDSprites, pinwheel
from zoo.data.dsprites import DSPRITES_FACTOR_NAMES, DSPRITES_FACTOR_SIZES
from zoo.data.ground_truth import GroundTruthData

VARIANTS = ("color_dsprites", "noisy_dsprites", "scream_dsprites")


@pytest.fixture(scope="module")
def variants():
    base = data.ProceduralDSprites()
    return {
        "color_dsprites": ColorDSprites(base),
        "noisy_dsprites": NoisyDSprites(base),
        "scream_dsprites": ScreamDSprites(base),
    }


def batches(dataset, n):
    return [b.numpy() for b in dataset.take(n)]


def stream_noise_seed(seed, step):
    """The seed GroundTruthData.stream gives a batch's observation noise."""
    return seeds.fold(seeds.derive(seed, step, seeds.DATA_STREAM), seeds.OBSERVATION_NOISE)


# ----------------------------------------------------------------------------
# dSprites variants
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_metadata_is_dsprites_in_colour(variants, name):
    variant = variants[name]
    assert data.get(name).name == name == variant.name
    assert variant.factor_names == DSPRITES_FACTOR_NAMES
    assert variant.factor_sizes == DSPRITES_FACTOR_SIZES
    assert variant.observation_shape == (64, 64, 3)
    assert "procedural dSprites" in variant.data_source
    _, images = variant.sample(6, rng=0)
    assert images.shape == (6, 64, 64, 3) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0


def test_scream_data_source_says_the_texture_is_procedural(variants):
    source = variants["scream_dsprites"].data_source
    assert "procedurally generated" in source and "cannot be downloaded" in source


@pytest.mark.parametrize("name", VARIANTS)
def test_numpy_randomness_comes_from_rng(variants, name):
    variant = variants[name]
    factors = variant.sample_factors(4, rng=1)
    a = variant.images_from_factors(factors, rng=np.random.default_rng(5))
    b = variant.images_from_factors(factors, rng=np.random.default_rng(5))
    c = variant.images_from_factors(factors, rng=np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(variant.sample(4, rng=3)[1], variant.sample(4, rng=3)[1])


def test_colour_variant_colours_the_sprite_and_keeps_the_background_black(variants):
    variant = variants["color_dsprites"]
    factors = variant.sample_factors(8, rng=2)
    sprites = variant.base.images_from_factors(factors)
    images = variant.images_from_factors(factors, rng=0)
    colour = np.random.default_rng(0).uniform(0.5, 1.0, size=(8, 3)).astype(np.float32)
    np.testing.assert_allclose(images, sprites * colour[:, None, None, :])
    assert np.all(images[sprites[..., 0] == 0] == 0)


def test_noisy_variant_keeps_the_sprite_white_on_uniform_noise(variants):
    variant = variants["noisy_dsprites"]
    factors = variant.sample_factors(8, rng=2)
    sprites = variant.base.images_from_factors(factors)[..., 0]
    images = variant.images_from_factors(factors, rng=0)
    assert np.all(images[sprites == 1] == 1.0)
    background = images[sprites == 0]
    assert abs(background.mean() - 0.5) < 0.01 and abs(background.var() - 1 / 12) < 0.005


def test_scream_variant_inverts_a_tinted_texture_crop_under_the_sprite(variants):
    variant = variants["scream_dsprites"]
    factors = variant.sample_factors(3, rng=4)
    sprites = variant.base.images_from_factors(factors)
    draws = {"top": np.array([0, 10, 128]), "left": np.array([0, 176, 3]),
             "tint": np.array([[0.0, 0.5, 1.0]] * 3, np.float32)}
    images = variant.compose(sprites, draws)
    texture = variant.texture
    for i in range(3):
        top, left = draws["top"][i], draws["left"][i]
        patch = 0.5 * (texture[top:top + 64, left:left + 64] + draws["tint"][i])
        want = np.where(sprites[i] > 0.5, 1.0 - patch, patch)
        np.testing.assert_allclose(images[i], want, atol=1e-6)
    # The texture is colourful, not grey.
    assert texture.std(axis=(0, 1)).min() > 0.05 and np.ptp(texture.mean(axis=(0, 1))) > 0.1


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_stream_is_a_pure_function_of_seed_and_step(variants, name):
    variant = variants[name]
    first = batches(variant.stream(4, seed=11), 3)
    np.testing.assert_array_equal(first[2], batches(variant.stream(4, seed=11, start_step=2), 1)[0])
    assert first[0].shape == (4, 64, 64, 3) and not np.array_equal(first[0], first[1])
    # Batch k: the base images of stream_factors, with noise from the stateless (seed, k) seed.
    factors = variant.stream_factors(4, seed=11, step=2)
    want = variant.images_from_factors_seeded_tf(factors, stream_noise_seed(11, 2))
    np.testing.assert_array_equal(first[2], want.numpy())
    # The clean sprite under the nuisance is the base's image of those factors.
    sprites = variant.base.images_from_factors(factors)[..., 0]
    if name == "noisy_dsprites":
        assert np.all(first[2][sprites == 1] == 1.0)
    elif name == "color_dsprites":
        assert np.all(first[2][sprites == 0] == 0.0) and np.all(first[2][sprites == 1] >= 0.5)


def test_unseeded_tf_path_draws_fresh_noise(variants):
    variant = variants["noisy_dsprites"]
    factors = tf.constant(variant.sample_factors(2, rng=0))
    assert not np.array_equal(variant.images_from_factors_tf(factors),
                              variant.images_from_factors_tf(factors))


def test_variants_refuse_a_base_that_is_not_binary_dsprites():
    with pytest.raises(ValueError, match="64x64x1"):
        ColorDSprites(ColorDSprites())


def test_variants_on_real_dsprites_under_mock_data(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=10):
        variant = data.get("scream_dsprites", source="tfds", data_dir=str(tmp_path))
    assert isinstance(variant, ScreamDSprites)
    assert "real dSprites" in variant.data_source
    images = variant.images_from_factors(variant.base.factor_classes, rng=0)
    assert images.shape == (10, 64, 64, 3)


# ----------------------------------------------------------------------------
# Pinwheel
# ----------------------------------------------------------------------------


def test_pinwheel_counts_order_and_types():
    points, labels = pinwheel(rng=0)
    assert points.shape == (400, 2) and points.dtype == np.float32
    np.testing.assert_array_equal(labels, np.repeat(np.arange(4), 100))
    points, labels = pinwheel(num_classes=3, per_class=7, rng=0)
    assert points.shape == (21, 2) and np.bincount(labels).tolist() == [7, 7, 7]


def test_pinwheel_is_exactly_the_methods_formula():
    points, labels = pinwheel(rng=123)
    eps = np.random.default_rng(123).standard_normal((400, 2))
    f = eps * [0.3, 0.1] + [1.0, 0.0]
    angle = 2 * np.pi * labels / 4 + 0.25 * np.exp(f[:, 0])
    want = np.stack([np.cos(angle) * f[:, 0] - np.sin(angle) * f[:, 1],
                     np.sin(angle) * f[:, 0] + np.cos(angle) * f[:, 1]], axis=1)
    np.testing.assert_allclose(points, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(points, pinwheel(rng=123)[0])


def _unwarp(points, labels, num_classes=4, rate=0.25, iterations=60):
    """Recover the pre-warp features f from the points (fixed-point iteration on f0)."""
    radius = np.hypot(points[:, 0], points[:, 1]).astype(np.float64)
    f0 = radius.copy()
    for _ in range(iterations):
        angle = 2 * np.pi * labels / num_classes + rate * np.exp(f0)
        c, s = np.cos(angle), np.sin(angle)
        f0_new = c * points[:, 0] + s * points[:, 1]
        f1 = -s * points[:, 0] + c * points[:, 1]
        if np.allclose(f0_new, f0, atol=1e-9):
            break
        f0 = f0_new
    return np.stack([f0_new, f1], axis=1)


def test_pinwheel_spread_before_the_warp_and_class_angles():
    per_class = 20_000
    points, labels = pinwheel(per_class=per_class, rng=7)
    f = _unwarp(points.astype(np.float64), labels)
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), np.hypot(*points.T), rtol=1e-5)
    for k in range(4):
        fk = f[labels == k]
        # f = randn * [tangential_std, radial_std] + [1, 0] = randn * [0.3, 0.1] + [1, 0]
        np.testing.assert_allclose(fk.mean(axis=0), [1.0, 0.0], atol=0.01)
        np.testing.assert_allclose(fk.std(axis=0), [0.3, 0.1], rtol=0.03)
        assert abs(np.corrcoef(fk.T)[0, 1]) < 0.03
        # Angle of a point relative to its class's base angle 2*pi*k/4: on average
        # rate * E[exp(f0)] = 0.25 * exp(1 + 0.3**2 / 2) (+ E[atan2(f1, f0)] = 0).
        rel = np.angle(np.exp(1j * (np.arctan2(points[labels == k, 1], points[labels == k, 0])
                                    - 2 * np.pi * k / 4)))
        assert abs(rel.mean() - 0.25 * math.exp(1.045)) < 0.01


def test_pinwheel_without_warp_is_rotated_gaussians():
    points, labels = pinwheel(per_class=20_000, rate=0.0, rng=1)
    for k in range(4):
        a = -2 * np.pi * k / 4
        rotated = points[labels == k] @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
        np.testing.assert_allclose(rotated.mean(axis=0), [1.0, 0.0], atol=0.01)
        np.testing.assert_allclose(rotated.std(axis=0), [0.3, 0.1], rtol=0.03)


def test_pinwheel_data_set_interface():
    wheel = data.get("pinwheel")
    assert isinstance(wheel, Pinwheel) and isinstance(wheel, GroundTruthData)
    assert wheel.factor_names == ("class",) and wheel.factor_sizes == (4,)
    assert wheel.observation_shape == (2,)
    assert "pinwheel" in wheel.data_source
    factors, points = wheel.sample(8, rng=0)
    assert factors.shape == (8, 1) and points.shape == (8, 2) and points.dtype == np.float32
    np.testing.assert_array_equal(points, wheel.sample(8, rng=0)[1])
    assert wheel.sample_observations(3, rng=0).shape == (3, 2)
    first = batches(wheel.stream(16, seed=2), 2)
    assert first[0].shape == (16, 2) and first[0].dtype == np.float32
    np.testing.assert_array_equal(first[1], batches(wheel.stream(16, seed=2, start_step=1), 1)[0])
    factors = wheel.stream_factors(16, seed=2, step=1)
    want = wheel.images_from_factors_seeded_tf(factors, stream_noise_seed(2, 1))
    np.testing.assert_allclose(first[1], want.numpy())
    assert data.get("pinwheel", num_classes=5).factor_sizes == (5,)


def test_pinwheel_stream_points_follow_their_classes():
    wheel = Pinwheel()
    factors = tf.constant(np.repeat(np.arange(4), 5000)[:, None])
    points = wheel.images_from_factors_seeded_tf(factors, tf.constant([3, 4], tf.int64)).numpy()
    f = _unwarp(points.astype(np.float64), factors.numpy()[:, 0])
    np.testing.assert_allclose(f.mean(axis=0), [1.0, 0.0], atol=0.02)
    np.testing.assert_allclose(f.std(axis=0), [0.3, 0.1], rtol=0.05)


def test_pinwheel_refuses_bad_parameters():
    with pytest.raises(ValueError, match="radial_std"):
        pinwheel(radial_std=-1.0)
    with pytest.raises(ValueError, match="num_classes"):
        Pinwheel(num_classes=0)


# ----------------------------------------------------------------------------
# The shared interface
# ----------------------------------------------------------------------------


def test_observation_shapes_other_than_images_are_allowed_but_not_empty():
    with pytest.raises(ValueError, match="observation_shape"):
        data.ArrayImageData(np.zeros((1, 0, 4, 1), np.uint8), name="t", data_source="t")
    assert data.get("dsprites").observation_shape == (64, 64, 1)
    assert data.get("dsprites", source=None).name == "dsprites"
