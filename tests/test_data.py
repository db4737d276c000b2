"""Tests of zoo.data: the ground-truth interface, procedural dSprites, real-data loaders.

Each test states the behaviour it checks.  The procedural renderer is tested on
whole factor sub-grids at once (vectorised), so the file runs in seconds.
"""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pytest
import tensorflow as tf

from zoo import data
from zoo.data import ArrayGroundTruthData, GroundTruthData, ProceduralDSprites
from zoo.data.dsprites import (
    DSPRITES_FACTOR_NAMES,
    DSPRITES_FACTOR_SIZES,
    DSPRITES_NPZ_NAME,
    load_dsprites_npz,
    load_dsprites_tfds,
)

SHAPE, SCALE, ORIENTATION, POS_X, POS_Y = range(5)


@pytest.fixture(scope="module")
def dsprites() -> ProceduralDSprites:
    return ProceduralDSprites()


def grid(*axes) -> np.ndarray:
    """All combinations of the given per-factor value lists, int64 [n, 5]."""
    return np.array(list(itertools.product(*axes)), dtype=np.int64)


def batches(dataset: tf.data.Dataset, n: int) -> list[np.ndarray]:
    return [b.numpy() for b in dataset.take(n)]


# ----------------------------------------------------------------------------
# The factor grid and the images
# ----------------------------------------------------------------------------


def test_factor_grid_is_the_original_dsprites_grid_without_colour(dsprites):
    assert isinstance(dsprites, GroundTruthData)
    assert dsprites.name == "dsprites"
    assert dsprites.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert dsprites.factor_sizes == (3, 6, 40, 32, 32)
    assert dsprites.num_combinations == 737_280
    assert dsprites.observation_shape == (64, 64, 1)


def test_data_source_says_the_images_are_procedural(dsprites):
    assert "procedural" in dsprites.data_source
    assert "not the original" in dsprites.data_source


def test_images_are_binary_float32_in_unit_range(dsprites):
    images = dsprites.images_from_factors(dsprites.sample_factors(128, rng=0))
    assert images.shape == (128, 64, 64, 1)
    assert images.dtype == np.float32
    assert set(np.unique(images)) <= {0.0, 1.0}
    assert images.reshape(128, -1).sum(axis=1).min() > 0, "every sprite has pixels"


def test_same_factors_always_give_the_same_image(dsprites):
    factors = dsprites.sample_factors(50, rng=1)
    in_a_batch = dsprites.images_from_factors(factors)
    one_by_one = np.concatenate(
        [dsprites.images_from_factors(f[None]) for f in factors]
    )
    shuffled = np.random.default_rng(2).permutation(len(factors))
    in_other_order = dsprites.images_from_factors(factors[shuffled])
    np.testing.assert_array_equal(in_a_batch, one_by_one)
    np.testing.assert_array_equal(in_a_batch[shuffled], in_other_order)


def test_tf_path_inside_tf_data_gives_the_numpy_images(dsprites):
    factors = dsprites.sample_factors(64, rng=3)
    via_tf_data = (
        tf.data.Dataset.from_tensors(tf.constant(factors))
        .map(dsprites.images_from_factors_tf)
        .get_single_element()
        .numpy()
    )
    np.testing.assert_array_equal(via_tf_data, dsprites.images_from_factors(factors))


def test_the_three_shapes_differ(dsprites):
    images = dsprites.images_from_factors(grid(range(3), [3], [5], [16], [16]))
    flat = images.reshape(3, -1)
    for a, b in itertools.combinations(range(3), 2):
        assert np.abs(flat[a] - flat[b]).sum() >= 10, f"shapes {a} and {b} look alike"


def test_sprites_stay_inside_the_canvas_everywhere(dsprites):
    """Extreme positions x every scale x every orientation x every shape."""
    factors = grid(range(3), range(6), range(40), [0, 31], [0, 31])
    images = dsprites.images_from_factors(factors)[..., 0]
    border = np.concatenate(
        [images[:, 0, :], images[:, -1, :], images[:, :, 0], images[:, :, -1]], axis=1
    )
    assert border.max() == 0, "a sprite touches the border of the canvas"
    assert images.reshape(len(images), -1).sum(axis=1).min() > 0


