"""Ground-truth data sets: the interface, procedural dSprites, real data loaders.

    >>> from zoo import data
    >>> dsprites = data.get("dsprites")          # procedural, offline default
    >>> factors, images = dsprites.sample(64, rng=0)
    >>> batches = dsprites.stream(batch_size=64, seed=0)   # tf.data, infinite

``get("dsprites", source="npz")`` reads the original file from
``$ZOO_DATA_DIR`` (sha256-checked); ``source="tfds"`` reads a prepared
tensorflow_datasets copy.  Each data set's ``data_source`` says which one it is.

Also registered: the dSprites variants ``color_dsprites``, ``noisy_dsprites``,
``scream_dsprites`` (:mod:`zoo.data.dsprites_variants`; on procedural, npz or
tfds dSprites), the ``pinwheel`` generator (:mod:`zoo.data.pinwheel`), and the
tfds-backed ``shapes3d``, ``smallnorb``, ``cars3d``, ``mpi3d``, ``mnist``,
``fashion_mnist`` and ``celeba`` (:mod:`zoo.data.tfds_sets`; ``celeba`` has no
factors and is an :class:`ImageData`, all others are :class:`GroundTruthData`),
and ``digits`` (:mod:`zoo.data.digits`: scikit-learn's bundled 8x8 handwritten
digits upscaled to 28x28x1, factor ``class`` (10); a small offline stand-in for
MNIST, not MNIST).
"""

from __future__ import annotations

from zoo.data.digits import load_digits
from zoo.data.dsprites import ProceduralDSprites, load_dsprites_npz, load_dsprites_tfds
from zoo.data.dsprites_variants import ColorDSprites, NoisyDSprites, ScreamDSprites
from zoo.data.ground_truth import GroundTruthData, ObservationData, as_rng
from zoo.data.images import ArrayGroundTruthData, ArrayImageData, ImageData
from zoo.data.pinwheel import Pinwheel, pinwheel
from zoo.data.tfds_sets import (
    load_cars3d,
    load_celeba,
    load_fashion_mnist,
    load_mnist,
    load_mpi3d,
    load_shapes3d,
    load_smallnorb,
)

__all__ = [
    "DATASETS",
    "SOURCES",
    "ArrayGroundTruthData",
    "ArrayImageData",
    "ColorDSprites",
    "GroundTruthData",
    "ImageData",
    "NoisyDSprites",
    "ObservationData",
    "Pinwheel",
    "ProceduralDSprites",
    "ScreamDSprites",
    "as_rng",
    "get",
    "load_cars3d",
    "load_celeba",
    "load_digits",
    "load_dsprites_npz",
    "load_dsprites_tfds",
    "load_fashion_mnist",
    "load_mnist",
    "load_mpi3d",
    "load_shapes3d",
    "load_smallnorb",
    "pinwheel",
]


def _on_base(variant, loader):
    """A source for a dSprites variant built on the dSprites from ``loader``."""

    def load(**kwargs):
        return variant(loader(**kwargs))

    load.__name__ = f"{variant.__name__}_on_{loader.__name__}"
    load.__doc__ = f"{variant.__name__} on {loader.__name__}(**kwargs)."
    return load


def _procedural_v1(**kwargs):
    """The first procedural renderer (kept so runs made with it reproduce)."""
    return ProceduralDSprites(version=1, **kwargs)


def _variant_sources(variant):
    return {
        "procedural": variant,
        "procedural_v1": _on_base(variant, _procedural_v1),
        "npz": _on_base(variant, load_dsprites_npz),
        "tfds": _on_base(variant, load_dsprites_tfds),
    }


# name -> {source -> factory(**kwargs)}; the first source is the default.
_REGISTRY = {
    "dsprites": {
        "procedural": ProceduralDSprites,
        "procedural_v1": _procedural_v1,
        "npz": load_dsprites_npz,
        "tfds": load_dsprites_tfds,
    },
    "color_dsprites": _variant_sources(ColorDSprites),
    "noisy_dsprites": _variant_sources(NoisyDSprites),
    "scream_dsprites": _variant_sources(ScreamDSprites),
    "pinwheel": {"procedural": Pinwheel},
    "shapes3d": {"tfds": load_shapes3d},
    "smallnorb": {"tfds": load_smallnorb},
    "cars3d": {"tfds": load_cars3d},
    "mpi3d": {"tfds": load_mpi3d},
    "mnist": {"tfds": load_mnist},
    "fashion_mnist": {"tfds": load_fashion_mnist},
    "celeba": {"tfds": load_celeba},
    "digits": {"sklearn": load_digits},
}

DATASETS = tuple(_REGISTRY)
SOURCES = {name: tuple(sources) for name, sources in _REGISTRY.items()}


def get(name: str, source: str | None = None, **kwargs) -> ObservationData:
    """The data set ``name`` from ``source``; ``kwargs`` go to its loader.

    ``source=None`` picks the data set's default (first) source: ``"procedural"``
    for dSprites, its variants and the pinwheel, ``"sklearn"`` for ``digits``,
    ``"tfds"`` for the others.

    dSprites sources: ``"procedural"`` (rendered, no files needed; the renderer
    fitted to the real frames), ``"procedural_v1"`` (the first renderer, for
    runs made with it),
    ``"npz"`` (:func:`load_dsprites_npz`: ``path``, ``expected_sha256``),
    ``"tfds"`` (:func:`load_dsprites_tfds`: ``data_dir``); the variants take
    the same sources.  Pinwheel: ``num_classes``, ``radial_std``,
    ``tangential_std``, ``rate``.  tfds sets: ``data_dir`` and the options of
    their ``load_*`` function in :mod:`zoo.data.tfds_sets`.  Digits
    (:func:`load_digits`): ``border``.
    """
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown data set {name!r}; known data sets: {', '.join(DATASETS)}"
        )
    sources = _REGISTRY[name]
    if source is None:
        source = next(iter(sources))
    if source not in sources:
        raise ValueError(
            f"unknown source {source!r} for data set {name!r}; "
            f"known sources: {', '.join(sources)}"
        )
    return sources[source](**kwargs)
