"""BetaVAE score (Higgins et al. 2017), disentanglement_lib's protocol (docs/methods.md §16.1).

One point: pick a (non-constant) factor k uniformly; draw ``batch_size`` pairs of factor vectors
that agree on factor k and are otherwise independent; the point's feature is the mean over the
pairs of |r(x₁) − r(x₂)| (one value per code) and its label is k. A scikit-learn
``LogisticRegression`` (defaults; ``random_state`` drawn from ``rng``) is fit on ``num_train``
points and scored on ``num_eval`` fresh points. The classifier is regularised, so the score
depends on the scale of the codes (a rescaled representation can score slightly differently).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from zoo.data.ground_truth import as_rng
from zoo.metrics.core import (
    active_factors,
    quiet_sklearn,
    representations_for,
    seed_from,
)

__all__ = ["beta_vae_score"]

_POINTS_PER_BLOCK = 2500


def _points(data, reps, rng, num_points, batch_size, active):
    """Features [num_points, d] and labels [num_points] (factor indices)."""
    labels = rng.choice(active, size=num_points)
    features = []
    for start in range(0, num_points, _POINTS_PER_BLOCK):
        k = labels[start:start + _POINTS_PER_BLOCK]
        n = len(k)
        first = data.sample_factors(n * batch_size, rng).reshape(n, batch_size, -1)
        second = data.sample_factors(n * batch_size, rng).reshape(n, batch_size, -1)
        rows = np.arange(n)
        second[rows, :, k] = first[rows, :, k]
        codes = reps(np.stack([first, second], axis=1)).astype(np.float64)  # [n, 2, B, d]
        features.append(np.mean(np.abs(codes[:, 0] - codes[:, 1]), axis=1))
    return np.concatenate(features), labels


def beta_vae_score(data, representation_fn, rng=None, *, batch_size: int = 64,
                   num_train: int = 10_000, num_eval: int = 5_000) -> dict[str, float]:
    """Train and eval accuracy of the BetaVAE-score classifier.

    Args:
      data: ground-truth data set.
      representation_fn: observations → codes (or a `zoo.metrics.Representations`).
      rng: seed or generator.
      batch_size: pairs averaged into one point (64).
      num_train, num_eval: points for training and scoring the classifier (10,000 / 5,000).
    Returns:
      {"train_accuracy", "eval_accuracy"}.
    """
    if batch_size < 1 or num_train < 1 or num_eval < 1:
        raise ValueError("batch_size, num_train and num_eval must be positive")
    reps = representations_for(data, representation_fn)
    rng = as_rng(rng)
    active = active_factors(data)
    x_train, y_train = _points(data, reps, rng, int(num_train), int(batch_size), active)
    x_eval, y_eval = _points(data, reps, rng, int(num_eval), int(batch_size), active)
    seed = seed_from(rng)
    if len(np.unique(y_train)) < 2:
        # One class only (a single non-constant factor): the classifier is a constant.
        label = y_train[0]
        return {"train_accuracy": 1.0, "eval_accuracy": float(np.mean(y_eval == label))}
    with quiet_sklearn():
        model = LogisticRegression(random_state=seed).fit(x_train, y_train)
    return {"train_accuracy": float(model.score(x_train, y_train)),
            "eval_accuracy": float(model.score(x_eval, y_eval))}
