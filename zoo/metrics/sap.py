"""SAP, the Separated Attribute Predictability score (Kumar et al. 2018; docs/methods.md §16.6).

A score matrix S [codes, factors]; SAP = mean over the non-constant factors of the gap between the
largest and the second largest entry of the factor's column (a single code: the largest entry).

* default (factors treated as classes): S_ij = test accuracy of a scikit-learn
  ``LinearSVC(C=0.01, class_weight="balanced")`` trained on the single code i to predict factor j,
  ``num_train`` (10,000) training and ``num_test`` (5,000) test points. (With C = 0.01 a linear
  classifier on one axis cannot separate many classes, so even a perfect code scores low here.)
* ``continuous_factors=True``: S_ij = R² = cov(z_i, v_j)² / (var z_i · var v_j) on the training
  points (0 for a code with variance ≤ 1e-12).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.svm import LinearSVC

from zoo.data.ground_truth import as_rng
from zoo.metrics.core import active_factors, quiet_sklearn, representations_for, sample_iid

__all__ = ["r2_matrix", "sap", "sap_from_matrix"]


def sap_from_matrix(scores) -> float:
    """Mean over factors (columns) of top₁ − top₂ over codes (rows)."""
    scores = np.asarray(scores, np.float64)
    ordered = np.sort(scores, axis=0)[::-1]
    second = ordered[1] if len(ordered) > 1 else np.zeros(scores.shape[1])
    return float(np.mean(ordered[0] - second))


def r2_matrix(codes, factors) -> np.ndarray:
    """cov(z_i, v_j)² / (var z_i · var v_j) for every code i and factor j, [codes, factors]."""
    z = np.asarray(codes, np.float64)
    v = np.asarray(factors, np.float64)
    z = z - z.mean(axis=0)
    v = v - v.mean(axis=0)
    cov = z.T @ v / max(len(z) - 1, 1)
    var_z = np.sum(z**2, axis=0) / max(len(z) - 1, 1)
    var_v = np.sum(v**2, axis=0) / max(len(v) - 1, 1)
    denominator = var_z[:, None] * var_v[None, :]
    ok = (var_z[:, None] > 1e-12) & (denominator > 0)
    return np.where(ok, cov**2 / np.where(ok, denominator, 1.0), 0.0)


def _svc_accuracy(x_train, y_train, x_test, y_test, c, seed):
    if len(np.unique(y_train)) < 2:
        return float(np.mean(y_test == y_train[0]))
    with quiet_sklearn():
        model = LinearSVC(C=c, class_weight="balanced", random_state=seed)
        model.fit(x_train[:, None], y_train)
    return float(np.mean(model.predict(x_test[:, None]) == y_test))


def sap(data, representation_fn, rng=None, *, num_train: int = 10_000, num_test: int = 5_000,
        continuous_factors: bool = False, C: float = 0.01,
        n_jobs: int | None = None) -> dict[str, float]:
    """{"sap"}.

    Args:
      continuous_factors: use the R² matrix instead of classification accuracies.
      C: the LinearSVC's regularisation (0.01).
      n_jobs: threads for the d × K classifiers (None: one per CPU core); no effect on results.
    """
    if num_train < 2 or (not continuous_factors and num_test < 1):
        raise ValueError("num_train must be at least 2 and num_test positive")
    reps = representations_for(data, representation_fn)
    rng = as_rng(rng)
    active = active_factors(data)
    (f_train, c_train), (f_test, c_test) = sample_iid(data, reps, rng, num_train, num_test)
    c_train = np.asarray(c_train, np.float64)
    if continuous_factors:
        return {"sap": sap_from_matrix(r2_matrix(c_train, f_train[:, active]))}
    c_test = np.asarray(c_test, np.float64)
    pairs = [(i, j) for i in range(c_train.shape[1]) for j in range(len(active))]
    seeds = rng.integers(0, 2**31 - 1, size=len(pairs))
    jobs = [(c_train[:, i], f_train[:, active[j]], c_test[:, i], f_test[:, active[j]], C, s)
            for (i, j), s in zip(pairs, seeds)]
    workers = max(1, min(len(jobs), n_jobs or os.cpu_count() or 1))
    if workers == 1:
        accuracies = [_svc_accuracy(*job) for job in jobs]
    else:
        with ThreadPoolExecutor(workers) as pool:
            accuracies = list(pool.map(lambda job: _svc_accuracy(*job), jobs))
    matrix = np.array(accuracies).reshape(c_train.shape[1], len(active))
    return {"sap": sap_from_matrix(matrix)}


def _resolve_params(params: dict) -> dict:
    if params.get("continuous_factors"):
        return {k: params[k] for k in ("num_train", "continuous_factors") if k in params}
    return {k: v for k, v in params.items() if k != "n_jobs"}


sap.resolve_params = _resolve_params
