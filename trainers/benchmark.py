r"""Training speed of the standard conv β-VAE (batch 64) on this machine.

    python -m trainers.benchmark

Prints steps/s with the procedural dSprites stream and with in-memory arrays, measured in
alternating rounds within one run (this CPU is noisy: compare ratios, not separate runs), and the
machine's measured float32 matmul GFLOP/s with the model's FLOPs per step, so the fraction of peak
is visible. Another model against a baseline, in one run, as a ratio of step times:

    python -m trainers.benchmark --model=cascade_vae --start_step=80000 --baseline=beta_vae

(--start_step=80000 puts CascadeVAE in its discrete stage; the solvers' own time is printed too.)
The same model built with Keras' own Conv2DTranspose instead of zoo.networks' (the reference of the
faster layer), one TF thread, as on a machine packed with one run per core:

    python -m trainers.benchmark --baseline_keras_layers --threads=1 --clock=cpu

(--clock=cpu times by the process's CPU time, which a busy machine disturbs less than wall time;
with --threads=1 the matmul peak is one thread's too.) Figures and their commands:
docs/performance.md.
"""
import os
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

import zoo.data
from trainers import cli
from zoo import models, networks
from zoo.files import write_json
from zoo.key_values import parse_key_values


def define_flags(flag_values):
    define = cli.definer(flag_values)
    define("string", "model", "beta_vae", "Model to time.")
    define("integer", "batch_size", 64, "Batch size.")
    define("integer", "steps", 100, "Timed steps per round.")
    define("integer", "rounds", 5, "Alternating rounds per input pipeline.")
    define("bool", "deterministic", True, "Deterministic ops, as trainers.train uses by default.")
    define("string", "output", None, "Also write the figures to this JSON file.")
    define("multi_string", "model_arg", [], "Hyperparameter of --model as key=value (JSON "
           "value), e.g. solver=linear_sum_assignment; repeat for several.")
    define("integer", "start_step", 0, "Set the model's global_step to this before timing, so "
           "schedules are in the stage to time (CascadeVAE's discrete stage: 80000).")
    define("enum", "against", None, "Also time the same β-VAE step in PyTorch "
           "(trainers/torch_peer.py), alternating rounds with ours, and print the ratio of step "
           "times with the load average (needs the [bench] extra).", enum_values=["pytorch"])
    define("string", "baseline", None, "Also time this model (default hyperparameters) in the "
           "same run, alternating with --model on the in-memory arrays, and report the ratio of "
           "step times (this CPU is noisy: only ratios within one run compare).")
    define("bool", "baseline_keras_layers", False, "Use as the baseline --model itself (same "
           "hyperparameters and --start_step) built with keras.layers.Conv2DTranspose instead of "
           "zoo.networks.Conv2DTranspose.")
    define("enum", "clock", "wall", "Time steps by wall clock, or by this process's CPU time "
           "(all its threads): on a busy machine CPU time counts the work and not the waits for a "
           "core, so with --threads=1 it compares two computations' costs more steadily than wall "
           "time does.", enum_values=["wall", "cpu"])
    define("integer", "threads", 0, "TF intra-op and inter-op threads, and PyTorch's threads with "
           "--against (0: the libraries' defaults).")


def matmul_gflops(n=2048, repeats=20):
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    matmul().numpy()
    clock = _clock()
    start = clock()
    for _ in range(repeats):
        matmul().numpy()
    return 2 * n**3 * repeats / (clock() - start) / 1e9


def flops_per_step(model, batch_size):
    """Forward+backward FLOPs of one train step from TF's graph profiler (float ops only), or None
    when the step branches (tf.cond: CascadeVAE, DC-IGN): the profiler does not look inside
    the branches' function graphs, so its count would be far too low. The divergence guard's
    branches are not counted: they hold the optimizer's update (about 20 FLOPs per weight, under
    0.5% of a conv step) and a restore of batch-norm statistics."""
    x = tf.zeros((batch_size,) + model.image_shape)
    concrete = tf.function(lambda x: model.train_step(x)).get_concrete_function(x)
    if any(op.type in ("If", "StatelessIf", "Case", "StatelessCase")
           and not op.name.endswith("AssertGuard")  # input checks: no float work
           and not op.name.startswith("divergence_guard_")
           for op in concrete.graph.get_operations()):
        return None
    # TF's FLOP counter
    from tensorflow.python.profiler import model_analyzer, option_builder
    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return model_analyzer.profile(concrete.graph, options=options).total_float_ops