# The one orientation step v2 leaves unchanged: with the sprite centre on a pixel
# corner (posX and posY both 0 or 31: centres 16 and 48 px), the square at scale
# 0.5 turned by 180 -/+ 4.6 degrees (orientation 19 and 20) gives mirror-image
# rasters of a square that the 4.6-degree turn moves across no pixel centre.
# The geometry reproduces every real square frame exactly, so the real data
# set most likely shares this (its frames show no rotated square at scale 0.5).
_UNCHANGED_AT_CORNERS = {(0, 0, 19)}  # (shape, scale, step orientation -> +1)


@pytest.mark.parametrize(
    "position", [(0, 0), (31, 0), (0, 31), (31, 31), (15, 15), (3, 28)],
    ids=["corner00", "corner31_0", "corner0_31", "corner31", "middle", "off_diagonal"],
)
def test_every_orientation_step_changes_the_image(dsprites, position):
    """Every (shape, scale): each step 0->1->...->39 changes pixels (but the one
    documented exception at the corners); 0 and 39 agree."""
    factors = grid(range(3), range(6), range(40), [position[0]], [position[1]])
    images = dsprites.images_from_factors(factors).reshape(3, 6, 40, -1)
    changed = np.abs(np.diff(images, axis=2)).sum(axis=-1)  # [3, 6, 39]
    unchanged = {tuple(map(int, i)) for i in np.argwhere(changed == 0)}
    corner = set(position) <= {0, 31}
    assert unchanged == (_UNCHANGED_AT_CORNERS if corner else set()), (
        "orientation steps (shape, scale, step) that give the same image: "
        f"{sorted(unchanged)}"
    )
    np.testing.assert_array_equal(images[:, :, 0], images[:, :, 39])


def test_the_first_renderer_changes_the_image_at_every_orientation_step():
    v1 = data.get("dsprites", source="procedural_v1")
    for position in (0, 15):
        factors = grid(range(3), range(6), range(40), [position], [position])
        images = v1.images_from_factors(factors).reshape(3, 6, 40, -1)
        assert np.abs(np.diff(images, axis=2)).sum(axis=-1).min() > 0


def test_every_scale_step_changes_the_image(dsprites):
    factors = grid(range(3), range(6), range(40), [15], [15])
    images = dsprites.images_from_factors(factors).reshape(3, 6, 40, -1)
    assert np.abs(np.diff(images, axis=1)).sum(axis=-1).min() > 0


@pytest.mark.parametrize("factor", range(5), ids=DSPRITES_FACTOR_NAMES)
def test_one_step_of_any_factor_changes_the_image(dsprites, factor):
    """A random sample of grid points; step the factor by one."""
    rng = np.random.default_rng(10 + factor)
    start = dsprites.sample_factors(300, rng)
    start[:, factor] = rng.integers(0, dsprites.factor_sizes[factor] - 1, size=300)
    stepped = start.copy()
    stepped[:, factor] += 1
    before = dsprites.images_from_factors(start).reshape(300, -1)
    after = dsprites.images_from_factors(stepped).reshape(300, -1)
    unchanged = np.flatnonzero(np.abs(after - before).sum(axis=1) == 0)
    assert unchanged.size == 0, (
        f"no change from {start[unchanged[0]]} to {stepped[unchanged[0]]}"
    )


def test_positions_span_32_pixels_in_31_steps_like_the_real_frames(dsprites):
    """Centres run 16 -> 48 px in steps of 32/31 px: the last position is the first
    shifted by exactly 32 pixels, and every step moves the sprite by 1 or 2 pixels."""
    base = np.array([2, 4, 7, 0, 20])
    sweep_x = np.array([base + [0, 0, 0, k, 0] for k in range(32)])
    images = dsprites.images_from_factors(sweep_x)[..., 0]
    np.testing.assert_array_equal(np.roll(images[0], 32, axis=1), images[31])
    columns = np.arange(64)
    centroid = (images.sum(axis=1) * columns).sum(axis=1) / images.sum(axis=(1, 2))
    assert np.all(np.abs(np.diff(centroid) - 32 / 31) < 0.5), np.diff(centroid)

    sweep_y = np.array([[2, 4, 7, 10, k] for k in range(32)])
    images = dsprites.images_from_factors(sweep_y)[..., 0]
    np.testing.assert_array_equal(np.roll(images[0], 32, axis=0), images[31])


