"""UDR, Unsupervised Disentanglement Ranking (Duan et al. 2020; docs/methods.md §16.8).

Needs several models (the same hyperparameters, different seeds). On ``num_points`` (1,000)
i.i.d. points shared by all models:

1. each model's codes are its posterior means (or its codes, for a function without a posterior),
   standardised per dimension (a constant dimension becomes 0);
2. a dimension is informative if its mean KL(q(z_j|x) ‖ N(0, 1)) over the points exceeds
   ``kl_threshold`` (0.01); uninformative dimensions are zeroed (without a posterior every dimension
   counts as informative);
3. for each ordered pair (a, b) of models the similarity matrix R [dims of a, dims of b] is
   Spearman's |ρ| (``correlation="spearman"``, default) or the |coefficients| of a
   ``Lasso(alpha=0.1)`` regressing b's codes on a's (``"lasso"``), restricted to the informative
   dimensions of both;
4. the pair's score is the mean of the two axes' averages of max²/Σ (per row: the largest entry
   squared over the row's sum, a row with sum 0 counting 0; the same per column); a pair where
   either model has no informative dimension scores 0;
5. a model's UDR is the median of the scores of the pairs (other, model).

With Spearman, a model against a permuted, rescaled copy of itself scores 1 exactly when its own
dimensions are mutually uncorrelated in rank, and 1 − O(d/√num_points) for independent codes
(finite-sample correlations). The Lasso's shrinkage lowers every coefficient by about alpha (for
standardised codes, a perfect match has |coef| ≈ 1 − alpha), and max²/Σ then gives ≈ 1 − alpha.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from sklearn.linear_model import Lasso

from zoo.data.ground_truth import as_rng
from zoo.metrics.core import (
    gaussian_kl_per_dim,
    quiet_sklearn,
    representations_for,
    seed_from,
    standardize,
)

__all__ = ["CORRELATIONS", "relative_strength", "similarity_matrix", "udr", "udr_scores"]

CORRELATIONS = ("spearman", "lasso")


def _axis_strength(r, axis):
    top = r.max(axis=axis)
    total = r.sum(axis=axis)
    return np.where(total > 0, top**2 / np.where(total > 0, total, 1.0), 0.0)


def relative_strength(similarity) -> float:
    """Mean over both axes of max²/Σ of a non-negative similarity matrix (0 if empty)."""
    r = np.abs(np.asarray(similarity, np.float64))
    if r.size == 0:
        return 0.0
    return float((np.mean(_axis_strength(r, 0)) + np.mean(_axis_strength(r, 1))) / 2)


def _spearman(a, b):
    ra = rankdata(a, axis=0)
    rb = rankdata(b, axis=0)
    ra -= ra.mean(axis=0)
    rb -= rb.mean(axis=0)
    na = np.sqrt(np.sum(ra**2, axis=0))
    nb = np.sqrt(np.sum(rb**2, axis=0))
    denominator = na[:, None] * nb[None, :]
    ok = denominator > 0
    return np.abs(np.where(ok, (ra.T @ rb) / np.where(ok, denominator, 1.0), 0.0))


def similarity_matrix(a, b, correlation="spearman", alpha=0.1, seed=0) -> np.ndarray:
    """|similarity| between the columns of a [n, d_a] and b [n, d_b]: [d_a, d_b]."""
    if correlation == "spearman":
        return _spearman(a, b)
    if correlation == "lasso":
        with quiet_sklearn():
            model = Lasso(alpha=alpha, random_state=seed).fit(a, b)
        return np.abs(np.asarray(model.coef_).reshape(b.shape[1], a.shape[1])).T
    raise ValueError(f"unknown correlation {correlation!r}; expected one of {CORRELATIONS}")


def udr_scores(codes, kl=None, *, kl_threshold=0.01, correlation="spearman", alpha=0.1,
               seed=0):
    """(model scores [M], pairwise scores [M, M]) from each model's codes on the same points.

    Args:
      codes: list of M arrays [n, d_m].
      kl: None or a list of M arrays [d_m] (mean KL per dimension).
    """
    if len(codes) < 2:
        raise ValueError("UDR needs at least two models")
    n = len(codes[0])
    if any(len(c) != n for c in codes):
        raise ValueError("every model's codes must be on the same points")
    masks, standardized = [], []
    for m, c in enumerate(codes):
        c = np.asarray(c, np.float64)
        mask = (np.ones(c.shape[1], bool) if kl is None
                else np.asarray(kl[m], np.float64) > kl_threshold)
        z = standardize(c)
        z[:, c.std(axis=0) == 0] = 0.0
        z[:, ~mask] = 0.0
        masks.append(mask)
        standardized.append(z)
    count = len(codes)
    pairwise = np.zeros((count, count))
    for a in range(count):
        for b in range(count):
            if a == b:
                continue
            r = similarity_matrix(standardized[a], standardized[b], correlation, alpha, seed)
            pairwise[a, b] = relative_strength(r[masks[a]][:, masks[b]])
    scores = np.array([np.median(np.delete(pairwise[:, m], m)) for m in range(count)])
    return scores, pairwise


def udr(data, representation_fns, rng=None, *, num_points: int = 1_000,
        correlation: str = "spearman", kl_threshold: float = 0.01,
        alpha: float = 0.1) -> dict[str, float]:
    """{"udr": mean model score, "model_0": ..., "model_1": ...} for a list of models or
    representation functions (or `Representations` of ``data``).

    Args:
      num_points: i.i.d. points every model encodes (1,000, disentanglement_lib's setting).
      correlation: "spearman" (default) or "lasso".
      kl_threshold: dimensions with mean KL at most this are uninformative (0.01).
      alpha: the Lasso's regularisation (0.1).
    """
    if correlation not in CORRELATIONS:
        raise ValueError(f"unknown correlation {correlation!r}; expected one of {CORRELATIONS}")
    fns = list(representation_fns)
    if len(fns) < 2:
        raise ValueError("UDR needs at least two models")
    rng = as_rng(rng)
    factors = data.sample_factors(int(num_points), rng)
    codes, kls = [], []
    for fn in fns:
        reps = representations_for(data, fn)
        if reps.has_posterior:
            mean, logvar = reps.posterior(factors)
            codes.append(mean)
            kls.append(gaussian_kl_per_dim(mean, logvar).mean(axis=0))
        else:
            codes.append(reps(factors))
            kls.append(None)
    kl = None if all(k is None for k in kls) else [
        np.full(np.shape(c)[1], np.inf) if k is None else k for c, k in zip(codes, kls)]
    scores, _ = udr_scores(codes, kl, kl_threshold=kl_threshold, correlation=correlation,
                           alpha=alpha, seed=seed_from(rng))
    return {"udr": float(np.mean(scores)), **{f"model_{m}": float(s) for m, s in enumerate(scores)}}
