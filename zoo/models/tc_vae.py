"""β-TCVAE (Chen et al. 2018), docs/methods.md §5 (estimators: §3).

loss = recon + KL + (β − 1)·TC, the decomposition-weighted ELBO with α = γ = 1 (equivalently
recon + MI + β·TC + dimension-wise KL), with TC estimated on the batch by `zoo.decomposition`
(minibatch weighted sampling by default, minibatch stratified sampling as an option).
"""
import keras

from zoo import decomposition
from zoo.checks import check_int
from zoo.models.base import VAE, non_negative

DSPRITES_SIZE = 737_280


@keras.saving.register_keras_serializable(package="zoo")
class BetaTCVAE(VAE):
    """β-TCVAE with a batch estimate of the total correlation of q(z).

    Args:
      beta: weight β of TC (disentanglement_lib sweeps {1, 2, 4, 6, 8, 10}; default 6).
      dataset_size: N, the number of points of the training data set, used by the estimators'
        weights (default 737,280, dSprites).
      estimator: "mws" (minibatch weighted sampling, default) or "mss" (minibatch stratified
        sampling); see `zoo.decomposition` for both formulas.
      **kwargs: the base `VAE`'s arguments.

    Logged `tc` is the estimator's value with all its constants (not disentanglement_lib's value,
    which drops (d − 1)·log(B·N)). Note that the MWS value is the consistent batch estimate plus
    (d − 1)·log N, ≈ 121.6 nats for d = 10 on dSprites; the MSS value has no such offset (0 for an
    uninformative posterior). The offset is a constant, so β's effect on training is the same.
    """

    regularizer_terms = ("tc",)

    def __init__(self, beta=6.0, dataset_size=DSPRITES_SIZE, estimator="mws", **kwargs):
        super().__init__(**kwargs)
        self.beta = non_negative("beta", beta)
        self.dataset_size = check_int("dataset_size", dataset_size, 1)
        self.estimator = decomposition.check_estimator(estimator)

    def regularizer(self, kl, kl_per_dim, mean, logvar, z):
        tc = decomposition.total_correlation(z, mean, logvar, self.dataset_size, self.estimator)
        return kl + (self.beta - 1.0) * tc, {"tc": tc}

    def get_config(self):
        return {**super().get_config(), "beta": self.beta, "dataset_size": self.dataset_size,
                "estimator": self.estimator}
