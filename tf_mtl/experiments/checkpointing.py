"""Epoch checkpoints: a run killed at any point continues from its last completed epoch.

What a checkpoint holds (one file, replaced atomically; ``read_checkpoint`` reads it):

* every variable of ``model.variables`` — weights, non-trainable state (batch norm),
  the update rule's and probes' variables, routing masks, and the dropout layers'
  seed-generator states — and of ``model.optimizer.variables`` (``iterations``, hence
  the learning-rate schedule's position and the probes' ``every`` phase; momenta);
* the number of completed epochs, whether early stopping fired (``stopped``) and whether
  training is over (``done``: the best weights, where kept, are restored);
* ``keras.callbacks.EarlyStopping``'s counters and best weights, when one is given;
* a learning-rate schedule's decision state (``get_state()``, e.g. ``LossPlateauHalving``'s
  loss history, halvings and window), when one is given, so that a resumed run halves
  where an uninterrupted one would.

Metric variables are not saved: Keras resets them at the start of every epoch.

Why not ``keras.callbacks.BackupAndRestore``: in Keras 3.15 it saves ``model.save_weights``
and the epoch, and restores them in ``on_train_begin``; it keeps no ``EarlyStopping`` state
(best weights, patience counter), and resuming with it from a finished-but-unevaluated run
would train again. The data order of each epoch is made independent of the process by
``tf_mtl.data.epochs.epoch_stream``.

Example:
    >>> ckpt = EpochCheckpoint("runs/a/checkpoint.bin", early_stopping=es)
    >>> epoch, done = ckpt.restore(model)      # (0, False) on a fresh run
    >>> if not done:
    ...     model.fit(stream, initial_epoch=epoch, epochs=8, callbacks=[es, ckpt])
"""

import json
import os

import keras
import numpy as np

from tf_mtl import distribute

_EARLY_STOPPING_FIELDS = ("wait", "stopped_epoch", "best", "best_epoch")


def state_variables(model):
    """The variables a checkpoint saves, in a fixed order: the model's, then the optimizer's."""
    return list(model.variables) + list(model.optimizer.variables)


