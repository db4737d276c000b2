"""Kernel estimators of distances between distributions and of dependence, from samples.

Shared by the models whose regulariser compares sets of latent samples (the decomposition VAE's
D(q(z), p(z)), InfoVAE, HSIC-VAE and the VFAE-style invariance penalty; see their modules).

Kernels (matrices [n, m] for a [n, d], b [m, d]):
- `imq_kernel`: k(a, b) = Σ_s Σ_j C_s/(C_s + (a_j − b_j)²), C_s = 2·s, a sum of 1-D inverse
  multiquadric kernels over latent dimensions and scales s (default `MMD_SCALES`);
- `rbf_kernel`: k(a, b) = exp(−‖a − b‖²/(2σ²)) for a given variance σ².

Distances and dependence:
- `mmd`: the unbiased estimate of MMD² between samples y [n, d] and z [m, d]:
  Σ_{i≠j} k(y_i, y_j)/(n(n−1)) + Σ_{i≠j} k(z_i, z_j)/(m(m−1)) − 2 Σ_{i,j} k(y_i, z_j)/(nm).
  Its expectation is exactly 0 when y and z come from one distribution (it can be negative).
- `group_mmd`: for one batch z [B, d] with discrete labels s [B], the biased (V-statistic) MMD²
  between the codes of each label k ≥ 1 and those of label 0, summed over k; a label with no
  member in the batch contributes 0. It is ≥ 0, and exactly 0 when every group holds the same
  points as group 0. (The unbiased form needs two members per group, which small batches of a
  many-valued factor often lack.)
- `hsic`: the biased HSIC estimate tr(K H L H)/(n − 1)² with H = I − 11ᵀ/n, K and L Gaussian
  kernel matrices of x [n, p] and y [n, q] with median-heuristic bandwidths (σ = the median
  distance between distinct points of the sample, treated as a constant by gradients). It is
  ≥ 0, exactly 0 when x or y is constant, close to 0 (O(1/n)) for independent samples and grows
  with their dependence (Gretton et al. 2005).
"""
import tensorflow as tf

#: The s of the IMQ kernel scales C = 2·s (docs/methods.md §11).
MMD_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
KERNELS = ("imq", "rbf")


def squared_distances(a, b):
    """‖a_i − b_j‖² [n, m] for a [n, d], b [m, d]."""
    return tf.reduce_sum(tf.square(a[:, None, :] - b[None, :, :]), axis=-1)


def imq_kernel(a, b, scales=MMD_SCALES):
    """k(a_i, b_j) = Σ_s Σ_dims C_s/(C_s + (a_i − b_j)²), C_s = 2·s: [n, m] for a [n, d], b [m, d]."""
    squared = tf.square(a[:, None, :] - b[None, :, :])                       # [n, m, d]
    total = 0.0
    for s in scales:
        c = 2.0 * float(s)
        total += tf.reduce_sum(c / (c + squared), axis=-1)
    return total


def rbf_kernel(a, b, variance=1.0):
    """k(a_i, b_j) = exp(−‖a_i − b_j‖²/(2σ²)) with σ² = `variance`: [n, m]."""
    return tf.exp(-squared_distances(a, b) / (2.0 * variance))


def check_kernel(name, latent_dim, scales=MMD_SCALES, variance=None):
    """Validate a kernel choice and return (name, [float scales], variance): the RBF variance
    defaults to `latent_dim` (half the mean squared distance of two N(0, I) samples)."""
    if name not in KERNELS:
        raise ValueError(f"Unknown kernel {name!r}; expected one of {KERNELS}.")
    scales = [float(s) for s in scales]
    if not scales or min(scales) <= 0:
        raise ValueError(f"mmd_scales must be positive numbers, got {scales!r}.")
    variance = float(latent_dim) if variance is None else float(variance)
    if not variance > 0 or variance == float("inf"):
        raise ValueError(f"rbf_variance must be a finite number > 0, got {variance!r}.")
    return name, scales, variance


