"""The real dSprites frames of the data set's own animation, as a fidelity reference.

The dSprites repository ships an animated GIF (``dsprites.gif``: 320 binary
64x64 frames of the real data set).  It is not part of this package (its
pixels may not be redistributed here); a user who has it can check a renderer
against it:

    >>> from zoo.data import dsprites_reference, get
    >>> report = dsprites_reference.fidelity(get("dsprites"), "dsprites.gif")
    >>> report["mean_iou"], report["per_shape"]["heart"]

The frames are single-factor traversals at posX = posY = 0 and orientation 0
unless the factor moves, in this order (each segment repeats the frame it
starts from):

* heart (192 frames): scale 0.5 -> 1 -> 0.5 -> 1 (3 x 6), the 40
  orientations at scale 1, posY 0 -> 31, posX 0 -> 31 (at posY 31), posY
  31 -> 0 (at posX 31), posX 31 -> 0 (at posY 0), scale 1 -> 0.5;
* ellipse, then square (64 frames each): the same scale sweeps, the 40
  orientations, scale 1 -> 0.5.

:func:`reference_frame_factors` gives each frame's factor indices;
:func:`read_reference_frames` checks that the file agrees with them (frames
with the same factors must be identical).
"""

from __future__ import annotations

import os

import numpy as np

from zoo.data.ground_truth import GroundTruthData

__all__ = ["fidelity", "read_reference_frames", "reference_frame_factors"]

NUM_FRAMES = 320
_SHAPE_NAMES = ("square", "ellipse", "heart")


def _shape_segment(shape: int, with_position_sweeps: bool) -> list[tuple[int, ...]]:
    up = list(range(6))
    down = up[::-1]
    frames = [(shape, s, 0, 0, 0) for s in up + down + up]
    frames += [(shape, 5, o, 0, 0) for o in range(40)]
    if with_position_sweeps:
        back = range(31, -1, -1)
        frames += [(shape, 5, 0, 0, k) for k in range(32)]
        frames += [(shape, 5, 0, k, 31) for k in range(32)]
        frames += [(shape, 5, 0, 31, k) for k in back]
        frames += [(shape, 5, 0, k, 0) for k in back]
    frames += [(shape, s, 0, 0, 0) for s in down]
    return frames


def reference_frame_factors() -> np.ndarray:
    """Factor indices (shape, scale, orientation, posX, posY) of each frame, int64 [320, 5]."""
    frames = _shape_segment(2, True) + _shape_segment(1, False) + _shape_segment(0, False)
    return np.array(frames, dtype=np.int64)


def read_reference_frames(path: str | os.PathLike) -> np.ndarray:
    """The 320 frames of ``dsprites.gif`` as bool [320, 64, 64], checked against their factors."""
    from PIL import Image, ImageSequence  # imported lazily: only this reader needs it

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"dSprites reference GIF not found: {path}")
    with Image.open(path) as gif:
        frames = np.stack(
            [np.asarray(frame.convert("L")) > 127 for frame in ImageSequence.Iterator(gif)]
        )
    if frames.shape != (NUM_FRAMES, 64, 64):
        raise ValueError(
            f"{path}: expected {NUM_FRAMES} frames of 64x64, got {frames.shape}; "
            "is it the dSprites repository's dsprites.gif?"
        )
    factors = reference_frame_factors()
    first_of = {}
    for i, combination in enumerate(map(tuple, factors)):
        j = first_of.setdefault(combination, i)
        if not np.array_equal(frames[i], frames[j]):
            raise ValueError(
                f"{path}: frames {j} and {i} should both show {combination} "
                "(shape, scale, orientation, posX, posY) but differ; the file "
                "does not follow the documented frame order"
            )
    return frames


def intersection_over_union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of the 'on' pixels of each pair of binary images [n, ...] (1 when both are empty)."""
    a = a.reshape(len(a), -1) > 0.5
    b = b.reshape(len(b), -1) > 0.5
    union = (a | b).sum(axis=1)
    return np.where(union > 0, (a & b).sum(axis=1) / np.maximum(union, 1), 1.0)


def fidelity(data: GroundTruthData, path: str | os.PathLike) -> dict:
    """Per-frame IoU of ``data``'s images against the real frames of the GIF at ``path``.

    Returns ``{"iou": [320], "factors": [320, 5], "mean_iou", "min_iou",
    "per_shape": {name: {"mean_iou", "min_iou", "frames"}}}``.
    """
    if tuple(data.factor_sizes) != (3, 6, 40, 32, 32):
        raise ValueError(
            f"fidelity needs a dSprites factor grid (3, 6, 40, 32, 32), got {data.factor_sizes}"
        )
    real = read_reference_frames(path)
    factors = reference_frame_factors()
    rendered = data.images_from_factors(factors)[..., 0]
    iou = intersection_over_union(rendered, real)
    per_shape = {
        name: {
            "mean_iou": float(iou[factors[:, 0] == s].mean()),
            "min_iou": float(iou[factors[:, 0] == s].min()),
            "frames": int((factors[:, 0] == s).sum()),
        }
        for s, name in enumerate(_SHAPE_NAMES)
    }
    return {
        "iou": iou,
        "factors": factors,
        "mean_iou": float(iou.mean()),
        "min_iou": float(iou.min()),
        "per_shape": per_shape,
    }
