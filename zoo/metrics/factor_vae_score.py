"""FactorVAE score (Kim & Mnih 2018), two protocols (docs/methods.md §16.2–16.3).

``protocol="disentanglement_lib"`` (default):

1. the global variance of each code over ``num_variance_estimate`` i.i.d. points (ddof 1); codes
   whose standard deviation is below ``prune_threshold`` (0.05) are pruned; if every code is
   pruned the score is 0;
2. one vote: pick a non-constant factor k uniformly, fix it at a uniform random value, draw
   ``batch_size`` (64) points, and vote (argmin over kept codes of local variance / global
   variance, k);
3. the majority-vote classifier maps each code to the factor it voted for most often; train
   accuracy on ``num_train`` (10,000) votes, eval accuracy on ``num_eval`` (5,000) fresh votes.

``protocol="cascade_vae"`` (to compare with the CascadeVAE paper's table):

* ``batch_size`` 100 images per vote, ``votes_per_factor`` 160 votes for each non-constant factor
  (800 on dSprites), the same votes for training and scoring the classifier (train = eval);
* variances (ddof 1) are normalised by the variance over the whole data set (``normalize_over=
  None``: every factor combination; an int: that many i.i.d. points), plus 1e-10 as the reference
  implementation adds;
* continuous codes are kept if their mean KL(q(z_j|x) ‖ N(0, 1)) over that set exceeds
  ``kl_threshold`` (0.1 nats; needs the posterior; ``None`` keeps every code);
* each discrete code (``discrete_columns``, or the model's declared ones) takes part as one extra
  dimension whose "variance" is the Gini index (n² − Σ_c n_c²)/(2n(n − 1)) of its values, also
  normalised by its value over the whole set. It takes part unless it is constant over that set
  (Gini 0): a constant code carries nothing, and its zero local "variance" would otherwise win
  every vote. That is CascadeVAE before its discrete stage, which the reference scores on the
  continuous codes alone. (The reference also drops a code whose probability vector is far from
  uniform, which does not apply to an argmin code);
* if no code is kept the score is 1 / (number of factors), as in the reference.
"""

from __future__ import annotations

import numpy as np

from zoo.data.ground_truth import as_rng
from zoo.metrics.core import (
    active_factors,
    gaussian_kl_per_dim,
    representations_for,
    sample_iid,
)

__all__ = ["PROTOCOLS", "factor_vae_score", "gini_index", "majority_vote_accuracy"]

PROTOCOLS = ("disentanglement_lib", "cascade_vae")
_VOTES_PER_BLOCK = 2500
#: Largest grid the CascadeVAE protocol encodes whole by default (normalize_over=None).
MAX_WHOLE_GRID = 2_000_000


def majority_vote_accuracy(train_votes, eval_votes=None) -> tuple[float, float]:
    """Accuracy of the majority-vote classifier fit on ``train_votes`` [codes, factors], on the
    train votes and on ``eval_votes`` (default: the same votes)."""
    train_votes = np.asarray(train_votes)
    eval_votes = train_votes if eval_votes is None else np.asarray(eval_votes)
    winner = np.argmax(train_votes, axis=1)
    rows = np.arange(len(winner))
    train = train_votes[rows, winner].sum() / max(train_votes.sum(), 1)
    evaluation = eval_votes[rows, winner].sum() / max(eval_votes.sum(), 1)
    return float(train), float(evaluation)


def gini_index(values, axis=-1) -> np.ndarray:
    """Gini index (n² − Σ_c n_c²)/(2n(n − 1)) of integer values along ``axis`` (n ≥ 2)."""
    values = np.moveaxis(np.asarray(values, np.int64), axis, -1)
    n = values.shape[-1]
    if n < 2:
        raise ValueError("the Gini index needs at least two values")
    lead = values.shape[:-1]
    flat = values.reshape(-1, n)
    flat = flat - flat.min()
    width = int(flat.max()) + 1
    counts = np.bincount((np.arange(len(flat))[:, None] * width + flat).ravel(),
                         minlength=len(flat) * width).reshape(len(flat), width)
    gini = (n * n - np.sum(counts.astype(np.float64) ** 2, axis=1)) / (2.0 * n * (n - 1))
    return gini.reshape(lead)


