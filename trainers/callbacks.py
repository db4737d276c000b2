"""Keras callbacks used by `trainers.train`: checkpoint/resume, TensorBoard scalars and images,
periodic metrics and the best-scoring model, stopping at an exact step."""
import json
import math
import os
import signal
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from trainers.run_dir import (
    NonFiniteModelError,
    read_json,
    save_model,
    write_json,
    write_text,
)
from zoo import visualize

#: The environment variable of the kill-and-resume tests: set to a step, the process SIGKILLs
#: itself right after writing its first checkpoint at or past that step, where a kill leaves a run
#: with nothing of the next interval saved. (A kill timed from outside may land before or after
#: later steps, so the tests would not know what they resume from.)
KILL_AFTER_CHECKPOINT = "ZOO_KILL_AFTER_CHECKPOINT"


class Checkpoint(keras.callbacks.Callback):
    """Every `every` training steps (by the model's saved global_step), write the whole training
    state — weights, optimizer slots, step counter — as a checkpoint of `store` (a
    `trainers.run_dir.CheckpointStore`), with the run's `identity` and the cumulative training
    wall time in its manifest. (See KILL_AFTER_CHECKPOINT.)"""

    def __init__(self, store, every, identity, elapsed_before=0.0):
        super().__init__()
        self.store, self.every, self.identity = store, int(every), identity
        self.elapsed_before = elapsed_before
        self.started = time.time()

    def elapsed(self):
        return self.elapsed_before + time.time() - self.started

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.global_step.numpy()) % self.every == 0:
            self.save()

    def save(self):
        self.store.save(self.model, self.identity, self.elapsed())
        kill_after = os.environ.get(KILL_AFTER_CHECKPOINT)
        if kill_after and int(self.model.global_step.numpy()) >= int(kill_after):
            os.kill(os.getpid(), signal.SIGKILL)


class DivergenceGuard(keras.callbacks.Callback):
    """Reads each training step's `nonfinite` mask (`zoo.models.base.TrainingState.
    apply_finite_update`: an update with a non-finite loss term or gradient is never applied) and
    takes it out of the logs. on_nan="stop" stops training with a `NonFiniteModelError` naming the
    step and the terms, before any checkpoint of that step is written; "skip_batch" carries on
    without the batch, until `max_consecutive` steps in a row have been skipped (divergence, not a
    bad batch). Place it first among the callbacks."""

    def __init__(self, on_nan="stop", max_consecutive=20):
        super().__init__()
        if on_nan not in ("stop", "skip_batch"):
            raise ValueError(f"on_nan must be 'stop' or 'skip_batch', got {on_nan!r}.")
        self.on_nan, self.max_consecutive = on_nan, int(max_consecutive)
        self.skipped = self.consecutive = 0

    def on_train_batch_end(self, batch, logs=None):
        mask = int((logs or {}).pop("nonfinite", 0))
        if not mask:
            self.consecutive = 0
            return
        self.skipped += 1
        self.consecutive += 1
        step = int(self.model.global_step.numpy())
        names = [name for i, name in enumerate(self.model.nonfinite_names()) if mask >> i & 1]
        what = f"non-finite (NaN or infinite) {', '.join(names)} at step {step}"
        if self.on_nan == "stop" or self.consecutive >= self.max_consecutive:
            reason = "" if self.on_nan == "stop" else \
                f" ({self.consecutive} steps in a row skipped)"
            raise NonFiniteModelError(
                f"Training diverged: {what}{reason}. The update was not applied and no "
                "checkpoint of it was written; the last good checkpoint is kept. Lower "
                "--learning_rate, or pass --on_nan=skip_batch to skip such batches.")
        print(f"\nSkipped the update of step {step}: {what}.", flush=True)

    def on_epoch_end(self, epoch, logs=None):
        (logs or {}).pop("nonfinite", None)


class BestModel:
    """Keeps the model of the best periodic evaluation of one metric value (e.g.
    "unsupervised_accuracy/accuracy"): `best.keras` and, beside it, `best.json` with the step and
    value. The reference CascadeVAE selects its checkpoint this way; docs/methods.md §8 asks to report
    both the last and the best-by-metric model.

    The record survives a resume, so "best" covers every evaluation made while it was kept.
    Evaluations before it was first turned on have no saved weights and are not candidates.
    """

    def __init__(self, directory, value_name, mode="max"):
        if mode not in ("max", "min"):
            raise ValueError(f"keep_best_mode must be 'max' or 'min', got {mode!r}.")
        directory = Path(directory)
        self.path, self.record_path = directory / "best.keras", directory / "best.json"
        self.value_name, self.mode = value_name, mode
        self.record = read_json(self.record_path, "delete it and best.keras to start a new "
                                "record, or restore both from a copy of the run.") \
            if self.record_path.exists() else None
        if self.record and (self.record["value_name"], self.record["mode"]) != (value_name, mode):
            raise ValueError(
                f"{directory} keeps the best model by {self.record['mode']} "
                f"{self.record['value_name']!r}, not {mode} {value_name!r}; use another "
                f"--output_dir or the same --keep_best.")

    def is_better(self, value):
        if self.record is None:
            return True
        return value > self.record["value"] if self.mode == "max" else value < self.record["value"]

    def update(self, model, step, values):
        """Save `model` as the best if values[value_name] beats the record; returns whether it
        did. A NaN value is never the best."""
        if self.value_name not in values:
            raise ValueError(f"--keep_best {self.value_name!r} is not a value of the periodic "
                             f"evaluation, which reports {sorted(values)}.")
        value = float(values[self.value_name])
        if math.isnan(value) or not self.is_better(value):
            return False
        save_model(model, self.path)
        self.record = {"value_name": self.value_name, "mode": self.mode, "value": value,
                       "step": int(step), "model": self.path.name}
        write_json(self.record_path, self.record)
        print(f"\nBest {self.value_name} so far: {value:.4f} at step {step}; saved {self.path}.",
              flush=True)
        return True


