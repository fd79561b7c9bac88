"""Which numbers a run reports as its results (``config.report``).

* ``"final"`` (the default): the test split evaluated once after training (with early
  stopping, at the restored best weights).
* ``"mean_last_<k>"``, e.g. ``"mean_last_10"``: every test metric that was also a
  validation metric during training is the mean of its last ``k`` epochs' validation
  values (``val_<task>_<metric>`` in ``metrics.csv``), as MTAN's README reports NYUv2 and
  Cityscapes (``001`` Tables 1 and 4 follow MTAN's procedure; the release's validation split
  is its test split, so the two are the same data). Fewer than ``k`` epochs: the mean of
  all. A metric that was not logged keeps its final value.
* ``"best_per_task"`` or ``"best_per_task_every_<k>"``: each task's metrics at the epoch
  whose validation value of the task's key metric (``KEY_METRICS``: mIoU, the relative depth
  error, the mean normal angle) is best, as Maximum Roaming's ``saver.py`` keeps one best
  checkpoint per task (``003``: "the best achieved ... on the validation set", its dense
  scripts validating every 5 epochs: ``every_5``). The validation metrics come from
  ``tf_mtl.experiments.dense_validation`` (every ``k`` epochs and the last; ``NaN``
  elsewhere, never chosen). A task without a key metric keeps its final values.

Example:
    >>> history = {"val_depth_abs_err": [0.9, 0.7, 0.5], "loss": [1.0, 0.8, 0.6]}
    >>> reported("mean_last_2", {"depth": {"abs_err": 0.45, "rel_err": 0.2}}, history)
    {'depth': {'abs_err': 0.6, 'rel_err': 0.2}}
"""

import re

import numpy as np

_MEAN_LAST = re.compile(r"mean_last_([1-9][0-9]*)$")
_BEST_PER_TASK = re.compile(r"best_per_task(?:_every_([1-9][0-9]*))?$")
# Each dense task's key validation metric and whether higher is better (003's saver.py).
KEY_METRICS = {"segmentation": ("miou", True), "depth": ("rel_err", False),
               "normal": ("mean", False)}


def check_report(report):
    """``ValueError`` unless ``report`` is ``"final"``, ``"mean_last_<k>"`` or
    ``"best_per_task[_every_<k>]"`` (k >= 1)."""
    if report != "final" and not (isinstance(report, str) and (
            _MEAN_LAST.match(report) or _BEST_PER_TASK.match(report))):
        raise ValueError("`config.report` must be 'final', 'mean_last_<k>' or "
                         "'best_per_task[_every_<k>]' with k >= 1 (e.g. 'mean_last_10', "
                         f"'best_per_task_every_5'). Received: report={report!r}")


def validation_every(report):
    """Epochs between the dense validations ``report`` needs, or None (none needed)."""
    check_report(report)
    match = _BEST_PER_TASK.match(report) if report != "final" else None
    return None if match is None else int(match.group(1) or 1)


def reported(report, test, history):
    """``test`` ({task: {metric: value}}) with the values ``report`` asks for from
    ``history`` ({log name: [one value per epoch]})."""
    check_report(report)
    if report == "final":
        return test
    if validation_every(report):
        return {task: _at_best_epoch(task, metrics, history) for task, metrics in test.items()}
    k = int(_MEAN_LAST.match(report).group(1))
    out = {}
    for task, metrics in test.items():
        out[task] = {}
        for metric, value in metrics.items():
            logged = history.get(f"val_{task}_{metric}")
            out[task][metric] = float(np.mean(logged[-k:])) if logged else value
    return out


def _at_best_epoch(task, metrics, history):
    """``metrics`` of ``task`` at the epoch where its key metric was best (NaN skipped)."""
    key, higher = KEY_METRICS.get(task, (None, True))
    logged = np.asarray(history.get(f"val_{task}_{key}", []), dtype=float)
    if not np.isfinite(logged).any():
        return dict(metrics)
    epoch = int(np.nanargmax(logged) if higher else np.nanargmin(logged))
    return {metric: float(history[f"val_{task}_{metric}"][epoch])
            if f"val_{task}_{metric}" in history else value
            for metric, value in metrics.items()}
