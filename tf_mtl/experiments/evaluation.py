"""Test-set metrics as the papers report them, configured per dataset.

``DATASET_METRICS`` says which metrics each dataset reports, per task (``"all"``: every
task); every task also gets its ``loss`` (the example mean of its training loss):

* MultiMNIST / MultiFashion (``001`` Table 2, 5): accuracy per image side;
* CelebA, one attribute per task (``001`` TAG): accuracy and error;
* CelebA attribute groups (``003`` Table 1, ``004``): precision, recall and F-score of
  each attribute, averaged over the group's attributes; ``all_attributes`` averages
  them over every attribute (the papers' single numbers), plus element accuracy;
* MovieLens (``001`` Table 3): watch accuracy, rating MSE over the watched pairs
  (the rating's sample weight masks the others). Table 3's "Rating Acc." is not defined
  in ``001`` (App. D.6 makes the rating a regression), so it is not reproduced: the MSE
  is this library's choice;
* the planted-groups benchmark: MSE.

Predictions are logits. A task's *kind* comes from its loss: ``"categorical"`` (argmax
against a sparse or one-hot label), ``"binary"`` (each output thresholded at logit 0,
against 0/1 labels) or ``"regression"``. Precision of an attribute never predicted
positive is 0, and F-score is 0 where precision + recall is 0 (scikit-learn's
``zero_division=0``).

Example:
    >>> metrics = resolve_metrics("movielens", ["rating", "watch"])
    >>> evaluate(model, test_ds, metrics, kinds={"watch": "binary", "rating": "regression"})
    {'rating': {'loss': 0.41, 'mse': 0.83}, 'watch': {'loss': 0.44, 'accuracy': 0.81}}
"""

import numpy as np
import tensorflow as tf

import keras

DATASET_METRICS = {
    "synthetic": {"all": ("mse",)},
    "multi_mnist": {"all": ("accuracy",)},
    "multi_mnist_pickle": {"all": ("accuracy",)},
    "celeba": {"all": ("accuracy", "error")},
    "celeba_groups": {"all": ("precision", "recall", "fscore", "accuracy")},
    "movielens": {"watch": ("accuracy",), "rating": ("mse",)},
}
PER_ATTRIBUTE = ("precision", "recall", "fscore")  # Averaged over attributes.
METRIC_NAMES = ("accuracy", "error", "mse") + PER_ATTRIBUTE
# Metrics where lower is better: losses, errors, and the dense metrics' errors and angles
# (tf_mtl.metrics.depth_metrics / normal_metrics: abs_err, rel_err, mean, median).
LOWER_IS_BETTER = {"error", "mse", "loss", "abs_err", "rel_err", "mean", "median"}
ALL_ATTRIBUTES = "all_attributes"


def kind_of_loss(loss_name):
    """``"categorical"``, ``"binary"`` or ``"regression"`` for a config loss name."""
    name = str(loss_name)
    if "categorical_crossentropy" in name:
        return "categorical"
    if "binary_crossentropy" in name:
        return "binary"
    return "regression"


def resolve_metrics(dataset, tasks, table=None):
    """``{task: [metric names]}`` for ``dataset``'s ``tasks`` from ``table`` (default
    ``DATASET_METRICS``); a ``ValueError`` names unknown datasets and metric names."""
    table = DATASET_METRICS if table is None else table
    if dataset not in table:
        raise ValueError(f"No test metrics are configured for this dataset; known: "
                         f"{sorted(table)}. Received: dataset={dataset!r}")
    entry = table[dataset]
    out = {t: list(entry.get(t, entry.get("all", ()))) for t in tasks}
    unknown = sorted({n for names in out.values() for n in names} - set(METRIC_NAMES))
    if unknown:
        raise ValueError(f"Unknown metric names {unknown}; known: {list(METRIC_NAMES)}. "
                         f"Received: metrics for {dataset!r} = {dict(entry)}")
    return out


