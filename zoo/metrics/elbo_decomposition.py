"""The ELBO decomposition (index-code MI, total correlation, dimension-wise KL) as a suite metric.

The estimator itself lives in `zoo.decomposition.elbo_decomposition` (METHODS §5); this module only
feeds it the shared cache: its data draw (``num_samples`` i.i.d. points from ``seed``) is the same
first draw every other metric makes, so with the default 10,000 samples it costs no extra encoding.
Needs the posterior (a zoo model, or a function returning {"mean", "logvar"}).
"""

from __future__ import annotations

import numbers

from zoo.metrics.core import representations_for, seed_from

__all__ = ["elbo_decomposition"]


class _FactorsAsObservations:
    """Looks like the data set to `zoo.decomposition`, but its "images" are the factor arrays, which
    the posterior function below turns into cached posteriors."""

    def __init__(self, reps):
        self._reps = reps
        self.num_combinations = reps.data.num_combinations
        self.data_source = reps.data.data_source

    def sample(self, n, rng):
        factors = self._reps.data.sample_factors(n, rng)
        return factors, factors

    def posterior(self, factors):
        return self._reps.posterior(factors)


def elbo_decomposition(data, representation_fn, rng=None, *, num_samples: int = 10_000,
                       estimator: str = "mss") -> dict[str, float]:
    """{"index_code_mi", "total_correlation", "dimension_wise_kl", "kl_monte_carlo", "kl"} in nats
    (see `zoo.decomposition.elbo_decomposition`; ``rng`` must be an int seed or a generator)."""
    from zoo.decomposition import elbo_decomposition as _decompose

    reps = representations_for(data, representation_fn)
    if not reps.has_posterior:
        raise ValueError("the ELBO decomposition needs the posterior: the representation function "
                         "must return {'mean', 'logvar'} (a zoo model does)")
    seed = int(rng) if isinstance(rng, numbers.Integral) else seed_from(rng)
    proxy = _FactorsAsObservations(reps)
    result = _decompose(proxy, proxy.posterior, num_samples=int(num_samples), seed=seed,
                        estimator=estimator, batch_size=int(num_samples))
    keys = ("index_code_mi", "total_correlation", "dimension_wise_kl", "kl_monte_carlo", "kl")
    return {k: float(result[k]) for k in keys}
