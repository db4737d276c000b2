"""Disentanglement metrics (docs/methods.md §16): one module per metric, a registry, and `evaluate`.

    >>> from zoo import data, metrics, models
    >>> dsprites = data.get("dsprites")
    >>> model = models.load("runs/beta_vae/model.keras")
    >>> result = metrics.evaluate(dsprites, model, metrics="all", seed=0)
    >>> result["metrics"]["mig"]["values"]
    {'mig': 0.12...}
    >>> metrics.mig(dsprites, model, rng=0, num_train=1000)      # one metric on its own

Every metric is a pure function ``metric(data, representation_fn, rng=None, **params)`` returning
a dict of named floats (`zoo.metrics.core` describes representation functions). `evaluate` runs a
set of them over one shared :class:`~zoo.metrics.core.Representations` cache, so the whole suite
encodes each factor combination at most once, and records parameters, wall times and how many
observations each metric had to encode.

The default suite (``metrics="all"``) is every metric of :data:`DEFAULT_SUITE` plus those whose
inputs the representation provides: ``unsupervised_accuracy`` (a discrete code) and
``elbo_decomposition`` (a posterior). ``factor_vae_score_cascade`` (the CascadeVAE protocol) and
``udr`` (several models: pass ``udr={"others": [model, ...]}``) run only when asked for.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
import time
from collections.abc import Callable, Sequence

import numpy as np

from zoo.checks import check_int
from zoo.key_values import parse_key_values
from zoo.metrics.beta_vae_score import beta_vae_score
from zoo.metrics.core import (
    ModelRepresentation,
    Representations,
    as_representation_fn,
    representations_for,
)
from zoo.metrics.dci import dci, disentanglement_completeness
from zoo.metrics.elbo_decomposition import elbo_decomposition
from zoo.metrics.factor_vae_score import factor_vae_score
from zoo.metrics.gaussian_tc import (
    gaussian_total_correlation,
    total_correlation_of_codes,
)
from zoo.metrics.hoyer import hoyer, hoyer_sparsity
from zoo.metrics.mig import mig
from zoo.metrics.modularity_explicitness import modularity, modularity_explicitness
from zoo.metrics.sap import sap
from zoo.metrics.udr import udr, udr_scores
from zoo.metrics.unsupervised_accuracy import hungarian_accuracy, unsupervised_accuracy

__all__ = [
    "DEFAULT_SUITE",
    "METRICS",
    "Metric",
    "ModelRepresentation",
    "Representations",
    "as_representation_fn",
    "beta_vae_score",
    "dci",
    "disentanglement_completeness",
    "elbo_decomposition",
    "evaluate",
    "factor_vae_score",
    "flatten",
    "format_table",
    "gaussian_total_correlation",
    "hoyer",
    "hoyer_sparsity",
    "hungarian_accuracy",
    "mig",
    "modularity",
    "modularity_explicitness",
    "parse_metric_args",
    "representations_for",
    "resolve_metric_names",
    "sap",
    "total_correlation_of_codes",
    "udr",
    "udr_scores",
    "unsupervised_accuracy",
]


def _factor_vae_score_cascade(data, representation_fn, rng=None, *, batch_size: int = 100,
                              votes_per_factor: int = 160, kl_threshold: float | None = 0.1,
                              normalize_over: int | None = None, discrete_columns=None):
    """The FactorVAE score with the CascadeVAE protocol (see `factor_vae_score`)."""
    return factor_vae_score(data, representation_fn, rng, protocol="cascade_vae",
                            batch_size=batch_size, votes_per_factor=votes_per_factor,
                            kl_threshold=kl_threshold, normalize_over=normalize_over,
                            discrete_columns=discrete_columns)


def _udr_of_first(data, representation_fn, rng=None, *, others: Sequence = (),
                  num_points: int = 1_000, correlation: str = "spearman",
                  kl_threshold: float = 0.01, alpha: float = 0.1):
    """UDR of ``representation_fn`` among ``others`` (same hyperparameters, other seeds):
    {"udr": its score, "udr_mean": the mean over all the models}."""
    scores = udr(data, [representation_fn, *others], rng, num_points=num_points,
                 correlation=correlation, kl_threshold=kl_threshold, alpha=alpha)
    return {"udr": scores["model_0"], "udr_mean": scores["udr"]}


@dataclasses.dataclass(frozen=True)
class Metric:
    """A registry entry: the function, whether ``"all"`` includes it, and what it needs from the
    representation ("posterior", "discrete" or "others")."""

    fn: Callable
    default: bool = True
    needs: str | None = None


METRICS: dict[str, Metric] = {
    "beta_vae_score": Metric(beta_vae_score),
    "factor_vae_score": Metric(factor_vae_score),
    "mig": Metric(mig),
    "dci": Metric(dci),
    "sap": Metric(sap),
    "modularity_explicitness": Metric(modularity_explicitness),
    "hoyer_sparsity": Metric(hoyer_sparsity),
    "gaussian_total_correlation": Metric(gaussian_total_correlation),
    "unsupervised_accuracy": Metric(unsupervised_accuracy, needs="discrete"),
    "elbo_decomposition": Metric(elbo_decomposition, needs="posterior"),
    "factor_vae_score_cascade": Metric(_factor_vae_score_cascade, default=False),
    "udr": Metric(_udr_of_first, default=False, needs="others"),
}

#: The metrics ``"all"`` always runs (plus unsupervised_accuracy / elbo_decomposition when the
#: representation has a discrete code / a posterior).
DEFAULT_SUITE = tuple(name for name, m in METRICS.items() if m.default and m.needs is None)


def resolve_metric_names(metrics="all") -> list[str]:
    """``"all"``, a comma-separated string or a list of names → a list of registry names
    (``"all"`` inside a list expands too)."""
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    names = []
    for name in metrics:
        expanded = [n for n, m in METRICS.items() if m.default] if name == "all" else [name]
        for n in expanded:
            if n not in METRICS:
                raise ValueError(f"unknown metric {n!r}; known metrics: {', '.join(METRICS)}")
            if n not in names:
                names.append(n)
    return names


def _keyword_defaults(fn) -> dict:
    return {name: p.default for name, p in inspect.signature(fn).parameters.items()
            if p.kind == p.KEYWORD_ONLY}


def check_metric_params(metrics, params: dict, common: dict | None = None) -> None:
    """Refuse metric parameters that are typos, naming the accepted ones: a per-metric parameter
    its metric does not have, or a common one (``num_trian=500``) that no metric has (a common
    parameter of a metric not selected is fine: one list serves several selections)."""
    resolve_metric_names(metrics)  # refuses unknown metric names
    unknown = set(params) - set(METRICS)
    if unknown:
        raise ValueError(f"parameters for unknown metrics {sorted(unknown)}")
    for name, overrides in params.items():
        defaults = _keyword_defaults(METRICS[name].fn)
        bad = set(overrides or {}) - set(defaults)
        if bad:
            raise ValueError(f"{name} has no parameter(s) {sorted(bad)}; it takes "
                             f"{sorted(defaults)}")
    accepted = set().union(*(_keyword_defaults(m.fn) for m in METRICS.values()))
    stray = set(common or {}) - accepted
    if stray:
        raise ValueError(f"no metric takes the parameter(s) {sorted(stray)}; metric parameters "
                         f"are {sorted(accepted)} (scope one to a metric as metric.name=value)")


def _jsonable(value):
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (str, bool, numbers.Number)):
        return value
    return repr(value)


def parse_metric_args(pairs: Sequence[str]) -> tuple[dict, dict]:
    """["mig.num_bins=10", "num_train=1000"] → (per-metric {"mig": {"num_bins": 10}}, common
    {"num_train": 1000}); values are read as JSON when they can be ("null" → None), as
    `zoo.key_values` reads every key=value argument."""
    per_metric: dict[str, dict] = {}
    common: dict = {}
    for key, parsed in parse_key_values(pairs, "a metric argument").items():
        metric, dot, name = key.rpartition(".")
        if dot:
            if metric not in METRICS:
                raise ValueError(f"unknown metric {metric!r} in the metric argument {key!r}")
            per_metric.setdefault(metric, {})[name] = parsed
        else:
            common[name] = parsed
    return per_metric, common


def _needs_met(metric: Metric, reps: Representations, kwargs: dict):
    """None if the metric can run, else the reason it is skipped."""
    if metric.needs == "posterior" and not reps.has_posterior:
        return "the representation has no posterior (mean, logvar)"
    if metric.needs == "discrete" and not (reps.discrete_columns or kwargs.get("discrete_columns")
                                           is not None):
        try:
            reps.category(reps.data.sample_factors(1, 0))
        except ValueError:
            return "the representation has no discrete code"
    if metric.needs == "discrete" and "shape" not in reps.data.factor_names and \
            kwargs.get("factor") is None:
        return "no factor named 'shape' to match the discrete code against (give factor=...)"
    if metric.needs == "others" and not kwargs.get("others"):
        return "UDR needs other models (udr={'others': [...]}: same hyperparameters, other seeds)"
    return None


def evaluate(data, representation_fn, metrics="all", seed: int = 0, *, common: dict | None = None,
             cache: bool = True, batch_size: int = 1024, log: Callable[[str], None] | None = None,
             **params) -> dict:
    """Run a set of metrics over one shared representation cache.

    Args:
      data: the ground-truth data set.
      representation_fn: a zoo model, a representation function, or a `Representations` of data.
      metrics: "all", a comma-separated string or a list of registry names (:data:`METRICS`).
      seed: every metric gets this seed (so they draw the same i.i.d. points, encoded once).
      common: keyword parameters for every metric that accepts them (e.g. {"num_train": 1000}).
      cache: False for data sets with observation noise (see `zoo.metrics.core`).
      batch_size: images per encoder pass when wrapping a model.
      log: called with a line of progress per metric (e.g. print).
      **params: per-metric keyword parameters, e.g. ``mig={"estimator": "sampled"}``.
    Returns:
      {"metrics": {name: {"values", "params", "wall_time_s", "cpu_time_s",
       "observations_encoded"}}, "skipped": {name: reason}, "seed", "data_source",
       "encoding": cache counters, "wall_time_s", "cpu_time_s"}. A metric's times include
       encoding the observations it was the first to need; cpu_time_s is the process CPU time
       (all threads), less sensitive than wall time to other jobs on the machine. Explicitly requested metrics that cannot run raise ValueError;
       the optional members of "all" are skipped with a reason.
    """
    seed = check_int("seed", seed, 0)
    names = resolve_metric_names(metrics)
    requested = ([m.strip() for m in metrics.split(",")] if isinstance(metrics, str)
                 else list(metrics))
    explicit = {m for m in requested if m and m != "all"}
    check_metric_params(names, params, common)
    reps = representations_for(data, representation_fn, cache=cache, batch_size=batch_size)
    started, cpu_started = time.perf_counter(), time.process_time()
    results, skipped = {}, {}
    for name in names:
        metric = METRICS[name]
        defaults = _keyword_defaults(metric.fn)
        overrides = dict(params.get(name) or {})
        kwargs = {k: v for k, v in (common or {}).items() if k in defaults}
        kwargs.update(overrides)
        reason = _needs_met(metric, reps, kwargs)
        if reason:
            if name in explicit:
                raise ValueError(f"cannot compute {name}: {reason}")
            skipped[name] = reason
            if log:
                log(f"{name}: skipped ({reason})")
            continue
        recorded = {**defaults, **kwargs}
        recorded.pop("others", None)
        resolve = getattr(metric.fn, "resolve_params", None)
        if resolve:
            recorded = resolve(recorded)
        encoded_before = reps.num_encoded
        t0, cpu0 = time.perf_counter(), time.process_time()
        values = metric.fn(data, reps, int(seed), **kwargs)
        elapsed = time.perf_counter() - t0
        results[name] = {"values": {k: float(v) for k, v in values.items()},
                         "params": _jsonable(recorded),
                         "wall_time_s": round(elapsed, 3),
                         "cpu_time_s": round(time.process_time() - cpu0, 3),
                         "observations_encoded": int(reps.num_encoded - encoded_before)}
        if log:
            shown = ", ".join(f"{k}={v:.4f}" for k, v in values.items())
            log(f"{name}: {shown} ({elapsed:.1f}s, "
                f"{reps.num_encoded - encoded_before} observations encoded)")
    return {"metrics": results, "skipped": skipped, "seed": int(seed),
            "data_source": getattr(data, "data_source", None), "encoding": reps.stats(),
            "wall_time_s": round(time.perf_counter() - started, 3),
            "cpu_time_s": round(time.process_time() - cpu_started, 3)}


def flatten(result: dict) -> dict[str, float]:
    """{"metric/value": float} from an `evaluate` result (for TensorBoard and tables)."""
    return {f"{name}/{key}": value for name, entry in result["metrics"].items()
            for key, value in entry["values"].items()}


def format_table(result: dict) -> str:
    """A plain-text table of an `evaluate` result: metric, value, number, seconds."""
    rows = [("metric", "value", "", "seconds")]
    for name, entry in result["metrics"].items():
        for i, (key, value) in enumerate(entry["values"].items()):
            number = f"{value:.4f}" if math.isfinite(value) else str(value)
            rows.append((name if i == 0 else "", key, number,
                         f"{entry['wall_time_s']:.1f}" if i == 0 else ""))
    for name, reason in result.get("skipped", {}).items():
        rows.append((name, "skipped", "", reason))
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    lines = []
    for i, row in enumerate(rows):
        cells = [row[c].ljust(widths[c]) if c != 2 else row[c].rjust(widths[c]) for c in range(3)]
        lines.append("  ".join(cells + [row[3]]).rstrip())
        if i == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)
