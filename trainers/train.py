r"""Train a model of the zoo on a ground-truth data set.

    python -m trainers.train --model=beta_vae --model_arg=beta=4 --dataset=dsprites \
        --steps=300000 --output_dir=runs/beta_vae_b4_s0

Writes into --output_dir: a checkpoint every --checkpoint_every steps (rerunning the same
command resumes from the newest one and ends with the same weights as an uninterrupted run),
TensorBoard logs (`tensorboard --logdir <output_dir>/tensorboard`), `config.json` (the settings, for
people), and at the end `model.keras`, `saved_model/` (TF Serving), `results.json` and PNGs of
reconstructions and latent traversals.

In Python: `run(TrainConfig(model="beta_vae", model_args={"beta": 4}, steps=1000))`. TrainConfig
(trainers/config.py) is the one schema of the settings: every flag below is one of its fields,
checked (type, range, known names) before anything is built.

A resumable checkpoint is these files of the run directory, and only these (copy them to resume the
run elsewhere, e.g. into another directory or a later session):
- `checkpoint_state.json`: the manifest: the run's identity (its settings, the images' data
  source), the newest step and wall time, and the list of kept checkpoints with each file's step
  and sha256;
- the `checkpoint-<step, 9 digits>.keras` files it lists (the newest --checkpoints_kept, default 2;
  the newest alone suffices, an older one is the fallback when the newest is damaged).
Optional, to continue their records too: `metrics_history.jsonl`, `best.keras` + `best.json`
(--keep_best) and `tensorboard/`. A directory of the first checkpoint format (`checkpoint.keras`,
`checkpoint_state.json` without a list, `config.json`) also resumes, and is rewritten in the new
format at its next checkpoint.

Robustness (issue 24): one process per directory (`run.lock`, an `fcntl` lock; a second process is
refused naming the holder's pid); a rerun with other settings is refused, and so is a directory
holding run files but no checkpoint manifest (never silently retrained); every file is written via
a temporary file and a rename; a step whose loss term or gradient is NaN or infinite is never
applied and stops training naming the step and the term (--on_nan=skip_batch skips the batch
instead), and no file with non-finite values is written; a damaged newest checkpoint falls back to
the previous one with a warning. Errors are one line `error: ...` (exit 2 for a refused setting, 1
for a failure; --verbose_errors shows the traceback).

--init_from=<model.keras> starts a new run from a saved model's weights instead of an
initialisation: fine-tuning, or continuing a run with changed settings (e.g. another batch mix).

Metrics (`zoo.metrics`, docs/methods.md §16): --eval_metrics=all (or a comma-separated list) scores the
final model into results.json; --eval_every=K also scores it every K steps (--eval_every_metrics,
default the same set) as TensorBoard scalars `metrics/<metric>/<value>` and lines of
`metrics_history.jsonl`. --eval_metric_arg=[metric.]name=value sets metric parameters for both, e.g.
--eval_metric_arg=num_train=1000 for cheaper periodic evaluations. --keep_best=<metric>/<value>
(e.g. unsupervised_accuracy/accuracy) also keeps the model of the best periodic evaluation as
`best.keras`, with its step and value in `best.json` and results.json (--keep_best_mode=min for a
value where lower is better).
"""
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags, logging

import zoo
import zoo.data
from trainers import cli
from trainers.callbacks import (
    BestModel,
    Checkpoint,
    DivergenceGuard,
    MetricsCallback,
    StopAtStep,
    TensorBoardLogger,
)
from trainers.config import RUN_KEYS, TrainConfig
from trainers.process_state import global_seeds, op_determinism
from trainers.run_dir import (
    LOCK,
    CheckpointStore,
    RunDirError,
    RunLock,
    check_identity,
    nonfinite_variables,
    save_model,
    write_json,
)
from zoo import export, models, replicas, visualize
from zoo.data.dsprites_render import V1_DATA_SOURCE, canonical_data_source


def define_flags(flag_values):
    """The command line: a flag per TrainConfig setting (trainers/config.py has their help and
    defaults) and --threads, which sizes the process's thread pools."""
    TrainConfig.define_flags(flag_values)
    flags.DEFINE_integer("threads", 0, "CPU threads for TF's intra-op and inter-op pools (0: TF's "
                         "default, every core). Two runs side by side on a 2-core machine: 1 "
                         "each.", flag_values=flag_values)


