"""Hoyer sparsity of the codes (Mathieu et al. 2019; docs/methods.md §16.10).

On ``num_points`` (10,000) i.i.d. points, each code dimension is divided by its standard deviation
over the points (not centred: centring would move a code's "off" value away from 0 and destroy
the sparsity being measured; a constant dimension is left as it is). Then

    sparsity = (√d − mean_n ‖z_n‖₁/‖z_n‖₂) / (√d − 1),

which is 1 when every code vector has a single non-zero entry and 0 when all entries of every
vector have the same magnitude; a vector with k equal non-zero entries gives (√d − √k)/(√d − 1).
All-zero vectors are left out of the mean (0 if every vector is zero). With a single code (d = 1)
every non-zero vector has one non-zero entry, so the score is defined as 1.
"""

from __future__ import annotations

import numpy as np

from zoo.metrics.core import iid_codes

__all__ = ["hoyer", "hoyer_sparsity"]


def hoyer(codes, normalize: bool = True) -> float:
    """Mean normalised Hoyer sparsity of the rows of ``codes`` [n, d]."""
    z = np.asarray(codes, np.float64)
    if z.ndim != 2:
        raise ValueError(f"codes must be [n, d], got {z.shape}")
    if normalize:
        std = z.std(axis=0)
        z = z / np.where(std > 0, std, 1.0)
    l2 = np.sqrt(np.sum(z**2, axis=1))
    nonzero = l2 > 0
    if not nonzero.any():
        return 0.0
    d = z.shape[1]
    if d == 1:
        return 1.0
    ratio = np.sum(np.abs(z[nonzero]), axis=1) / l2[nonzero]
    return float((np.sqrt(d) - np.mean(ratio)) / (np.sqrt(d) - 1))


def hoyer_sparsity(data, representation_fn, rng=None, *,
                   num_points: int = 10_000) -> dict[str, float]:
    """{"hoyer_sparsity"} of the standardised codes of ``num_points`` i.i.d. points."""
    if num_points < 1:
        raise ValueError("num_points must be positive")
    return {"hoyer_sparsity": hoyer(iid_codes(data, representation_fn, rng, num_points))}
