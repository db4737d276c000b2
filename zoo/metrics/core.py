"""Shared machinery of the metrics: the representation cache, samples, discretisation, MI.

Every metric is a pure function ``metric(data, representation_fn, rng=None, **params)`` of a
ground-truth data set (`zoo.data.GroundTruthData`), a representation function and a random
generator (an int seed, a ``np.random.Generator`` or None; see `zoo.data.as_rng`).

**Representation functions.** ``representation_fn(observations) -> codes`` maps a float32 batch
``[n, H, W, C]`` to codes ``[n, d]`` (a 1-D result is read as a single code), or to a mapping with

* ``"codes"`` (default: ``"mean"``): the representation the metrics score,
* ``"mean"``, ``"logvar"``: the diagonal-Gaussian posterior (needed by the metrics that use KL or
  posterior samples: the CascadeVAE protocol of the FactorVAE score, the sampled MIG, UDR's KL
  filter, the ELBO decomposition),
* ``"category"``: integer discrete code(s) ``[n, c]`` (unsupervised accuracy, CascadeVAE protocol).

A zoo model can be passed directly: :func:`as_representation_fn` wraps it in
:class:`ModelRepresentation` (one encoder pass per batch; the codes and their discrete columns are
the ones the model declares, `zoo.models.base.CodeLayout`).

**The cache.** :class:`Representations` binds a data set and a representation function and encodes
every *factor combination* at most once: a request for the codes of a factor array looks the
combinations up by their mixed-radix index (`GroundTruthData.index_of`), encodes only the ones not
seen before (in chunks, in one batched pass), and gathers. `zoo.metrics.evaluate` builds one per
evaluation and hands it to every metric, and each metric draws its i.i.d. points first, from a fresh
generator with the evaluation's seed (:func:`sample_iid`), so the metrics that score i.i.d. points
(MIG, DCI, SAP, modularity/explicitness, FactorVAE's global variances, Hoyer, Gaussian TC, ELBO
decomposition, unsupervised accuracy) share the same points and pay for them once; the
BetaVAE/FactorVAE votes on dSprites-sized grids end up touching most of the grid, which is then
encoded exactly once. The cache assumes deterministic observations (every data set in `zoo.data`
is); pass ``cache=False`` for a data set with observation noise.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Mapping

import numpy as np

from zoo.data.ground_truth import as_rng

__all__ = [
    "ModelRepresentation",
    "Representations",
    "active_factors",
    "as_representation_fn",
    "correlation_ratios",
    "discrete_entropy",
    "gaussian_kl_per_dim",
    "histogram_discretize",
    "iid_codes",
    "mutual_information_matrix",
    "quiet_sklearn",
    "representations_for",
    "sample_iid",
    "seed_from",
    "standardize",
]

#: Factor combinations encoded per representation-function call by the cache.
DEFAULT_CHUNK_SIZE = 4096
_OUTPUT_KEYS = ("codes", "mean", "logvar", "category")


# --------------------------------------------------------------------------------------------------
# Representation functions
# --------------------------------------------------------------------------------------------------
class ModelRepresentation:
    """images → {"codes", "mean", "logvar"[, "category"]} for a zoo model, one encoder pass a batch.

    ``codes`` is the model's representation (``representation_of`` the ``encode`` result: the
    posterior mean, with the category index of each discrete code as the last columns for
    CascadeVAE, JointVAE and InfoGAN), ``category`` the discrete codes of a model that declares
    some (``discrete_code_sizes``).

    Args:
      model: a zoo model (`zoo.models.base.CodeLayout`).
      batch_size: images per forward pass.
    """

    def __init__(self, model, batch_size: int = 1024):
        import tensorflow as tf

        self.model = model
        self.batch_size = int(batch_size)
        signature = [tf.TensorSpec((None,) + tuple(model.image_shape), tf.float32)]
        self._encode = tf.function(lambda x: self._outputs(model.encode(x)),
                                   input_signature=signature, reduce_retracing=True)
        self._fused = {}

    @property
    def discrete_columns(self):
        """Columns of ``codes`` that hold discrete codes (the model's declaration)."""
        return tuple(self.model.discrete_columns)

    def _outputs(self, posterior):
        keys = ("mean", "logvar", "category") if self.model.discrete_code_sizes else (
            "mean", "logvar")
        return {"codes": self.model.representation_of(posterior),
                **{key: posterior[key] for key in keys}}

    def _batched(self, fn, x):
        parts = [fn(x[i:i + self.batch_size]) for i in range(0, len(x), self.batch_size)]
        return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}

    def __call__(self, images):
        return self._batched(self._encode, np.asarray(images, np.float32))

    def outputs_from_factors(self, data, factors):
        """Render and encode in one TensorFlow graph (no numpy round trip of the images)."""
        import tensorflow as tf

        key = id(data)
        if key not in self._fused:
            self._fused[key] = tf.function(
                lambda f: self._outputs(self.model.encode(data.images_from_factors_tf(f))),
                input_signature=[tf.TensorSpec((None, data.num_factors), tf.int64)],
                reduce_retracing=True)
        return self._batched(self._fused[key], np.asarray(factors, np.int64))