def build_model(config, observation_shape=None):
    """The compiled model of `config` (a TrainConfig); its input shape is the data set's
    `observation_shape` unless a --model_arg sets input_shape."""
    # None: the model's own default (latent size, learning rate), e.g. CascadeVAE's m = 6.
    sizes = {} if config.latent_dim is None else {"latent_dim": config.latent_dim}
    if observation_shape is not None and "input_shape" not in config.model_args:
        sizes["input_shape"] = tuple(observation_shape)
    try:
        model = models.get(config.model, network=config.network, seed=config.seed,
                           **sizes, **config.model_args)
    except TypeError as error:
        raise ValueError(f"Bad --model_arg for {config.model!r}: {error}") from None
    if model.owns_optimizer_settings:
        # A model with its own optimiser settings, set by model arguments (InfoGAN's two Adams).
        if config.learning_rate is not None:
            raise ValueError(f"{config.model!r} sets its learning rates through model "
                             "arguments (see its docstring), not --learning_rate.")
        model.compile()
    elif config.learning_rate is None:
        model.compile()  # the model's default optimizer (JointVAE: its preset's rate)
    else:
        model.compile(optimizer=models.default_optimizer(config.learning_rate))
    return model


def initialise_from(model, path):
    """Copy the weights of the saved model at `path`, its step counter included, into the freshly
    built `model` (the same model class, network, latent size and input shape)."""
    source = models.load(path)
    bad = nonfinite_variables(source)
    if bad:
        raise ValueError(f"--init_from {path} holds NaN or infinite values in {len(bad)} "
                         f"variable(s) ({', '.join(bad[:3])}); it cannot start a run.")
    if type(source) is not type(model):
        raise ValueError(f"--init_from {path} holds a {type(source).__name__}; this run trains a "
                         f"{type(model).__name__}.")
    source.restore_training_parts()  # a published FactorVAE: the run starts a fresh discriminator
    # Compared by order and shape: Keras numbers layer names per process (conv2d_4 vs conv2d).
    ours = [tuple(w.shape) for w in model.weights]
    theirs = [tuple(w.shape) for w in source.weights]
    if ours != theirs:
        raise ValueError(f"--init_from {path} does not fit this run's model (another network, "
                         f"latent size or input shape?): its weight shapes {theirs} against "
                         f"this run's {ours}.")
    model.set_weights(source.get_weights())


def _versions():
    return {"zoo": zoo.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__}


def memory_estimate(model):
    """Bytes the run will need at least: the weights with their gradients and Adam's two slots
    (4 copies), and the traversal picture (`zoo.visualize.traversal_grid` decodes 9 codes of
    every latent: [d, 9, d] codes and [d, 9] images)."""
    weights = 4 * 4 * sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    d, pixels = model.decoder_input_dim, int(np.prod(model.image_shape))
    pictures = 4 * 9 * d * (d + 2 * pixels) if len(model.image_shape) == 3 else 0
    return {"model and optimizer": weights, "traversal pictures": pictures}


def check_memory(model, available=None):
    """Refuse a run whose `memory_estimate` exceeds the machine's memory, before training rather
    than after hours of it (a MemoryError drawing the final pictures)."""
    available = available or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    estimate = memory_estimate(model)
    if sum(estimate.values()) > available:
        gib = 2 ** 30
        parts = ", ".join(f"{k} {v / gib:.1f} GiB" for k, v in estimate.items())
        raise ValueError(f"This run needs at least {sum(estimate.values()) / gib:.1f} GiB of "
                         f"memory ({parts}; latent size {model.decoder_input_dim}), more than "
                         f"this machine's {available / gib:.1f} GiB: use a smaller --latent_dim "
                         "or model.")


def run_identity(config, data):
    """The settings that define a run (RUN_KEYS), stored in the checkpoint manifest; a rerun into
    the same directory must repeat them (steps may grow). What the images are decides, not the
    --data_source spelling: the same name can mean other images after a renderer update, and two
    names (e.g. the default and `procedural`) can mean the same images."""
    return {**{key: getattr(config, key) for key in RUN_KEYS if key != "data_source"},
            "data": data.data_source}


def _saved_identity(saved, data):
    """The identity a manifest records; a run saved before the manifest has its config.json,
    whose data source description is worded as today's code words it (runs of the first dSprites
    renderer are pointed to the source that keeps it)."""
    if "data" in saved:
        return saved
    description = saved.get("data_source_description")
    return {**saved, "data": canonical_data_source(description) if description
            else data.data_source}  # older still: no description to tell, take the images as same


