r"""`make demo`: train a β-VAE on procedural dSprites for a few minutes, then check that the saved
`.keras` file and the SavedModel reproduce the trained model's outputs.

    python -m trainers.demo [--demo_steps=3000] [--demo_dir=runs/demo]

Rerunning resumes (or just re-checks a finished run).
"""

import keras
import numpy as np
import tensorflow as tf
from absl import flags, logging

import zoo.data
from trainers import cli, train
from trainers.config import TrainConfig
from trainers.run_dir import latest_checkpoint


def define_flags(flag_values):
    define = cli.definer(flag_values)
    define("integer", "demo_steps", 3000, "Training steps (about 3–4 minutes on a 2-core CPU).")
    define("string", "demo_dir", "runs/demo", "Output directory.")


def main(argv):
    del argv
    FLAGS = flags.FLAGS
    logging.set_verbosity(logging.WARNING)
    config = TrainConfig(model="beta_vae", model_args={"beta": 4.0}, steps=FLAGS.demo_steps,
                         output_dir=FLAGS.demo_dir, checkpoint_every=500, image_every=500)
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
    if not all_match:
        raise SystemExit(1)


if __name__ == "__main__":
    cli.run(main, define_flags)
