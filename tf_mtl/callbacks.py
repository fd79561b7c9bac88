"""Keras callbacks that write what the probes measured."""

import json
import os

import keras
import numpy as np

from tf_mtl import distribute
from tf_mtl.transference import Transference


def _write_json(path, value):
    # Imported here: tf_mtl.experiments imports this module.
    from tf_mtl.experiments.checkpointing import atomic_write_json
    atomic_write_json(path, value)  # A per-process temporary name, renamed: never half a file.


def run_mean(epochs):
    """Mean over epochs of per-epoch ``scores[source][target]`` (None entries ignored)."""
    if not epochs:
        return {}
    out = {}
    for source in epochs[0]:
        out[source] = {}
        for target in epochs[0][source]:
            values = [e[source][target] for e in epochs if e[source][target] is not None]
            out[source][target] = float(np.mean(values)) if values else None
    return out


class AffinityLogger(keras.callbacks.Callback):
    """Writes the transference probes' affinities to ``workdir`` every epoch.

    Files (for the probe named ``"transference"``; other probes use
    ``affinity_<name>...``):

    * ``affinity_epochs.json`` — ``[{"epoch": e, "scores": {source: {target: mean}}}]``,
      the per-epoch means of the per-step values, rewritten atomically after
      every epoch so a crash keeps what was measured;
    * ``affinity.json`` — the run mean over epochs, in the ``scores[source][target]``
      orientation ``tf_mtl.grouping.select_groups`` and ``launch.group`` read;
    * ``affinity.png`` — a heatmap at the end of training (``plot=False`` to
      skip; ``normalize=True`` divides by self-transference as ``001`` Fig. 6).

    In a multi-worker run only the chief (``tf_mtl.distribute.is_chief``) writes; every
    worker keeps ``history``.

    With ``tensorboard_dir`` set (use your ``keras.callbacks.TensorBoard``
    log dir) each epoch's values are also written as TensorBoard scalars, and the
    epoch's heatmap as an image (``tf_mtl.plots.affinity_image``).

    ``initial_epoch`` (a resumed run's ``fit(initial_epoch=...)``) reads the history of
    the epochs before it back from ``affinity_epochs.json``, so the run mean covers the
    whole run.

    Example:
        >>> model.fit(ds, epochs=5, callbacks=[tf_mtl.callbacks.AffinityLogger("runs/a")])
    """

    def __init__(self, workdir, plot=True, normalize=False, tensorboard_dir=None,
                 initial_epoch=0):
        super().__init__()
        self.workdir, self.plot, self.normalize = workdir, plot, normalize
        self.initial_epoch = initial_epoch
        self.tensorboard_dir = tensorboard_dir
        self.history = {}
        self._writer = None
        self._snapshot = None
        self._chief = True

    def _probes(self):
        probes = [p for p in getattr(self.model, "probes", []) if isinstance(p, Transference)]
        if not probes:
            raise ValueError(
                "AffinityLogger needs a MultiTaskModel with a "
                "tf_mtl.transference.Transference probe. Received: a model with probes "
                f"{[type(p).__name__ for p in getattr(self.model, 'probes', [])]}"
            )
        return probes

    def _path(self, probe, suffix):
        stem = "affinity" if probe.name == "transference" else f"affinity_{probe.name}"
        return os.path.join(self.workdir, stem + suffix)

    def on_train_begin(self, logs=None):
        self._chief = distribute.is_chief(self.model.distribute_strategy)
        for probe in self._probes():
            self.history.setdefault(probe.name, [])
            path = self._path(probe, "_epochs.json")
            if self.initial_epoch and not self.history[probe.name] and os.path.exists(path):
                with open(path) as f:  # Epochs a killed run measured before its checkpoint.
                    self.history[probe.name] = [e for e in json.load(f)
                                                if e["epoch"] < self.initial_epoch]
        if self._chief:
            os.makedirs(self.workdir, exist_ok=True)
        if self.tensorboard_dir and self._chief:
            import tensorflow as tf
            self._writer = tf.summary.create_file_writer(
                os.path.join(self.tensorboard_dir, "affinity"))

    def on_epoch_begin(self, epoch, logs=None):
        self._snapshot = None

    def on_test_begin(self, logs=None):
        # fit's validation pass resets every model metric (the probes' running
        # means too) before on_epoch_end: read them first.
        if self._snapshot is None:
            self._snapshot = {p.name: p.scores() for p in self._probes()}

    def on_epoch_end(self, epoch, logs=None):
        for probe in self._probes():
            scores = (self._snapshot or {}).get(probe.name) or probe.scores()
            epochs = self.history[probe.name]
            epochs.append({"epoch": int(epoch), "scores": scores})
            if not self._chief:
                continue
            _write_json(self._path(probe, "_epochs.json"), epochs)
            _write_json(self._path(probe, ".json"), run_mean([e["scores"] for e in epochs]))
            if self._writer is not None:
                self._summaries(probe.name, scores, epoch)

    def _summaries(self, name, scores, epoch):
        import tensorflow as tf
        with self._writer.as_default():
            for source, row in scores.items():
                for target, value in row.items():
                    if value is not None:
                        tf.summary.scalar(f"{name}/{source}>{target}", value, step=epoch)
            from tf_mtl.plots import affinity_image
            tasks = self._probe_tasks(name)
            tf.summary.image(f"{name}/heatmap", affinity_image(scores, tasks)[None], step=epoch,
                             description=f"rows (sources): {list(scores)}; columns (targets): "
                                         f"{tasks}; blue > 0 > red, scaled to the largest |value|")
        self._writer.flush()

    def _probe_tasks(self, name):
        return next(p.tasks for p in self._probes() if p.name == name)

    def on_train_end(self, logs=None):
        self._snapshot = None
        if not self.plot or not self._chief:
            return
        from tf_mtl.plots import plot_affinity
        for probe in self._probes():
            if self.history.get(probe.name):
                mean = run_mean([e["scores"] for e in self.history[probe.name]])
                plot_affinity(mean, probe.tasks, self._path(probe, ".png"),
                              normalize=self.normalize,
                              title=f"{probe.name} ({probe.method}, run mean)")
