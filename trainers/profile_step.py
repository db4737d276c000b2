r"""Where one training step's time goes, from TensorFlow's profiler trace.

    python -m trainers.profile_step --model=beta_vae
    python -m trainers.profile_step --model=cascade_vae --start_step=80000   # its discrete stage

Traces --steps steps of `model.train_step` on a fixed batch of dSprites images (no input
pipeline) with one TF thread, so the ops run one after another and their times add up to the
step, and prints the share of the op time

- by part: forward and backward (ops under `gradient_tape/`) of each of the model's sub-networks
  (encoder, decoder, discriminator, ...); everything else (loss, optimizer update, input checks)
  is "other";
- by layer of those sub-networks (forward, backward);
- by op type (oneDNN kernels keep their `_Mkl` names).

Shares, not times: a trace on a busy machine is slower, not differently shaped (the load average
is printed beside it), once the stretches where the thread waited for a core are left out: an
op's time is its fastest over the traced steps, and its own, without the ops it runs inside it
(the branches of a tf.cond). A backward pass written by hand (CascadeVAE's discrete stage) is not
under `gradient_tape/` and counts as forward. Figures: docs/performance.md.
"""
import collections
import glob
import os
import re
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from absl import flags

import zoo.data
from trainers import cli
from zoo import models, networks
from zoo.key_values import parse_key_values


def define_flags(flag_values):
    define = cli.definer(flag_values)
    define("string", "model", "beta_vae", "Model to profile.")
    define("multi_string", "model_arg", [], "Hyperparameter of --model as key=value (JSON value).")
    define("integer", "batch_size", 64, "Batch size.")
    define("integer", "steps", 30, "Traced steps (after two untraced warm-up steps).")
    define("integer", "start_step", 0, "The model's global_step before profiling (CascadeVAE's "
           "discrete stage: 80000).")
    define("bool", "keras_layers", False, "Build the model with keras.layers.Conv2DTranspose "
           "instead of zoo.networks.Conv2DTranspose.")
    define("integer", "top", 12, "Rows of the op-type table.")