def _fixed_factor_batches(data, rng, factor, values, batch_size):
    """Factors [len(values), batch_size, K] with column ``factor`` fixed per batch."""
    n = len(values)
    factors = data.sample_factors(n * batch_size, rng).reshape(n, batch_size, -1)
    factors[np.arange(n), :, np.broadcast_to(np.asarray(factor), (n,))] = values[:, None]
    return factors


def _dlib_votes(data, reps, rng, num_votes, batch_size, active, kept, global_var):
    votes = np.zeros((len(kept), len(active)), np.int64)
    positions = rng.integers(0, len(active), size=num_votes)
    sizes = np.asarray(data.factor_sizes)
    for start in range(0, num_votes, _VOTES_PER_BLOCK):
        p = positions[start:start + _VOTES_PER_BLOCK]
        k = active[p]
        values = rng.integers(0, sizes[k])
        factors = _fixed_factor_batches(data, rng, k, values, batch_size)
        codes = reps(factors)[..., kept].astype(np.float64)
        local = np.var(codes, axis=1, ddof=1)
        winner = np.argmin(local / global_var[kept], axis=1)
        np.add.at(votes, (winner, p), 1)
    return votes


def _disentanglement_lib(data, reps, rng, batch_size, num_train, num_eval,
                         num_variance_estimate, prune_threshold):
    active = active_factors(data)
    [(_, codes)] = sample_iid(data, reps, rng, num_variance_estimate)
    global_var = np.var(np.asarray(codes, np.float64), axis=0, ddof=1)
    kept = np.flatnonzero(np.sqrt(global_var) >= prune_threshold)
    if not len(kept):
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0.0}
    train_votes = _dlib_votes(data, reps, rng, num_train, batch_size, active, kept, global_var)
    eval_votes = _dlib_votes(data, reps, rng, num_eval, batch_size, active, kept, global_var)
    train, evaluation = majority_vote_accuracy(train_votes, eval_votes)
    return {"train_accuracy": train, "eval_accuracy": evaluation,
            "num_active_dims": float(len(kept))}


def _normalisation_factors(data, rng, normalize_over):
    if normalize_over is None:
        if data.num_combinations > MAX_WHOLE_GRID:
            raise ValueError(
                f"the data set has {data.num_combinations} factor combinations; pass "
                "normalize_over=<number of i.i.d. points> instead of the whole data set")
        return data.factors_of(np.arange(data.num_combinations, dtype=np.int64))
    return data.sample_factors(int(normalize_over), rng)


