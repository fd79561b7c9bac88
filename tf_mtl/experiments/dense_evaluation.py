"""Test metrics of a dense run (NYUv2, Cityscapes), the columns of ``001`` Tables 1 and 4.

``evaluate`` streams the test split once through ``tf_mtl.dense.streaming_metrics``:

* ``"segmentation"``: mIoU and pixel accuracy under ``conventions["segmentation"]``;
* ``"depth"``: ``abs_err``, ``rel_err``; ``"normal"``: ``mean``, ``median``,
  ``within_11.25``, ``within_22.5``, ``within_30`` (fractions 0-1), each under its kind's
  convention, over the pixels where the task's **own** target is valid (labels ``!= -1``,
  depth and normals ``!= 0``), as MTAN's and Maximum Roaming's metric code count them. The
  training sample weights are not used: with ``mask="depth"`` (``003``) the normal *loss*
  counts the depth-valid pixels only, while Maximum Roaming's ``normal_error`` scores every
  pixel with a valid normal;
* ``003``'s per-class binary tasks (``class_<c>``): their logits are stacked into
  ``[B, H, W, C]`` and scored as one ``"segmentation"`` task under the ``"binary"``
  convention (Maximum Roaming's per-class IoU averaged over images, then classes); the
  labels are rebuilt from the one-hot targets (no positive class: the ignore label -1,
  a negative of every class, as their targets make it).

No loss column: Δm (``launch.compare --baseline``) is taken over every column, and the
papers' Δm is over these metrics only. A per-batch convention's batch is the test
dataset's batch (``config.data.batch_size``).

Example:
    >>> test = evaluate(model, test_ds, {"segmentation": (13, "segmentation_cross_entropy"),
    ...                                  "depth": (1, "depth_l1")},
    ...                 {"segmentation": "mtan_legacy", "depth": "batch_mean"})
    >>> sorted(test["depth"])
    ['abs_err', 'rel_err']
"""

import keras
import tensorflow as tf

from tf_mtl.dense.streaming_metrics import (DEPTH_KINDS, NORMAL_KINDS, SEGMENTATION_KINDS,
                                            DepthError, NormalError, SegmentationScore)

KIND_METRICS = {"segmentation": SEGMENTATION_KINDS, "depth": DEPTH_KINDS,
                "normal": NORMAL_KINDS}


def metric_names(spec):
    """``{task: [metric, ...]}`` that ``evaluate`` returns for ``spec``."""
    names = {t: list(KIND_METRICS[t]) for t in spec if t in KIND_METRICS}
    if any(t.startswith("class_") for t in spec):
        names["segmentation"] = list(SEGMENTATION_KINDS)
    return names


def _scorers(spec, conventions, class_tasks):
    scorers = {}
    for task, (units, _) in spec.items():
        if task == "segmentation":
            scorers[task] = SegmentationScore(num_classes=units,
                                              convention=conventions["segmentation"])
        elif task == "depth":
            scorers[task] = DepthError(convention=conventions["depth"])
        elif task == "normal":
            scorers[task] = NormalError(convention=conventions["normal"])
    if class_tasks:
        scorers["segmentation"] = SegmentationScore(num_classes=len(class_tasks),
                                                    convention="binary", from_logits=True)
    return scorers


def _stacked_classes(y, y_pred, class_tasks):
    """``(labels [B, H, W], logits [B, H, W, C])`` of the per-class tasks."""
    targets = tf.concat([tf.cast(y[t], tf.float32) for t in class_tasks], axis=-1)
    logits = tf.concat([tf.cast(y_pred[t], tf.float32) for t in class_tasks], axis=-1)
    labels = tf.where(tf.reduce_max(targets, -1) > 0.5,
                      tf.argmax(targets, -1, output_type=tf.int32), -1)
    return labels, logits


def evaluate(model, dataset, spec, conventions):
    """``{task: {metric: value}}`` of ``model`` on ``dataset`` (module docstring).

    Args:
        spec: ``{task: (units, loss name)}`` (``dense_setup.task_spec``).
        conventions: ``{kind: convention}`` (``dense_setup.conventions``).
    """
    class_tasks = sorted(t for t in spec if t.startswith("class_"))
    scorers = _scorers(spec, conventions, class_tasks)
    predict = tf.function(lambda x: model(x, training=False))
    for batch in dataset:
        x, y, sw = keras.utils.unpack_x_y_sample_weight(batch)
        del sw   # The training masks; the metrics use each target's own validity.
        y_pred = predict(x)
        for task, scorer in scorers.items():
            if task == "segmentation" and class_tasks:
                scorer.update_state(*_stacked_classes(y, y_pred, class_tasks))
            else:
                scorer.update_state(y[task], y_pred[task])
    return {task: {k: float(v) for k, v in scorer.results().items()}
            for task, scorer in sorted(scorers.items())}
