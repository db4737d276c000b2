r"""Does a model hold the factors on mixed axes? Its scores as trained and after a linear unmixing
fitted without labels.

    python -m trainers.rotation_check --model_path=runs/dip_vae_i/model.keras --dataset=dsprites \
        --data_source=procedural --seed=0 --output=runs/dip_vae_i/rotation_check.json

Scores the representation (posterior means) with `--compare_metrics` (default:
factor_vae_score, mig, dci) twice with the same seed: as the model gives it, and after FastICA
(scikit-learn: whitening, then a rotation) fitted on `--num_fit` images drawn with the seed, no
factor labels used. An objective that does not
change when the code is rotated leaves the axes free (DIP-VAE-I's penalty on Cov[μ], for one,
is blind to rotations of μ): if the unmixed code scores far higher, the model learned the factors
and only their axes are mixed; if not, the information itself is missing or entangled.

Writes a JSON file with both results and the unmixing matrix and prints the two rows.
"""
import numpy as np
from absl import flags

from trainers import cli
from zoo.files import write_json

DEFAULT_METRICS = "factor_vae_score,mig,dci"


def fit_unmixing(codes, seed):
    """FastICA fitted on `codes` [n, d] (whitened inside): returns (function codes → unmixed,
    the fitted estimator). Deterministic for a seed."""
    from sklearn.decomposition import FastICA

    ica = FastICA(whiten="unit-variance", random_state=seed, max_iter=1000, tol=1e-4)
    ica.fit(np.asarray(codes, np.float64))
    return (lambda z: ica.transform(np.asarray(z, np.float64)).astype(np.float32)), ica


def rotation_check(data, representation_fn, metrics=DEFAULT_METRICS, seed=0, num_fit=10_000,
                   log=print, **params):
    """{"as_trained": {...}, "unmixed": {...}, "unmixing": [[...]]}: the metric values of
    `representation_fn` (a zoo model or a function of images) as it is and after FastICA unmixing
    fitted on `num_fit` observations. `params` are per-metric parameters, as `zoo.metrics.evaluate`
    takes them."""
    from zoo import metrics as zoo_metrics
    from zoo.metrics.core import as_representation_fn

    encode = as_representation_fn(representation_fn)

    def codes(x):
        out = encode(x)
        return np.asarray(out["codes"] if isinstance(out, dict) else out)

    unmix, ica = fit_unmixing(codes(data.sample_observations(num_fit, rng=seed)), seed)
    results = {}
    for label, representation in (("as_trained", codes), ("unmixed", lambda x: unmix(codes(x)))):
        result = zoo_metrics.evaluate(data, representation, metrics, seed, **params)
        results[label] = {name: entry["values"] for name, entry in result["metrics"].items()}
        if log:
            shown = ", ".join(f"{name}/{k} {v:.3f}" for name, values in results[label].items()
                              for k, v in values.items())
            log(f"{label}: {shown}")
    results["unmixing"] = np.asarray(ica.components_).round(6).tolist()
    results["num_fit"] = int(num_fit)
    return results


def main(argv):
    del argv
    import zoo.data
    from zoo import models

    config = flags.FLAGS
    if not config.model_path:
        raise ValueError("--model_path is required: the .keras model to check")
    data = zoo.data.get(config.dataset, source=config.data_source)
    model = models.load(config.model_path)
    report = rotation_check(data, model, config.compare_metrics, config.seed, config.num_fit)
    report.update(model_path=config.model_path, data_source=data.data_source, seed=config.seed)
    if config.output:
        write_json(config.output, report)
        print(f"wrote {config.output}")
    return 0


def define_flags(flag_values):
    define = cli.definer(flag_values)
    define("string", "model_path", None, "The .keras model to check.")
    define("string", "compare_metrics", DEFAULT_METRICS, "Comma-separated metric names (none "
           "that reads the posterior: the unmixed code has no variances).")
    cli.define_data_flags(flag_values)
    define("integer", "seed", 0, "Seed of the fitting images and of every metric.")
    define("integer", "num_fit", 10_000, "Images the unmixing is fitted on.")
    define("string", "output", None, "JSON file for the results (optional).")


if __name__ == "__main__":
    cli.run(main, define_flags)
