"""The ELBO decomposition (index-code MI, total correlation, dimension-wise KL) as a suite metric.

The estimators live in `zoo.decomposition` (docs/methods.md §3); this module feeds `decompose` the posteriors
of the shared cache: its data draw (``num_samples`` i.i.d. points from ``seed``) is the same first
draw every other metric makes, so with the default 10,000 samples it costs no extra encoding.
Needs the posterior (a zoo model, or a function returning {"mean", "logvar"}).
"""

from __future__ import annotations

import numbers

import numpy as np

from zoo.metrics.core import representations_for, seed_from

__all__ = ["elbo_decomposition"]


def elbo_decomposition(data, representation_fn, rng=None, *, num_samples: int = 10_000,
                       estimator: str = "mss") -> dict[str, float]:
    """{"index_code_mi", "total_correlation", "dimension_wise_kl", "kl_monte_carlo", "kl"} in nats
    of ``num_samples`` i.i.d. points, with the data set's number of factor combinations as the
    estimators' data set size (see `zoo.decomposition`; ``rng`` must be an int seed or a
    generator)."""
    from zoo.decomposition import decompose, posterior_samples

    reps = representations_for(data, representation_fn)
    if not reps.has_posterior:
        raise ValueError("the ELBO decomposition needs the posterior: the representation function "
                         "must return {'mean', 'logvar'} (a zoo model does)")
    num_samples = int(num_samples)
    if num_samples < 2:
        raise ValueError(f"num_samples must be ≥ 2, got {num_samples}.")
    # A fresh generator from the seed: the factors drawn first are the other metrics' first draw.
    rng = np.random.default_rng(int(rng) if isinstance(rng, numbers.Integral) else seed_from(rng))
    factors = reps.data.sample_factors(num_samples, rng)
    mean, logvar = (np.asarray(a, np.float32) for a in reps.posterior(factors))
    result = decompose(mean, logvar, posterior_samples(mean, logvar, rng),
                       reps.data.num_combinations, estimator)
    keys = ("index_code_mi", "total_correlation", "dimension_wise_kl", "kl_monte_carlo", "kl")
    return {k: float(result[k]) for k in keys}
