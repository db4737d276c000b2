r"""Estimators of the aggregate posterior log q(z) on a batch, and the ELBO decomposition
(docs/methods.md §3; Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs").

With q(z) = (1/N) Σ_n q(z|x_n) over a data set of N points, the average KL term of the ELBO splits
into three parts:

    E_x KL(q(z|x) ‖ p(z)) = I_q(x; z)                          (index-code mutual information)
                          + KL(q(z) ‖ Π_d q(z_d))              (total correlation, TC)
                          + Σ_d KL(q(z_d) ‖ p(z_d))            (dimension-wise KL)

Each part needs log q(z_i) and log q(z_i,d) at samples z_i ~ q(z|x_i). They are estimated from a
batch of B points x_1..x_B with the matrix

    L[i, j, d] = log q(z_i,d | x_j)                 (B × B × d, `log_density_matrix`)

and one of two estimators (both from Chen et al.):

* **MWS**, minibatch weighted sampling (the paper's main estimator):
      log q(z_i)    ≈ logsumexp_j Σ_d L[i, j, d] − log(B·N)
      log q(z_i,d)  ≈ logsumexp_j L[i, j, d]     − log(B·N)
  Every term carries the normalisation 1/(B·N). This is the formula as published; note that it
  equals the plain batch average (1/B) Σ_j q(z_i|x_j) divided by a further N, so its TC value is the
  consistent batch estimate plus exactly (d − 1)·log N (a constant: it does not change gradients).
  disentanglement_lib drops all constants and reports TC − (d − 1)·log(B·N); `drop_constant=True`
  reproduces that value for comparisons.

* **MSS**, minibatch stratified sampling: q(z_i) = (1/N)·q(z_i|x_i) + ((N−1)/N)·E[q(z_i|x) | x ≠ x_i],
  the second term estimated by the mean over the other B − 1 points of the batch:
      log q(z_i) ≈ logsumexp_j (log w_ij + Σ_d L[i, j, d])     (and likewise per dimension)
      w_ii = 1/N                    (the sample's own data point)
      w_ij = (N − 1)/(N·(B − 1))    (each of the other B − 1 points, j ≠ i)
  so every row of w sums to 1/N + (N − 1)/N = 1 (`mss_log_weights`; tested). With an
  uninformative posterior (q(z|x) the same for all x) MSS is exact, so its TC is 0.
  (The original reference code fills a different pattern of entries — 1/N on the diagonal, one
  (N − B + 1)/(N·(B − 1)) entry beside it and 1/(B − 1) elsewhere; this module follows the paper's
  formula above.)

Both the β-TCVAE loss (`zoo.models.tc_vae`) and the ELBO decomposition use this module: `decompose`
is the decomposition of given posteriors and samples (a pure function), `elbo_decomposition` draws
them from a model and a data set.
"""
import math

import numpy as np
import tensorflow as tf

from zoo import distributions

ESTIMATORS = ("mws", "mss")


def check_estimator(estimator):
    if estimator not in ESTIMATORS:
        raise ValueError(f"Unknown log q(z) estimator {estimator!r}; expected one of {ESTIMATORS}.")
    return estimator


def log_density_matrix(z, mean, logvar):
    """L[i, j, d] = log q(z_i,d | x_j) = log N(z_i,d; μ_j,d, σ²_j,d).

    z: [R, d] samples; mean, logvar: [B, d] posterior parameters of the batch. Returns [R, B, d]
    (R = B when z are the batch's own samples).
    """
    return distributions.gaussian_log_density(z[:, None, :], mean[None, :, :], logvar[None, :, :])


def mss_log_weights(batch_size, dataset_size, rows=None, dtype=tf.float32):
    """log w of minibatch stratified sampling: [len(rows), B] (all B rows by default).

    w[i, i] = 1/N for sample i's own data point, w[i, j] = (N − 1)/(N·(B − 1)) for j ≠ i; every row
    sums to 1. `rows` (a range of row indices) selects a block so a large B need not hold B × B.
    Needs B ≥ 2 and N ≥ 1 (N = 1 gives weight 0, log w = −inf, off the diagonal).
    """
    static_size = tf.get_static_value(batch_size)
    if static_size is not None and int(static_size) < 2:
        raise ValueError(f"MSS needs a batch of at least 2 points, got {int(static_size)}.")
    if dataset_size < 1:
        raise ValueError(f"dataset_size must be ≥ 1, got {dataset_size!r}.")
    batch_size = tf.cast(batch_size, tf.int32)
    rows = tf.range(batch_size) if rows is None else tf.cast(tf.convert_to_tensor(rows), tf.int32)
    n = float(dataset_size)
    log_own = tf.constant(-math.log(n), dtype)
    log_other = (tf.constant(math.log(n - 1) if n > 1 else -math.inf, dtype)
                 - tf.constant(math.log(n), dtype)
                 - tf.math.log(tf.cast(batch_size - 1, dtype)))
    own = tf.equal(rows[:, None], tf.range(batch_size)[None, :])
    return tf.where(own, log_own, log_other)


