r"""Train a model of the zoo on a ground-truth data set.

    python -m trainers.train --model=beta_vae --model_arg=beta=4 --dataset=dsprites \
        --steps=300000 --output_dir=runs/beta_vae_b4_s0

Writes into --output_dir: `checkpoint.keras` every --checkpoint_every steps (rerunning the same
command resumes from it and ends with the same weights as an uninterrupted run), TensorBoard logs
(`tensorboard --logdir <output_dir>/tensorboard`), and at the end `model.keras`, `saved_model/`
(TF Serving), `results.json` and PNGs of reconstructions and latent traversals.
"""
import json
import math
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags, logging

import zoo
import zoo.data
from zoo import export, models, visualize
from trainers.callbacks import Checkpoint, StopAtStep, TensorBoardLogger, atomic_save

flags.DEFINE_string("model", "beta_vae", f"Model name: one of {sorted(models.MODELS)}.")
flags.DEFINE_multi_string("model_arg", [], "Model hyperparameter as key=value, e.g. beta=4 "
                          "(repeat the flag for several).")
flags.DEFINE_integer("latent_dim", 10, "Number of latent dimensions.")
flags.DEFINE_string("network", "conv64", "Encoder/decoder pair (see zoo.networks.NETWORKS).")
flags.DEFINE_string("dataset", "dsprites", "Ground-truth data set name.")
flags.DEFINE_string("data_source", "procedural",
                    "Where images come from: procedural (offline default), npz, or tfds.")
flags.DEFINE_string("output_dir", None, "Run directory (default runs/<model>_<dataset>_s<seed>).")
flags.DEFINE_integer("steps", 300_000, "Training iterations in total (a resumed run counts "
                     "the steps it has done).")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_float("learning_rate", 1e-4, "Adam learning rate (β1 0.9, β2 0.999, ε 1e-8).")
flags.DEFINE_integer("seed", 0, "Seed of weights, data order and noise.")
flags.DEFINE_integer("checkpoint_every", 1000, "Steps between checkpoints.")
flags.DEFINE_integer("log_every", 100, "Steps between TensorBoard scalar summaries.")
flags.DEFINE_integer("image_every", 5000, "Steps between TensorBoard image summaries.")
flags.DEFINE_integer("eval_batches", 16, "Held-out batches for the final loss terms.")
flags.DEFINE_bool("deterministic", True, "Deterministic TF ops (exact resume, repeatable runs).")
flags.DEFINE_bool("export", True, "Write a SavedModel at the end.")

# Settings that define a run: a rerun into the same output_dir must repeat them (steps may grow).
RUN_KEYS = ("model", "model_args", "latent_dim", "network", "dataset", "data_source",
            "batch_size", "learning_rate", "seed")


def parse_model_args(pairs):
    """["beta=4", "c_max=25"] → {"beta": 4, "c_max": 25} (values parsed as JSON when they can be)."""
    kwargs = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--model_arg must look like key=value, got {pair!r}.")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return kwargs


def default_config(**overrides):
    """The run configuration with the flags' defaults; keyword arguments override them."""
    config = {name: flags.FLAGS[name].default for name in (
        "model", "latent_dim", "network", "dataset", "data_source", "steps", "batch_size",
        "learning_rate", "seed", "checkpoint_every", "log_every", "image_every", "eval_batches",
        "deterministic", "export")}
    config.update(model_args={}, output_dir=None, verbose=1 if sys.stdout.isatty() else 2)
    unknown = set(overrides) - set(config)
    if unknown:
        raise ValueError(f"Unknown training settings {sorted(unknown)}.")
    config.update(overrides)
    if config["output_dir"] is None:
        config["output_dir"] = f"runs/{config['model']}_{config['dataset']}_s{config['seed']}"
    return config


def build_model(config):
    try:
        model = models.get(config["model"], latent_dim=config["latent_dim"],
                           network=config["network"], seed=config["seed"],
                           **config["model_args"])
    except TypeError as error:
        raise ValueError(f"Bad --model_arg for {config['model']!r}: {error}") from None
    model.compile(optimizer=models.default_optimizer(config["learning_rate"]))
    return model


def _check_same_run(saved, config, output_dir):
    changed = {k: (saved.get(k), config[k]) for k in RUN_KEYS if saved.get(k) != config[k]}
    if changed:
        details = ", ".join(f"{k}: {a!r} → {b!r}" for k, (a, b) in changed.items())
        raise ValueError(f"{output_dir} holds a run with different settings ({details}); use "
                         "another --output_dir or the same settings to resume it.")


def _versions():
    return {"zoo": zoo.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__}


