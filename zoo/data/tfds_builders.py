"""tensorflow_datasets builders for the ground-truth sets tfds does not ship.

tensorflow_datasets 4.9.x has builders for ``shapes3d``, ``smallnorb``,
``dsprites``, ``mnist``, ``fashion_mnist`` and ``celeb_a``, but none for Cars3D
or MPI3D.  The two builders here fill that gap, so every real data set of the
zoo loads the same way (``tfds.load(..., download=False)`` from a prepared
directory) and is tested the same way (``tfds.testing.mock_data``).  Both
build from files the user has downloaded by hand (tfds "manual download"):
nothing is fetched from the network.

``zoo_cars3d`` (Reed et al. 2015, "Deep visual analogy-making"): 183 car
models x 24 azimuths x 4 elevations = 17,568 renderings.  Manual directory: the
``car_*_mesh.mat`` files of the authors' ``nips2015-analogy-data`` archive
(its ``data/cars`` folder), each holding ``im``, uint8
``[128, 128, 3, 24 azimuths, 4 elevations]``.  Images are reduced to 64x64x3
by 2x2 averaging.  Features: ``image`` (64, 64, 3), ``label_elevation`` (4),
``label_azimuth`` (24), ``label_object`` (183; the car, in sorted file-name
order).

``zoo_mpi3d/{toy,realistic,real}`` (Gondal et al. 2019): 1,036,800 images
64x64x3 per variant, the full grid of object colour 6, object shape 6, object
size 2, camera height 3, background colour 3, horizontal axis 40, vertical
axis 40.  Manual directory: ``mpi3d_toy.npz`` / ``mpi3d_realistic.npz`` /
``mpi3d_real.npz`` as released by the authors, whose ``images`` array lists the
grid in row-major order of those factors (the last factor varies fastest).
The array is read in chunks (the file is ~12.7 GB uncompressed).

Prepare once, where the files are (for example)::

    import tensorflow_datasets as tfds
    import zoo.data.tfds_builders  # registers the builders
    tfds.builder("zoo_cars3d", data_dir=DATA_DIR).download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=CARS_DIR))

and then ``zoo.data.get("cars3d", data_dir=DATA_DIR)``.
"""

from __future__ import annotations

import glob
import os
import zipfile
from typing import ClassVar

import numpy as np
import tensorflow_datasets as tfds

from zoo.data.tfds_sets import MPI3D_FACTOR_NAMES, MPI3D_FACTOR_SIZES

__all__ = [
    "MPI3D_VARIANTS",
    "ZooCars3d",
    "ZooMpi3d",
    "iter_npz_rows",
    "mpi3d_factors_of_rows",
    "npz_array_info",
]

_CARS3D_MAT_SHAPE = (128, 128, 3, 24, 4)
_NUM_CARS = 183
MPI3D_VARIANTS = ("toy", "realistic", "real")


