"""Epoch checkpoints: a run killed at any point continues from its last completed epoch.

What a checkpoint holds (one ``.npz`` file, replaced atomically):

* every variable of ``model.variables`` — weights, non-trainable state (batch norm),
  the update rule's and probes' variables, routing masks, and the dropout layers'
  seed-generator states — and of ``model.optimizer.variables`` (``iterations``, hence
  the learning-rate schedule's position and the probes' ``every`` phase; momenta);
* the number of completed epochs, whether early stopping fired (``stopped``) and whether
  training is over (``done``: the best weights, where kept, are restored);
* ``keras.callbacks.EarlyStopping``'s counters and best weights, when one is given.

Metric variables are not saved: Keras resets them at the start of every epoch.

Why not ``keras.callbacks.BackupAndRestore``: in Keras 3.15 it saves ``model.save_weights``
and the epoch, and restores them in ``on_train_begin``; it keeps no ``EarlyStopping`` state
(best weights, patience counter), and resuming with it from a finished-but-unevaluated run
would train again. The data order of each epoch is made independent of the process by
``tf_mtl.data.epochs.epoch_stream``.

Example:
    >>> ckpt = EpochCheckpoint("runs/a/checkpoint.npz", early_stopping=es)
    >>> epoch, done = ckpt.restore(model)      # (0, False) on a fresh run
    >>> if not done:
    ...     model.fit(stream, initial_epoch=epoch, epochs=8, callbacks=[es, ckpt])
"""

import json
import os

import keras
import numpy as np

_EARLY_STOPPING_FIELDS = ("wait", "stopped_epoch", "best", "best_epoch")


def state_variables(model):
    """The variables a checkpoint saves, in a fixed order: the model's, then the optimizer's."""
    return list(model.variables) + list(model.optimizer.variables)


def atomic_write(path, write, mode="w"):
    """Calls ``write(file)`` on a temporary file, syncs it, then renames it to ``path``."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, mode) as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path, value):
    atomic_write(path, lambda f: json.dump(value, f, indent=1))


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the training state to ``path`` after every epoch and when training ends.

    Put it after ``early_stopping`` (if any) in ``fit``'s callbacks, so that it sees
    that epoch's early-stopping decision and restores that callback's state after the
    callback reset itself in ``on_train_begin``.

    Args:
        path: the checkpoint file (``.npz``).
        early_stopping: the run's ``keras.callbacks.EarlyStopping``, or None.
    """

    def __init__(self, path, early_stopping=None):
        super().__init__()
        self.path, self.early_stopping = path, early_stopping
        self.epochs_done, self.stopped = 0, False
        self._pending = None

    def restore(self, model):
        """Loads ``path`` into ``model`` (built, optimizer built) if it exists.

        Returns ``(completed epochs, done)``; ``(0, False)`` when there is no checkpoint.
        """
        if not os.path.exists(self.path):
            return 0, False
        with np.load(self.path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            values = [z[f"v{i}"] for i in range(len(meta["paths"]))]
            best = [z[f"best{i}"] for i in range(meta.get("best_count", 0))]
        variables = state_variables(model)
        paths = [v.path for v in variables]
        shapes = [tuple(v.shape) for v in variables]
        if paths != meta["paths"] or shapes != [tuple(v.shape) for v in values]:
            raise ValueError(
                f"The checkpoint {self.path} holds other variables than this model and "
                f"optimizer: it was written by another model. Received: {len(meta['paths'])} "
                f"saved variables, {len(paths)} in the model; first difference: "
                + _first_difference(meta["paths"], paths))
        for variable, value in zip(variables, values):
            variable.assign(value)
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
        arrays = {f"v{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(variables)}
        meta = {"epoch": self.epochs_done, "done": bool(done),
                "stopped": bool(getattr(self.model, "stop_training", False)),
                "paths": [v.path for v in variables]}
        es = self.early_stopping
        if es is not None:
            meta["early_stopping"] = {f: _plain(getattr(es, f)) for f in _EARLY_STOPPING_FIELDS}
            best = es.best_weights or []
            meta["best_count"] = len(best)
            arrays.update({f"best{i}": np.asarray(w) for i, w in enumerate(best)})
        arrays["meta"] = np.array(json.dumps(meta))
        atomic_write(self.path, lambda f: np.savez(f, **arrays), mode="wb")


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