# Files that show a directory holds a run's progress (with checkpoint-*.keras); without them (and
# without a checkpoint manifest) there is nothing to lose: a run stopped before its first checkpoint
# (config.json, TensorBoard logs, early metrics lines) starts again from step 0.
RUN_FILES = ("checkpoint.keras", "model.keras", "results.json", "best.keras", "best.json")


def _resume_or_start(out, store, config, identity, data):
    """(model, elapsed_before, config): the run's newest usable checkpoint, or a fresh model when
    `out` holds no run; the config takes the saved run's latent size and learning rate where it
    left them to the model. A directory with run files but no checkpoint manifest is refused:
    retraining it from zero would silently overwrite what is there."""
    manifest = store.manifest()
    if manifest is not None:
        # Settings first: a run with other settings is refused before its files are read.
        saved = _saved_identity(manifest["run"], data)
        hint = " (--data_source=procedural_v1 resumes it)" if saved["data"] == V1_DATA_SOURCE \
            and identity["data"] != V1_DATA_SOURCE else ""
        check_identity(saved, identity, out, hint)
        config = config.replace(latent_dim=identity["latent_dim"],
                                learning_rate=identity["learning_rate"])
        model, entry = store.restore(models.load)
        print(f"Resuming from {out / entry['file']} at step {int(model.global_step.numpy())}.")
        return model, entry.get("train_wall_time_s", 0.0), config
    leftovers = sorted(p.name for p in out.iterdir()
                       if p.name in RUN_FILES or p.name.startswith("checkpoint-"))
    if leftovers:
        raise RunDirError(
            f"{out} holds run files ({', '.join(leftovers)}) but no checkpoint manifest "
            f"({store.manifest_path.name}) to resume from; refusing to train over them. Restore "
            "the run's checkpoint files, or use another --output_dir.")
    model = build_model(config, data.observation_shape)
    if config.init_from:
        initialise_from(model, config.init_from)
        print(f"Starting from the weights of {config.init_from} at step "
              f"{int(model.global_step.numpy())}.")
    return model, 0.0, config


_STRATEGIES = {}


def make_strategy(name):
    """The `tf.distribute` strategy of --strategy: "default" (one device: TF's default strategy),
    "mirrored" (`MirroredStrategy` over this machine's devices) or "multi_worker"
    (`MultiWorkerMirroredStrategy`, which reads the cluster and this process's task from the
    TF_CONFIG environment variable). One per process and name: a second MirroredStrategy in a
    process numbers its collective operations as the first did, and they clash (runs one after
    the other in one process share it), and a MultiWorkerMirroredStrategy can be made only once."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name not in ("mirrored", "multi_worker"):
        raise ValueError(f"Unknown strategy {name!r}; expected default, mirrored or multi_worker.")
    if name not in _STRATEGIES:
        _STRATEGIES[name] = tf.distribute.MirroredStrategy() if name == "mirrored" \
            else tf.distribute.MultiWorkerMirroredStrategy()
    return _STRATEGIES[name]


def is_chief(strategy):
    """Whether this process writes the run directory: always, except for a multi-worker worker
    that is not the chief (the "chief" task, or worker 0 of a cluster without one)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not cluster:
        return True
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in cluster


def distributed_stream(strategy, make_stream, batch_size, batches_per_step=1):
    """The stream `make_stream()` (global batches of batch_size × batches_per_step elements) as
    `fit` takes it under `strategy`: replica r of n gets rows [r·b, (r+1)·b), b = batch_size / n,
    of each of the step's batches (`zoo.replicas.slice_for_replica`), the rows whose noise the
    models draw for it, so the replicas together see exactly the single-device batch. Each input
    pipeline (one per worker) makes the global batch and hands out its local replicas' slices."""
    n = strategy.num_replicas_in_sync
    if n == 1:
        return make_stream()
    if batch_size % n:
        raise ValueError(f"--batch_size={batch_size} cannot be split evenly over the strategy's "
                         f"{n} replicas: use a multiple of {n}.")

    def pipeline(context):
        local = n // context.num_input_pipelines
        first = context.input_pipeline_id * local

        def split(*element):
            element = element[0] if len(element) == 1 else element
            parts = [replicas.slice_for_replica(element, first + j, n, batches_per_step)
                     for j in range(local)]
            return tf.nest.map_structure(lambda *p: tf.stack(p), *parts)

        return make_stream().map(split).unbatch().prefetch(tf.data.AUTOTUNE)

    return strategy.distribute_datasets_from_function(pipeline)