class ZooCars3d(tfds.core.GeneratorBasedBuilder):
    """Cars3D renderings (64x64x3) with elevation, azimuth and car labels."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict] = {"1.0.0": "First version (zoo)."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download the authors' nips2015-analogy-data archive (Reed et al. 2015, "
        "'Deep visual analogy-making'), unpack it and pass its data/cars folder "
        "(the car_*_mesh.mat files) as manual_dir."
    )
    # No checksums file (manual download only).  Also keeps tfds from looking
    # the module up as a package resource, which needs the optional
    # importlib_resources backport on some Python versions.
    code_path = None

    def _info(self):
        return self.dataset_info_from_configs(
            description="Cars3D: 183 car models rendered at 24 azimuths and 4 elevations.",
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(64, 64, 3)),
                    "label_elevation": tfds.features.ClassLabel(num_classes=4),
                    "label_azimuth": tfds.features.ClassLabel(num_classes=24),
                    "label_object": tfds.features.ClassLabel(num_classes=_NUM_CARS),
                }
            ),
            homepage="https://github.com/google-research/disentanglement_lib",
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(os.fspath(dl_manager.manual_dir))}

    def _generate_examples(self, folder):
        import scipy.io

        files = sorted(glob.glob(os.path.join(folder, "*.mat")))
        if not files or len(files) > _NUM_CARS:
            raise ValueError(
                f"expected 1 to 183 Cars3D car_*_mesh.mat files in {folder}, "
                f"found {len(files)}"
            )
        for car, path in enumerate(files):
            mesh = scipy.io.loadmat(path)["im"]
            if mesh.shape != _CARS3D_MAT_SHAPE:
                raise ValueError(
                    f"{path}: 'im' must have shape {_CARS3D_MAT_SHAPE} "
                    f"(H, W, C, azimuth, elevation), got {mesh.shape}"
                )
            mesh = mesh.astype(np.float32)
            # 2x2 averaging: 128x128 -> 64x64.
            small = mesh.reshape(64, 2, 64, 2, 3, 24, 4).mean(axis=(1, 3))
            small = np.clip(np.round(small), 0, 255).astype(np.uint8)
            for elevation in range(4):
                for azimuth in range(24):
                    key = f"{car:03d}_{elevation}_{azimuth:02d}"
                    yield key, {
                        "image": small[:, :, :, azimuth, elevation],
                        "label_elevation": elevation,
                        "label_azimuth": azimuth,
                        "label_object": car,
                    }


def _open_npz_member(archive: zipfile.ZipFile, path: str, member: str):
    name = member if member.endswith(".npy") else member + ".npy"
    if name not in archive.namelist():
        raise ValueError(f"{path} has no array {member!r}")
    handle = archive.open(name)
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
    if fortran or dtype.hasobject or not shape:
        raise ValueError(f"{path}:{member} must be a C-ordered plain array with rows")
    return handle, tuple(shape), dtype


def npz_array_info(path: str, member: str = "images"):
    """``(shape, dtype)`` of one array in a ``.npz``, read from its header only."""
    with zipfile.ZipFile(path) as archive:
        handle, shape, dtype = _open_npz_member(archive, path, member)
        handle.close()
    return shape, dtype


def iter_npz_rows(path: str, member: str = "images", chunk_rows: int = 4096):
    """Yield ``(first_row, rows)`` chunks of one array in a ``.npz`` without loading it.

    Reads the ``.npy`` header of ``member`` and then ``chunk_rows`` rows at a
    time from the (possibly compressed) zip member; only C-ordered arrays of a
    plain dtype are supported (nothing is unpickled).
    """
    with zipfile.ZipFile(path) as archive:
        handle, shape, dtype = _open_npz_member(archive, path, member)
        with handle:
            row_shape = shape[1:]
            row_bytes = int(np.prod(row_shape, dtype=np.int64)) * dtype.itemsize
            for first in range(0, shape[0], chunk_rows):
                count = min(chunk_rows, shape[0] - first)
                buffer = handle.read(count * row_bytes)
                if len(buffer) != count * row_bytes:
                    raise ValueError(f"{path}:{member} is truncated at row {first}")
                yield first, np.frombuffer(buffer, dtype=dtype).reshape((count,) + row_shape)


def mpi3d_factors_of_rows(rows) -> np.ndarray:
    """Factor indices (int64 ``[n, 7]``) of rows of the released MPI3D arrays.

    The released ``images`` arrays list the full grid in row-major order of
    ``MPI3D_FACTOR_NAMES`` (the vertical axis varies fastest).
    """
    rows = np.asarray(rows, dtype=np.int64)
    sizes = np.asarray(MPI3D_FACTOR_SIZES, dtype=np.int64)
    bases = np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]])
    return (rows[:, None] // bases[None, :]) % sizes[None, :]


class ZooMpi3d(tfds.core.GeneratorBasedBuilder):
    """MPI3D (toy, realistic or real): 1,036,800 images 64x64x3 over 7 factors."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict] = {"1.0.0": "First version (zoo)."}
    BUILDER_CONFIGS: ClassVar[list] = [
        tfds.core.BuilderConfig(name=variant, description=f"mpi3d_{variant}.npz")
        for variant in MPI3D_VARIANTS
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download mpi3d_toy.npz, mpi3d_realistic.npz or mpi3d_real.npz from the "
        "MPI3D disentanglement data set release (rr-learning/disentanglement_dataset) "
        "and pass the folder holding it as manual_dir."
    )
    code_path = None  # see ZooCars3d

    def _info(self):
        labels = {
            f"label_{name}": tfds.features.ClassLabel(num_classes=size)
            for name, size in zip(MPI3D_FACTOR_NAMES, MPI3D_FACTOR_SIZES)
        }
        return self.dataset_info_from_configs(
            description="MPI3D: a robot arm's object under 7 factors of variation.",
            features=tfds.features.FeaturesDict(
                {"image": tfds.features.Image(shape=(64, 64, 3)), **labels}
            ),
            homepage="https://github.com/rr-learning/disentanglement_dataset",
        )

    def _split_generators(self, dl_manager):
        path = os.path.join(
            os.fspath(dl_manager.manual_dir), f"mpi3d_{self.builder_config.name}.npz"
        )
        return {"train": self._generate_examples(path)}

    def _generate_examples(self, path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"MPI3D file not found: {path}")
        expected = int(np.prod(MPI3D_FACTOR_SIZES))
        shape, dtype = npz_array_info(path)
        if shape != (expected, 64, 64, 3) or dtype != np.uint8:
            raise ValueError(
                f"{path}: 'images' must be uint8 [{expected}, 64, 64, 3] (the full "
                f"grid), got {dtype} {shape}"
            )
        for first, chunk in iter_npz_rows(path):
            factors = mpi3d_factors_of_rows(np.arange(first, first + len(chunk)))
            for offset, (image, row) in enumerate(zip(chunk, factors)):
                example = {"image": image}
                example.update(
                    {f"label_{n}": int(v) for n, v in zip(MPI3D_FACTOR_NAMES, row)}
                )
                yield first + offset, example