def test_a_position_step_of_the_first_renderer_moves_the_sprite_by_one_pixel():
    v1 = data.get("dsprites", source="procedural_v1")
    base = np.array([[2, 4, 7, 10, 20]])
    right = base + [0, 0, 0, 1, 0]
    down = base + [0, 0, 0, 0, 1]
    image, moved_right, moved_down = (
        v1.images_from_factors(f)[0, ..., 0] for f in (base, right, down)
    )
    np.testing.assert_array_equal(np.roll(image, 1, axis=1), moved_right)
    np.testing.assert_array_equal(np.roll(image, 1, axis=0), moved_down)


def test_the_first_renderer_stays_reachable_pixel_for_pixel():
    """procedural_v1 renders exactly what the renderer of every earlier run rendered
    (digest of 4,000 images taken from that renderer before v2 existed)."""
    v1 = data.get("dsprites", source="procedural_v1")
    assert v1.version == 1 and "v1" in v1.data_source
    images = v1.images_from_factors(v1.sample_factors(4000, rng=7))
    digest = hashlib.sha256(images.astype(np.uint8).tobytes()).hexdigest()
    assert digest == "12f72d1d9ced73d81ff778152e7bc46835ecc235019f1a77d87864aaed5b0024"


def test_the_fitted_renderer_stays_pixel_for_pixel(dsprites):
    """procedural (v2) renders exactly what every run trained on it saw (digest of 4,000 images
    taken before the renderer learnt to rasterise each image's own shape only)."""
    images = dsprites.images_from_factors(dsprites.sample_factors(4000, rng=7))
    digest = hashlib.sha256(images.astype(np.uint8).tobytes()).hexdigest()
    assert digest == "d4d767fd8f3d2908caa7982f8d95cd9f88a1154619aabaf3b50d24e6e32fca7e"


def test_an_image_does_not_depend_on_its_batch(dsprites):
    """Split by shape and stitched back: the same factors give the same image alone, in a batch
    of one shape, and in a mixed batch (also through the tf.data stream's graph op)."""
    factors = dsprites.sample_factors(60, rng=3)
    mixed = dsprites.images_from_factors(factors)
    for k in range(0, 60, 7):
        np.testing.assert_array_equal(dsprites.images_from_factors(factors[k:k + 1])[0], mixed[k])
    hearts = factors[factors[:, 0] == 2]
    np.testing.assert_array_equal(dsprites.images_from_factors(hearts), mixed[factors[:, 0] == 2])
    np.testing.assert_array_equal(dsprites.images_from_factors_tf(tf.constant(factors)).numpy(),
                                  mixed)
    assert dsprites.images_from_factors(factors[:0]).shape == (0, 64, 64, 1)


def test_the_default_renderer_is_the_fitted_version_and_says_so(dsprites):
    assert dsprites.version == 2
    assert "v2" in dsprites.data_source and "fitted to the real frames" in dsprites.data_source
    with pytest.raises(ValueError, match="unknown procedural dSprites version 3"):
        ProceduralDSprites(version=3)


def test_sprite_sizes_at_scale_1_match_the_real_measurements(dsprites):
    """Square 20 x 20 (400 px), ellipse 26 x 14 (288 px), heart 20 x 17 (222 px)."""
    images = dsprites.images_from_factors(np.array([[s, 5, 0, 0, 0] for s in range(3)]))
    for image, (width, height, area) in zip(images[..., 0], [(20, 20, 400), (26, 14, 288), (20, 17, 222)]):
        rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
        assert (cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1, image.sum()) == (width, height, area)


def test_rendering_is_fast(dsprites):
    import time

    factors = dsprites.sample_factors(64, rng=0)
    dsprites.images_from_factors(factors)  # trace once
    start = time.perf_counter()
    for _ in range(20):
        dsprites.images_from_factors(factors)
    per_batch = (time.perf_counter() - start) / 20
    assert per_batch < 0.05, f"a batch of 64 took {per_batch * 1e3:.1f} ms"


