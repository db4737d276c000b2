r"""Score a trained model with the disentanglement metrics (docs/methods.md §16).

    python -m trainers.evaluate --model_path=runs/beta_vae/model.keras --metrics=all \
        --dataset=dsprites --data_source=procedural --seed=0 --output=runs/beta_vae/metrics.json

--metrics is "all" (the default suite: BetaVAE and FactorVAE scores, MIG, DCI, SAP,
modularity/explicitness, Hoyer sparsity, Gaussian TC, and, when the model has them, unsupervised
accuracy of its discrete code and the ELBO decomposition) or a comma-separated list of names from
`zoo.metrics.METRICS` (e.g. factor_vae_score_cascade, udr). --metric_arg=[metric.]name=value
overrides a parameter (repeat the flag): `--metric_arg=mig.estimator=sampled`,
`--metric_arg=num_train=1000` (every metric with a num_train). UDR needs the other models of the
same hyperparameters: --udr_model_paths=a.keras,b.keras.

Writes metrics.json (values, the parameters of every metric, data source, seed, wall time per metric,
encoding counters, library versions; default: beside the model) and prints a table.
"""
import os
import sys
import time
from pathlib import Path

from absl import app, flags

from trainers import cli
from zoo.files import write_json


def define_flags(flag_values):
    """The command line (the data set flags as trainers.train has them)."""
    define = cli.definer(flag_values)
    define("string", "model_path", None, "The .keras model to score.")
    define("string", "metrics", "all", "'all' or a comma-separated list of metric names.")
    cli.define_data_flags(flag_values)
    define("integer", "seed", 0, "Seed shared by every metric.")
    define("string", "output", None, "metrics.json path (default: metrics.json beside the model).")
    define("multi_string", "metric_arg", [], "Metric parameter as [metric.]name=value "
           "(repeatable).")
    define("list", "udr_model_paths", [], "Other models (same hyperparameters, other seeds) for "
           "UDR.")
    define("integer", "encode_batch_size", 1024, "Images per encoder pass.")


def versions():
    import keras
    import numpy as np
    import scipy
    import sklearn
    import tensorflow as tf

    import zoo

    return {"zoo": zoo.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
            "python": sys.version.split()[0]}


def _check_output(output):
    """Refuse an output path that cannot take metrics.json, before any metric is computed."""
    if output.is_dir():
        raise ValueError(f"--output {output} is a directory; give the path of a file "
                         f"(e.g. {output / 'metrics.json'}).")
    parent = output.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ValueError(f"--output {output}: cannot write into {parent}.")


def run(model_path, metrics="all", dataset="dsprites", data_source=None, seed=0,
        output=None, metric_args=(), udr_model_paths=(), batch_size=1024, log=print):
    """Evaluate the model at `model_path`, write metrics.json and return its content."""
    import zoo.data
    from zoo import metrics as zoo_metrics
    from zoo import models

    started = time.perf_counter()
    output = Path(output) if output else Path(model_path).with_name("metrics.json")
    _check_output(output)
    per_metric, common = zoo_metrics.parse_metric_args(metric_args)
    zoo_metrics.check_metric_params(metrics, per_metric, common)
    data = zoo.data.get(dataset, source=data_source)
    model = models.load(model_path)
    if tuple(model.image_shape) != tuple(data.observation_shape):
        raise ValueError(f"the model takes images of shape {tuple(model.image_shape)}, the data "
                         f"set's are {tuple(data.observation_shape)}")
    if udr_model_paths:
        per_metric.setdefault("udr", {})["others"] = [models.load(p) for p in udr_model_paths]
    if log:
        log(f"Data: {data.data_source}")
    result = zoo_metrics.evaluate(data, model, metrics, seed, common=common,
                                  batch_size=batch_size, log=log, **per_metric)
    report = {
        "model_path": str(model_path),
        "model_class": type(model).__name__,
        "dataset": dataset,
        "data_source": data.data_source,
        "seed": int(seed),
        "metrics": result["metrics"],
        "skipped": result["skipped"],
        "metric_args": list(metric_args),
        "udr_model_paths": [str(p) for p in udr_model_paths],
        "encoding": result["encoding"],
        "metrics_wall_time_s": result["wall_time_s"],
        "metrics_cpu_time_s": result["cpu_time_s"],
        "total_wall_time_s": round(time.perf_counter() - started, 3),
        "versions": versions(),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    write_json(output, report)
    if log:
        log(zoo_metrics.format_table(result))
        log(f"Encoded {result['encoding']['observations_encoded']} of "
            f"{result['encoding']['observations_requested']} requested observations in "
            f"{result['encoding']['encode_wall_time_s']:.1f}s; total "
            f"{report['total_wall_time_s']:.1f}s. Wrote {output}")
    return report


def main(argv):
    del argv  # cli.run refuses stray arguments
    FLAGS = flags.FLAGS
    if not FLAGS.model_path:
        raise app.UsageError("--model_path is required.")
    run(FLAGS.model_path, FLAGS.metrics, FLAGS.dataset, FLAGS.data_source, FLAGS.seed,
        FLAGS.output, FLAGS.metric_arg, FLAGS.udr_model_paths, FLAGS.encode_batch_size)


if __name__ == "__main__":
    cli.run(main, define_flags)
