"""Real data sets read from prepared tensorflow_datasets directories.

Nothing is downloaded: every loader calls ``tfds.load(..., download=False)``
and raises ``FileNotFoundError`` naming the data set and ``data_dir`` when the
data is not prepared there.  ``data_dir=None`` means tfds' default directory
(``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).  The images are read into
memory once (uint8) and served through the zoo's interfaces.

* ``shapes3d``: tfds ``shapes3d`` (features ``label_floor_hue``,
  ``label_wall_hue``, ``label_object_hue``, ``label_scale``, ``label_shape``,
  ``label_orientation``) -> :class:`ArrayGroundTruthData`, factors floor_hue
  10, wall_hue 10, object_hue 10, scale 8, shape 4, orientation 15 (480,000
  images, the complete grid); 64x64x3.
* ``smallnorb``: tfds ``smallnorb`` (``image``, ``label_category``,
  ``label_elevation``, ``label_azimuth``, ``label_lighting``; ``instance`` and
  ``image2`` unused) -> :class:`ArrayGroundTruthData` with several images per
  combination, factors category 5, elevation 9, azimuth 18, lighting 6.  The
  object instance (10, five per split) is not a factor: each combination has
  one image per instance and one is drawn at random (as in
  disentanglement_lib).  96x96 -> 64x64x1.
* ``cars3d``: ``zoo_cars3d`` (a builder of this package, see
  :mod:`zoo.data.tfds_builders`; tfds has none) -> :class:`ArrayGroundTruthData`,
  factors elevation 4, azimuth 24, object 183 (17,568 images, the complete
  grid); 64x64x3.
* ``mpi3d``: ``zoo_mpi3d/{toy,realistic,real}`` (this package) ->
  :class:`ArrayGroundTruthData`, factors object_color 6, object_shape 6,
  object_size 2, camera_height 3, background_color 3, horizontal_axis 40,
  vertical_axis 40 (1,036,800 images, the complete grid); 64x64x3.
* ``mnist`` / ``fashion_mnist``: tfds ``mnist`` / ``fashion_mnist`` (``image``,
  ``label``) -> :class:`ArrayGroundTruthData` with several images per
  combination and the single factor ``class`` (10); 28x28x1 (``pad_to=32``:
  32x32x1 with a zero border).
* ``celeba``: tfds ``celeb_a`` (``image``, 218x178x3) -> :class:`ArrayImageData`
  (no factors); central ``crop_size`` (148) square resized to 64x64x3.

Memory: the loaders hold every image as uint8: 3D Shapes ~5.9 GB, MPI3D
~12.7 GB per variant, CelebA (train split) ~2.0 GB, the others well under
1 GB.  ``max_examples`` limits what is read (for the sets without a factor
grid, or for quick experiments; a ground-truth grid read in part is
incomplete and refuses the combinations it lacks).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from zoo.data.images import ArrayGroundTruthData, ArrayImageData

__all__ = [
    "CARS3D_FACTOR_NAMES",
    "MNIST_FACTOR_NAMES",
    "MPI3D_FACTOR_NAMES",
    "MPI3D_FACTOR_SIZES",
    "SHAPES3D_FACTOR_NAMES",
    "SHAPES3D_FACTOR_SIZES",
    "SMALLNORB_FACTOR_NAMES",
    "SMALLNORB_FACTOR_SIZES",
    "load_cars3d",
    "load_celeba",
    "load_fashion_mnist",
    "load_mnist",
    "load_mpi3d",
    "load_shapes3d",
    "load_smallnorb",
    "read_ground_truth",
    "read_tfds",
]

SHAPES3D_FACTOR_NAMES = (
    "floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation",
)
SHAPES3D_FACTOR_SIZES = (10, 10, 10, 8, 4, 15)
SMALLNORB_FACTOR_NAMES = ("category", "elevation", "azimuth", "lighting")
SMALLNORB_FACTOR_SIZES = (5, 9, 18, 6)
CARS3D_FACTOR_NAMES = ("elevation", "azimuth", "object")
CARS3D_FACTOR_SIZES = (4, 24, 183)
MPI3D_FACTOR_NAMES = (
    "object_color", "object_shape", "object_size", "camera_height",
    "background_color", "horizontal_axis", "vertical_axis",
)
MPI3D_FACTOR_SIZES = (6, 6, 2, 3, 3, 40, 40)
MNIST_FACTOR_NAMES = ("class",)


def read_tfds(
    name: str,
    *,
    split: str,
    data_dir: str | None,
    title: str | None = None,
    label_keys: tuple[str, ...] = (),
    image_fn=None,
    max_examples: int | None = None,
    batch_size: int = 1024,
    alternative: str | None = None,
):
    """Read a prepared tfds data set into memory.

    Returns ``(images, labels, description)``: uint8 images ``[N, H, W, C]``
    (after ``image_fn``, a TF function applied to each uint8 batch), int64
    labels ``[N, len(label_keys)]`` and a short text naming the builder,
    version, split and count (for ``data_source``).  ``title`` names the data
    set in the error raised when it is not prepared, and ``alternative``, when
    given, ends its advice (e.g. "or use source='npz'").
    """
    import tensorflow_datasets as tfds  # slow to import; optional until used

    if name.startswith("zoo_"):
        import zoo.data.tfds_builders  # noqa: F401  (registers the zoo builders)
    try:
        dataset, info = tfds.load(
            name,
            split=split,
            data_dir=data_dir,
            download=False,
            shuffle_files=False,
            with_info=True,
        )
    except AssertionError as err:  # tfds' "could not find data in ..."
        where = data_dir or "the default tfds data directory ($TFDS_DATA_DIR or ~/tensorflow_datasets)"
        hint = (
            "prepare it with the zoo builder (see zoo.data.tfds_builders; needs the "
            "manually downloaded files)"
            if name.startswith("zoo_")
            else f"run `tfds build {name.split('/')[0]} --data_dir=...` on a machine with "
            "network access and copy the directory"
        )
        if alternative:
            hint += f", {alternative}"
        raise FileNotFoundError(
            f"{title or name}: the tensorflow_datasets data set {name!r} (split {split!r}) "
            f"is not prepared in {where}: {hint}. tfds said: {err}"
        ) from err
    if max_examples is not None:
        if max_examples < 1:
            raise ValueError(f"max_examples must be positive, got {max_examples}")
        dataset = dataset.take(max_examples)
    try:
        expected = int(info.splits[split].num_examples)
    except (KeyError, TypeError, ValueError, AttributeError):
        expected = 0
    if max_examples is not None:
        expected = min(expected, max_examples)

    def select(example):
        labels = [tf.cast(example[key], tf.int64) for key in label_keys]
        return example["image"], (tf.stack(labels) if labels else tf.zeros([0], tf.int64))

    dataset = dataset.map(select, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
    if image_fn is not None:
        dataset = dataset.map(
            lambda images, labels: (image_fn(images), labels),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    images = None
    overflow, label_chunks, count = [], [], 0
    for pixels, labels in dataset.prefetch(2).as_numpy_iterator():
        if images is None:
            images = np.empty((expected,) + pixels.shape[1:], np.uint8)
        if not overflow and count + len(pixels) <= expected:
            images[count : count + len(pixels)] = pixels
        else:  # more examples than announced (mocked or unknown split sizes)
            overflow.append(pixels)
        label_chunks.append(labels)
        count += len(pixels)
    if images is None:
        raise ValueError(f"the tensorflow_datasets data set {name!r} split {split!r} is empty")
    filled = count - sum(len(chunk) for chunk in overflow)
    if overflow:
        images = np.concatenate([images[:filled]] + overflow)
    elif filled < expected:
        images = images[:filled].copy()
    labels = np.concatenate(label_chunks).astype(np.int64)
    description = f"tensorflow_datasets {name}:{info.version}, split {split!r}, {count} examples"
    return images, labels, description


def _to_uint8(images):
    return tf.cast(tf.clip_by_value(tf.round(images), 0.0, 255.0), tf.uint8)


def _resize(size):
    def resize(images):
        return _to_uint8(tf.image.resize(tf.cast(images, tf.float32), (size, size), method="area"))

    return resize


def _centre_crop_resize(crop_size, size):
    def crop_resize(images):
        height, width = images.shape[1], images.shape[2]
        crop = min(crop_size, height, width)
        top, left = (height - crop) // 2, (width - crop) // 2
        cropped = images[:, top : top + crop, left : left + crop, :]
        resized = tf.image.resize(tf.cast(cropped, tf.float32), (size, size), method="area")
        return _to_uint8(resized)

    return crop_resize


def _pad(pad_to):
    def pad(images):
        height, width = images.shape[1], images.shape[2]
        top, left = (pad_to - height) // 2, (pad_to - width) // 2
        return tf.pad(
            images,
            [[0, 0], [top, pad_to - height - top], [left, pad_to - width - left], [0, 0]],
        )

    return pad


def read_ground_truth(
    tfds_name: str,
    *,
    name: str,
    title: str,
    factor_names: tuple[str, ...],
    factor_sizes: tuple[int, ...],
    data_dir: str | None,
    split: str = "train",
    label_keys: tuple[str, ...] | None = None,
    max_value: int | None = 255,
    several_per_combination: bool = False,
    **read_options,
) -> ArrayGroundTruthData:
    """A prepared tfds data set as an :class:`ArrayGroundTruthData` named ``name``.

    The factors are the labels ``label_keys`` (default ``label_<factor name>``);
    ``read_options`` go to :func:`read_tfds` and the data source reads
    "real <title> from <what was read>".
    """
    if label_keys is None:
        label_keys = tuple(f"label_{n}" for n in factor_names)
    images, labels, what = read_tfds(
        tfds_name, split=split, data_dir=data_dir, title=title, label_keys=label_keys,
        **read_options,
    )
    return ArrayGroundTruthData(
        images, labels,
        factor_sizes=factor_sizes, factor_names=factor_names, name=name,
        data_source=f"real {title} from {what}", max_value=max_value,
        several_per_combination=several_per_combination,
    )


def load_shapes3d(
    data_dir: str | None = None, split: str = "train", max_examples: int | None = None
) -> ArrayGroundTruthData:
    """3D Shapes (Burgess & Kim 2018) from the prepared tfds ``shapes3d``.

    Factors: floor_hue 10, wall_hue 10, object_hue 10, scale 8, shape 4,
    orientation 15 (tfds ``label_*`` features); images 64x64x3.  The full data
    set is the complete grid (480,000 images, ~5.9 GB in memory).
    """
    return read_ground_truth(
        "shapes3d", name="shapes3d", title="3D Shapes", factor_names=SHAPES3D_FACTOR_NAMES,
        factor_sizes=SHAPES3D_FACTOR_SIZES, data_dir=data_dir, split=split,
        max_examples=max_examples,
    )


def load_smallnorb(
    data_dir: str | None = None,
    split: str = "train+test",
    image_size: int | None = 64,
    max_examples: int | None = None,
) -> ArrayGroundTruthData:
    """smallNORB (LeCun et al. 2004) from the prepared tfds ``smallnorb``.

    Factors: category 5, elevation 9, azimuth 18, lighting 6 (tfds
    ``label_category``, ``label_elevation``, ``label_azimuth`` (already halved
    by tfds to 0..17), ``label_lighting``).  The object ``instance`` is not a
    factor: every combination has one image per instance (5 in each split, 10
    in ``train+test``, the default) and one is drawn at random, as in
    disentanglement_lib.  Only the first camera's image (``image``) is used.
    ``image_size`` 64 (default) resizes the 96x96 images by area averaging;
    ``None`` keeps 96x96.
    """
    return read_ground_truth(
        "smallnorb", name="smallnorb", title="smallNORB", factor_names=SMALLNORB_FACTOR_NAMES,
        factor_sizes=SMALLNORB_FACTOR_SIZES, data_dir=data_dir, split=split,
        several_per_combination=True, max_examples=max_examples,
        image_fn=None if image_size is None else _resize(int(image_size)),
    )


def load_cars3d(data_dir: str | None = None, max_examples: int | None = None) -> ArrayGroundTruthData:
    """Cars3D (Reed et al. 2015) from the zoo's tfds builder ``zoo_cars3d``.

    tfds ships no Cars3D builder; prepare ``zoo_cars3d`` once from the
    manually downloaded files (:mod:`zoo.data.tfds_builders`).  Factors:
    elevation 4, azimuth 24, object 183 (the complete grid, 17,568 images);
    images 64x64x3.
    """
    return read_ground_truth(
        "zoo_cars3d", name="cars3d", title="Cars3D", factor_names=CARS3D_FACTOR_NAMES,
        factor_sizes=CARS3D_FACTOR_SIZES, data_dir=data_dir, max_examples=max_examples,
    )


def load_mpi3d(
    data_dir: str | None = None, variant: str = "toy", max_examples: int | None = None
) -> ArrayGroundTruthData:
    """MPI3D (Gondal et al. 2019) from the zoo's tfds builder ``zoo_mpi3d/<variant>``.

    ``variant``: ``"toy"``, ``"realistic"`` or ``"real"``.  tfds ships no MPI3D
    builder; prepare ``zoo_mpi3d`` from the released ``.npz`` files
    (:mod:`zoo.data.tfds_builders`).  Factors: object_color 6, object_shape 6,
    object_size 2, camera_height 3, background_color 3, horizontal_axis 40,
    vertical_axis 40 (the complete grid, 1,036,800 images, ~12.7 GB in
    memory); images 64x64x3.
    """
    from zoo.data.tfds_builders import MPI3D_VARIANTS

    if variant not in MPI3D_VARIANTS:
        raise ValueError(f"unknown MPI3D variant {variant!r}; known: {', '.join(MPI3D_VARIANTS)}")
    return read_ground_truth(
        f"zoo_mpi3d/{variant}", name="mpi3d", title=f"MPI3D-{variant}",
        factor_names=MPI3D_FACTOR_NAMES, factor_sizes=MPI3D_FACTOR_SIZES, data_dir=data_dir,
        max_examples=max_examples,
    )


def _load_mnist_like(tfds_name, title, data_dir, split="train", pad_to=None, max_examples=None):
    if pad_to is not None and int(pad_to) < 28:
        raise ValueError(f"pad_to must be at least 28, got {pad_to}")
    return read_ground_truth(
        tfds_name, name=tfds_name, title=title, factor_names=MNIST_FACTOR_NAMES,
        factor_sizes=(10,), data_dir=data_dir, split=split, label_keys=("label",),
        several_per_combination=True, max_examples=max_examples,
        image_fn=None if pad_to is None else _pad(int(pad_to)),
    )


def load_mnist(
    data_dir: str | None = None,
    split: str = "train",
    pad_to: int | None = None,
    max_examples: int | None = None,
) -> ArrayGroundTruthData:
    """MNIST from the prepared tfds ``mnist``: 28x28x1, one factor ``class`` (10).

    The digit label is the single factor, so unsupervised accuracy (Hungarian
    matching of a discrete code to the class) can use it; ``sample`` draws the
    class uniformly and then one of its images.  ``pad_to=32`` adds a zero
    border (32x32x1, for the ``dcgan32`` networks).
    """
    return _load_mnist_like("mnist", "MNIST", data_dir, split, pad_to, max_examples)


def load_fashion_mnist(data_dir: str | None = None, **options) -> ArrayGroundTruthData:
    """Fashion-MNIST from the prepared tfds ``fashion_mnist``; the options (``split``,
    ``pad_to``, ``max_examples``) are :func:`load_mnist`'s."""
    return _load_mnist_like("fashion_mnist", "Fashion-MNIST", data_dir, **options)


def load_celeba(
    data_dir: str | None = None,
    split: str = "train",
    crop_size: int = 148,
    image_size: int = 64,
    max_examples: int | None = None,
) -> ArrayImageData:
    """CelebA from the prepared tfds ``celeb_a``: no factors, 64x64x3 images.

    Each 218x178 image is cropped to its central ``crop_size`` square (148 px,
    a common choice for 64x64 VAEs; capped at 178) and resized to
    ``image_size`` by area averaging.  Attributes and landmarks are not used.
    """
    images, _, what = read_tfds(
        "celeb_a", split=split, title="CelebA", data_dir=data_dir,
        image_fn=_centre_crop_resize(int(crop_size), int(image_size)),
        max_examples=max_examples, batch_size=256,
    )
    return ArrayImageData(
        images, name="celeba",
        data_source=(
            f"real CelebA from {what} (centre crop {min(int(crop_size), 178)}, "
            f"resized to {int(image_size)}x{int(image_size)})"
        ),
        max_value=255,
    )
