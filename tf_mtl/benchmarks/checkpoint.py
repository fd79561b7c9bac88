"""``--bench=checkpoint``: what saving the epoch checkpoint costs, as a share of an epoch.

The quickstart (``configs/quickstart.py``, transference every 5 steps) trains a few epochs;
an epoch's time is the median of the epochs after the first (which traces the step), and the
checkpoint's the median of ``repeats`` ``EpochCheckpoint.save`` calls (write, fsync, rename)
on the trained model and optimizer.
"""

import os
import tempfile
import time

import keras
import numpy as np

from tf_mtl.experiments import checkpointing
from tf_mtl.experiments import experiment
from tf_mtl.data import epochs as epoch_data


class _EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def checkpoint_benchmark(repeats=3, epochs=3, config_arg=None, **_):
    """``(columns, rows)``: per-epoch checkpoint seconds against epoch seconds."""
    import importlib
    config = importlib.import_module("configs.quickstart").get_config(config_arg)
    config.epochs = max(2, epochs)
    keras.utils.set_random_seed(config.seed)
    train_ds, extras = experiment.build_dataset(config, "train", shuffle=False)
    model = experiment.build_model(config, sorted(train_ds.element_spec[1]),
                                   extras.get("task_spec"))
    steps = epoch_data.count_batches(train_ds)
    model.compile(optimizer=experiment.build_optimizer(config, steps))
    stream, steps = epoch_data.epoch_stream(train_ds, batch_size=config.data.batch_size,
                                            seed=config.seed, epochs=config.epochs)
    timer = _EpochTimer()
    model.fit(stream, epochs=config.epochs, steps_per_epoch=steps, callbacks=[timer],
              verbose=0, shuffle=False)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = checkpointing.EpochCheckpoint(os.path.join(tmp, "checkpoint.bin"))
        ckpt.set_model(model)
        times = []
        for _ in range(max(1, repeats) * 5):
            start = time.perf_counter()
            ckpt.save(done=False)
            times.append(time.perf_counter() - start)
        size = os.path.getsize(ckpt.path)
    epoch, save = float(np.median(timer.seconds[1:])), float(np.median(times))
    return (("model", "variables", "checkpoint bytes", "epoch s", "checkpoint s", "% of epoch"),
            [("quickstart", len(checkpointing.state_variables(model)), size, f"{epoch:.3f}",
              f"{save:.4f}", f"{100 * save / epoch:.2f}")])
