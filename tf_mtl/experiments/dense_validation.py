"""Dense validation metrics in the epoch logs (``config.report = "best_per_task[_every_<k>]"``).

Keras's per-output metrics cannot score ``003``'s binary class tasks together (their mIoU
is over all classes), so this callback runs ``dense_evaluation.evaluate`` on the validation
split every ``k`` epochs and on the last, and writes ``val_<task>_<metric>`` into the epoch's
logs (before ``CSVLogger`` and ``History`` read them); other epochs log ``NaN`` for the same
keys, so ``metrics.csv`` keeps one column per metric, and ``reporting`` never picks them.

Example:
    >>> callback = DenseValidation(val_ds, spec, conventions, every=5, epochs=500)
"""

import keras

from tf_mtl.experiments import dense_evaluation, reporting


class DenseValidation(keras.callbacks.Callback):
    """Adds the dense validation metrics to the logs every ``every`` epochs and the last.

    Args:
        dataset: the validation split (batched as the evaluation's conventions assume).
        spec: ``{task: (units, loss name)}`` (``dense_setup.task_spec``).
        conventions: ``{kind: convention}`` (``dense_setup.conventions``).
        every: epochs between validations (>= 1).
        epochs: the run's last epoch count (always validated).
    """

    def __init__(self, dataset, spec, conventions, every, epochs):
        super().__init__()
        for name, value in (("every", every), ("epochs", epochs)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be an int >= 1. Received: {name}={value!r}")
        self.dataset, self.spec, self.conventions = dataset, spec, conventions
        self.every, self.epochs = every, epochs
        self._keys = None

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        if (epoch + 1) % self.every == 0 or epoch + 1 == self.epochs:
            results = dense_evaluation.evaluate(self.model, self.dataset, self.spec,
                                                self.conventions)
            values = {f"val_{task}_{metric}": value for task, metrics in results.items()
                      for metric, value in metrics.items()}
            self._keys = sorted(values)
        else:
            if self._keys is None:   # The columns, from one evaluation's keys.
                self._keys = sorted(f"val_{task}_{metric}" for task, metrics in
                                    dense_evaluation.metric_names(self.spec).items()
                                    for metric in metrics)
            values = dict.fromkeys(self._keys, float("nan"))
        logs.update(values)


def validation_callbacks(config, dataset, spec, conventions):
    """``[DenseValidation]`` where ``config.report`` asks for it, else ``[]``."""
    every = reporting.validation_every(config.get("report", "final"))
    if not every or spec is None:
        return []
    return [DenseValidation(dataset, spec, conventions, every, config.epochs)]