def run(config):
    """Train (or resume) the run described by `config` (see `default_config`) and write its
    outputs. Returns the results dict that is also written to results.json."""
    for key in ("steps", "batch_size", "checkpoint_every", "log_every", "image_every"):
        if int(config[key]) < 1:
            raise ValueError(f"{key} must be ≥ 1, got {config[key]!r}.")
    if config["deterministic"]:
        tf.config.experimental.enable_op_determinism()
    out = Path(config["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    data = zoo.data.get(config["dataset"], source=config["data_source"])
    print(f"Data: {data.data_source}", flush=True)

    keras.utils.set_random_seed(config["seed"])  # also required by deterministic random ops
    checkpoint_path, state_path = out / "checkpoint.keras", out / "checkpoint_state.json"
    config_path = out / "config.json"
    if checkpoint_path.exists():
        _check_same_run(json.loads(config_path.read_text()), config, out)
        model = models.load(checkpoint_path)
        state = json.loads(state_path.read_text()) if state_path.exists() else {}
        elapsed_before = state.get("train_wall_time_s", 0.0)
        print(f"Resuming from {checkpoint_path} at step {int(model.global_step.numpy())}.")
    else:
        model = build_model(config)
        elapsed_before = 0.0
    config_path.write_text(json.dumps({**config, "data_source_description": data.data_source},
                                      indent=2))
    if model.image_shape != tuple(data.observation_shape):
        raise ValueError(f"Model input shape {model.image_shape} does not match the data set's "
                         f"observation shape {tuple(data.observation_shape)}.")

    _, fixed_images = data.sample(8, np.random.default_rng(config["seed"]))
    start, steps, every = int(model.global_step.numpy()), int(config["steps"]), \
        int(config["checkpoint_every"])
    checkpoint = Checkpoint(checkpoint_path, every, state_path, elapsed_before)
    if start < steps:
        # One Keras "epoch" is one checkpoint interval, so the progress bar shows the interval
        # and initial_epoch lines up with the resumed step.
        images_per_step = config["batch_size"] * model.batches_per_step
        model.fit(
            data.stream(images_per_step, seed=config["seed"], start_step=start),
            initial_epoch=start // every, epochs=math.ceil(steps / every),
            steps_per_epoch=every, verbose=config["verbose"], shuffle=False,
            callbacks=[checkpoint, StopAtStep(steps), TensorBoardLogger(
                out / "tensorboard", fixed_images, config["log_every"], config["image_every"],
                data.data_source)])
        checkpoint.save()
    return finish(model, data, config, out, checkpoint.elapsed())


def finish(model, data, config, out, wall_time):
    """Final artifacts: model.keras, SavedModel, PNGs, held-out loss terms and results.json."""
    atomic_save(model, out / "model.keras")
    if config["export"]:
        export.export_saved_model(model, out / "saved_model")
    _, images = data.sample(8, np.random.default_rng(config["seed"]))
    pictures = {
        "reconstructions": visualize.save_png(visualize.reconstruction_grid(model, images),
                                              out / "reconstructions.png"),
        "traversals": visualize.save_traversals(model, images[0], out / "traversals.png"),
    }
    held_out = model.evaluate(data.stream(config["batch_size"], seed=config["seed"] + 1_000_003),
                              steps=config["eval_batches"], return_dict=True, verbose=0)
    results = {
        "config": {k: v for k, v in config.items() if k != "verbose"},
        "model_config": model.get_config(),
        "data_source": data.data_source,
        "steps": int(model.global_step.numpy()),
        "seed": config["seed"],
        "train_wall_time_s": round(wall_time, 1),
        "final_loss_terms": {k: float(v) for k, v in held_out.items()},
        "final_loss_terms_note": f"mean over {config['eval_batches']} held-out batches of "
                                 f"{config['batch_size']} fresh samples",
        "artifacts": {"model": "model.keras",
                      "saved_model": "saved_model" if config["export"] else None,
                      **{k: Path(v).name for k, v in pictures.items()}},
        "versions": _versions(),
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"Wrote {out / 'results.json'}; pictures: "
          f"{', '.join(str(p) for p in pictures.values())}")
    return results


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    FLAGS = flags.FLAGS
    logging.set_verbosity(logging.WARNING)  # TF's INFO chatter (SavedModel writing) hides ours
    config = default_config(**{name: FLAGS[name].value for name in (
        "model", "latent_dim", "network", "dataset", "data_source", "steps", "batch_size",
        "learning_rate", "seed", "checkpoint_every", "log_every", "image_every", "eval_batches",
        "deterministic", "export", "output_dir")})
    config["model_args"] = parse_model_args(FLAGS.model_arg)
    started = time.time()
    results = run(config)
    print(json.dumps(results["final_loss_terms"], indent=2))
    print(f"Done in {time.time() - started:.0f}s: {config['output_dir']}")


if __name__ == "__main__":
    app.run(main)