def as_representation_fn(obj, batch_size: int = 1024):
    """A zoo model → :class:`ModelRepresentation`; a callable → itself; a
    :class:`Representations` → itself."""
    from zoo.models.base import CodeLayout  # here, as TensorFlow is: only models need it

    if isinstance(obj, (Representations, ModelRepresentation)):
        return obj
    if isinstance(obj, CodeLayout):
        return ModelRepresentation(obj, batch_size=batch_size)
    if callable(obj):
        return obj
    raise TypeError(f"representation_fn must be callable or a model, got {type(obj).__name__}")


# --------------------------------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------------------------------
def _grid_is_indexable(data) -> bool:
    total = 1
    for size in data.factor_sizes:
        total *= int(size)  # Python ints: no overflow
    return total < 2**62


class Representations:
    """The outputs of ``representation_fn`` on a data set's observations, encoded once per factor
    combination and shared by every metric that is handed this object.

    Calling it with factors ``[..., K]`` returns the codes ``[..., d]``; :meth:`posterior` and
    :meth:`category` return the other outputs. Counters (``num_requested``, ``num_encoded``,
    ``encode_seconds``) show what the sharing saved.

    Args:
      data: the ground-truth data set.
      representation_fn: see the module docstring; a zoo model is wrapped automatically.
      chunk_size: factor combinations encoded per call of the representation function.
      cache: False encodes every request afresh. It is off whatever this says for a data set
        whose `one_observation_per_combination` is not True (several images per combination,
        or observation noise): one cached image would stand for all of them.
      discrete_columns: columns of the codes that hold integer discrete codes, when the
        representation function does not return "category" itself.
      image_seed: seed of the draws of images for combinations that have several (see cache).
    """

    def __init__(self, data, representation_fn, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 cache: bool = True, discrete_columns=None, batch_size: int = 1024,
                 image_seed: int = 0):
        self.data = data
        self.fn = as_representation_fn(representation_fn, batch_size=batch_size)
        if isinstance(self.fn, Representations):
            raise TypeError("representation_fn is already a Representations object")
        self.chunk_size = int(chunk_size)
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        # Sharing one code per combination is exact only when the combination fixes the image.
        self.deterministic = bool(getattr(data, "one_observation_per_combination", False))
        self.cache = bool(cache) and _grid_is_indexable(data) and self.deterministic
        # Otherwise the image of each requested combination is drawn from this generator, so a
        # metric stays a pure function of (data, representation, seed).
        self._image_rng = np.random.default_rng(image_seed)
        self._discrete_columns = None if discrete_columns is None else tuple(
            int(c) for c in np.atleast_1d(discrete_columns))
        self._keys = np.empty(0, np.int64)
        self._store: dict[str, np.ndarray] = {}
        self._shapes: dict[str, tuple] = {}
        self.num_requested = 0
        self.num_encoded = 0
        self.encode_seconds = 0.0

    # ------------------------------------------------------------------ properties
    @property
    def num_codes(self) -> int:
        """d, the number of codes (encodes one observation if nothing was encoded yet)."""
        if "codes" not in self._shapes:
            self(self.data.sample_factors(1, 0))
        return self._shapes["codes"][0]

    @property
    def has_posterior(self) -> bool:
        if "codes" not in self._shapes:
            self.num_codes  # noqa: B018  (encodes one observation)
        return "mean" in self._shapes and "logvar" in self._shapes

    @property
    def discrete_columns(self) -> tuple:
        """Columns of the codes holding discrete codes (explicit, or declared by the function)."""
        if self._discrete_columns is not None:
            return self._discrete_columns
        if "codes" not in self._shapes:
            self.num_codes  # noqa: B018
        if isinstance(self.fn, ModelRepresentation):
            return self.fn.discrete_columns
        return ()

    def stats(self) -> dict:
        return {"observations_requested": int(self.num_requested),
                "observations_encoded": int(self.num_encoded),
                "encode_wall_time_s": round(float(self.encode_seconds), 3),
                "cached_combinations": len(self._keys)}

    # ------------------------------------------------------------------ encoding
    def _normalise(self, out, n: int) -> dict[str, np.ndarray]:
        if isinstance(out, Mapping):
            result = {}
            for key in _OUTPUT_KEYS:
                if key in out and out[key] is not None:
                    result[key] = np.asarray(out[key])
            if "codes" not in result:
                if "mean" not in result:
                    raise ValueError("a representation function returning a mapping must give "
                                     f"'codes' or 'mean'; got keys {sorted(out)}")
                result["codes"] = result["mean"]
        else:
            result = {"codes": np.asarray(out)}
        for key, value in result.items():
            if value.ndim == 1:
                value = value[:, None]
            if value.ndim != 2 or value.shape[0] != n:
                raise ValueError(f"the representation function returned {key!r} of shape "
                                 f"{value.shape} for {n} observations; expected [{n}, d]")
            if key == "category":
                if not (np.issubdtype(value.dtype, np.integer)
                        or np.all(np.mod(value, 1) == 0)):
                    raise ValueError("'category' must hold integer codes")
                value = value.astype(np.int64)
            else:
                if value.dtype == bool or np.issubdtype(value.dtype, np.integer):
                    value = value.astype(np.float64)
                if not np.issubdtype(value.dtype, np.floating):
                    raise ValueError(f"{key!r} must be numeric, got dtype {value.dtype}")
            result[key] = value
        for key, value in result.items():
            if key != "category":
                bad = ~np.all(np.isfinite(value), axis=1)
                if bad.any():
                    raise ValueError(
                        f"the representation function returned NaN or infinite {key!r} for "
                        f"{int(bad.sum())} of {n} observations; metrics cannot be computed "
                        "(has the model diverged?)")
            if key in self._shapes and self._shapes[key] != value.shape[1:]:
                raise ValueError(f"the representation function returned {key!r} of width "
                                 f"{value.shape[1]}, earlier {self._shapes[key][0]}")
        if result["codes"].shape[1] < 1:
            raise ValueError("the representation has no codes (width 0)")
        if self._shapes and set(result) != set(self._shapes):
            raise ValueError(f"the representation function returned outputs {sorted(result)}, "
                             f"earlier {sorted(self._shapes)}")
        for key, value in result.items():
            self._shapes[key] = value.shape[1:]
        return result

    def _encode(self, factors: np.ndarray) -> dict[str, np.ndarray]:
        started = time.perf_counter()
        parts = []
        fused = (self.deterministic and isinstance(self.fn, ModelRepresentation)
                 and hasattr(self.data, "images_from_factors_tf"))
        for i in range(0, len(factors), self.chunk_size):
            chunk = factors[i:i + self.chunk_size]
            if fused:
                out = self.fn.outputs_from_factors(self.data, chunk)
            else:
                out = self.fn(self.data.images_from_factors(chunk, self._image_rng))
            parts.append(self._normalise(out, len(chunk)))
        self.num_encoded += len(factors)
        self.encode_seconds += time.perf_counter() - started
        if not parts:
            return {k: np.zeros((0,) + s) for k, s in self._shapes.items()}
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def outputs(self, factors, names=None) -> dict[str, np.ndarray]:
        """The outputs (all, or those in ``names`` that exist) for factors ``[..., K]``."""
        factors = np.asarray(factors)
        if factors.ndim < 1 or factors.shape[-1] != self.data.num_factors:
            raise ValueError(f"factors must have shape [..., {self.data.num_factors}], "
                             f"got {factors.shape}")
        lead = factors.shape[:-1]
        flat = self.data.validate_factors(factors.reshape(-1, self.data.num_factors))
        self.num_requested += len(flat)
        if not self.cache:
            out = self._encode(flat)
            if names is not None:
                out = {k: v for k, v in out.items() if k in names}
        else:
            index = flat @ self.data.factor_bases
            unique, inverse = np.unique(index, return_inverse=True)
            pos = np.searchsorted(self._keys, unique)
            found = np.zeros(len(unique), bool)
            inside = pos < len(self._keys)
            found[inside] = self._keys[pos[inside]] == unique[inside]
            missing = unique[~found]
            if len(missing):
                new = self._encode(self.data.factors_of(missing))
                keys = np.concatenate([self._keys, missing])
                order = np.argsort(keys, kind="stable")
                self._keys = keys[order]
                self._store = {k: np.concatenate([self._store[k], v])[order]
                               if k in self._store else v[order] for k, v in new.items()}
                pos = np.searchsorted(self._keys, unique)
            rows = pos[inverse.reshape(-1)]
            out = {k: v[rows] for k, v in self._store.items() if names is None or k in names}
        return {k: v.reshape(lead + v.shape[1:]) for k, v in out.items()}

    def __call__(self, factors) -> np.ndarray:
        """Codes ``[..., d]`` of the observations of factors ``[..., K]``."""
        return self.outputs(factors, ("codes",))["codes"]

    def posterior(self, factors) -> tuple[np.ndarray, np.ndarray]:
        """(mean, logvar) of the posterior; ValueError if the function gives no posterior."""
        out = self.outputs(factors, ("mean", "logvar"))
        if "mean" not in out or "logvar" not in out:
            raise ValueError("this metric needs the posterior: the representation function must "
                             "return {'mean', 'logvar'} (a zoo model does)")
        return out["mean"], out["logvar"]

    def category(self, factors) -> np.ndarray:
        """Integer discrete codes ``[..., c]``: the function's "category" output, or the codes'
        ``discrete_columns``; ValueError if there is none."""
        out = self.outputs(factors, ("codes", "category"))
        if self._discrete_columns is not None:
            values = out["codes"][..., list(self._discrete_columns)]
        elif "category" in out:
            return out["category"]
        else:
            raise ValueError("the representation has no discrete code: give discrete_columns or "
                             "return 'category' from the representation function")
        rounded = np.rint(values)
        if not np.allclose(values, rounded):
            raise ValueError(f"discrete_columns {self._discrete_columns} hold non-integer values")
        return rounded.astype(np.int64)

    def continuous_columns(self) -> np.ndarray:
        discrete = set(self.discrete_columns)
        return np.array([c for c in range(self.num_codes) if c not in discrete], np.int64)


