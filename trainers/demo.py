r"""`make demo`: start from the zoo, then train.

1. From the zoo: load a published model by name, print its card's scores, draw its traversals,
   score one metric on fresh data next to the card's value, fine-tune it with `fit`, export it and
   answer one request through the SavedModel. Skipped, saying so, when nothing is published.
2. Train a β-VAE on procedural dSprites for a few minutes, then check that the saved `.keras` file
   and the SavedModel reproduce the trained model's outputs.

    python -m trainers.demo [--demo_model=beta_vae_dsprites] [--demo_registry=path/registry.json]
                            [--demo_finetune_steps=200] [--demo_zoo_dir=runs/demo_zoo]
                            [--demo_steps=3000] [--demo_dir=runs/demo]

Rerunning resumes the training (or just re-checks a finished run); the zoo part starts afresh.
"""
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from absl import flags, logging

import zoo.data
import zoo.metrics
from trainers import cli, train
from trainers.config import TrainConfig
from trainers.run_dir import latest_checkpoint
from zoo import export, pretrained, visualize


def define_flags(flag_values):
    define = cli.definer(flag_values)
    define("integer", "demo_steps", 3000, "Training steps (about 3–4 minutes on a 2-core CPU).")
    define("string", "demo_dir", "runs/demo", "Output directory of the training part.")
    define("string", "demo_zoo_dir", "runs/demo_zoo", "Output directory of the zoo part.")
    define("string", "demo_model", None, "Published model to start from (default: "
           "beta_vae_dsprites when published, else the first published model).")
    define("string", "demo_registry", None, "Registry of published models (default: the "
           "package's, pretrained/registry.json in a checkout).")
    define("integer", "demo_finetune_steps", 200, "Fine-tuning steps of the published model.")


PREFERRED = "beta_vae_dsprites"
# A score on fresh data differs from the card's by sampling noise only: a few hundredths for the
# card's sample sizes. More than this says the model, the data or the metric changed.
SCORE_TOLERANCE = 0.05


def _score_on_fresh_data(model, record, data):
    """(metric, {value: (card's, fresh)}) for the card's first metric (MIG when it has one),
    recomputed with the card's parameters on observations drawn with another seed."""
    card = record.get("card", {})
    params = card.get("metric_params", {})
    if not params:
        return None, {}
    metric = "mig" if "mig" in params else next(iter(params))
    fresh_seed = int(card.get("metrics_seed", 0)) + 1
    result = zoo.metrics.evaluate(data, model, metric, seed=fresh_seed, **{metric: params[metric]})
    values = result["metrics"][metric]["values"]
    return metric, {key: (record["scores"].get(f"{metric}/{key}"), value)
                    for key, value in values.items()}


def from_the_zoo(name, registry, out, finetune_steps):
    """The zoo part of the demo; returns the checks that failed (descriptions)."""
    published = pretrained.available(registry)
    if not published:
        print(f"\nNo model is published in {pretrained.registry_path(registry)} yet, so the demo "
              "cannot start from the zoo; going on to the short training.")
        return []
    name = name or (PREFERRED if PREFERRED in published else published[0])
    record = pretrained.entry(name, registry)
    card = record.get("card", {})
    out = Path(out) / name
    shutil.rmtree(out, ignore_errors=True)  # a rerun starts afresh
    out.mkdir(parents=True)
    failures = []

    started = time.perf_counter()
    model = pretrained.load(name, registry)
    print(f"\n== From the zoo: {name} ({card.get('method', type(model).__name__)}; "
          f"{card.get('citation') or 'no citation recorded'}), trained {record['steps']:,} steps on "
          f"{record['data_source']}; loaded and sha256-checked in "
          f"{time.perf_counter() - started:.1f}s")
    if card.get("path"):
        print(f"Model card: {pretrained.registry_path(registry).parent / card['path']}")
    print("Card scores:")
    for key, value in sorted(record["scores"].items()):
        print(f"  {key:45s} {value:.4f}")

    data = zoo.data.get(card.get("dataset", "dsprites"), source=card.get("dataset_source"))
    if data.data_source != record["data_source"]:
        print(f"NOTE: today's data is {data.data_source}, not the card's: scores may differ.")
    image = data.sample_observations(1, np.random.default_rng(2020))[0]
    gif = visualize.save_traversal_gif(model, image, out / "traversals.gif")
    png = visualize.save_traversals(model, image, out / "traversals.png")
    print(f"Traversals: {gif}  {png}")

    started = time.perf_counter()
    metric, values = _score_on_fresh_data(model, record, data)
    if metric is None:
        print("The card records no metric parameters; no score to check.")
    for key, (recorded, fresh) in values.items():
        agrees = recorded is not None and abs(fresh - recorded) <= SCORE_TOLERANCE
        print(f"{metric}/{key} on fresh data: {fresh:.4f}; the card: "
              f"{'—' if recorded is None else f'{recorded:.4f}'} "
              f"({'agrees' if agrees else 'DIFFERS'}, tolerance {SCORE_TOLERANCE}; "
              f"{time.perf_counter() - started:.0f}s)")
        if not agrees:
            failures.append(f"{metric}/{key} on fresh data differs from the card")

    if not model.compiled:  # a published file keeps its compile settings; fresh optimizer
        model.compile()
    held_out = data.stream(64, seed=7).take(4)
    before = model.evaluate(held_out, verbose=0, return_dict=True)
    term = "loss" if "loss" in before else min(before)  # InfoGAN has no single loss
    started = time.perf_counter()
    model.fit(model.training_stream(data, 64, seed=11), steps_per_epoch=finetune_steps,
              epochs=1, verbose=0, shuffle=False)
    after = model.evaluate(held_out, verbose=0, return_dict=True)
    model.save(out / "fine_tuned.keras")
    print(f"Fine-tuned {finetune_steps} steps with fit in {time.perf_counter() - started:.0f}s: "
          f"held-out {term} {before[term]:.1f} -> {after[term]:.1f}; saved "
          f"{out / 'fine_tuned.keras'}")

    served = tf.saved_model.load(str(export.export_saved_model(model, out / "saved_model")))
    request = tf.constant(image[None])
    answer = served.serving_default(request)["reconstruction"].numpy()
    difference = float(np.max(np.abs(answer - model(request).numpy())))
    print(f"SavedModel {out / 'saved_model'} answered one request: a reconstruction of shape "
          f"{answer.shape}, max |difference| vs the fine-tuned model {difference:.1e}")
    if not difference < 1e-5:
        failures.append("the SavedModel's answer differs from the fine-tuned model")
    return failures