def op_self_times(xplane_path):
    """[(op name, op type, self time in s)] of every TF op executed on the host in the trace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(xplane_path, "rb") as f:
        space.ParseFromString(f.read())
    ops = []
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            events = []
            for event in line.events:
                metadata = plane.event_metadata[event.metadata_id]
                # TF op events are named "<op name>:<op type>" and carry the type as display name.
                if metadata.display_name and metadata.name.endswith(":" + metadata.display_name):
                    events.append((event.offset_ps, event.offset_ps + event.duration_ps,
                                   metadata.name[:-len(metadata.display_name) - 1],
                                   metadata.display_name))
            events.sort(key=lambda e: (e[0], -e[1]))
            stack = []  # enclosing events: [end, name, type, self time]
            for start, end, name, op_type in events:
                while stack and stack[-1][0] <= start:
                    ops.append(tuple(stack.pop()[1:]))
                if stack:  # nested (a branch of a tf.cond inside the If op): not the parent's own
                    stack[-1][3] -= end - start
                stack.append([end, name, op_type, end - start])
            ops.extend(tuple(entry[1:]) for entry in reversed(stack))
    return [(name, op_type, ps / 1e12) for name, op_type, ps in ops]


def describe(layer):
    """E.g. "Conv2DTranspose 32→1" (input → output channels or units)."""
    kernel = getattr(layer, "kernel", None)
    if kernel is None or len(kernel.shape) < 2:
        return type(layer).__name__
    inputs, outputs = kernel.shape[-2:]
    if isinstance(layer, keras.layers.Conv2DTranspose):  # kernel [h, w, out, in]
        inputs, outputs = outputs, inputs
    return f"{type(layer).__name__} {inputs}→{outputs}"


def name_layers(model):
    """Rename the layers of the model's sub-networks `<sub-network><i>` (decoder6), so an op's
    name scope says which layer it belongs to, also where a model calls a layer outside its
    sub-network (Keras' own names collide: conv2d_1 is a layer and a second call scope of conv2d).
    Returns {(sub-network, i): description}. Names are not part of a saved model's weights."""
    labels = {}
    for part in model.layers:
        for i, layer in enumerate(getattr(part, "layers", [])):
            layer.name = f"{part.name}{i}"
            labels[part.name, i] = describe(layer)
    return labels


def per_step(ops, steps):
    """[(op name, op type, seconds per step)]: each op's fastest execution over the traced steps,
    times its executions per step. On a busy machine a thread that waits for a core stretches
    whichever op it is running, by up to hundreds of times on a loaded 2-core machine; the same op
    on the same batch costs the same work every step, so its fastest execution is its cost."""
    times = collections.defaultdict(list)
    for name, op_type, seconds in ops:
        times[name, op_type].append(seconds)
    return [(name, op_type, min(t) * len(t) / steps) for (name, op_type), t in times.items()]


def part_of(op_name, parts):
    """(sub-network or "other", layer index or None, "forward" | "backward") of an op, by the first
    scope of its name that is a sub-network (decoder_1) or one of its layers (decoder6_1; Keras
    numbers repeated call scopes), at any depth (ops inside a tf.cond branch)."""
    scopes = op_name.split("/")
    direction = "backward" if "gradient_tape" in scopes else "forward"
    names = "|".join(re.escape(p) for p in sorted(parts, key=len, reverse=True))
    matches = [m for m in (re.fullmatch(rf"({names})(\d*)(_\d+)*", s) for s in scopes) if m]
    for match in matches:
        if match[2]:  # a layer's scope
            return match[1], int(match[2]), direction
    return (matches[0][1] if matches else "other"), None, direction


def profile(model, images, steps):
    """(op self times, wall seconds per step) over `steps` traced steps."""
    train = tf.function(model.train_step)
    for _ in range(2):
        float(train(images)["loss"])
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for _ in range(steps):
            logs = train(images)
        float(logs["loss"])
        wall = (time.perf_counter() - start) / steps
        tf.profiler.experimental.stop()
        (path,) = glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb"))
        return op_self_times(path), wall


def _table(title, totals, total, top):
    rows = sorted(totals.items(), key=lambda kv: -kv[1])
    shown, rest = rows[:top], rows[top:]
    print(title)
    for key, value in shown:
        print(f"  {100 * value / total:5.1f}%  {key}")
    if rest:
        print(f"  {100 * sum(v for _, v in rest) / total:5.1f}%  ({len(rest)} more)")


def main(argv):
    del argv
    FLAGS = flags.FLAGS
    # One thread: the ops run one after another, so their times add up to the step.
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.experimental.enable_op_determinism()  # as trainers.train
    keras.utils.set_random_seed(0)
    model_args = parse_key_values(FLAGS.model_arg, "--model_arg")
    if FLAGS.keras_layers:
        with networks.keras_conv_transpose():
            model = models.get(FLAGS.model, seed=0, **model_args)
    else:
        model = models.get(FLAGS.model, seed=0, **model_args)
    model.compile()
    model.global_step.assign(FLAGS.start_step)
    labels = name_layers(model)
    count = FLAGS.batch_size * model.batches_per_step
    images = tf.constant(zoo.data.get("dsprites").sample(count, np.random.default_rng(0))[1])
    load_before = os.getloadavg()[0]
    ops, wall = profile(model, images, FLAGS.steps)
    ops = per_step(ops, FLAGS.steps)
    load_after = os.getloadavg()[0]

    parts = {layer.name for layer in model.layers}
    total = sum(seconds for _, _, seconds in ops)
    by_part = collections.Counter()
    by_layer = collections.Counter()
    by_type = collections.Counter()
    for name, op_type, seconds in ops:
        part, layer, direction = part_of(name, parts)
        by_part[part, direction] += seconds
        by_layer[part, layer, direction] += seconds
        by_type[op_type] += seconds
    print(f"{FLAGS.model} train step from step {FLAGS.start_step}, batch {count}, "
          f"1 thread, {FLAGS.steps} traced steps; load average "
          f"{load_before:.2f} before, {load_after:.2f} after, on {os.cpu_count()} cores")
    print(f"op time (fastest per op) = {100 * total / wall:.0f}% of the wall time of a step "
          "(less on a busy machine); fractions below are of the op time")
    print(f"  {'part':34s} {'forward':>8s} {'backward':>9s} {'total':>7s}")
    for part in sorted({p for p, _ in by_part}, key=lambda p: (p == "other", p)):
        forward, backward = by_part[part, "forward"], by_part[part, "backward"]
        print(f"  {part:34s} {100 * forward / total:7.1f}% {100 * backward / total:8.1f}% "
              f"{100 * (forward + backward) / total:6.1f}%")
    forward = sum(v for (_, d), v in by_part.items() if d == "forward")
    print(f"  {'all':34s} {100 * forward / total:7.1f}% {100 * (total - forward) / total:8.1f}%")
    print("by layer (≥ 0.5%):")
    for (part, i), label in labels.items():
        forward, backward = by_layer[part, i, "forward"], by_layer[part, i, "backward"]
        if forward + backward >= 0.005 * total:
            print(f"  {part + f'[{i}] ' + label:34s} {100 * forward / total:7.1f}% "
                  f"{100 * backward / total:8.1f}% {100 * (forward + backward) / total:6.1f}%")
    _table("by op type:", by_type, total, FLAGS.top)


if __name__ == "__main__":
    cli.run(main, define_flags)