def representations_for(data, representation_fn, **kwargs) -> Representations:
    """``representation_fn`` itself when it is a :class:`Representations` of ``data``; otherwise a
    new one (so a metric called on its own still encodes each combination once)."""
    if isinstance(representation_fn, Representations):
        if representation_fn.data is not data:
            raise ValueError("the Representations object belongs to another data set")
        return representation_fn
    return Representations(data, representation_fn, **kwargs)


# --------------------------------------------------------------------------------------------------
# Sampling and small helpers
# --------------------------------------------------------------------------------------------------
def active_factors(data) -> np.ndarray:
    """Indices of the factors with more than one value (constant factors are excluded)."""
    active = np.array([k for k, s in enumerate(data.factor_sizes) if s > 1], np.int64)
    if not len(active):
        raise ValueError("the data set has no factor with more than one value")
    return active


def sample_iid(data, reps: Representations, rng, num_train: int, num_test: int = 0):
    """(factors, codes) of ``num_train`` then ``num_test`` i.i.d. points, drawn in that order from
    ``rng``; with the same seed every metric gets the same points (shared through the cache)."""
    train = data.sample_factors(int(num_train), rng)
    test = data.sample_factors(int(num_test), rng) if num_test else None
    out = [(train, reps(train))]
    if num_test:
        out.append((test, reps(test)))
    return out


