"""Modularity and explicitness (Ridgeway & Mozer 2018; docs/methods.md §16.7).

* **Modularity**, from the MI matrix m [codes, factors] of the 20-bin discretised codes of
  ``num_train`` i.i.d. points (as in MIG): for each code i with θ_i = max_j m_ij,
  δ_i = (Σ_j m_ij² − θ_i²) / (θ_i² (K − 1)) and modularity_i = 1 − δ_i (0 for a code with no MI at
  all; 1 when K = 1); modularity = mean over codes. It only asks whether each code depends on *one*
  factor, not how strongly: codes of pure noise have small, nearly equal plug-in MIs with every
  factor and so score about 0.2–0.3 rather than 0.
* **Explicitness**: codes standardised with the training points' mean and std; per factor a
  one-vs-rest scikit-learn ``LogisticRegression`` (defaults) is fit on ``num_train`` points;
  explicitness = mean over factors of the macro ROC-AUC over the factor's classes (a class counts
  when both it and other classes occur in the scored set), on the training and on ``num_test``
  test points. Each factor's own test AUC is reported too (``explicitness_test_<factor name>``):
  how linearly readable that one factor is, 0.5 for a code that holds nothing of it (e.g. the
  factor an invariant representation, VFAE's, is meant to drop).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.multiclass import OneVsRestClassifier

from zoo.data.ground_truth import as_rng
from zoo.metrics.core import (
    active_factors,
    histogram_discretize,
    mutual_information_matrix,
    quiet_sklearn,
    representations_for,
    sample_iid,
    seed_from,
    standardize,
)

__all__ = ["explicitness", "modularity", "modularity_explicitness"]


def modularity(mutual_information) -> float:
    """Ridgeway & Mozer's modularity of an MI matrix [codes, factors]."""
    m = np.asarray(mutual_information, np.float64)
    squared = m**2
    top = squared.max(axis=1)
    if m.shape[1] == 1:
        return float(np.mean(np.where(top > 0, 1.0, 0.0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (squared.sum(axis=1) - top) / (top * (m.shape[1] - 1))
    return float(np.mean(np.where(top > 0, 1.0 - delta, 0.0)))


def _macro_auc(labels, probabilities, classes):
    scores = []
    for column, c in enumerate(classes):
        positive = labels == c
        if positive.any() and not positive.all():
            scores.append(roc_auc_score(positive, probabilities[:, column]))
    return float(np.mean(scores)) if scores else 0.5


def explicitness(codes_train, y_train, codes_test, y_test, seed=0) -> tuple[float, float]:
    """(train, test) macro ROC-AUC of a one-vs-rest logistic regression for one factor."""
    classes = np.unique(y_train)
    if len(classes) < 2:
        return 1.0, 1.0
    with quiet_sklearn():
        model = OneVsRestClassifier(LogisticRegression(random_state=seed)).fit(codes_train,
                                                                               y_train)
    return (_macro_auc(y_train, model.predict_proba(codes_train), model.classes_),
            _macro_auc(y_test, model.predict_proba(codes_test), model.classes_))


def modularity_explicitness(data, representation_fn, rng=None, *, num_train: int = 10_000,
                            num_test: int = 5_000, num_bins: int = 20) -> dict[str, float]:
    """{"modularity", "explicitness_train", "explicitness_test", and "explicitness_test_<name>"
    for each active factor}."""
    if num_train < 2 or num_test < 1 or num_bins < 1:
        raise ValueError("num_train must be at least 2, num_test and num_bins positive")
    reps = representations_for(data, representation_fn)
    rng = as_rng(rng)
    active = active_factors(data)
    (f_train, c_train), (f_test, c_test) = sample_iid(data, reps, rng, num_train, num_test)
    mi = mutual_information_matrix(histogram_discretize(c_train, num_bins), f_train[:, active])
    x_train, x_test = standardize(c_train, c_test)
    seed = seed_from(rng)
    train, test = zip(*[explicitness(x_train, f_train[:, k], x_test, f_test[:, k], seed)
                        for k in active])
    names = [data.factor_names[k] for k in active]
    return {"modularity": modularity(mi), "explicitness_train": float(np.mean(train)),
            "explicitness_test": float(np.mean(test)),
            **{f"explicitness_test_{name}": float(auc) for name, auc in zip(names, test)}}