def _cascade_vae(data, reps, rng, batch_size, votes_per_factor, kl_threshold, normalize_over,
                 discrete_columns):
    active = active_factors(data)
    if discrete_columns is None:
        discrete_columns = reps.discrete_columns
    discrete_columns = tuple(int(c) for c in discrete_columns)
    num_codes = reps.num_codes
    continuous = np.array([c for c in range(num_codes) if c not in set(discrete_columns)],
                          np.int64)
    everything = _normalisation_factors(data, rng, normalize_over)
    codes = np.asarray(reps(everything), np.float64)
    if kl_threshold is None:
        kept = continuous
    else:
        mean, logvar = reps.posterior(everything)
        if mean.shape[1] != len(continuous):
            raise ValueError(f"the posterior has {mean.shape[1]} dimensions but the codes have "
                             f"{len(continuous)} continuous columns")
        kl = gaussian_kl_per_dim(mean, logvar).mean(axis=0)
        kept = continuous[kl > kl_threshold]
    disc_var = (gini_index(np.rint(codes[:, list(discrete_columns)]).astype(np.int64), axis=0)
                if discrete_columns else np.zeros(0))
    discrete = [c for c, gini in zip(discrete_columns, disc_var) if gini > 0]
    disc_var = disc_var[disc_var > 0]
    if not len(kept) and not discrete:
        chance = 1.0 / len(active)
        return {"train_accuracy": chance, "eval_accuracy": chance, "num_active_dims": 0.0}
    cont_var = np.var(codes[:, kept], axis=0, ddof=1) if len(kept) else np.zeros(0)
    normaliser = np.concatenate([cont_var, disc_var]) + 1e-10
    sizes = np.asarray(data.factor_sizes)
    votes = np.zeros((len(normaliser), len(active)), np.int64)
    for p, k in enumerate(active):
        values = rng.integers(0, sizes[k], size=votes_per_factor)
        factors = _fixed_factor_batches(data, rng, np.full(votes_per_factor, k), values,
                                        batch_size)
        batch = np.asarray(reps(factors), np.float64)  # [V, B, d]
        parts = []
        if len(kept):
            parts.append(np.var(batch[..., kept], axis=1, ddof=1))
        if discrete:
            parts.append(gini_index(np.rint(batch[..., discrete]).astype(np.int64), axis=1))
        winner = np.argmin(np.concatenate(parts, axis=1) / normaliser, axis=1)
        np.add.at(votes, (winner, p), 1)
    accuracy, _ = majority_vote_accuracy(votes)
    return {"train_accuracy": accuracy, "eval_accuracy": accuracy,
            "num_active_dims": float(len(normaliser))}


def factor_vae_score(data, representation_fn, rng=None, *, protocol: str = "disentanglement_lib",
                     batch_size: int | None = None, num_train: int = 10_000,
                     num_eval: int = 5_000, num_variance_estimate: int = 10_000,
                     prune_threshold: float = 0.05, votes_per_factor: int = 160,
                     kl_threshold: float | None = 0.1, normalize_over: int | None = None,
                     discrete_columns=None) -> dict[str, float]:
    """FactorVAE score: {"train_accuracy", "eval_accuracy", "num_active_dims"}.

    Args:
      protocol: "disentanglement_lib" (default) or "cascade_vae" (see the module docstring).
      batch_size: images per vote; None → 64 (disentanglement_lib) or 100 (cascade_vae).
      num_train, num_eval, num_variance_estimate, prune_threshold: disentanglement_lib protocol.
      votes_per_factor, kl_threshold, normalize_over, discrete_columns: cascade_vae protocol.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    reps = representations_for(data, representation_fn)
    rng = as_rng(rng)
    if protocol == "disentanglement_lib":
        batch_size = 64 if batch_size is None else int(batch_size)
        if batch_size < 2 or min(num_train, num_eval, num_variance_estimate) < 2:
            raise ValueError("batch_size and the numbers of votes/points must be at least 2")
        return _disentanglement_lib(data, reps, rng, batch_size, int(num_train), int(num_eval),
                                    int(num_variance_estimate), float(prune_threshold))
    batch_size = 100 if batch_size is None else int(batch_size)
    if batch_size < 2 or votes_per_factor < 1:
        raise ValueError("batch_size must be at least 2 and votes_per_factor positive")
    return _cascade_vae(data, reps, rng, batch_size, int(votes_per_factor), kl_threshold,
                        normalize_over, discrete_columns)


def _resolve_params(params: dict) -> dict:
    """The parameters that apply to the chosen protocol, with batch_size made explicit."""
    cascade = params.get("protocol") == "cascade_vae"
    only = (("votes_per_factor", "kl_threshold", "normalize_over", "discrete_columns") if cascade
            else ("num_train", "num_eval", "num_variance_estimate", "prune_threshold"))
    out = {k: v for k, v in params.items() if k in only or k in ("protocol", "batch_size")}
    if out.get("batch_size") is None:
        out["batch_size"] = 100 if cascade else 64
    return out


factor_vae_score.resolve_params = _resolve_params
