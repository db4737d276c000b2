"""Discrete-code assignment and Hungarian-matched unsupervised accuracy (docs/methods.md §9).

The inner problem of CascadeVAE's alternating step: given unary costs u[i, k] (the negative
log-likelihood of sample i under category k) and a pair penalty λ' ≥ 0, choose one category a_i per
sample to minimise

    Σ_i u[i, a_i] + λ'·Σ_k n_k(n_k − 1)/2,        n_k = #{i : a_i = k},

i.e. λ' per unordered pair of samples put in the same category. The pair term is convex in n_k, so
the problem is a minimum-cost flow and is solved exactly in polynomial time:

    source → sample i   (capacity 1, cost 0)
    sample i → category k   (capacity 1, cost u[i, k])
    category k → sink   through n parallel unit arcs with costs 0, λ', 2λ', …

Two exact solvers, both taking a (batch × S) cost matrix and λ' and returning the one-hot
assignment and the objective:

- ``"min_cost_flow"``: OR-Tools' `SimpleMinCostFlow` (``ortools.graph.python.min_cost_flow``).
  Its arc costs are integers; costs are shifted per row (which changes the objective by a constant
  only) and scaled so that the largest arc cost is about 2^40 before rounding, i.e. a resolution of
  ~1e-12 of the cost range (the reference implementation scales by 1e4 and truncates). The objective
  returned is always recomputed from the real-valued costs.
- ``"linear_sum_assignment"``: scipy's rectangular assignment on a matrix in which category k is
  replicated into n slots, the t-th slot costing u[i, k] + t·λ'. Filling a category's slots in order
  costs λ'·(0 + 1 + … + (n_k − 1)) = λ'·n_k(n_k − 1)/2, so its optimum is the same.

``"auto"`` picks OR-Tools when it is installed and the scipy fallback otherwise. Tie-breaks may
differ between the solvers; the optimal objective may not.

The unsupervised classification accuracy matches a discrete code to a ground-truth factor with the
best one-to-one map (the Hungarian algorithm on the confusion matrix).
"""
import numpy as np
from scipy import optimize

SOLVERS = ("min_cost_flow", "linear_sum_assignment")

try:  # OR-Tools is the `solvers` extra; the scipy fallback needs nothing beyond the core install.
    from ortools.graph.python import min_cost_flow as _ortools_min_cost_flow
except ImportError:  # pragma: no cover - depends on the environment
    _ortools_min_cost_flow = None

#: largest integer arc cost handed to OR-Tools (its cost-scaling algorithm multiplies costs by the
#: number of nodes, so this leaves room below int64's limit for millions of nodes).
_MAX_INTEGER_COST = 2**40


def ortools_available():
    """Whether OR-Tools' min-cost flow can be imported."""
    return _ortools_min_cost_flow is not None


def resolve_solver(solver="auto"):
    """The concrete solver name for `solver` ("auto", "min_cost_flow" or "linear_sum_assignment")."""
    if solver == "auto":
        return "min_cost_flow" if ortools_available() else "linear_sum_assignment"
    if solver not in SOLVERS:
        raise ValueError(f"Unknown assignment solver {solver!r}; expected 'auto' or one of "
                         f"{SOLVERS}.")
    if solver == "min_cost_flow" and not ortools_available():
        raise ImportError("The 'min_cost_flow' solver needs OR-Tools (pip install "
                          "'disentanglement-zoo[solvers]'); 'linear_sum_assignment' needs only "
                          "scipy.")
    return solver


def _check_problem(costs, lambda_prime):
    costs = np.asarray(costs, dtype=np.float64)
    if costs.ndim != 2 or costs.shape[1] < 1:
        raise ValueError(f"costs must be a (batch, categories) matrix, got shape {costs.shape}.")
    if not np.all(np.isfinite(costs)):
        raise ValueError("costs contain NaN or infinite values.")
    lambda_prime = float(lambda_prime)
    if not np.isfinite(lambda_prime) or lambda_prime < 0:
        raise ValueError(f"lambda_prime must be a finite number ≥ 0 (the pair penalty must be "
                         f"convex), got {lambda_prime!r}.")
    return costs, lambda_prime


def assignment_objective(costs, labels, lambda_prime):
    """Σ_i costs[i, labels[i]] + λ'·Σ_k n_k(n_k − 1)/2 for an assignment given as indices."""
    costs = np.asarray(costs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=costs.shape[1]).astype(np.float64)
    unary = costs[np.arange(len(labels)), labels].sum()
    return float(unary + float(lambda_prime) * np.sum(counts * (counts - 1) / 2))