class StopAtStep(keras.callbacks.Callback):
    """Stop `fit` as soon as the model's global_step reaches `steps`."""

    def __init__(self, steps):
        super().__init__()
        self.steps = int(steps)

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.global_step.numpy()) >= self.steps:
            self.model.stop_training = True


class TensorBoardLogger(keras.callbacks.Callback):
    """Scalars (the running means of every logged loss term) every `scalar_every` steps, and
    reconstructions and latent traversals of fixed images every `image_every` steps, all indexed
    by the model's global_step so a resumed run continues the same curves."""

    def __init__(self, logdir, images, scalar_every=100, image_every=1000, data_source=None):
        super().__init__()
        self.writer = tf.summary.create_file_writer(str(logdir))
        self.images = np.asarray(images)
        self.scalar_every, self.image_every = int(scalar_every), int(image_every)
        self.data_source = data_source

    def on_train_begin(self, logs=None):
        if self.data_source:
            with self.writer.as_default():
                tf.summary.text("data_source", self.data_source,
                                step=int(self.model.global_step.numpy()))

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.global_step.numpy())
        with self.writer.as_default():
            if step % self.scalar_every == 0:
                for name, value in (logs or {}).items():
                    tf.summary.scalar(f"train/{name}", float(value), step=step)
            # Vector observations (pinwheel) have no image grids to show.
            if step % self.image_every == 0 and self.images.ndim == 4:
                self.write_images(step)

    def write_images(self, step):
        reconstructions = visualize.reconstruction_grid(self.model, self.images)
        traversals, _ = visualize.traversal_grid(self.model, self.images[0])
        with self.writer.as_default():
            tf.summary.image("reconstructions", reconstructions[None], step=step)
            tf.summary.image("traversals", traversals[None], step=step)
        self.writer.flush()

    def on_train_end(self, logs=None):
        self.writer.flush()


class MetricsCallback(keras.callbacks.Callback):
    """Every `every` training steps, score the model with a set of `zoo.metrics` and write the
    values as TensorBoard scalars `metrics/<metric>/<value>` (and one JSON line per evaluation to
    `history_path`, when given), indexed by the model's global_step.

    Each evaluation builds a fresh representation cache (the weights have changed) and uses the same
    `seed`, so successive evaluations score the same points. `params` are per-metric keyword
    parameters and `common` parameters for every metric that takes them (`zoo.metrics.evaluate`);
    smaller sample sizes (e.g. common={"num_train": 1000}) keep periodic evaluations cheap.
    `best` (a `BestModel`) keeps the model of the best evaluation.
    """

    def __init__(self, data, metrics, every, writer=None, logdir=None, seed=0, params=None,
                 common=None, history_path=None, best=None):
        super().__init__()
        if writer is None and logdir is None:
            raise ValueError("MetricsCallback needs a summary writer or a logdir")
        self.data, self.metrics, self.every = data, metrics, int(every)
        self.writer = writer if writer is not None else tf.summary.create_file_writer(str(logdir))
        self.seed, self.metric_params, self.common = int(seed), dict(params or {}), dict(common or {})
        self.history_path = Path(history_path) if history_path else None
        self.best = best
        self.last_step = None

    def on_train_begin(self, logs=None):
        # Lines of evaluations after the step this run resumes from were made by a process killed
        # before its next checkpoint; they are made again, so drop them rather than repeat them.
        if self.history_path is not None and self.history_path.exists():
            step = int(self.model.global_step.numpy())
            lines = self.history_path.read_text().splitlines(keepends=True)
            kept = [line for line in lines if _history_step(line) <= step]
            if len(kept) != len(lines):
                write_text(self.history_path, "".join(kept))

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.global_step.numpy())
        if step % self.every == 0 and step != self.last_step:
            self.evaluate(step)

    def evaluate(self, step):
        # Imported here: scikit-learn is only needed when evaluating.
        from zoo import metrics as zoo_metrics

        result = zoo_metrics.evaluate(self.data, self.model, self.metrics, self.seed,
                                      common=self.common, **self.metric_params)
        values = zoo_metrics.flatten(result)
        with self.writer.as_default():
            for name, value in values.items():
                tf.summary.scalar(f"metrics/{name}", value, step=step)
        self.writer.flush()
        if self.history_path is not None:
            with open(self.history_path, "a") as history:
                history.write(json.dumps({"step": step, "values": values,
                                          "wall_time_s": result["wall_time_s"]}) + "\n")
        if self.best is not None:
            self.best.update(self.model, step, values)
        self.last_step = step
        return result


def _history_step(line):
    """The step of a metrics_history.jsonl line (a torn last line counts as after every step)."""
    try:
        return int(json.loads(line)["step"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return math.inf
