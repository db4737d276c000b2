"""What a training step needs to run the same under `tf.distribute` as on one device.

`trainers.train --strategy=mirrored|multi_worker` runs `fit` with the global batch (the configured
batch size) split into equal, contiguous slices, one per replica: replica r of n gets rows
[r·B/n, (r+1)·B/n) of each of the step's batches (`slice_for_replica`). The helpers below make
each replica's step compute its share of the single-device step, so that the summed update equals
the single-device update at the same global batch (docs/distributed.md):

- `replica_share(loss)`: a replica's batch-mean loss divided by the number of replicas. Keras'
  TensorFlow optimizer sums the replicas' gradients, so the sum is the gradient of the mean of the
  replica means, which is the global batch mean.
- `global_draw(draw, shape)`: stateless training noise drawn for the global batch and sliced to
  this replica's rows, so each replica gets the noise of ITS rows of the single-device draw.
- `gather_batch(t)`: the global batch's rows of a per-replica tensor, in replica order (for
  operations over the whole batch: FactorVAE's permutation, CascadeVAE's assignment).
- `agree_on_flags(bits)`: OR of int flags across replicas, so every replica decides alike.
- `run_if(pred, fn, *args)`: run `fn(*args)` in every replica when `pred` (the same on every
  replica) holds. tf.distribute cannot synchronise replicas inside a graph conditional on the CPU
  (a `merge_call` in a `tf.cond` branch), so the conditional is taken in the cross-replica
  context, as Keras' LossScaleOptimizer does, and `fn` runs per replica from there.

Outside a strategy (one device) every helper is the identity or a plain `tf.cond`.
"""
import tensorflow as tf

__all__ = ["across_workers", "agree_on_flags", "gather_batch", "global_draw", "in_replicas",
           "my_rows", "num_replicas", "replica_id", "replica_share", "run_if", "slice_for_replica"]


def _context():
    """The replica context of a `strategy.run` with more than one replica, else None."""
    if not tf.distribute.has_strategy() or tf.distribute.in_cross_replica_context():
        return None
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def in_replicas():
    """Whether the caller runs in one of several replicas."""
    return _context() is not None


def num_replicas():
    context = _context()
    return 1 if context is None else context.num_replicas_in_sync


def replica_id():
    """This replica's index in the sync group (int32 tensor; 0 on one device)."""
    context = _context()
    if context is None:
        return tf.constant(0, tf.int32)
    return tf.cast(context.replica_id_in_sync_group, tf.int32)


def across_workers(strategy):
    """Whether `strategy` is a MultiWorkerMirroredStrategy over more than one worker."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    spec = strategy.cluster_resolver.cluster_spec()
    return sum(spec.num_tasks(job) for job in spec.jobs) > 1


def replica_share(loss):
    """This replica's share of a batch-mean loss: loss / number of replicas."""
    n = num_replicas()
    return loss if n == 1 else loss / tf.cast(n, loss.dtype)


def global_draw(draw, shape):
    """`draw(shape)` (a stateless draw whose first axis is the batch) for this replica's rows:
    the rows r·b … (r+1)·b − 1 of `draw` at the global batch n·b, where b = shape[0]."""
    n = num_replicas()
    if n == 1:
        return draw(shape)
    shape = tf.convert_to_tensor(shape)
    rows = shape[0]
    full = draw(tf.concat([[rows * n], shape[1:]], axis=0))
    start = tf.cast(replica_id(), rows.dtype) * rows
    return full[start:start + rows]


def gather_batch(values):
    """The global batch [n·b, ...] of per-replica values [b, ...], replica 0's rows first."""
    context = _context()
    if context is None:
        return values
    return context.all_gather(values, axis=0)


def my_rows(global_values, rows):
    """This replica's `rows` rows of a global-batch tensor (the inverse of `gather_batch`)."""
    if num_replicas() == 1:
        return global_values
    start = tf.cast(replica_id(), tf.int32) * rows
    return global_values[start:start + rows]


def agree_on_flags(flags, width=31):
    """The bitwise OR over replicas of an int32 flag word (bits 0 … width − 1)."""
    context = _context()
    if context is None:
        return flags
    bits = tf.bitwise.bitwise_and(tf.bitwise.right_shift(flags, tf.range(width)), 1)
    total = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(bits, tf.float32))
    return tf.reduce_sum(tf.where(total > 0, tf.bitwise.left_shift(1, tf.range(width)), 0))


def run_if(pred, fn, *args, cross_replica=False, name=None):
    """Run `fn(*args)` when the bool tensor `pred` holds; `pred` must be the same on every
    replica. Under a strategy `fn` runs in every replica (or once, in the cross-replica context,
    with `cross_replica=True`: for assignments of mirrored variables), with each replica's own
    `args`; `fn` must take the per-replica tensors it uses as `args`, not from its closure.
    `name` names the conditional op (`trainers.benchmark` recognises the divergence guard's)."""
    def taken():
        fn(*args)
        return tf.constant(True)

    context = _context()
    if context is None:
        tf.cond(pred, taken, lambda: tf.constant(False), name=name)
        return

    def merged(strategy, pred, *args):
        first = strategy.experimental_local_results(pred)[0]

        def run():
            if cross_replica:
                fn(*args)
            else:
                strategy.extended.call_for_each_replica(fn, args=args)
            return tf.constant(True)

        tf.cond(first, run, lambda: tf.constant(False), name=name)

    context.merge_call(merged, args=(pred, *args))


def slice_for_replica(element, replica, replicas, batches_per_step=1):
    """Replica `replica`'s slice of a global stream element: each of its `batches_per_step`
    consecutive batches (FactorVAE's x and x') cut into `replicas` equal contiguous parts and the
    replica's parts put back together. Works on any structure of tensors whose first axis is the
    batch."""
    def cut(t):
        shape = tf.shape(t)
        per_batch = shape[0] // batches_per_step
        rows = per_batch // replicas
        parts = tf.reshape(t[:per_batch * batches_per_step],
                           tf.concat([[batches_per_step, per_batch], shape[1:]], axis=0))
        mine = parts[:, replica * rows:(replica + 1) * rows]
        return tf.reshape(mine, tf.concat([[batches_per_step * rows], shape[1:]], axis=0))

    return tf.nest.map_structure(cut, element)