# ----------------------------------------------------------------------------
# Sampling and indices
# ----------------------------------------------------------------------------


def test_sample_factors_is_uniform_over_the_grid_and_repeatable(dsprites):
    factors = dsprites.sample_factors(20_000, rng=5)
    assert factors.dtype == np.int64 and factors.shape == (20_000, 5)
    for k, size in enumerate(dsprites.factor_sizes):
        counts = np.bincount(factors[:, k], minlength=size)
        assert len(counts) == size and counts.min() > 0
        assert counts.max() / counts.mean() < 1.35, f"factor {k} is not uniform"
    np.testing.assert_array_equal(factors, dsprites.sample_factors(20_000, rng=5))
    gen_a, gen_b = np.random.default_rng(7), np.random.default_rng(7)
    np.testing.assert_array_equal(
        dsprites.sample_factors(10, gen_a), dsprites.sample_factors(10, gen_b)
    )
    assert dsprites.sample_factors(10, None).shape == (10, 5)


def test_sample_returns_matching_factors_and_images(dsprites):
    factors, images = dsprites.sample(16, rng=4)
    np.testing.assert_array_equal(images, dsprites.images_from_factors(factors))
    np.testing.assert_array_equal(factors, dsprites.sample(16, rng=4)[0])


def test_rng_accepts_seed_generator_randomstate_and_none():
    assert isinstance(data.as_rng(None), np.random.Generator)
    gen = np.random.default_rng(0)
    assert data.as_rng(gen) is gen
    a = data.as_rng(np.random.RandomState(3)).integers(1000, size=5)
    b = data.as_rng(np.random.RandomState(3)).integers(1000, size=5)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="rng"):
        data.as_rng("seed")


def test_index_is_row_major_like_the_original_file(dsprites):
    # latents_bases of the original file, colour column dropped.
    np.testing.assert_array_equal(dsprites.factor_bases, [245760, 40960, 1024, 32, 1])
    assert dsprites.index_of([[0, 0, 0, 0, 1]])[0] == 1
    assert dsprites.index_of([[2, 5, 39, 31, 31]])[0] == 737_279
    factors = dsprites.sample_factors(1000, rng=6)
    np.testing.assert_array_equal(
        dsprites.factors_of(dsprites.index_of(factors)), factors
    )
    with pytest.raises(ValueError, match="index"):
        dsprites.factors_of([737_280])


# ----------------------------------------------------------------------------
# The tf.data stream
# ----------------------------------------------------------------------------


def test_stream_yields_float32_image_batches(dsprites):
    batch = next(iter(dsprites.stream(batch_size=8, seed=0)))
    assert batch.dtype == tf.float32
    assert batch.shape == (8, 64, 64, 1)
    assert set(np.unique(batch.numpy())) <= {0.0, 1.0}


def test_two_streams_with_the_same_seed_are_identical(dsprites):
    first = batches(dsprites.stream(16, seed=42), 4)
    second = batches(dsprites.stream(16, seed=42), 4)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1]), "consecutive batches repeat"


def test_a_resumed_stream_continues_where_the_first_left_off(dsprites):
    uninterrupted = batches(dsprites.stream(16, seed=42), 6)
    resumed = batches(dsprites.stream(16, seed=42, start_step=3), 3)
    for a, b in zip(uninterrupted[3:], resumed):
        np.testing.assert_array_equal(a, b)


def test_stream_batches_are_the_numpy_images_of_their_factors(dsprites):
    """Batch k is images_from_factors(stream_factors(B, seed, k)): the tf and
    numpy paths agree pixel for pixel."""
    streamed = batches(dsprites.stream(32, seed=9, start_step=5), 2)
    for k, batch in zip((5, 6), streamed):
        factors = dsprites.stream_factors(32, seed=9, step=k)
        assert factors.dtype == np.int64 and factors.shape == (32, 5)
        np.testing.assert_array_equal(batch, dsprites.images_from_factors(factors))


def test_different_seeds_give_different_streams(dsprites):
    a = batches(dsprites.stream(16, seed=1), 1)[0]
    b = batches(dsprites.stream(16, seed=2), 1)[0]
    assert not np.array_equal(a, b)


