"""Ground-truth data sets: the interface, procedural dSprites, real data loaders.

    >>> from zoo import data
    >>> dsprites = data.get("dsprites")          # procedural, offline default
    >>> factors, images = dsprites.sample(64, rng=0)
    >>> batches = dsprites.stream(batch_size=64, seed=0)   # tf.data, infinite

``get("dsprites", source="npz")`` reads the original file from
``$ZOO_DATA_DIR`` (sha256-checked); ``source="tfds"`` reads a prepared
tensorflow_datasets copy.  Each data set's ``data_source`` says which one it is.
"""

from __future__ import annotations

from zoo.data.dsprites import (
    ArrayGroundTruthData,
    ProceduralDSprites,
    load_dsprites_npz,
    load_dsprites_tfds,
)
from zoo.data.ground_truth import GroundTruthData, as_rng

__all__ = [
    "DATASETS",
    "SOURCES",
    "ArrayGroundTruthData",
    "GroundTruthData",
    "ProceduralDSprites",
    "as_rng",
    "get",
    "load_dsprites_npz",
    "load_dsprites_tfds",
]

# name -> {source -> factory(**kwargs)}; the first source is the default.
_REGISTRY = {
    "dsprites": {
        "procedural": ProceduralDSprites,
        "npz": load_dsprites_npz,
        "tfds": load_dsprites_tfds,
    },
}

DATASETS = tuple(_REGISTRY)
SOURCES = {name: tuple(sources) for name, sources in _REGISTRY.items()}


def get(name: str, source: str = "procedural", **kwargs) -> GroundTruthData:
    """The data set ``name`` from ``source``; ``kwargs`` go to its loader.

    dSprites sources: ``"procedural"`` (rendered, no files needed),
    ``"npz"`` (:func:`load_dsprites_npz`: ``path``, ``expected_sha256``),
    ``"tfds"`` (:func:`load_dsprites_tfds`: ``data_dir``).
    """
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown data set {name!r}; known data sets: {', '.join(DATASETS)}"
        )
    sources = _REGISTRY[name]
    if source not in sources:
        raise ValueError(
            f"unknown source {source!r} for data set {name!r}; "
            f"known sources: {', '.join(sources)}"
        )
    return sources[source](**kwargs)