def train_and_check(steps, output_dir):
    """The short training part of the demo; returns the checks that failed."""
    config = TrainConfig(model="beta_vae", model_args={"beta": 4.0}, steps=steps,
                         output_dir=output_dir, checkpoint_every=500, image_every=500)
    print(f"\n== Training a beta-VAE for {steps:,} steps on procedural dSprites in {output_dir}")
    results = train.run(config)
    out = config.directory

    images = zoo.data.get("dsprites").sample(16, np.random.default_rng(123))[1]
    trained = keras.models.load_model(latest_checkpoint(out))
    reloaded = keras.models.load_model(out / "model.keras")
    served = tf.saved_model.load(str(out / "saved_model"))
    expected = trained.encode(images)["mean"].numpy()
    checks = {
        ".keras encode": reloaded.encode(images)["mean"].numpy(),
        "SavedModel encode": served.encode(tf.constant(images))["mean"].numpy(),
        ".keras reconstruct": reloaded(images).numpy(),
        "SavedModel reconstruct": served.reconstruct(tf.constant(images))["reconstruction"]
        .numpy(),
    }
    reference = {"encode": expected, "reconstruct": trained(images).numpy()}
    print(f"\nData: {results['data_source']}")
    print(f"Trained {results['steps']} steps in {results['train_wall_time_s']:.0f}s; held-out "
          f"loss terms: " + ", ".join(f"{k} {v:.1f}" for k, v in
                                       results["final_loss_terms"].items()))
    all_match = True
    for name, value in checks.items():
        diff = float(np.max(np.abs(value - reference[name.split()[-1]])))
        all_match &= diff < 1e-5
        print(f"  {name:24s} max |difference| vs the trained model: {diff:.2e}")
    print("Reloaded .keras file and SavedModel match the trained model." if all_match
          else "MISMATCH between the trained model and its saved artifacts!")
    print(f"Pictures: {out / 'traversals.png'}  {out / 'reconstructions.png'}")
    print(f"TensorBoard: tensorboard --logdir {out / 'tensorboard'}")
    return [] if all_match else ["the trained model's saved artifacts differ from it"]


def main(argv):
    del argv
    FLAGS = flags.FLAGS
    logging.set_verbosity(logging.WARNING)
    started = time.perf_counter()
    failures = from_the_zoo(FLAGS.demo_model, FLAGS.demo_registry, FLAGS.demo_zoo_dir,
                            FLAGS.demo_finetune_steps)
    failures += train_and_check(FLAGS.demo_steps, FLAGS.demo_dir)
    print(f"\nDemo finished in {time.perf_counter() - started:.0f}s.")
    if failures:
        print("FAILED: " + "; ".join(failures))
        raise SystemExit(1)


if __name__ == "__main__":
    cli.run(main, define_flags)