def log_q_estimates(z, mean, logvar, dataset_size, estimator="mws", rows=None):
    """Estimates of log q(z_i) [R] and of the marginals log q(z_i,d) [R, d] from one batch.

    z, mean, logvar: [B, d]; z_i must be a sample of q(z|x_i) (MSS relies on it). `rows` (a Python
    range) restricts the estimate to those samples, so a large batch can be processed in row
    blocks (the B × B × d matrix is never held at once); default: all B rows.
    """
    check_estimator(estimator)
    batch_size = tf.shape(mean)[0]
    z_rows = z if rows is None else z[rows.start:rows.stop]
    matrix = log_density_matrix(z_rows, mean, logvar)                       # [R, B, d]
    if estimator == "mws":
        log_norm = tf.math.log(tf.cast(batch_size, z.dtype)) + math.log(float(dataset_size))
        log_qz = tf.reduce_logsumexp(tf.reduce_sum(matrix, axis=2), axis=1) - log_norm
        log_qz_marginals = tf.reduce_logsumexp(matrix, axis=1) - log_norm
    else:
        row_index = None if rows is None else tf.range(rows.start, rows.stop)
        log_w = mss_log_weights(batch_size, dataset_size, row_index, z.dtype)  # [R, B]
        log_qz = tf.reduce_logsumexp(log_w + tf.reduce_sum(matrix, axis=2), axis=1)
        log_qz_marginals = tf.reduce_logsumexp(log_w[:, :, None] + matrix, axis=1)
    return log_qz, log_qz_marginals


def total_correlation(z, mean, logvar, dataset_size, estimator="mws", drop_constant=False,
                      rows=None):
    """TC = mean_i [log q(z_i) − Σ_d log q(z_i,d)] on one batch (a scalar tensor, nats).

    `rows` (a Python range) averages over those samples only; the density estimates still use
    the whole batch.

    drop_constant=True (MWS only) returns disentanglement_lib's value, which leaves out the
    normalisation constants: TC_MWS − (d − 1)·log(B·N). Known answer: an uninformative posterior
    with d = 10 and B = 10⁴ gives −9·ln 10⁴ ≈ −82.893 there, 0 with MSS, and 9·ln N with MWS.
    """
    log_qz, log_qz_marginals = log_q_estimates(z, mean, logvar, dataset_size, estimator, rows)
    tc = tf.reduce_mean(log_qz - tf.reduce_sum(log_qz_marginals, axis=1))
    if drop_constant:
        if estimator != "mws":
            raise ValueError("drop_constant reproduces disentanglement_lib's MWS value; it is "
                             "undefined for MSS.")
        latent_dim = tf.cast(tf.shape(z)[1], z.dtype)
        batch_size = tf.cast(tf.shape(z)[0], z.dtype)
        tc -= (latent_dim - 1.0) * (tf.math.log(batch_size) + math.log(float(dataset_size)))
    return tc


def gaussian_total_correlation(covariance):
    """TC of a Gaussian with this covariance: ½(Σ_d log Σ_dd − log det Σ) (numpy, nats).

    Used as a closed-form reference, and on the empirical covariance of a model's posterior means
    ("Gaussian total correlation of the means").
    """
    covariance = np.asarray(covariance, np.float64)
    _, log_det = np.linalg.slogdet(covariance)
    return 0.5 * (float(np.sum(np.log(np.diag(covariance)))) - float(log_det))


# --------------------------------------------------------------------------------------------------
# The ELBO decomposition of a trained model on a ground-truth data set
# --------------------------------------------------------------------------------------------------
def _posterior_fn(model_or_encode_fn):
    """A callable images → (mean, logvar) from a zoo model or an encode function returning either a
    {"mean", "logvar"} dict or a (mean, logvar) pair."""
    encode = getattr(model_or_encode_fn, "encode", model_or_encode_fn)
    if not callable(encode):
        raise TypeError("model_or_encode_fn must be a model with encode() or a callable "
                        "images → (mean, logvar).")

    def posterior(images):
        out = encode(images)
        mean, logvar = (out["mean"], out["logvar"]) if isinstance(out, dict) else out
        return np.asarray(mean, np.float32), np.asarray(logvar, np.float32)

    return posterior


