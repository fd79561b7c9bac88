"""Which numbers a run reports as its results (``config.report``).

* ``"final"`` (the default): the test split evaluated once after training (with early
  stopping, at the restored best weights).
* ``"mean_last_<k>"``, e.g. ``"mean_last_10"``: every test metric that was also a
  validation metric during training is the mean of its last ``k`` epochs' validation
  values (``val_<task>_<metric>`` in ``metrics.csv``), as MTAN's README reports NYUv2 and
  Cityscapes (``001`` Tables 1 and 4 follow MTAN's procedure; the release's validation split
  is its test split, so the two are the same data). Fewer than ``k`` epochs: the mean of
  all. A metric that was not logged keeps its final value.

Example:
    >>> history = {"val_depth_abs_err": [0.9, 0.7, 0.5], "loss": [1.0, 0.8, 0.6]}
    >>> reported("mean_last_2", {"depth": {"abs_err": 0.45, "rel_err": 0.2}}, history)
    {'depth': {'abs_err': 0.6, 'rel_err': 0.2}}
"""

import re

import numpy as np

_MEAN_LAST = re.compile(r"mean_last_([1-9][0-9]*)$")


def check_report(report):
    """``ValueError`` unless ``report`` is ``"final"`` or ``"mean_last_<k>"`` (k >= 1)."""
    if report != "final" and not (isinstance(report, str) and _MEAN_LAST.match(report)):
        raise ValueError("`config.report` must be 'final' or 'mean_last_<k>' with k >= 1 "
                         f"(e.g. 'mean_last_10'). Received: report={report!r}")


def reported(report, test, history):
    """``test`` ({task: {metric: value}}) with the values ``report`` asks for from
    ``history`` ({log name: [one value per epoch]})."""
    check_report(report)
    if report == "final":
        return test
    k = int(_MEAN_LAST.match(report).group(1))
    out = {}
    for task, metrics in test.items():
        out[task] = {}
        for metric, value in metrics.items():
            logged = history.get(f"val_{task}_{metric}")
            out[task][metric] = float(np.mean(logged[-k:])) if logged else value
    return out
