"""Gaussian total correlation of the codes (docs/methods.md §16.11).

The total correlation of a Gaussian with the codes' covariance Σ (over ``num_points`` (10,000)
i.i.d. points, ddof 1): ½(Σ_i log Σ_ii − log det Σ) = −½ log det(correlation matrix), in nats
(`zoo.decomposition.gaussian_total_correlation`). It is 0 for uncorrelated codes, does not depend
on the codes' scales, and is +inf when some codes are exactly linearly dependent (e.g. a
duplicated code). Constant codes are left out (their correlations are undefined); fewer than two
non-constant codes give 0.
"""

from __future__ import annotations

import numpy as np

from zoo.metrics.core import iid_codes

__all__ = ["gaussian_total_correlation", "total_correlation_of_codes"]


def total_correlation_of_codes(codes) -> float:
    """Gaussian TC of the non-constant columns of ``codes`` [n, d]."""
    from zoo.decomposition import gaussian_total_correlation as _from_covariance

    z = np.asarray(codes, np.float64)
    z = z[:, z.std(axis=0) > 0]
    if z.shape[1] < 2:
        return 0.0
    covariance = np.cov(z, rowvar=False)
    scale = np.sqrt(np.diag(covariance))
    if np.linalg.eigvalsh(covariance / np.outer(scale, scale)).min() <= 1e-10:
        return float("inf")  # (numerically) linearly dependent codes
    return max(float(_from_covariance(covariance)), 0.0)


def gaussian_total_correlation(data, representation_fn, rng=None, *,
                               num_points: int = 10_000) -> dict[str, float]:
    """{"gaussian_total_correlation"} of the codes of ``num_points`` i.i.d. points."""
    if num_points < 2:
        raise ValueError("num_points must be at least 2")
    codes = iid_codes(data, representation_fn, rng, num_points)
    return {"gaussian_total_correlation": total_correlation_of_codes(codes)}