def test_stream_refuses_bad_arguments(dsprites):
    with pytest.raises(ValueError, match="batch_size"):
        dsprites.stream(0, seed=0)
    with pytest.raises(TypeError, match="seed"):
        dsprites.stream(8, seed=1.5)


# ----------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------


def test_out_of_range_factor_names_the_factor_and_the_value(dsprites):
    with pytest.raises(ValueError, match=r"'orientation'.*\[0, 39\].*got 40"):
        dsprites.images_from_factors([[0, 0, 40, 0, 0]])
    with pytest.raises(ValueError, match=r"'posY'.*got -1"):
        dsprites.images_from_factors([[0, 0, 0, 0, -1]])


def test_wrong_number_of_factor_columns_is_refused(dsprites):
    with pytest.raises(ValueError, match=r"shape \[n, 5\].*\(2, 6\)"):
        dsprites.images_from_factors(np.zeros((2, 6), np.int64))
    with pytest.raises(ValueError, match=r"shape \[n, 5\]"):
        dsprites.images_from_factors(np.zeros(5, np.int64))


def test_float_factors_are_refused(dsprites):
    with pytest.raises(ValueError, match="integer"):
        dsprites.images_from_factors(np.zeros((2, 5), np.float32))


def test_unknown_data_set_or_source_lists_the_known_ones():
    assert data.DATASETS[0] == "dsprites"  # issue 6 registers more data sets after it
    assert isinstance(data.get("dsprites"), ProceduralDSprites)
    with pytest.raises(ValueError, match="unknown data set 'shapes9'.*dsprites"):
        data.get("shapes9")
    with pytest.raises(ValueError, match="unknown source 'web'.*procedural, procedural_v1, npz, tfds"):
        data.get("dsprites", source="web")


# ----------------------------------------------------------------------------
# In-memory arrays and the real-data loaders
# ----------------------------------------------------------------------------

# A reduced grid in the original file's layout: values of each factor kept.
REDUCED = ([0, 1, 2], [0, 5], [0, 13], [0, 31], [4, 20])


@pytest.fixture(scope="module")
def reduced_npz(tmp_path_factory, dsprites):
    """A small file laid out like the original npz (procedural pixels).

    Like the original it stores 0/1 uint8 images, six latent columns with a
    constant colour first, float latents_values and a pickled metadata entry,
    which the loader must never unpickle.
    """
    factors = grid(*REDUCED)
    images = dsprites.images_from_factors(factors)[..., 0].astype(np.uint8)
    classes = np.concatenate([np.zeros((len(factors), 1), np.int64), factors], axis=1)
    path = tmp_path_factory.mktemp("zoo_data") / DSPRITES_NPZ_NAME
    np.savez(
        path,
        imgs=images,
        latents_classes=classes,
        latents_values=classes.astype(np.float64),
        metadata=np.array({"note": "a pickle"}, dtype=object),
    )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return path, digest, factors


def test_npz_loads_and_looks_up_the_right_images(reduced_npz, dsprites):
    path, digest, factors = reduced_npz
    real = load_dsprites_npz(path, expected_sha256=digest)
    assert isinstance(real, ArrayGroundTruthData)
    assert real.factor_sizes == DSPRITES_FACTOR_SIZES
    assert real.observation_shape == (64, 64, 1)
    assert real.num_images == len(factors)
    assert (
        real.data_source == f"real dSprites from {DSPRITES_NPZ_NAME} (sha256 {digest})"
    )
    order = np.random.default_rng(0).permutation(len(factors))
    looked_up = real.images_from_factors(factors[order])
    assert looked_up.dtype == np.float32 and set(np.unique(looked_up)) == {0.0, 1.0}
    np.testing.assert_array_equal(
        looked_up, dsprites.images_from_factors(factors[order])
    )


def test_npz_default_path_comes_from_zoo_data_dir(reduced_npz, monkeypatch):
    path, digest, factors = reduced_npz
    monkeypatch.setenv("ZOO_DATA_DIR", str(path.parent))
    monkeypatch.setenv("ZOO_DSPRITES_SHA256", digest)
    real = data.get("dsprites", source="npz")
    assert real.num_images == len(factors)