class _Counts:
    """Running sums for one task; every metric reads from them."""

    def __init__(self):
        self.n = self.weight = self.loss = self.correct = self.elements = self.se = 0.0
        self.tp = self.fp = self.fn = 0.0

    def update(self, kind, y, pred, sw, loss):
        count = len(pred)
        w = np.ones(count) if sw is None else np.asarray(sw, np.float64).reshape(count)
        self.n += count
        self.loss += float(loss) * count  # Losses are batch means over examples.
        if kind == "categorical":
            label = y.argmax(-1) if y.ndim == pred.ndim and y.shape[-1] > 1 else y.reshape(count)
            self.correct += float(np.sum(w * (pred.argmax(-1) == label)))
            self.weight += float(w.sum())
        elif kind == "binary":
            hit = (pred.reshape(count, -1) > 0).astype(np.float64)
            truth = (y.reshape(count, -1) > 0.5).astype(np.float64)
            self.correct += float(np.sum(w[:, None] * (hit == truth)))
            self.elements += float(w.sum()) * hit.shape[1]
            self.weight += float(w.sum())
            self.tp = self.tp + np.sum(w[:, None] * hit * truth, 0)
            self.fp = self.fp + np.sum(w[:, None] * hit * (1 - truth), 0)
            self.fn = self.fn + np.sum(w[:, None] * (1 - hit) * truth, 0)
        else:
            err = (pred.reshape(count, -1) - y.reshape(count, -1)) ** 2
            self.se += float(np.sum(w * err.mean(-1)))
            self.weight += float(w.sum())

    def per_attribute(self):
        tp, fp, fn = (np.atleast_1d(np.asarray(a, np.float64)) for a in (self.tp, self.fp, self.fn))
        precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=tp + fp > 0)
        recall = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=tp + fn > 0)
        fscore = np.divide(2 * precision * recall, precision + recall,
                           out=np.zeros_like(tp), where=precision + recall > 0)
        return {"precision": precision, "recall": recall, "fscore": fscore}

    def result(self, kind, names):
        out = {"loss": self.loss / self.n}
        for name in names:
            if name in PER_ATTRIBUTE:
                out[name] = float(self.per_attribute()[name].mean())
            elif name == "mse":
                out[name] = self.se / self.weight
            else:
                total = self.elements if kind == "binary" else self.weight
                accuracy = self.correct / total
                out[name] = accuracy if name == "accuracy" else 1.0 - accuracy
        return out


def _check_kinds(metrics, kinds):
    allowed = {"accuracy": ("categorical", "binary"), "error": ("categorical", "binary"),
               "mse": ("regression",), **{n: ("binary",) for n in PER_ATTRIBUTE}}
    for task, names in metrics.items():
        bad = [n for n in names if kinds[task] not in allowed[n]]
        if bad:
            raise ValueError(f"Metrics {bad} do not apply to task {task!r} of kind "
                             f"{kinds[task]!r}. Received: metrics[{task!r}]={names}")


def evaluate(model, dataset, metrics, kinds):
    """Per-task test metrics of ``model`` (a ``MultiTaskModel``) on ``dataset``.

    Args:
        dataset: batches of ``(x, {task: y})`` or ``(x, {task: y}, {task: weight})``.
        metrics: ``{task: [names]}`` (``resolve_metrics``).
        kinds: ``{task: "categorical" | "binary" | "regression"}``.

    Returns ``{task: {"loss": ..., name: value}}``; with per-attribute metrics, also
    ``"all_attributes"``: their means over every attribute of every task.
    """
    _check_kinds(metrics, kinds)
    predict = tf.function(lambda x: model(x, training=False))
    counts = {t: _Counts() for t in model.tasks}
    for batch in dataset:
        x, y, sw = keras.utils.unpack_x_y_sample_weight(batch)
        pred = predict(x)
        losses = model.task_loss_list(y, pred, sw)
        for i, t in enumerate(model.tasks):
            w = sw.get(t) if isinstance(sw, dict) else sw
            counts[t].update(kinds[t], np.asarray(y[t]), np.asarray(pred[t]),
                             None if w is None else np.asarray(w), losses[i])
    out = {t: counts[t].result(kinds[t], metrics.get(t, ())) for t in model.tasks}
    attribute_tasks = [t for t in model.tasks if set(metrics.get(t, ())) & set(PER_ATTRIBUTE)]
    if attribute_tasks:
        values = [counts[t].per_attribute() for t in attribute_tasks]
        out[ALL_ATTRIBUTES] = {n: float(np.concatenate([v[n] for v in values]).mean())
                               for n in PER_ATTRIBUTE}
    return out
