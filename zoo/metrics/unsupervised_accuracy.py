"""Unsupervised classification accuracy of a discrete code (CascadeVAE, JointVAE, InfoGAN;
docs/methods.md §9, §16.9).

On ``num_points`` (10,000) i.i.d. points: the confusion matrix of the discrete code against the
true discrete factor, the best one-to-one map from codes to factor values by
``scipy.optimize.linear_sum_assignment`` (`zoo.assignment.match_codes`), accuracy = matched / N.
Codes beyond the number of factor values map to nothing and count as errors.
"""

from __future__ import annotations

import numpy as np

from zoo import assignment
from zoo.data.ground_truth import as_rng
from zoo.metrics.core import Representations, representations_for, sample_iid

__all__ = ["hungarian_accuracy", "unsupervised_accuracy"]


def hungarian_accuracy(codes, labels, num_labels=None) -> float:
    """Hungarian-matched accuracy of integer ``codes`` against integer ``labels``."""
    codes = np.asarray(codes).reshape(-1)
    codes = np.rint(codes).astype(np.int64)
    if codes.size:
        codes = codes - codes.min()
    return float(assignment.unsupervised_accuracy(codes, np.asarray(labels).reshape(-1),
                                                  num_labels=num_labels))


def _factor_index(data, factor):
    if factor is None:
        if "shape" not in data.factor_names:
            raise ValueError(f"say which factor the code is matched against (factor=...); the "
                             f"data set has {data.factor_names}")
        factor = "shape"
    if isinstance(factor, str):
        if factor not in data.factor_names:
            raise ValueError(f"unknown factor {factor!r}; the data set has {data.factor_names}")
        return data.factor_names.index(factor)
    factor = int(factor)
    if not 0 <= factor < data.num_factors:
        raise ValueError(f"factor index {factor} out of range for {data.factor_names}")
    return factor


def unsupervised_accuracy(data, representation_fn, rng=None, *, factor=None, code: int = 0,
                          discrete_columns=None, num_points: int = 10_000) -> dict[str, float]:
    """{"accuracy"} of discrete code ``code`` against ``factor``.

    Args:
      factor: factor name or index (None: "shape").
      code: which discrete code, for representations with several (0).
      discrete_columns: code columns holding the discrete codes, when the representation function
        does not return "category" (a zoo model's encoder does).
      num_points: i.i.d. points scored.
    """
    if num_points < 1:
        raise ValueError("num_points must be positive")
    if discrete_columns is not None and not isinstance(representation_fn, Representations):
        reps = Representations(data, representation_fn, discrete_columns=discrete_columns)
    else:
        reps = representations_for(data, representation_fn)
    rng = as_rng(rng)
    k = _factor_index(data, factor)
    [(factors, _)] = sample_iid(data, reps, rng, num_points)
    if discrete_columns is not None:
        values = np.asarray(reps(factors))[:, list(np.atleast_1d(discrete_columns))]
        if not np.allclose(values, np.rint(values)):
            raise ValueError(f"discrete_columns {discrete_columns} hold non-integer values")
        category = np.rint(values).astype(np.int64)
    else:
        category = reps.category(factors)
    if not 0 <= code < category.shape[1]:
        raise ValueError(f"code {code} out of range: the representation has "
                         f"{category.shape[1]} discrete code(s)")
    return {"accuracy": hungarian_accuracy(category[:, code], factors[:, k],
                                           num_labels=data.factor_sizes[k])}