def run(config):
    """Train (or resume) the run described by `config` (a TrainConfig) and write its outputs.
    Returns the results dict that is also written to results.json.

    Op determinism and the global random seeds are set for the run only (trainers.process_state):
    the caller's process has its own settings back when this returns or raises.

    --strategy: the model is built (or loaded), compiled, trained, checkpointed and exported
    under the strategy's scope; the batch size is the global batch. With multi_worker only the
    chief writes the run directory; every other worker runs the same steps (saving takes part in
    the workers' collective operations) in a temporary copy of it, removed at the end, as
    TensorFlow's multi-worker guide does. A worker resumes from the run directory's checkpoint, so
    the workers must share it (a shared file system)."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"run() takes a TrainConfig, got {type(config).__name__} (a dict of "
                        "settings becomes one with TrainConfig.from_dict).")
    config = config.resolved()
    evaluation = _metric_settings(config)
    strategy = make_strategy(config.strategy)
    with op_determinism(config.deterministic):
        data = zoo.data.get(config.dataset, source=config.data_source)
        print(f"Data: {data.data_source}", flush=True)
        identity = run_identity(config, data)
        # Seeded as well as stateless: deterministic random ops refuse to run unseeded.
        with global_seeds(config.seed), strategy.scope():
            if is_chief(strategy):
                return _run_in_directory(config, data, identity, evaluation)
            return _run_as_worker(config, data, identity, evaluation)


def _run_as_worker(config, data, identity, evaluation):
    """A multi-worker run's non-chief worker: the run in a temporary copy of the run directory's
    checkpoint files (so it resumes where the chief does), deleted afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix="zoo_worker_"))
    try:
        out = scratch / "run"
        out.mkdir()
        if config.directory.is_dir():
            for path in config.directory.iterdir():
                if path.is_file() and path.name != LOCK and (
                        path.name.startswith("checkpoint") or path.name == "config.json"):
                    shutil.copy2(path, out / path.name)
        best = evaluation["best"] and BestModel(str(out), config.keep_best, config.keep_best_mode)
        return _run_in_directory(config.replace(output_dir=str(out)), data, identity,
                                 {**evaluation, "best": best})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run_in_directory(config, data, identity, evaluation):
    out = config.directory
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with RunLock(out):
            store = CheckpointStore(out, config.checkpoints_kept)
            model, elapsed_before, config = _resume_or_start(out, store, config, identity, data)
            if model.image_shape != tuple(data.observation_shape):
                raise ValueError(f"Model input shape {model.image_shape} does not match the data "
                                 f"set's observation shape {tuple(data.observation_shape)}.")
            check_memory(model)
            write_json(out / "config.json",
                       {**config.to_dict(), "data_source_description": data.data_source})
            return _train_and_finish(model, data, config, out, store, identity, elapsed_before,
                                     evaluation)
    except BaseException:
        # A run refused before it wrote anything leaves no directory behind.
        if created and [p.name for p in out.iterdir()] == [LOCK]:
            (out / LOCK).unlink()
            out.rmdir()
        raise


def _train_and_finish(model, data, config, out, store, identity, elapsed_before, evaluation):
    fixed_images = data.sample_observations(8, np.random.default_rng(config.seed))
    start, steps, every = int(model.global_step.numpy()), config.steps, config.checkpoint_every
    checkpoint = Checkpoint(store, every, identity, elapsed_before)
    tensorboard = TensorBoardLogger(out / "tensorboard", fixed_images, config.log_every,
                                    config.image_every, data.data_source)
    periodic = [MetricsCallback(data, evaluation["periodic"], evaluation["every"],
                                writer=tensorboard.writer, seed=config.seed,
                                params=evaluation["params"], common=evaluation["common"],
                                history_path=out / "metrics_history.jsonl",
                                best=evaluation["best"])
                ] if evaluation["every"] else []
    if start < steps:
        # One Keras "epoch" is one checkpoint interval, so the progress bar shows the interval
        # and initial_epoch lines up with the resumed step.
        # The model chooses its stream (the i.i.d. stream by default; DC-IGN's single-factor
        # batches); batch k is a function of (seed, start + k), so a resumed run sees the same data.
        # The guard comes first (a diverged step stops before anything of it is saved), then the
        # evaluations, then the checkpoint (a resumed run redoes the evaluations after it).
        strategy = model.distribute_strategy
        model.fit(
            distributed_stream(strategy, lambda: model.training_stream(
                data, config.batch_size, seed=config.seed, start_step=start),
                config.batch_size, model.batches_per_step),
            initial_epoch=start // every, epochs=math.ceil(steps / every),
            steps_per_epoch=every, verbose=config.verbose, shuffle=False,
            callbacks=[DivergenceGuard(config.on_nan)] + periodic
            + [checkpoint, StopAtStep(steps), tensorboard])
        checkpoint.save()
    return finish(model, data, config, out, checkpoint.elapsed(), evaluation)


