"""Tests of the tfds-backed data sets (zoo.data.tfds_sets, zoo.data.tfds_builders)
and of the in-memory image classes they return (zoo.data.images).

tfds cannot download here: the loaders are tested under ``tfds.testing.mock_data``,
which serves random examples with each builder's real feature specification, and the
zoo's own builders (Cars3D, MPI3D) are also prepared for real from tiny fake files.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from zoo import data
from zoo.data import (
    ArrayGroundTruthData,
    ArrayImageData,
    GroundTruthData,
    ImageData,
    ObservationData,
)

tfds = pytest.importorskip("tensorflow_datasets")

NUM_MOCK = 60
SCALE = np.float32(1.0 / 255.0)  # the loaders scale uint8 pixels exactly like this

# zoo name -> (class, observation shape, factor names, factor sizes, tfds builder, label keys)
EXPECTED = {
    "shapes3d": (
        ArrayGroundTruthData, (64, 64, 3),
        ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"),
        (10, 10, 10, 8, 4, 15), "shapes3d",
        ("label_floor_hue", "label_wall_hue", "label_object_hue", "label_scale",
         "label_shape", "label_orientation"),
    ),
    "smallnorb": (
        ArrayGroundTruthData, (64, 64, 1), ("category", "elevation", "azimuth", "lighting"),
        (5, 9, 18, 6), "smallnorb",
        ("label_category", "label_elevation", "label_azimuth", "label_lighting"),
    ),
    "cars3d": (
        ArrayGroundTruthData, (64, 64, 3), ("elevation", "azimuth", "object"), (4, 24, 183),
        "zoo_cars3d", ("label_elevation", "label_azimuth", "label_object"),
    ),
    "mpi3d": (
        ArrayGroundTruthData, (64, 64, 3),
        ("object_color", "object_shape", "object_size", "camera_height", "background_color",
         "horizontal_axis", "vertical_axis"),
        (6, 6, 2, 3, 3, 40, 40), "zoo_mpi3d/toy",
        ("label_object_color", "label_object_shape", "label_object_size", "label_camera_height",
         "label_background_color", "label_horizontal_axis", "label_vertical_axis"),
    ),
    "mnist": (ArrayGroundTruthData, (28, 28, 1), ("class",), (10,), "mnist", ("label",)),
    "fashion_mnist": (
        ArrayGroundTruthData, (28, 28, 1), ("class",), (10,), "fashion_mnist", ("label",),
    ),
    "celeba": (ArrayImageData, (64, 64, 3), None, None, "celeb_a", ()),
}


@pytest.fixture(scope="module")
def mocked(tmp_path_factory):
    """Every tfds-backed data set, loaded once under mock_data."""
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    with tfds.testing.mock_data(num_examples=NUM_MOCK):
        return {name: data.get(name, data_dir=data_dir) for name in EXPECTED}


def batches(dataset, n):
    return [b.numpy() for b in dataset.take(n)]


# ----------------------------------------------------------------------------
# Every set loads with the right interface, shapes and factor sizes
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loads_under_mock_data_with_the_right_shape_and_factors(mocked, name):
    cls, shape, names, sizes, builder, _ = EXPECTED[name]
    dataset = mocked[name]
    assert type(dataset) is cls
    assert isinstance(dataset, ObservationData)
    assert dataset.observation_shape == shape
    assert dataset.num_images == NUM_MOCK
    assert f"tensorflow_datasets {builder}:" in dataset.data_source
    assert dataset.data_source.startswith("real ")
    if names is None:
        assert isinstance(dataset, ImageData) and not dataset.has_factors
    else:
        assert isinstance(dataset, GroundTruthData) and dataset.has_factors
        several = name in ("smallnorb", "mnist", "fashion_mnist")  # instances, a class's images
        assert dataset.several_per_combination == several
        assert dataset.one_observation_per_combination == (not several)
        assert dataset.factor_names == names
        assert dataset.factor_sizes == sizes
    if isinstance(dataset, ImageData) or getattr(dataset, "complete", False):
        images = dataset.sample_observations(5, rng=0)
    else:  # a few random mocked examples are an incomplete grid: look up stored ones
        images = dataset.images_from_factors(dataset.factor_classes[:5], rng=0)
    assert images.shape == (5,) + shape and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if EXPECTED[n][2] is not None))
def test_factor_sizes_are_the_tfds_builders_class_label_sizes(name, tmp_path):
    """The features read exist in the real builder with exactly these sizes."""
    _, _, _, sizes, builder, keys = EXPECTED[name]
    if builder.startswith("zoo_"):
        import zoo.data.tfds_builders  # noqa: F401  (registers the builders)
    features = tfds.builder(builder, data_dir=str(tmp_path)).info.features
    assert tuple(features[key].num_classes for key in keys) == sizes
    assert tuple(features["image"].shape)[-1] == EXPECTED[name][1][-1]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_not_prepared_names_the_data_set_and_data_dir(name, tmp_path):
    with pytest.raises(FileNotFoundError) as raised:
        data.get(name, data_dir=str(tmp_path))
    message = str(raised.value)
    assert "not prepared" in message and str(tmp_path) in message
    assert repr(EXPECTED[name][4]) in message


def test_tfds_sets_default_to_the_tfds_source_and_refuse_procedural():
    assert data.SOURCES["shapes3d"] == ("tfds",)
    with pytest.raises(ValueError, match="unknown source 'procedural' for data set 'mnist'"):
        data.get("mnist", source="procedural")


# ----------------------------------------------------------------------------
# Lookups and streams on the mocked data
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["shapes3d", "cars3d", "mpi3d"])
def test_grid_sets_find_each_stored_image_under_its_labels(mocked, name):
    dataset = mocked[name]
    expected = dataset.images.astype(np.float32) * SCALE
    np.testing.assert_array_equal(dataset.images_from_factors(dataset.factor_classes), expected)


def test_smallnorb_draws_one_of_the_images_stored_under_a_combination(mocked):
    norb = mocked["smallnorb"]
    counts = norb.images_per_combination
    assert counts.sum() == NUM_MOCK and not norb.complete
    classes = norb.factor_classes
    single = counts[classes @ norb.factor_bases] == 1
    got = norb.images_from_factors(classes[single], rng=0)
    np.testing.assert_array_equal(got, norb.images[single].astype(np.float32) * SCALE)
    missing = np.flatnonzero(counts == 0)[0]
    with pytest.raises(ValueError, match="has no image"):
        norb.images_from_factors(norb.factors_of(missing))


def test_mnist_class_factor_stream_and_padding(mocked, tmp_path):
    mnist = mocked["mnist"]
    assert mnist.complete  # every class has an image among the mocked examples
    factors, images = mnist.sample(32, rng=1)
    assert factors.shape == (32, 1) and images.shape == (32, 28, 28, 1)
    # The image drawn for a class is one stored under that class.
    labels = mnist.factor_classes[:, 0]
    stored = mnist.images.reshape(len(labels), -1).astype(np.float32) * SCALE
    for f, image in zip(factors[:, 0], images.reshape(32, -1)):
        assert np.any(np.all(stored[labels == f] == image, axis=1))
    first = batches(mnist.stream(8, seed=3), 3)
    again = batches(mnist.stream(8, seed=3, start_step=1), 2)
    np.testing.assert_array_equal(first[1:], again)
    assert first[0].shape == (8, 28, 28, 1)
    with tfds.testing.mock_data(num_examples=12):
        padded = data.get("fashion_mnist", data_dir=str(tmp_path), pad_to=32)
    assert padded.observation_shape == (32, 32, 1)
    assert padded.images[:, :2].max() == 0 and padded.images[:, :, -2:].max() == 0


def test_celeba_is_image_data_with_a_repeatable_resumable_stream(mocked):
    celeba = mocked["celeba"]
    images = celeba.sample(4, rng=0)  # images only: no factors
    assert images.shape == (4, 64, 64, 3)
    np.testing.assert_array_equal(images, celeba.sample(4, rng=0))
    first = batches(celeba.stream(4, seed=7), 3)
    np.testing.assert_array_equal(first, batches(celeba.stream(4, seed=7), 3))
    np.testing.assert_array_equal(first[2], batches(celeba.stream(4, seed=7, start_step=2), 1)[0])
    rows = celeba.stream_rows(4, seed=7, step=1)
    np.testing.assert_array_equal(first[1], celeba.images_at(rows))
    assert not np.array_equal(first[0], batches(celeba.stream(4, seed=8), 1)[0])
    assert "centre crop 148" in celeba.data_source


def test_max_examples_limits_what_is_read(tmp_path):
    with tfds.testing.mock_data(num_examples=30):
        few = data.get("celeba", data_dir=str(tmp_path), max_examples=7)
    assert few.num_images == 7


# ----------------------------------------------------------------------------
# The in-memory classes on hand-made arrays
# ----------------------------------------------------------------------------


def test_array_data_with_several_images_per_combination_picks_uniformly_among_them():
    images = np.arange(6, dtype=np.uint8).reshape(6, 1, 1, 1)
    labels = np.array([[0], [1], [0], [1], [0], [2]])
    labelled = ArrayGroundTruthData(
        images, labels, factor_sizes=(3,), factor_names=("c",), name="t",
        data_source="t", max_value=255, several_per_combination=True,
    )
    assert not labelled.one_observation_per_combination
    assert labelled.complete
    np.testing.assert_array_equal(labelled.images_per_combination, [3, 2, 1])
    picks = labelled.images_from_factors(np.zeros((3000, 1), np.int64), rng=0).ravel() * 255
    values, counts = np.unique(np.round(picks), return_counts=True)
    np.testing.assert_array_equal(values, [0, 2, 4])
    assert counts.min() > 900
    # The TF path draws from its seed: same seed, same rows.
    factors = tf.constant([[0], [1], [2], [0]], tf.int64)
    a = labelled.images_from_factors_seeded_tf(factors, tf.constant([1, 2], tf.int64))
    b = labelled.images_from_factors_seeded_tf(factors, tf.constant([1, 2], tf.int64))
    np.testing.assert_array_equal(a, b)
    assert np.round(a.numpy()[2, 0, 0, 0] * 255) == 5


def test_array_image_data_checks_its_input():
    with pytest.raises(ValueError, match="uint8"):
        ArrayImageData(np.zeros((2, 4, 4, 1), np.float32), name="t", data_source="t")
    with pytest.raises(ValueError, match="no images"):
        ArrayImageData(np.zeros((0, 4, 4, 1), np.uint8), name="t", data_source="t")


# ----------------------------------------------------------------------------
# The zoo's own builders, prepared from tiny fake files
# ----------------------------------------------------------------------------


def test_cars3d_builder_prepares_from_mat_files_and_keeps_the_axes(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    manual, data_dir = tmp_path / "cars", tmp_path / "tfds"
    manual.mkdir()
    mesh = np.random.default_rng(0).integers(0, 256, size=(128, 128, 3, 24, 4), dtype=np.uint8)
    scipy_io.savemat(os.fspath(manual / "car_001_mesh.mat"), {"im": mesh})
    from zoo.data import tfds_builders

    builder = tfds.builder("zoo_cars3d", data_dir=os.fspath(data_dir))
    assert isinstance(builder, tfds_builders.ZooCars3d)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual))
    )
    cars = data.get("cars3d", data_dir=os.fspath(data_dir))
    assert cars.num_images == 96 and cars.observation_shape == (64, 64, 3)
    got = cars.images_from_factors(np.array([[2, 5, 0], [0, 23, 0]]))
    for image, (elevation, azimuth) in zip(got, [(2, 5), (0, 23)]):
        want = mesh[:, :, :, azimuth, elevation].astype(np.float32)
        want = want.reshape(64, 2, 64, 2, 3).mean(axis=(1, 3))
        assert np.abs(image * 255.0 - want).max() <= 0.51


def test_npz_rows_are_read_in_chunks_without_loading_the_file(tmp_path):
    from zoo.data.tfds_builders import iter_npz_rows, npz_array_info

    array = np.random.default_rng(0).integers(0, 256, size=(11, 4, 4, 3), dtype=np.uint8)
    for save in (np.savez, np.savez_compressed):
        path = os.fspath(tmp_path / f"{save.__name__}.npz")
        save(path, images=array)
        assert npz_array_info(path) == ((11, 4, 4, 3), np.dtype(np.uint8))
        chunks = list(iter_npz_rows(path, chunk_rows=4))
        assert [first for first, _ in chunks] == [0, 4, 8]
        np.testing.assert_array_equal(np.concatenate([c for _, c in chunks]), array)
    with pytest.raises(ValueError, match="no array 'imgs'"):
        list(iter_npz_rows(path, member="imgs"))


def test_mpi3d_rows_are_the_grid_in_row_major_order():
    from zoo.data.tfds_builders import mpi3d_factors_of_rows

    sizes = np.array((6, 6, 2, 3, 3, 40, 40))
    rows = mpi3d_factors_of_rows([0, 1, 40, 1600, int(np.prod(sizes)) - 1])
    np.testing.assert_array_equal(rows[0], 0)
    np.testing.assert_array_equal(rows[1], [0, 0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(rows[2], [0, 0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(rows[3], [0, 0, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(rows[4], sizes - 1)


def test_mpi3d_builder_prepares_from_the_npz_on_a_reduced_grid(tmp_path, monkeypatch):
    """The real grid has 1,036,800 images; the builder is run on a 2x2x1x1x1x2x2 grid."""
    from zoo.data import tfds_builders

    small = (2, 2, 1, 1, 1, 2, 2)
    monkeypatch.setattr(tfds_builders, "MPI3D_FACTOR_SIZES", small)
    array = np.random.default_rng(1).integers(0, 256, size=(16, 64, 64, 3), dtype=np.uint8)
    manual, data_dir = tmp_path / "mpi3d", tmp_path / "tfds"
    manual.mkdir()
    np.savez(os.fspath(manual / "mpi3d_toy.npz"), images=array)
    tfds.builder("zoo_mpi3d/toy", data_dir=os.fspath(data_dir)).download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual))
    )
    mpi3d = data.get("mpi3d", data_dir=os.fspath(data_dir))
    assert mpi3d.num_images == 16 and mpi3d.data_source.startswith("real MPI3D-toy")
    # Row r of the file is stored under the factors of row r of the (reduced) grid.
    factors = np.array([[1, 0, 0, 0, 0, 1, 0], [0, 1, 0, 0, 0, 0, 1]])
    rows = [1 * 8 + 1 * 2, 1 * 4 + 1]
    np.testing.assert_allclose(mpi3d.images_from_factors(factors) * 255.0, array[rows], atol=1e-4)
    with pytest.raises(ValueError, match="unknown MPI3D variant"):
        data.get("mpi3d", data_dir=os.fspath(data_dir), variant="complex")