def iid_codes(data, representation_fn, rng, num_points: int) -> np.ndarray:
    """The codes of ``num_points`` i.i.d. points (the first draw of ``rng``, as in `sample_iid`),
    for the metrics that score codes alone."""
    reps = representations_for(data, representation_fn)
    [(_, codes)] = sample_iid(data, reps, as_rng(rng), num_points)
    return codes


def seed_from(rng) -> int:
    """An int seed for a scikit-learn estimator's ``random_state``, drawn from ``rng``."""
    return int(as_rng(rng).integers(0, 2**31 - 1))


@contextlib.contextmanager
def quiet_sklearn():
    """Silence scikit-learn's ConvergenceWarning: the docs/methods.md §16 defaults (e.g. LogisticRegression's
    100 iterations) are kept on purpose, and the warning would repeat for every fit."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def standardize(train, *others):
    """Z-score each column with the mean and std of ``train``; constant columns are only
    centred (std taken as 1)."""
    train = np.asarray(train, np.float64)
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    result = [(train - mean) / std] + [(np.asarray(o, np.float64) - mean) / std for o in others]
    return result[0] if not others else tuple(result)


def histogram_discretize(codes, num_bins: int = 20) -> np.ndarray:
    """Each column binned into ``num_bins`` equal-width bins over its own range (int [n, d],
    values 0..num_bins-1), exactly as ``np.digitize(x, np.histogram(x, num_bins)[1][:-1]) - 1``."""
    codes = np.asarray(codes, np.float64)
    if codes.ndim != 2:
        raise ValueError(f"codes must be [n, d], got {codes.shape}")
    out = np.empty(codes.shape, np.int64)
    for j in range(codes.shape[1]):
        edges = np.histogram_bin_edges(codes[:, j], bins=int(num_bins))
        out[:, j] = np.digitize(codes[:, j], edges[:-1]) - 1
    return out


def mutual_information_matrix(discrete_codes, factors) -> np.ndarray:
    """MI in nats between every discrete code column and every factor column, [d, K].

    Each entry equals ``sklearn.metrics.mutual_info_score(code, factor)`` (the plug-in estimate
    from the contingency table, clipped at 0, and exactly 0 when the code or the factor takes a
    single value), computed for all codes of a factor at once.
    """
    codes = np.asarray(discrete_codes, np.int64)
    factors = np.asarray(factors, np.int64)
    n, d = codes.shape
    if n == 0:
        raise ValueError("no samples")
    codes = codes - codes.min(axis=0, keepdims=True)
    bins = int(codes.max()) + 1
    result = np.zeros((d, factors.shape[1]))
    offsets = np.arange(d, dtype=np.int64)[None, :] * bins
    for k in range(factors.shape[1]):
        f = factors[:, k] - factors[:, k].min()
        s = int(f.max()) + 1
        joint = np.bincount(((codes + offsets) * s + f[:, None]).ravel(),
                            minlength=d * bins * s).reshape(d, bins, s) / n
        p_code = joint.sum(axis=2, keepdims=True)
        p_factor = joint.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(joint > 0, joint * np.log(joint / (p_code * p_factor)), 0.0)
        result[:, k] = np.maximum(terms.sum(axis=(1, 2)), 0.0)
        if s == 1:  # a constant factor: exactly 0, as sklearn returns (no rounding residue)
            result[:, k] = 0.0
    result[codes.max(axis=0) == 0, :] = 0.0  # a code in a single bin carries no information
    return result


def discrete_entropy(factors) -> np.ndarray:
    """Plug-in entropy in nats of each integer column, [K] (= ``mutual_info_score(y, y)``)."""
    factors = np.asarray(factors, np.int64)
    out = np.zeros(factors.shape[1])
    for k in range(factors.shape[1]):
        p = np.bincount(factors[:, k] - factors[:, k].min()) / len(factors)
        p = p[p > 0]
        out[k] = -np.sum(p * np.log(p))
    return out


def gaussian_kl_per_dim(mean, logvar) -> np.ndarray:
    """KL(N(μ, σ²) ‖ N(0, 1)) per sample and dimension, ½(μ² + σ² − log σ² − 1)."""
    mean = np.asarray(mean, np.float64)
    logvar = np.asarray(logvar, np.float64)
    return 0.5 * (mean**2 + np.exp(logvar) - logvar - 1.0)


def correlation_ratios(codes, factors) -> np.ndarray:
    """Correlation ratio η [d, K] of each code on each integer factor.

    η² = the variance of the code's per-factor-value means / the code's total variance: the share
    of a code's variance that a factor explains with any dependence, also a non-monotonic one,
    which suits categorical (shape) and circular (orientation) factors where a rank correlation
    reads 0. 1 when the code is a function of the factor; about √((values − 1)/n) for an
    independent code; 0 for a constant code.
    """
    codes = np.asarray(codes, np.float64)
    factors = np.asarray(factors)
    total = codes.var(axis=0)
    result = np.zeros((codes.shape[1], factors.shape[1]))
    for k in range(factors.shape[1]):
        counts = np.bincount(factors[:, k]).astype(float)
        present = counts > 0
        for j in range(codes.shape[1]):
            sums = np.bincount(factors[:, k], weights=codes[:, j], minlength=len(counts))
            group_means = sums[present] / counts[present]
            between = np.sum(counts[present] * (group_means - codes[:, j].mean()) ** 2) / len(codes)
            result[j, k] = np.sqrt(between / total[j]) if total[j] > 0 else 0.0
    return result