def kernel_matrix(name, a, b, scales=MMD_SCALES, variance=1.0):
    """The kernel `name` ("imq" or "rbf") between the rows of a and b: [n, m]."""
    if name == "imq":
        return imq_kernel(a, b, scales)
    if name == "rbf":
        return rbf_kernel(a, b, variance)
    raise ValueError(f"Unknown kernel {name!r}; expected one of {KERNELS}.")


def mmd(y, z, kernel):
    """Unbiased MMD² estimate between samples y [n, d] and z [m, d] (n, m ≥ 2) for `kernel`, a
    function (a, b) → [len(a), len(b)] kernel matrix."""
    def within(a):
        count = tf.cast(tf.shape(a)[0], a.dtype)
        k = kernel(a, a)
        return (tf.reduce_sum(k) - tf.linalg.trace(k)) / (count * (count - 1.0))

    return within(y) + within(z) - 2.0 * tf.reduce_mean(kernel(y, z))


def mmd_imq(y, z, scales=MMD_SCALES):
    """Unbiased MMD² estimate between samples y [n, d] and z [m, d] (n, m ≥ 2) with `imq_kernel`."""
    return mmd(y, z, lambda a, b: imq_kernel(a, b, scales))


def group_mmd(z, labels, num_values, kernel):
    """Σ_{k=1}^{num_values−1} MMD²_biased(z[s = k], z[s = 0]) for one batch z [B, d] and integer
    labels s [B] in [0, num_values); groups absent from the batch contribute 0."""
    gram = kernel(z, z)                                                       # [B, B]
    members = tf.transpose(tf.one_hot(tf.cast(labels, tf.int32), num_values, dtype=z.dtype))
    counts = tf.reduce_sum(members, axis=1)                                   # [K]
    weights = members / tf.maximum(counts, 1.0)[:, None]                     # rows: mean weights
    means = tf.matmul(tf.matmul(weights, gram), weights, transpose_b=True)   # [K, K]: w_kᵀ G w_l
    diagonal = tf.linalg.diag_part(means)
    distances = diagonal[1:] + diagonal[0] - 2.0 * means[1:, 0]
    present = tf.cast((counts[1:] > 0) & (counts[0] > 0), z.dtype)
    return tf.reduce_sum(present * distances)


def median_heuristic_variance(x):
    """σ² with σ the median distance between distinct rows of x [n, d] (a gradient-free constant;
    1 when all rows coincide)."""
    squared = tf.stop_gradient(squared_distances(x, x))
    n = tf.shape(x)[0]
    upper = tf.linalg.band_part(tf.ones([n, n], tf.bool), 0, -1) & ~tf.eye(n, dtype=tf.bool)
    distances = tf.sort(tf.sqrt(tf.boolean_mask(squared, upper)))
    count = tf.size(distances)
    median = 0.5 * (distances[(count - 1) // 2] + distances[count // 2])
    return tf.where(median > 0, tf.square(median), tf.ones_like(median))


def centred_gram(x):
    """H K H for the Gaussian kernel matrix K of x [n, d] with the median-heuristic bandwidth."""
    gram = rbf_kernel(x, x, median_heuristic_variance(x))
    gram -= tf.reduce_mean(gram, axis=0, keepdims=True)
    return gram - tf.reduce_mean(gram, axis=1, keepdims=True)


def hsic(x, y):
    """Biased HSIC estimate tr(K H L H)/(n − 1)² between paired samples x [n, p] and y [n, q]
    (n ≥ 2), Gaussian kernels with median-heuristic bandwidths."""
    n = tf.cast(tf.shape(x)[0], x.dtype)
    # tr(KHLH) = tr((HKH)(HLH)) = Σ_ij (HKH)_ij (HLH)_ij, as H is idempotent and both are symmetric.
    return tf.reduce_sum(centred_gram(x) * centred_gram(y)) / tf.square(n - 1.0)
