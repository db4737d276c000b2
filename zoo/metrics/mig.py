"""Mutual Information Gap (Chen et al. 2018), two estimators (docs/methods.md §16.4).

MIG = mean over the non-constant factors k of (I₁ − I₂)/H(v_k), where I₁ ≥ I₂ are the two largest
mutual informations I(z_j; v_k) over the codes j (with a single code, I₂ = 0), in nats.

``estimator="discretized"`` (default, disentanglement_lib): ``num_train`` (10,000) i.i.d. points;
each code is binned into ``num_bins`` (20) equal-width bins over its range; I is the plug-in MI of
the contingency table (equal to ``sklearn.metrics.mutual_info_score``) and H(v_k) the plug-in
entropy of the factor in the same sample.

``estimator="sampled"`` (β-TCVAE): needs the posterior q(z|x) = N(μ(x), σ²(x)). Over a set of N
points (``num_points=None``: every factor combination, "all data"; an int: that many i.i.d.
points) draw one z_n ~ q(z|x_n) each. With q(z_j) = (1/N) Σ_n q(z_j|x_n),

    H(z_j)       ≈ −mean_s log q(z_sj)                      (s: ``num_samples`` of the N samples)
    H(z_j | v_k) = Σ_v p(v) H(z_j | v_k = v), each term estimated the same way within the points
                   with v_k = v (q(z_j | v_k = v) the mixture over those points only),
    I(z_j; v_k)  = max(H(z_j) − H(z_j | v_k), 0),     H(v_k) = plug-in entropy over the N points.

Its cost is about (K + 1)·num_samples·N·d Gaussian log-densities, which for dSprites' whole grid
(N = 737,280) is minutes of CPU: pass ``num_points`` for a quicker, noisier estimate.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from zoo.data.ground_truth import as_rng
from zoo.metrics.core import (
    active_factors,
    discrete_entropy,
    histogram_discretize,
    mutual_information_matrix,
    representations_for,
    sample_iid,
)

__all__ = ["ESTIMATORS", "gap_score", "mig"]

ESTIMATORS = ("discretized", "sampled")
MAX_WHOLE_GRID = 2_000_000
_BLOCK_ELEMENTS = 2**22


def gap_score(mutual_information, factor_entropy) -> float:
    """Mean over factors of (top₁ − top₂)/H for an MI matrix [codes, factors]; factors with zero
    entropy are left out; a single code has top₂ = 0."""
    mi = np.asarray(mutual_information, np.float64)
    entropy = np.asarray(factor_entropy, np.float64)
    ordered = np.sort(mi, axis=0)[::-1]
    second = ordered[1] if len(ordered) > 1 else np.zeros(mi.shape[1])
    keep = entropy > 0
    if not keep.any():
        raise ValueError("every factor is constant in the sample")
    return float(np.mean((ordered[0][keep] - second[keep]) / entropy[keep]))


def _log_mixture(z, mean, logvar):
    """log (1/N) Σ_n N(z_sj; μ_nj, σ²_nj) for samples z [S, d] and N components: [S, d], in
    blocks of at most about 4M log-densities (streaming logsumexp over the components)."""
    s_count, d = z.shape
    n = len(mean)
    inv_var = np.exp(-logvar)
    const = -0.5 * (logvar + np.log(2 * np.pi))  # [N, d]
    n_chunk = max(1, min(n, _BLOCK_ELEMENTS // d))
    s_chunk = max(1, _BLOCK_ELEMENTS // (n_chunk * d))
    out = np.empty((s_count, d))
    for a in range(0, s_count, s_chunk):
        zs = z[a:a + s_chunk, None, :]
        total = None
        for b in range(0, n, n_chunk):
            sl = slice(b, b + n_chunk)
            log_density = const[None, sl] - 0.5 * (zs - mean[None, sl]) ** 2 * inv_var[None, sl]
            part = logsumexp(log_density, axis=1)
            total = part if total is None else np.logaddexp(total, part)
        out[a:a + s_chunk] = total
    return out - np.log(n)


def _entropy(z, mean, logvar, num_samples, rng):
    n = len(z)
    pick = rng.choice(n, size=min(int(num_samples), n), replace=False)
    return -np.mean(_log_mixture(z[pick], mean, logvar), axis=0)


def _sampled(data, reps, rng, num_points, num_samples):
    active = active_factors(data)
    if num_points is None:
        if data.num_combinations > MAX_WHOLE_GRID:
            raise ValueError(f"the data set has {data.num_combinations} factor combinations; "
                             "pass num_points=<number of i.i.d. points>")
        factors = data.factors_of(np.arange(data.num_combinations, dtype=np.int64))
    else:
        factors = data.sample_factors(int(num_points), rng)
    mean, logvar = (np.asarray(a, np.float64) for a in reps.posterior(factors))
    z = mean + np.exp(0.5 * logvar) * rng.standard_normal(mean.shape)
    marginal = _entropy(z, mean, logvar, num_samples, rng)  # [d]
    mi = np.zeros((mean.shape[1], len(active)))
    for p, k in enumerate(active):
        conditional = np.zeros(mean.shape[1])
        for v in np.unique(factors[:, k]):
            members = np.flatnonzero(factors[:, k] == v)
            conditional += len(members) / len(factors) * _entropy(
                z[members], mean[members], logvar[members], num_samples, rng)
        mi[:, p] = np.maximum(marginal - conditional, 0.0)
    return gap_score(mi, discrete_entropy(factors[:, active]))


def mig(data, representation_fn, rng=None, *, estimator: str = "discretized",
        num_train: int = 10_000, num_bins: int = 20, num_points: int | None = None,
        num_samples: int = 10_000) -> dict[str, float]:
    """{"mig"}: the mutual information gap.

    Args:
      estimator: "discretized" (default) or "sampled".
      num_train, num_bins: the discretised estimator (10,000 points, 20 bins).
      num_points, num_samples: the sampled estimator (None = every factor combination; 10,000
        entropy samples).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; expected one of {ESTIMATORS}")
    reps = representations_for(data, representation_fn)
    rng = as_rng(rng)
    if estimator == "sampled":
        if num_samples < 1:
            raise ValueError("num_samples must be positive")
        return {"mig": _sampled(data, reps, rng, num_points, num_samples)}
    if num_train < 2 or num_bins < 1:
        raise ValueError("num_train must be at least 2 and num_bins positive")
    active = active_factors(data)
    [(factors, codes)] = sample_iid(data, reps, rng, num_train)
    mi = mutual_information_matrix(histogram_discretize(codes, num_bins), factors[:, active])
    return {"mig": gap_score(mi, discrete_entropy(factors[:, active]))}


def _resolve_params(params: dict) -> dict:
    only = (("num_points", "num_samples") if params.get("estimator") == "sampled"
            else ("num_train", "num_bins"))
    return {k: v for k, v in params.items() if k in only or k == "estimator"}


mig.resolve_params = _resolve_params
