"""A process of tests/test_strategy.py: TensorFlow's CPU split into logical devices before anything
else touches it (which `tf.config.set_logical_device_configuration` requires), then one of:

    python tests/strategy_driver.py steps '<json>'   # per-step logs + final weights → .npz files
    python tests/strategy_driver.py train '<json>'   # trainers.train.run(TrainConfig(**config))

The JSON gives "cpus" (logical CPU devices, default 1) and, for `steps`, "runs": a list of
{"strategy", "model", "model_args", "dataset", "network", "latent_dim", "batch_size", "steps",
"seed", "out" (the .npz)}, trained one after the other in this process; for `train`: "config"
(TrainConfig settings). A multi-worker process gets its TF_CONFIG
from the environment, as any worker does.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def split_cpu(count):
    import tensorflow as tf

    if count > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])


def per_step(spec):
    """Train spec["steps"] steps with fit (one step per epoch, so each epoch's logs are that
    step's terms) and save every step's logged terms and the final weights."""
    import keras
    import numpy as np

    import zoo.data
    from trainers import train
    from trainers.config import TrainConfig
    from trainers.process_state import global_seeds, op_determinism

    config = TrainConfig(model=spec["model"], model_args=spec.get("model_args", {}),
                         dataset=spec.get("dataset", "pinwheel"),
                         network=spec.get("network", "mlp"), latent_dim=spec.get("latent_dim"),
                         batch_size=spec["batch_size"], seed=spec.get("seed", 0),
                         strategy=spec.get("strategy", "default"))
    strategy = train.make_strategy(config.strategy)
    logs = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, epoch_logs=None):
            logs.append({k: float(v) for k, v in epoch_logs.items()})

    with op_determinism(True), global_seeds(config.seed), strategy.scope():
        data = zoo.data.get(config.dataset)
        model = train.build_model(config, data.observation_shape)
        model.fit(train.distributed_stream(
            strategy, lambda: model.training_stream(data, config.batch_size, seed=config.seed),
            config.batch_size, model.batches_per_step),
            epochs=spec["steps"], steps_per_epoch=1, verbose=0, callbacks=[Record()])
    names = sorted(logs[0])
    np.savez(spec["out"], names=np.array(names),
             logs=np.array([[step[k] for k in names] for step in logs]),
             global_step=int(model.global_step.numpy()),
             **{f"w{i}": np.asarray(w) for i, w in enumerate(model.get_weights())})


def main():
    mode, spec = sys.argv[1], json.loads(sys.argv[2])
    split_cpu(spec.get("cpus", 1))
    if mode == "steps":
        for run in spec["runs"]:
            per_step(run)
    elif mode == "train":
        from trainers import train
        from trainers.config import TrainConfig

        train.run(TrainConfig.from_dict({"verbose": 0, **spec["config"]}))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