def test_npz_without_a_known_checksum_is_refused(reduced_npz, monkeypatch):
    path, _, _ = reduced_npz
    monkeypatch.delenv("ZOO_DSPRITES_SHA256", raising=False)
    with pytest.raises(ValueError, match="ZOO_DSPRITES_SHA256"):
        load_dsprites_npz(path, expected_sha256=None)


def test_npz_with_a_wrong_checksum_is_refused(reduced_npz):
    path, digest, _ = reduced_npz
    wrong = "0" * 64
    with pytest.raises(ValueError, match="sha256 mismatch") as info:
        load_dsprites_npz(path, expected_sha256=wrong)
    message = str(info.value)
    assert str(path) in message and wrong in message and digest in message


def test_a_damaged_npz_fails_its_checksum(reduced_npz, tmp_path):
    path, digest, _ = reduced_npz
    damaged = tmp_path / DSPRITES_NPZ_NAME
    damaged.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="sha256 mismatch"):
        load_dsprites_npz(damaged, expected_sha256=digest)


def test_missing_npz_or_data_dir_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=DSPRITES_NPZ_NAME) as info:
        load_dsprites_npz(expected_sha256="0" * 64)
    assert str(tmp_path) in str(info.value)
    monkeypatch.delenv("ZOO_DATA_DIR")
    with pytest.raises(FileNotFoundError, match="ZOO_DATA_DIR"):
        load_dsprites_npz(expected_sha256="0" * 64)


def test_array_data_refuses_combinations_it_does_not_hold(reduced_npz):
    path, digest, _ = reduced_npz
    real = load_dsprites_npz(path, expected_sha256=digest)
    with pytest.raises(ValueError, match=r"\(shape=0, scale=1, .*\) is not in"):
        real.images_from_factors([[0, 1, 0, 0, 4]])


def tiny_array_data(max_value=255):
    """A complete 2 x 3 grid of 4x4 images whose pixels encode the row."""
    factors = grid([0, 1], [0, 1, 2])
    images = np.repeat(np.arange(6, dtype=np.uint8)[:, None, None] * 40, 16, axis=1)
    images = images.reshape(6, 4, 4)
    return (
        ArrayGroundTruthData(
            images,
            factors,
            factor_sizes=(2, 3),
            factor_names=("a", "b"),
            name="tiny",
            data_source="test array",
            max_value=max_value,
        ),
        factors,
        images,
    )


def test_array_data_stream_gathers_stored_images_deterministically():
    tiny, factors, images = tiny_array_data()
    stream = tiny.stream(batch_size=32, seed=0)
    first = batches(stream, 3)
    stored = set(images[:, 0, 0].tolist())
    for batch in first:
        assert batch.shape == (32, 4, 4, 1) and batch.dtype == np.float32
        assert set(np.rint(batch[:, 0, 0, 0] * 255).astype(int).tolist()) <= stored
    resumed = batches(tiny.stream(batch_size=32, seed=0, start_step=2), 1)[0]
    np.testing.assert_array_equal(first[2], resumed)
    np.testing.assert_allclose(
        tiny.images_from_factors(factors)[..., 0], images / 255.0, rtol=1e-6
    )


def test_array_data_refuses_duplicates_and_non_uint8():
    factors = np.array([[0, 1], [0, 1]])
    with pytest.raises(ValueError, match=r"\(a=0, b=1\) appears 2 times"):
        ArrayGroundTruthData(
            np.zeros((2, 4, 4), np.uint8),
            factors,
            factor_sizes=(2, 3),
            factor_names=("a", "b"),
            name="t",
            data_source="t",
        )
    with pytest.raises(ValueError, match="uint8"):
        ArrayGroundTruthData(
            np.zeros((1, 4, 4), np.float32),
            factors[:1],
            factor_sizes=(2, 3),
            factor_names=("a", "b"),
            name="t",
            data_source="t",
        )