def _metric_settings(config):
    """The metric names and parameters of --eval_metrics/--eval_every (TrainConfig has checked
    them), and the keeper of the best model."""
    from zoo import metrics as zoo_metrics

    final = zoo_metrics.resolve_metric_names(config.eval_metrics)
    periodic = zoo_metrics.resolve_metric_names(config.eval_every_metrics or config.eval_metrics)
    params, common = zoo_metrics.parse_metric_args(config.eval_metric_args)
    best = BestModel(config.output_dir, config.keep_best, config.keep_best_mode) \
        if config.keep_best else None
    return {"final": final, "periodic": periodic, "every": config.eval_every, "params": params,
            "common": common, "best": best}


def finish(model, data, config, out, wall_time, evaluation=None):
    """Final artifacts: model.keras, SavedModel, PNGs, held-out loss terms and results.json."""
    save_model(model, out / "model.keras")
    if config.export:
        export.export_saved_model(model, out / "saved_model")
    images = data.sample_observations(8, np.random.default_rng(config.seed))
    pictures = {
        "reconstructions": visualize.save_png(visualize.reconstruction_grid(model, images),
                                              out / "reconstructions.png"),
        "traversals": visualize.save_traversals(model, images[0], out / "traversals.png"),
    } if len(model.image_shape) == 3 else {}  # vector observations (pinwheel): no image grids
    held_out = model.evaluate(distributed_stream(
        model.distribute_strategy, lambda: model.evaluation_stream(
            data, config.batch_size, seed=config.seed + 1_000_003), config.batch_size),
                              steps=config.eval_batches, return_dict=True, verbose=0)
    results = {
        "config": {k: v for k, v in config.to_dict().items() if k != "verbose"},
        "model_config": model.get_config(),
        "data_source": data.data_source,
        "steps": int(model.global_step.numpy()),
        "seed": config.seed,
        "train_wall_time_s": round(wall_time, 1),
        "final_loss_terms": {k: float(v) for k, v in held_out.items()},
        "final_loss_terms_note": f"mean over {config.eval_batches} held-out batches of "
                                 f"{config.batch_size} fresh samples",
        "artifacts": {"model": "model.keras",
                      "saved_model": "saved_model" if config.export else None,
                      **{k: Path(v).name for k, v in pictures.items()}},
        "versions": _versions(),
    }
    if evaluation and evaluation["best"] and evaluation["best"].record:
        results["best_model"] = evaluation["best"].record
    if evaluation and evaluation["final"]:
        import sklearn

        from zoo import metrics as zoo_metrics

        scored = zoo_metrics.evaluate(data, model, evaluation["final"], config.seed,
                                      common=evaluation["common"], **evaluation["params"])
        results["metrics"] = scored["metrics"]
        results["metrics_skipped"] = scored["skipped"]
        results["metrics_wall_time_s"] = scored["wall_time_s"]
        results["versions"]["scikit-learn"] = sklearn.__version__
    write_json(out / "results.json", results)
    print(f"Wrote {out / 'results.json'}; pictures: "
          f"{', '.join(str(p) for p in pictures.values())}")
    return results


def main(argv):
    del argv  # cli.run refuses stray arguments
    FLAGS = flags.FLAGS
    if FLAGS.threads < 0:
        raise app.UsageError(f"--threads must be ≥ 0, got {FLAGS.threads}.")
    if FLAGS.threads:  # process-wide, so set here (before TF starts) and not in run()
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
    logging.set_verbosity(logging.WARNING)  # TF's INFO chatter (SavedModel writing) hides ours
    config = TrainConfig.from_flags(FLAGS)
    started = time.time()
    results = run(config)
    print(json.dumps(results["final_loss_terms"], indent=2))
    print(f"Done in {time.time() - started:.0f}s: {results['config']['output_dir']}")


if __name__ == "__main__":
    cli.run(main, define_flags)
