"""DCI: disentanglement, completeness, informativeness (Eastwood & Williams 2018; docs/methods.md §16.5).

For each non-constant factor a scikit-learn ``GradientBoostingClassifier`` (defaults; its
``random_state`` drawn from ``rng``, which only breaks ties between equally good splits) is fit on
the codes of ``num_train`` (10,000) i.i.d. points. Column j of the importance matrix R [codes,
factors] is |feature_importances_| of factor j's classifier. Then, with P_i = R_i / Σ_j R_ij and
P_j = R_j / Σ_i R_ij,

    disentanglement = Σ_i ρ_i (1 − H_K(P_i)),   ρ_i = Σ_j R_ij / Σ R,  H_K: entropy in base K factors
    completeness    = Σ_j ρ_j (1 − H_D(P_j)),   ρ_j = Σ_i R_ij / Σ R,  H_D: entropy in base D codes
    informativeness = mean accuracy of the classifiers (train, and on ``num_test`` test points).

Conventions for the degenerate cases: R = 0 gives disentanglement = completeness = 0; an entropy
"in base 1" (a single factor, or a single code) is 0, since a distribution over one outcome carries
no uncertainty. The classifiers of the factors are fit in parallel threads (``n_jobs``; scikit-
learn's tree building releases the GIL); the result does not depend on ``n_jobs``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier

from zoo.data.ground_truth import as_rng
from zoo.metrics.core import active_factors, representations_for, sample_iid

__all__ = ["dci", "disentanglement_completeness", "normalized_entropy"]


def normalized_entropy(p, axis=0) -> np.ndarray:
    """Entropy of the distributions along ``axis`` (rows need not be normalised) in base n, the
    length of that axis (0 when n = 1). A zero vector is treated as uniform (entropy 1)."""
    p = np.moveaxis(np.asarray(p, np.float64), axis, 0)
    n = p.shape[0]
    if n <= 1:
        return np.zeros(p.shape[1:])
    total = p.sum(axis=0, keepdims=True)
    q = np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(q > 0, -q * np.log(q), 0.0)
    return terms.sum(axis=0) / np.log(n)


def disentanglement_completeness(importance) -> tuple[float, float]:
    """(disentanglement, completeness) of an importance matrix [codes, factors]."""
    r = np.abs(np.asarray(importance, np.float64))
    if r.ndim != 2:
        raise ValueError(f"the importance matrix must be [codes, factors], got {r.shape}")
    total = r.sum()
    if total == 0:
        return 0.0, 0.0
    code_weight = r.sum(axis=1) / total
    factor_weight = r.sum(axis=0) / total
    disentanglement = np.sum(code_weight * (1.0 - normalized_entropy(r, axis=1)))
    completeness = np.sum(factor_weight * (1.0 - normalized_entropy(r, axis=0)))
    return float(disentanglement), float(completeness)


def _fit_one(x_train, y_train, x_test, y_test, seed):
    classes = np.unique(y_train)
    if len(classes) < 2:  # a single class in the sample: a constant predictor, no importances
        return (np.zeros(x_train.shape[1]), 1.0, float(np.mean(y_test == classes[0])))
    model = GradientBoostingClassifier(random_state=seed).fit(x_train, y_train)
    return (np.abs(model.feature_importances_), float(model.score(x_train, y_train)),
            float(model.score(x_test, y_test)))


def importance_matrix(codes_train, factors_train, codes_test, factors_test, seeds, n_jobs=None):
    """(R [codes, factors], train accuracies [factors], test accuracies [factors])."""
    jobs = [(codes_train, factors_train[:, j], codes_test, factors_test[:, j], seeds[j])
            for j in range(factors_train.shape[1])]
    workers = max(1, min(len(jobs), n_jobs or os.cpu_count() or 1))
    # Longest jobs (most classes) first, so the threads finish together.
    order = sorted(range(len(jobs)), key=lambda j: -len(np.unique(jobs[j][1])))
    if workers == 1:
        results = {j: _fit_one(*jobs[j]) for j in order}
    else:
        with ThreadPoolExecutor(workers) as pool:
            futures = {j: pool.submit(_fit_one, *jobs[j]) for j in order}
            results = {j: f.result() for j, f in futures.items()}
    importance = np.stack([results[j][0] for j in range(len(jobs))], axis=1)
    train = np.array([results[j][1] for j in range(len(jobs))])
    test = np.array([results[j][2] for j in range(len(jobs))])
    return importance, train, test


def dci(data, representation_fn, rng=None, *, num_train: int = 10_000, num_test: int = 5_000,
        n_jobs: int | None = None) -> dict[str, float]:
    """{"disentanglement", "completeness", "informativeness_train", "informativeness_test"}.

    Args:
      num_train, num_test: i.i.d. points for fitting and testing the classifiers.
      n_jobs: threads fitting the factors' classifiers (None: one per CPU core).
    """
    if num_train < 2 or num_test < 1:
        raise ValueError("num_train must be at least 2 and num_test positive")
    reps = representations_for(data, representation_fn)
    rng = as_rng(rng)
    active = active_factors(data)
    (f_train, c_train), (f_test, c_test) = sample_iid(data, reps, rng, num_train, num_test)
    seeds = rng.integers(0, 2**31 - 1, size=len(active))
    importance, train, test = importance_matrix(
        np.asarray(c_train, np.float64), f_train[:, active], np.asarray(c_test, np.float64),
        f_test[:, active], seeds, n_jobs)
    disentanglement, completeness = disentanglement_completeness(importance)
    return {"disentanglement": disentanglement, "completeness": completeness,
            "informativeness_train": float(np.mean(train)),
            "informativeness_test": float(np.mean(test))}


def _resolve_params(params: dict) -> dict:
    return {k: v for k, v in params.items() if k != "n_jobs"}  # n_jobs does not change results


dci.resolve_params = _resolve_params