def test_tfds_loader_reads_images_and_labels_under_mock_data(tmp_path):
    """Mock data has random images and labels: check layout and lookup only."""
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=20):
        real = data.get("dsprites", source="tfds", data_dir=str(tmp_path))
    assert isinstance(real, ArrayGroundTruthData)
    assert real.num_images == 20
    assert real.observation_shape == (64, 64, 1)
    assert real.factor_names == DSPRITES_FACTOR_NAMES
    assert real.factor_sizes == DSPRITES_FACTOR_SIZES
    assert "tensorflow_datasets" in real.data_source
    # Each stored image is found again under its own labels.
    expected = real.images.astype(np.float32) / real.max_value
    np.testing.assert_allclose(real.images_from_factors(real.factor_classes), expected)
    assert real.images_from_factors(real.factor_classes).max() <= 1.0


def test_tfds_loader_says_when_the_data_set_is_not_prepared(tmp_path):
    with pytest.raises(FileNotFoundError, match="not prepared"):
        load_dsprites_tfds(data_dir=str(tmp_path))


# ----------------------------------------------------------------------------
# digits: scikit-learn's 8x8 handwritten digits upscaled to 28x28 (offline)
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    return data.get("digits")


def test_digits_is_an_offline_28x28_mnist_stand_in_with_one_class_factor(digits):
    assert isinstance(digits, data.ArrayGroundTruthData) and digits.name == "digits"
    assert digits.observation_shape == (28, 28, 1)
    assert digits.factor_names == ("class",) and digits.factor_sizes == (10,)
    assert digits.num_images == 1797 and digits.complete
    assert min(digits.images_per_combination) >= 170  # about 180 images per digit
    assert "sklearn" in digits.data_source and "not MNIST" in digits.data_source
    assert data.SOURCES["digits"] == ("sklearn",)
    factors, images = digits.sample(256, rng=0)
    assert factors.shape == (256, 1) and images.shape == (256, 28, 28, 1)
    assert images.dtype == np.float32 and images.min() == 0.0 and images.max() <= 1.0
    assert digits.images.max() == 255  # a count of 16 is stored as 255, i.e. 1.0


def test_digits_are_sklearns_counts_bilinearly_upscaled_with_their_labels(digits):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    np.testing.assert_array_equal(digits.factor_classes[:, 0], bunch.target)
    counts = bunch.images[:50, :, :, None].astype(np.float32) / 16.0
    want = tf.image.resize(counts, (28, 28), method="bilinear").numpy()
    np.testing.assert_allclose(digits.images[:50] / np.float32(255), want, atol=0.5 / 255 + 1e-6)
    # Averaging the 3.5x3.5 blocks back gives the 8x8 counts again, blurred.
    back = tf.image.resize(digits.images[:50] / np.float32(255), (8, 8), method="area").numpy()
    assert np.corrcoef(back.ravel(), counts.ravel())[0, 1] > 0.95
    framed = data.get("digits", border=4)
    assert framed.observation_shape == (28, 28, 1)
    assert framed.images[:, :4].max() == 0 and framed.images[:, -4:].max() == 0
    assert framed.images[:, :, :4].max() == 0 and framed.images[:, :, -4:].max() == 0
    with pytest.raises(ValueError, match="border"):
        data.get("digits", border=14)


def test_digits_stream_is_deterministic_and_shows_the_images_of_each_class(digits):
    first = batches(digits.stream(batch_size=32, seed=3), 3)
    for batch in first:
        assert batch.shape == (32, 28, 28, 1) and batch.dtype == np.float32
        assert 0.0 <= batch.min() and batch.max() <= 1.0
    again = batches(digits.stream(batch_size=32, seed=3), 3)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        first[2], batches(digits.stream(batch_size=32, seed=3, start_step=2), 1)[0]
    )
    assert not np.array_equal(first[0], batches(digits.stream(batch_size=32, seed=4), 1)[0])
    # Every streamed image is a stored image of the class drawn for it.
    factors = digits.stream_factors(32, seed=3, step=1)
    stored = digits.images.reshape(digits.num_images, -1).astype(np.float32) / 255.0
    for label, image in zip(factors[:, 0], first[1].reshape(32, -1)):
        rows = np.flatnonzero(np.all(np.abs(stored - image) < 1e-6, axis=1))
        assert rows.size and np.all(digits.factor_classes[rows, 0] == label)
