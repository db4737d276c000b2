r"""Training speed of the standard conv β-VAE (batch 64) on this machine.

    python -m trainers.benchmark

Prints steps/s with the procedural dSprites stream and with in-memory arrays, measured in
alternating rounds within one run (this CPU is noisy: compare ratios, not separate runs), and the
machine's measured float32 matmul GFLOP/s with the model's FLOPs per step, so the fraction of peak
is visible.
"""
import json
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

import zoo.data
from zoo import models

flags.DEFINE_string("model", "beta_vae", "Model to time.")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_integer("steps", 200, "Timed steps per round.")
flags.DEFINE_integer("rounds", 3, "Alternating rounds per input pipeline.")
flags.DEFINE_bool("deterministic", True, "Deterministic ops, as trainers.train uses by default.")
flags.DEFINE_string("output", None, "Also write the figures to this JSON file.")


def matmul_gflops(n=2048, repeats=20):
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    matmul().numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        matmul().numpy()
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def flops_per_step(model, batch_size):
    """Forward+backward FLOPs of one train step from TF's graph profiler (float ops only)."""
    x = tf.zeros((batch_size,) + model.image_shape)
    concrete = tf.function(lambda x: model.train_step(x)).get_concrete_function(x)
    from tensorflow.python.profiler import model_analyzer, option_builder  # TF's FLOP counter
    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return model_analyzer.profile(concrete.graph, options=options).total_float_ops


def time_steps(model, iterator, steps):
    train = tf.function(model.train_step)
    train(next(iterator))  # trace outside the timed region
    start = time.perf_counter()
    for _ in range(steps):
        logs = train(next(iterator))
    float(logs["loss"])
    return steps / (time.perf_counter() - start)


def main(argv):
    del argv
    FLAGS = flags.FLAGS
    if FLAGS.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(0)
    data = zoo.data.get("dsprites")
    model = models.get(FLAGS.model, seed=0)
    model.compile()
    images = data.sample(4096, np.random.default_rng(0))[1]
    in_memory = iter(tf.data.Dataset.from_tensor_slices(images).repeat()
                     .batch(FLAGS.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
    stream = iter(data.stream(FLAGS.batch_size, seed=0))
    rates = {"in_memory": [], "procedural_stream": []}
    for _ in range(FLAGS.rounds):
        rates["in_memory"].append(time_steps(model, in_memory, FLAGS.steps))
        rates["procedural_stream"].append(time_steps(model, stream, FLAGS.steps))
    medians = {k: float(np.median(v)) for k, v in rates.items()}
    peak = matmul_gflops()
    flops = flops_per_step(model, FLAGS.batch_size)
    result = {
        "model": FLAGS.model, "batch_size": FLAGS.batch_size,
        "steps_per_s": medians, "rounds": rates,
        "stream_cost_vs_in_memory": 1 - medians["procedural_stream"] / medians["in_memory"],
        "matmul_gflops": peak, "gflop_per_step": flops / 1e9,
        "fraction_of_matmul_peak": medians["in_memory"] * flops / 1e9 / peak,
    }
    print(f"{FLAGS.model}, batch {FLAGS.batch_size}, median of {FLAGS.rounds} alternating rounds "
          f"of {FLAGS.steps} steps:")
    print(f"  in-memory arrays      {medians['in_memory']:6.1f} steps/s")
    print(f"  procedural stream     {medians['procedural_stream']:6.1f} steps/s "
          f"(stream costs {100 * result['stream_cost_vs_in_memory']:.1f}%)")
    print(f"  float32 matmul peak   {peak:6.0f} GFLOP/s; a step is {flops / 1e9:.2f} GFLOP → "
          f"{100 * result['fraction_of_matmul_peak']:.0f}% of peak")
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    app.run(main)