def atomic_write(path, write, mode="w", sync=False):
    """Calls ``write(file)`` on a temporary file, then renames it to ``path``: a process killed
    at any point leaves the old file or the new one, never half of one. ``sync=True`` also
    flushes it to the disk first (a power loss too; ~10 ms a file on the development disk)."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, mode) as f:
        write(f)
        if sync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def write_checkpoint(path, meta, arrays):
    """One file: an 8-byte header length, a JSON header (``meta`` and each array's dtype,
    shape and offset), then the arrays' bytes (faster than ``np.savez``'s zip per array)."""
    arrays = [np.asarray(a, order="C") for a in arrays]  # (ascontiguousarray makes 0-d 1-d)
    offsets = np.cumsum([0] + [a.nbytes for a in arrays]).tolist()
    header = json.dumps({"meta": meta, "arrays": [[a.dtype.str, list(a.shape), o]
                                                  for a, o in zip(arrays, offsets)]}).encode()

    def write(f):
        f.write(len(header).to_bytes(8, "little"))
        f.write(header)
        for a in arrays:
            f.write(a.tobytes())
    atomic_write(path, write, mode="wb")


def read_checkpoint(path):
    """``(meta, [arrays])`` of a file ``write_checkpoint`` wrote."""
    with open(path, "rb") as f:
        data = f.read()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    start = 8 + size
    arrays = [np.frombuffer(data, np.dtype(dtype), int(np.prod(shape)), start + offset)
              .reshape(tuple(shape)) for dtype, shape, offset in header["arrays"]]
    return header["meta"], arrays


def atomic_write_json(path, value):
    atomic_write(path, lambda f: json.dump(value, f, indent=1))


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the training state to ``path`` after every epoch and when training ends.

    Put it after ``early_stopping`` (if any) in ``fit``'s callbacks, so that it sees
    that epoch's early-stopping decision and restores that callback's state after the
    callback reset itself in ``on_train_begin``.

    Args:
        path: the checkpoint file (``write_checkpoint``'s format).
        early_stopping: the run's ``keras.callbacks.EarlyStopping``, or None.
        schedule: a callback with ``get_state()`` (a JSON-able dict) and ``set_state(state)``
            (``tf_mtl.experiments.LossPlateauHalving``), or None: its state is saved with
            each checkpoint and set back by ``restore``.
    """

    def __init__(self, path, early_stopping=None, schedule=None):
        super().__init__()
        self.path, self.early_stopping, self.schedule = path, early_stopping, schedule
        self.epochs_done, self.stopped = 0, False
        self._pending = None

    def restore(self, model):
        """Loads ``path`` into ``model`` (built, optimizer built) if it exists.

        Returns ``(completed epochs, done)``; ``(0, False)`` when there is no checkpoint.
        """
        if not os.path.exists(self.path):
            return 0, False
        meta, arrays = read_checkpoint(self.path)
        count = len(meta["paths"])
        values, best = arrays[:count], arrays[count:]
        variables = state_variables(model)
        # Shapes and dtypes, not paths: Keras numbers the names of a process's later models
        # (dense_3), and a driver may resume a run after building others.
        have = [(tuple(v.shape), np.dtype(v.dtype).str) for v in variables]
        saved = [(tuple(a.shape), a.dtype.str) for a in values]
        if have != saved:
            raise ValueError(
                f"The checkpoint {self.path} holds other variables than this model and "
                f"optimizer: it was written by another model. Received: {len(saved)} saved "
                f"variables, {len(have)} in the model; first difference: "
                + _first_difference(list(zip(meta["paths"], saved)),
                                    list(zip([v.path for v in variables], have))))
        for variable, value in zip(variables, values):
            variable.assign(value)
        if self.schedule is not None and meta.get("schedule") is not None:
            self.schedule.set_state(meta["schedule"])
        self._pending = (meta.get("early_stopping"), best)
        self.epochs_done, self.stopped = meta["epoch"], meta.get("stopped", False)
        return meta["epoch"], meta["done"]

    def on_train_begin(self, logs=None):
        if self._pending and self.early_stopping is not None and self._pending[0]:
            state, best = self._pending
            for field in _EARLY_STOPPING_FIELDS:
                setattr(self.early_stopping, field, state[field])
            self.early_stopping.best_weights = best or None
        self._pending = None

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_done = epoch + 1
        self.save(done=False)

    def on_train_end(self, logs=None):
        self.save(done=True)

    def save(self, done):
        """Writes the state now (``done``: training is over, weights are final)."""
        variables = state_variables(self.model)
        arrays = self._read(variables)
        meta = {"epoch": self.epochs_done, "done": bool(done),
                # A run resumed after early stopping fired trains no more epochs: still stopped.
                "stopped": bool(self.stopped or getattr(self.model, "stop_training", False)),
                "paths": [v.path for v in variables]}
        es = self.early_stopping
        if es is not None:
            meta["early_stopping"] = {f: _plain(getattr(es, f)) for f in _EARLY_STOPPING_FIELDS}
            arrays += [np.asarray(w) for w in es.best_weights or []]
        if self.schedule is not None:
            meta["schedule"] = self.schedule.get_state()
        if distribute.is_chief(self.model.distribute_strategy):  # Every worker reads; one writes.
            write_checkpoint(self.path, meta, arrays)


    def _read(self, variables):
        """Every variable's value as numpy, read in one graph call (one eager read per
        variable costs ~1 ms each on a busy CPU, more than writing the file)."""
        key = tuple(id(v) for v in variables)
        if getattr(self, "_reader_key", None) != key:
            import tensorflow as tf
            self._reader = tf.function(lambda: [tf.identity(v.value) for v in variables])
            self._reader_key = key
        return [t.numpy() for t in self._reader()]


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _first_difference(saved, current):
    for i, (a, b) in enumerate(zip(saved, current)):
        if a != b:
            return f"#{i}: saved {a!r}, model {b!r}"
    return f"#{min(len(saved), len(current))}: one list is longer"


def truncate_csv(path, rows):
    """Keeps the header and the first ``rows`` rows of ``path`` (epochs logged after the
    last checkpoint by a killed run would otherwise appear twice)."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = f.readlines()
    kept = lines[:1 + rows] if rows else []
    atomic_write(path, lambda f: f.writelines(kept))
