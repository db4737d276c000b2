"""disentanglement-zoo: disentangled representation learning models, metrics and data sets for
TensorFlow 2 / Keras 3.

    import zoo
    model = zoo.models.get("beta_vae", beta=4)
    data = zoo.data.get("dsprites")          # procedural dSprites (offline default)
"""
__version__ = "0.1.0"

from zoo import distributions, models, networks  # noqa: F401  (registers Keras classes)