def _labels_min_cost_flow(costs, lambda_prime):
    n, s = costs.shape
    shifted = costs - costs.min(axis=1, keepdims=True)  # a constant per row: same optimum
    pair_steps = lambda_prime * np.arange(n, dtype=np.float64)  # t·λ', t = 0 … n−1
    largest = max(float(shifted.max()), float(pair_steps[-1]))
    scale = _MAX_INTEGER_COST / largest if largest > 0 else 1.0
    source, sink = 0, n + s + 1
    samples = np.arange(1, n + 1, dtype=np.int32)
    categories = np.arange(n + 1, n + s + 1, dtype=np.int32)
    tails = np.concatenate([np.full(n, source, np.int32), np.repeat(samples, s),
                            np.repeat(categories, n)])
    heads = np.concatenate([samples, np.tile(categories, n), np.full(n * s, sink, np.int32)])
    unit_costs = np.concatenate([
        np.zeros(n), np.rint(shifted * scale).ravel(), np.tile(np.rint(pair_steps * scale), s)])
    flow = _ortools_min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(tails, heads, np.ones(len(tails), np.int64),
                                              unit_costs.astype(np.int64))
    supplies = np.zeros(n + s + 2, np.int64)
    supplies[source], supplies[sink] = n, -n
    flow.set_nodes_supplies(np.arange(n + s + 2, dtype=np.int32), supplies)
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"OR-Tools min-cost flow did not find the optimum (status {status}).")
    sample_arcs = np.arange(n, n + n * s, dtype=np.int32)
    used = flow.flows(sample_arcs).reshape(n, s)
    return np.argmax(used, axis=1)


def _labels_linear_sum_assignment(costs, lambda_prime):
    n, s = costs.shape
    # Column k·n + t is the t-th slot of category k, costing u[i, k] + t·λ'.
    slots = costs[:, :, None] + lambda_prime * np.arange(n, dtype=np.float64)[None, None, :]
    _, columns = optimize.linear_sum_assignment(slots.reshape(n, s * n))
    return columns // n


def assign_labels(costs, lambda_prime, solver="auto"):
    """Optimal category index per row, int64 [batch] (see the module docstring)."""
    costs, lambda_prime = _check_problem(costs, lambda_prime)
    if costs.shape[0] == 0:
        return np.zeros(0, np.int64)
    if resolve_solver(solver) == "min_cost_flow":
        return _labels_min_cost_flow(costs, lambda_prime).astype(np.int64)
    return _labels_linear_sum_assignment(costs, lambda_prime).astype(np.int64)


def solve_assignment(costs, lambda_prime, solver="auto"):
    """Solve the inner problem exactly.

    Args:
      costs: (batch, S) unary costs u[i, k] (smaller is better; CascadeVAE uses −log p).
      lambda_prime: λ' ≥ 0, the penalty per unordered pair of samples in the same category.
      solver: "auto", "min_cost_flow" (OR-Tools) or "linear_sum_assignment" (scipy).
    Returns:
      (one_hot, objective): float32 (batch, S) one-hot rows and the optimal objective value.
    """
    costs, lambda_prime = _check_problem(costs, lambda_prime)
    labels = assign_labels(costs, lambda_prime, solver)
    one_hot = np.zeros(costs.shape, np.float32)
    one_hot[np.arange(len(labels)), labels] = 1.0
    return one_hot, assignment_objective(costs, labels, lambda_prime)


# --------------------------------------------------------------------------------------------------
# Unsupervised classification accuracy
# --------------------------------------------------------------------------------------------------
def confusion_matrix(codes, labels, num_codes=None, num_labels=None):
    """Counts C[c, l] of samples with discrete code c and true label l (non-negative ints)."""
    codes = np.asarray(codes).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    if codes.shape != labels.shape:
        raise ValueError(f"codes and labels differ in length: {codes.shape[0]} vs "
                         f"{labels.shape[0]}.")
    for name, values in (("codes", codes), ("labels", labels)):
        if values.size and (values.min() < 0 or not np.all(np.mod(values, 1) == 0)):
            raise ValueError(f"{name} must be non-negative integers.")
    codes, labels = codes.astype(np.int64), labels.astype(np.int64)
    num_codes = int(num_codes or (codes.max() + 1 if codes.size else 1))
    num_labels = int(num_labels or (labels.max() + 1 if labels.size else 1))
    matrix = np.zeros((num_codes, num_labels), np.int64)
    np.add.at(matrix, (codes, labels), 1)
    return matrix


def match_codes(codes, labels, num_codes=None, num_labels=None):
    """Best one-to-one map from discrete codes to true labels (Hungarian on the confusion matrix).

    Returns a dict: accuracy = matched samples / N; mapping {code: label}; the confusion matrix
    (rows: codes, columns: labels). With more codes than labels, the extra codes map to nothing and
    their samples count as errors (and vice versa).
    """
    matrix = confusion_matrix(codes, labels, num_codes, num_labels)
    total = int(matrix.sum())
    if total == 0:
        raise ValueError("No samples to score.")
    rows, columns = optimize.linear_sum_assignment(matrix, maximize=True)
    return {"accuracy": float(matrix[rows, columns].sum() / total),
            "mapping": {int(r): int(c) for r, c in zip(rows, columns)},
            "confusion": matrix}


def unsupervised_accuracy(codes, labels, num_codes=None, num_labels=None):
    """Hungarian-matched classification accuracy of a discrete code against true labels."""
    return match_codes(codes, labels, num_codes, num_labels)["accuracy"]