def elbo_decomposition(data, model_or_encode_fn, num_samples=10_000, seed=0, estimator="mss",
                       dataset_size=None, batch_size=256, block_elements=2**24):
    """Index-code MI, total correlation and dimension-wise KL of a model's posterior on a data set.

    Draws `num_samples` images i.i.d. from the ground-truth data set `data` (`data.sample`), encodes
    them and draws one z_i ~ q(z|x_i) each; then `decompose` estimates log q(z_i) and log q(z_i,d)
    with `estimator` ("mss", the default, or "mws"), treating the num_samples points as one batch
    from a data set of `dataset_size` points (default: `data.num_combinations`, e.g. 737,280 for
    dSprites), and takes

        index_code_mi     = mean_i [log q(z_i|x_i) − log q(z_i)]
        total_correlation = mean_i [log q(z_i) − Σ_d log q(z_i,d)]
        dimension_wise_kl = mean_i Σ_d [log q(z_i,d) − log p(z_i,d)]

    whose sum is the Monte-Carlo estimate of E_x KL(q(z|x) ‖ p(z)) (`kl_monte_carlo`); the analytic
    mean KL is `kl` for comparison. The three terms depend on the estimator (MWS carries the
    offsets described in the module docstring), so the result names it.

    Args:
      data: a ground-truth data set (`zoo.data.GroundTruthData`) or anything with `sample(n, rng)`.
      model_or_encode_fn: a zoo model, or a callable images → {"mean", "logvar"} / (mean, logvar).
      num_samples: number of data points (and posterior samples).
      seed: seeds the data draw and the posterior samples (numpy).
      estimator: "mss" or "mws".
      dataset_size: N of the estimators; default `data.num_combinations`.
      batch_size: images per encoder call.
      block_elements: bound on the size of each row block of the num_samples² × d matrix.
    Returns:
      a dict of floats and the estimator's name (JSON-serialisable).
    """
    check_estimator(estimator)
    num_samples = int(num_samples)
    if num_samples < 2:
        raise ValueError(f"num_samples must be ≥ 2, got {num_samples}.")
    if dataset_size is None:
        dataset_size = getattr(data, "num_combinations", None)
        if dataset_size is None:
            raise ValueError("dataset_size is needed for a data set without num_combinations.")
    rng = np.random.default_rng(seed)
    posterior = _posterior_fn(model_or_encode_fn)
    _, images = data.sample(num_samples, rng)
    parts = [posterior(images[i:i + batch_size]) for i in range(0, num_samples, batch_size)]
    mean = np.concatenate([p[0] for p in parts])
    logvar = np.concatenate([p[1] for p in parts])
    z = posterior_samples(mean, logvar, rng)
    return {**decompose(mean, logvar, z, dataset_size, estimator, block_elements),
            "num_samples": num_samples, "dataset_size": int(dataset_size), "seed": seed,
            "data_source": getattr(data, "data_source", None)}


def posterior_samples(mean, logvar, rng):
    """One sample z_i = μ_i + σ_i·ε_i of each q(z|x_i) (float32 [n, d]), ε from the numpy
    generator `rng`."""
    return mean + np.exp(0.5 * logvar) * rng.standard_normal(mean.shape).astype(np.float32)


def decompose(mean, logvar, z, dataset_size, estimator="mss", block_elements=2**24):
    """The ELBO decomposition of posterior samples: a pure function of its arguments.

    mean, logvar, z: [n, d] (numpy or tensors): the posteriors q(z|x_i) of n data points and one
    sample z_i ~ q(z|x_i) of each, treated as one batch from a data set of `dataset_size` points;
    log q(z_i) and log q(z_i,d) are estimated with `estimator` ("mss" or "mws") in row blocks of
    at most about `block_elements` entries of the n² × d matrix. Returns {"estimator",
    "index_code_mi", "total_correlation", "dimension_wise_kl", "dimension_wise_kl_per_dim",
    "kl_monte_carlo", "kl"} in nats (`elbo_decomposition` has the formulas).
    """
    check_estimator(estimator)
    mean_t, logvar_t, z_t = (tf.constant(np.asarray(a, np.float32)) for a in (mean, logvar, z))
    num_samples, latent_dim = mean_t.shape
    block = max(1, int(block_elements) // (num_samples * latent_dim))
    log_qz, log_qz_marginals = [], []
    for start in range(0, num_samples, block):
        rows = range(start, min(start + block, num_samples))
        joint, marginals = log_q_estimates(z_t, mean_t, logvar_t, dataset_size, estimator, rows)
        log_qz.append(joint.numpy())
        log_qz_marginals.append(marginals.numpy())
    log_qz = np.concatenate(log_qz).astype(np.float64)
    log_qz_marginals = np.concatenate(log_qz_marginals).astype(np.float64)
    log_qz_given_x = np.sum(
        distributions.gaussian_log_density(z_t, mean_t, logvar_t).numpy(), axis=1, dtype=np.float64)
    log_pz_per_dim = distributions.gaussian_log_density(
        z_t, tf.zeros_like(z_t), tf.zeros_like(z_t)).numpy().astype(np.float64)

    mi = float(np.mean(log_qz_given_x - log_qz))
    tc = float(np.mean(log_qz - np.sum(log_qz_marginals, axis=1)))
    dwkl_per_dim = np.mean(log_qz_marginals - log_pz_per_dim, axis=0)
    kl = distributions.kl_to_standard_normal(mean_t, logvar_t).numpy().astype(np.float64)
    return {
        "estimator": estimator,
        "index_code_mi": mi,
        "total_correlation": tc,
        "dimension_wise_kl": float(np.sum(dwkl_per_dim)),
        "dimension_wise_kl_per_dim": [float(v) for v in dwkl_per_dim],
        "kl_monte_carlo": mi + tc + float(np.sum(dwkl_per_dim)),
        "kl": float(np.mean(np.sum(kl, axis=1))),
    }