_train_functions = {}


def time_steps(model, iterator, steps):
    if id(model) not in _train_functions:  # traced once per model, outside the timed region
        _train_functions[id(model)] = tf.function(model.train_step)
    train = _train_functions[id(model)]
    train(next(iterator))  # a warm-up step outside the timed region
    clock = _clock()
    start = clock()
    for _ in range(steps):
        logs = train(next(iterator))
    float(logs["loss"])
    return steps / (clock() - start)


def time_peer(step, steps):
    step()  # warm-up outside the timed region
    clock = _clock()
    start = clock()
    for _ in range(steps):
        step()
    return steps / (clock() - start)


def _clock():
    return time.process_time if flags.FLAGS.clock == "cpu" else time.perf_counter


def main(argv):
    del argv
    FLAGS = flags.FLAGS
    if FLAGS.threads < 0:
        raise app.UsageError(f"--threads must be ≥ 0, got {FLAGS.threads}.")
    if FLAGS.threads:  # before TF runs any op
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
    if FLAGS.baseline and FLAGS.baseline_keras_layers:
        raise app.UsageError("Give --baseline or --baseline_keras_layers, not both.")
    peer = None
    if FLAGS.against == "pytorch":
        if FLAGS.model != "beta_vae" or FLAGS.model_arg:
            raise app.UsageError("--against=pytorch times the standard β-VAE: leave --model and "
                                 "--model_arg at their defaults.")
        from trainers import torch_peer
        try:
            peer = torch_peer.build_step(FLAGS.batch_size, threads=FLAGS.threads or None)
        except ImportError as error:
            raise app.UsageError(str(error)) from None
    if FLAGS.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(0)
    data = zoo.data.get("dsprites")
    model_args = parse_key_values(FLAGS.model_arg, "--model_arg")
    model = models.get(FLAGS.model, seed=0, **model_args)
    model.compile()
    model.global_step.assign(FLAGS.start_step)
    baseline = models.get(FLAGS.baseline, seed=0) if FLAGS.baseline else None
    if FLAGS.baseline_keras_layers:
        with networks.keras_conv_transpose():
            baseline = models.get(FLAGS.model, seed=0, **model_args)
    if baseline is not None:
        baseline.compile()
        if FLAGS.baseline_keras_layers:
            baseline.global_step.assign(FLAGS.start_step)
    images = data.sample(4096, np.random.default_rng(0))[1]

    def in_memory_batches(a_model):
        # A model that consumes several batches per step (FactorVAE's second batch:
        # batches_per_step = 2) gets batch_size × batches_per_step images, as in trainers.train.
        return iter(tf.data.Dataset.from_tensor_slices(images).repeat()
                    .batch(FLAGS.batch_size * a_model.batches_per_step, drop_remainder=True)
                    .prefetch(tf.data.AUTOTUNE))

    in_memory = in_memory_batches(model)
    stream = iter(data.stream(FLAGS.batch_size * model.batches_per_step, seed=0))
    baseline_in_memory = in_memory_batches(baseline) if baseline is not None else None
    rates = {"in_memory": [], "procedural_stream": []}
    if baseline is not None:
        rates["baseline_in_memory"] = []
    if peer is not None:
        rates["pytorch"] = []
    load_before = os.getloadavg()
    for _ in range(FLAGS.rounds):
        rates["in_memory"].append(time_steps(model, in_memory, FLAGS.steps))
        if baseline is not None:
            rates["baseline_in_memory"].append(
                time_steps(baseline, baseline_in_memory, FLAGS.steps))
        if peer is not None:
            rates["pytorch"].append(time_peer(peer, FLAGS.steps))
        rates["procedural_stream"].append(time_steps(model, stream, FLAGS.steps))
    medians = {k: float(np.median(v)) for k, v in rates.items()}
    peak = matmul_gflops()
    flops = flops_per_step(model, FLAGS.batch_size * model.batches_per_step)
    result = {
        "model": FLAGS.model, "batch_size": FLAGS.batch_size,
        "batches_per_step": model.batches_per_step,
        "steps_per_s": medians, "rounds": rates,
        "stream_cost_vs_in_memory": 1 - medians["procedural_stream"] / medians["in_memory"],
        "matmul_gflops": peak, "gflop_per_step": None if flops is None else flops / 1e9,
        "fraction_of_matmul_peak": (None if flops is None
                                    else medians["in_memory"] * flops / 1e9 / peak),
        "model_args": model_args, "start_step": FLAGS.start_step,
        "threads": FLAGS.threads, "clock": FLAGS.clock,
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
    }
    if baseline is not None:
        # The ratio within each round (the two models timed back to back), then the median over
        # rounds: a burst of load from other processes moves one round, not the figure.
        result["baseline"] = (f"{FLAGS.model} with keras.layers.Conv2DTranspose"
                              if FLAGS.baseline_keras_layers else FLAGS.baseline)
        result["step_time_ratio_per_round"] = [
            b / m for b, m in zip(rates["baseline_in_memory"], rates["in_memory"])]
        result["step_time_ratio_vs_baseline"] = float(
            np.median(result["step_time_ratio_per_round"]))
    if peer is not None:
        import torch

        # Ratio of step times within each round (PyTorch's over ours: > 1 means ours is faster).
        per_round = [ours / theirs for ours, theirs in zip(rates["in_memory"], rates["pytorch"])]
        result["against_pytorch"] = {
            "torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
            "step_time_ratio_per_round": per_round,
            "step_time_ratio_median": float(np.median(per_round)),
            "step_time_ratio_range": [float(min(per_round)), float(max(per_round))],
            "load_average_before": load_before, "load_average_after": os.getloadavg()}
    if isinstance(model, models.CascadeVAE):  # the model with an assignment step: the solvers alone
        from zoo import assignment
        result["solver_ms_per_batch"] = assignment.time_solvers(
            FLAGS.batch_size, model.num_categories, model.lambda_prime)
    per_step = (f" × {model.batches_per_step} batches per step" if model.batches_per_step > 1
                else "")
    print(f"{FLAGS.model}, batch {FLAGS.batch_size}{per_step}, median of {FLAGS.rounds} "
          f"alternating rounds of {FLAGS.steps} steps:")
    print(f"  in-memory arrays      {medians['in_memory']:6.1f} steps/s")
    print(f"  procedural stream     {medians['procedural_stream']:6.1f} steps/s "
          f"(stream costs {100 * result['stream_cost_vs_in_memory']:.1f}%)")
    if flops is None:
        print(f"  float32 matmul peak   {peak:6.0f} GFLOP/s; FLOPs per step not counted (the "
              "step branches with tf.cond, which TF's FLOP counter does not enter)")
    else:
        print(f"  float32 matmul peak   {peak:6.0f} GFLOP/s; a step is {flops / 1e9:.2f} GFLOP → "
              f"{100 * result['fraction_of_matmul_peak']:.0f}% of peak")
    if baseline is not None:
        spread = result["step_time_ratio_per_round"]
        print(f"  {result['baseline']} (in-memory) {medians['baseline_in_memory']:6.1f} steps/s → "
              f"a {FLAGS.model} step (from step {FLAGS.start_step}) costs "
              f"{result['step_time_ratio_vs_baseline']:.3f}× a baseline step (rounds "
              f"{min(spread):.3f}–{max(spread):.3f})")
    if peer is not None:
        versus = result["against_pytorch"]
        print(f"  PyTorch {versus['torch_version']} ({versus['torch_threads']} threads) "
              f"{medians['pytorch']:6.1f} steps/s → ours is {versus['step_time_ratio_median']:.2f}× "
              f"as fast (rounds {versus['step_time_ratio_range'][0]:.2f}–"
              f"{versus['step_time_ratio_range'][1]:.2f}); load average "
              f"{versus['load_average_before'][0]:.2f} before, {versus['load_average_after'][0]:.2f} "
              "after (a busy machine flatters TF: PyTorch's threads suffer more from it)")
    print(f"  threads {FLAGS.threads or 'default'}, {FLAGS.clock} clock; load average {load_before[0]:.2f} before, "
          f"{result['load_average_after'][0]:.2f} after")
    for solver, ms in result.get("solver_ms_per_batch", {}).items():
        print(f"  solver {solver:22s} {ms:6.2f} ms per batch of {FLAGS.batch_size}")
    if FLAGS.output:
        write_json(FLAGS.output, result)


if __name__ == "__main__":
    cli.run(main, define_flags)