def factor_index(data, factor):
    """The index of `factor` (a name, or an index as int or digit string) in `data`'s factors."""
    if isinstance(factor, str) and not factor.isdigit():
        if factor not in data.factor_names:
            raise ValueError(f"Unknown factor {factor!r}; the data set has {data.factor_names}.")
        return list(data.factor_names).index(factor)
    return int(factor)


def code_information(data, code_fn, num_samples=10_000, rng=0, batch_size=256):
    """{factor name: MI(code; factor) / H(code)} on i.i.d. samples: which factor a discrete code
    follows (0 for a constant code)."""
    from sklearn.metrics import mutual_info_score

    from zoo.data import as_rng
    factors, images = data.sample(int(num_samples), as_rng(rng))
    codes = np.concatenate([np.asarray(code_fn(images[i:i + batch_size])).reshape(-1)
                            for i in range(0, len(images), batch_size)])
    entropy = mutual_info_score(codes, codes)
    return {name: float(mutual_info_score(codes, factors[:, k]) / entropy) if entropy else 0.0
            for k, name in enumerate(data.factor_names)}


def latent_information(data, mean_fn, num_samples=10_000, rng=0, batch_size=256, num_bins=20):
    """[{factor name: MI(μ_j; factor) / H(factor)} for each continuous latent j] on i.i.d. samples:
    the share of each factor's entropy a continuous latent holds, with μ_j in `num_bins` histogram
    bins (MIG's discretised estimator). Shows when a continuous latent has taken the factor a
    discrete code was meant to find."""
    from zoo.data import as_rng
    from zoo.metrics import core
    factors, images = data.sample(int(num_samples), as_rng(rng))
    means = np.concatenate([np.asarray(mean_fn(images[i:i + batch_size]))
                            for i in range(0, len(images), batch_size)])
    information = core.mutual_information_matrix(core.histogram_discretize(means, num_bins),
                                                 factors)
    entropy = core.discrete_entropy(factors)
    return [{name: float(row[k] / entropy[k]) if entropy[k] else 0.0
             for k, name in enumerate(data.factor_names)} for row in information]


def code_sweep(data, code_fn, factor, swept, bases=2, rng=0):
    """At `bases` random combinations: {value of `factor`: the code along every value of `swept`,
    as a string of category indices}, e.g. a code that follows orientation shows each shape's
    rotational period."""
    from zoo.data import as_rng
    factor, swept = factor_index(data, factor), factor_index(data, swept)
    out = []
    for base in data.sample_factors(int(bases), as_rng(rng)):
        rows = {}
        for value in range(data.factor_sizes[factor]):
            grid = np.tile(base, (data.factor_sizes[swept], 1))
            grid[:, factor] = value
            grid[:, swept] = np.arange(data.factor_sizes[swept])
            codes = np.asarray(code_fn(data.images_from_factors(grid))).reshape(-1)
            rows[str(value)] = "".join(str(int(c)) for c in codes)
        out.append({"base": base.tolist(), "codes_along_" + data.factor_names[swept]: rows})
    return out


def discrete_code_accuracy(data, code_fn, factor=0, num_samples=10_000, rng=0, batch_size=256):
    """Unsupervised accuracy of a model's discrete code against one ground-truth factor.

    Args:
      data: a ground-truth data set (`zoo.data`): `sample(n, rng)` → (factors, images).
      code_fn: images [B, H, W, C] → integer codes [B] (e.g. CascadeVAE's argmin-unary category).
      factor: factor index or name (dSprites: 0 = "shape", 3 values).
      num_samples: samples drawn i.i.d. from the factor grid.
      rng: seed or numpy Generator (see `zoo.data.as_rng`).
    Returns the `match_codes` dict plus "factor", "num_samples".
    """
    # The data package is heavier; import it only when scoring.
    from zoo.data import as_rng
    factor = factor_index(data, factor)
    rng = as_rng(rng)
    codes, labels = [], []
    remaining = int(num_samples)
    while remaining > 0:
        n = min(batch_size, remaining)
        factors, images = data.sample(n, rng)
        labels.append(np.asarray(factors)[:, factor])
        codes.append(np.asarray(code_fn(images)).reshape(-1))
        remaining -= n
    result = match_codes(np.concatenate(codes), np.concatenate(labels),
                         num_labels=data.factor_sizes[factor])
    return {**result, "factor": data.factor_names[factor], "num_samples": int(num_samples)}


def time_solvers(batch_size=64, num_categories=3, lambda_prime=0.001, repeats=200, rng=0):
    """Milliseconds per solve of a random (batch × S) problem for each installed solver (median
    over `repeats` solves; costs ~ N(0, 100²), about the spread of CascadeVAE's unaries)."""
    import time
    costs = 100.0 * np.random.default_rng(rng).normal(size=(batch_size, num_categories))
    solvers = [s for s in SOLVERS if s != "min_cost_flow" or ortools_available()]
    result = {}
    for solver in solvers:
        assign_labels(costs, lambda_prime, solver)  # warm up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            assign_labels(costs, lambda_prime, solver)
            times.append(time.perf_counter() - start)
        result[solver] = 1e3 * float(np.median(times))
    return result
