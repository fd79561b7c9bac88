"""Metrics of dense prediction (NYUv2, Cityscapes) over a split, as each source codes them.

The sources disagree (``shared/DENSE_PREDICTION_NOTES.md`` §4); each definition is a named
``convention``. Per-batch conventions need the evaluation ``batch_size`` (the sources evaluate
NYUv2 with 2, Cityscapes with 8; an uneven last batch counts as one batch, as theirs do);
pooled conventions refuse one.

Segmentation (labels ``[..., H, W]`` int, ``-1`` = ignore):

* ``"confusion"`` (MTAN after Nov 2020, LibMTL, Nash-MTL): a confusion matrix over the
  split's labelled pixels; ``IoU_c = TP / (row + col - TP)``, mIoU = mean over classes,
  accuracy = trace / sum. A class absent from both labels and predictions of the whole split
  (0/0, NaN in the sources) is left out of the mean.
* ``"mtan_legacy"`` (MTAN at ``001``'s commit b650409, ``compute_miou`` / ``compute_iou``): per
  image, IoU over the classes whose union (over labelled pixels) is non-zero, averaged; pixel
  accuracy ``#(pred == y) / #(y >= 0)``; both averaged over the images of a batch, then over
  batches. An image without a labelled pixel (NaN in MTAN) is left out; so is a batch of such.
* ``"binary"`` (Maximum Roaming, ``003``; ``nyuv2/train_MR.py``): each class a binary task.
  Predictions are per-class probabilities ``[..., H, W, C]`` (sigmoid outputs; logits with
  ``from_logits=True``), positive at ``>= 0.5``; class ``c``'s target is ``labels == c``, so an
  ignored pixel is a negative of every class (MR's one-hot targets), not left out. Class IoU:
  per batch the mean over images whose union is non-zero, then the mean over batches where
  some image had one (a class never in a union scores 0 in the class mean, as MR's code);
  mIoU = mean over classes. Pixel accuracy: per batch the binary accuracy over pixels x
  classes, averaged over batches.

Depth (``[..., H, W, 1]``, valid where ``y != 0``): ``abs_err = sum |p - y| / n``,
``rel_err = sum |p - y| / y / n``. ``"batch_mean"`` (MTAN, MR, Nash-MTL): per batch, then the
unweighted mean over batches; ``"pixel_mean"`` (LibMTL): over every valid pixel of the split.
A batch without a valid pixel contributes nothing (it is not counted); no valid pixel at all
gives 0 (never NaN).

Normals (``[..., H, W, 3]``, valid where the target's channels sum to non-zero): angle =
``degrees(acos(clip(p . y, -1, 1)))``; mean, median and fractions (0-1) below 11.25, 22.5,
30 degrees. ``"batch_mean"`` (MTAN): each per batch (median = the batch's median), averaged
over batches with a valid pixel; ``"pixel_mean"`` (LibMTL): every valid pixel of the split,
the prediction L2-normalized first (as LibMTL; MTAN's head already normalizes).

These functions run eagerly on arrays (NumPy or tensors) by feeding the streaming metrics of
``tf_mtl.dense.streaming_metrics`` one evaluation batch at a time; use those metrics inside
``model.evaluate``.

Example:
    >>> labels = np.array([[[0, 1], [1, -1]]])                 # one 2x2 image, one ignored pixel
    >>> scores = np.array([[[[.9, .1], [.2, .8]], [[.6, .4], [.5, .5]]]])
    >>> out = tf_mtl.metrics.segmentation_metrics(labels, scores, num_classes=2)
    >>> {k: round(v, 4) for k, v in out.items()}
    {'miou': 0.5, 'pixel_accuracy': 0.6667}
    >>> depth = np.array([[[[1.0], [0.0]], [[2.0], [4.0]]]])   # one 2x2 map, one invalid pixel
    >>> out = tf_mtl.metrics.depth_metrics(depth, depth + 0.5, "batch_mean", batch_size=2)
    >>> {k: round(v, 4) for k, v in out.items()}                 # rel: (0.5/1 + 0.5/2 + 0.5/4) / 3
    {'abs_err': 0.5, 'rel_err': 0.2917}
"""

import numpy as np

from tf_mtl.dense.streaming_metrics import (PIXEL_CONVENTIONS, SEGMENTATION_CONVENTIONS,
                                            DepthError, NormalError, SegmentationScore,
                                            check_choice, normal_angles, valid_pixels)

POOLED_CONVENTIONS = ("confusion", "pixel_mean")
IMAGES_PER_UPDATE = 16  # For the pooled conventions: memory only, the result does not depend on it.


def _array(value):
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def _update_size(batch_size, convention):
    """Images per ``update_state``: the evaluation batch, or a memory-sized chunk when pooled."""
    if convention in POOLED_CONVENTIONS:
        if batch_size is not None:
            raise ValueError(f"`batch_size` is only for the per-batch conventions: "
                             f"convention={convention!r} pools the whole split. "
                             f"Received: batch_size={batch_size!r}")
        return IMAGES_PER_UPDATE
    if batch_size is None:
        raise ValueError(f"`batch_size` (the evaluation batch, e.g. 2 for NYUv2) is required by "
                         f"convention={convention!r}, which averages per batch. "
                         f"Received: batch_size=None")
    if (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1):
        raise ValueError(f"`batch_size` must be a positive integer. "
                         f"Received: batch_size={batch_size!r}")
    return int(batch_size)


def _feed(metric, images_per_update, *arrays):
    for start in range(0, len(arrays[0]), images_per_update):
        metric.update_state(*(a[start:start + images_per_update] for a in arrays))
    return {key: float(value) for key, value in metric.results().items()}


def segmentation_metrics(labels, predictions, num_classes, convention="confusion",
                         batch_size=None, from_logits=False):
    """mIoU and pixel accuracy of a split, ``{"miou", "pixel_accuracy"}`` (fractions 0-1).

    Args:
        labels: int ``[..., H, W]``, class ids in ``[0, num_classes)`` or ``-1`` (ignored).
        predictions: class scores ``[..., H, W, num_classes]`` (the arg-max is the class; for
            ``"binary"`` per-class probabilities) or int class ids ``[..., H, W]`` (not for
            ``"binary"``), in the images' order.
        num_classes: the number of classes ``C``.
        convention: ``"confusion"``, ``"mtan_legacy"`` or ``"binary"`` (module docstring).
        batch_size: the evaluation batch of ``"mtan_legacy"`` and ``"binary"``; ``None`` for
            ``"confusion"``.
        from_logits: ``"binary"`` predictions are logits (sigmoid first); no effect on arg-max.
    """
    check_choice("convention", convention, SEGMENTATION_CONVENTIONS)
    metric = SegmentationScore("miou", num_classes, convention, from_logits)
    images_per_update = _update_size(batch_size, convention)
    labels, predictions = _array(labels), _array(predictions)
    if not np.issubdtype(labels.dtype, np.integer) or labels.ndim < 2:
        raise ValueError(f"`labels` must be integer class ids [..., H, W]. "
                         f"Received: labels of dtype {labels.dtype} and shape {labels.shape}")
    scores = predictions.ndim == labels.ndim + 1
    ids = predictions.ndim == labels.ndim
    if predictions.shape[:labels.ndim] != labels.shape or not (scores or ids):
        raise ValueError(f"`predictions` must be scores [..., H, W, C] or ids [..., H, W] for "
                         f"labels of shape {labels.shape}. "
                         f"Received: predictions.shape={predictions.shape}")
    if scores and predictions.shape[-1] != num_classes:
        raise ValueError(f"`num_classes` must equal the predictions' last dimension "
                         f"{predictions.shape[-1]}. Received: num_classes={num_classes}")
    if ids and (convention == "binary" or not np.issubdtype(predictions.dtype, np.integer)
                or predictions.min(initial=0) < 0 or predictions.max(initial=0) >= num_classes):
        raise ValueError(f"`predictions` as class ids must be integers in [0, {num_classes}) and "
                         f"convention='binary' needs per-class scores [..., H, W, C]. Received: "
                         f"predictions of dtype {predictions.dtype} and shape {predictions.shape}")
    if labels.min(initial=0) < -1 or labels.max(initial=0) >= num_classes:
        raise ValueError(f"`labels` must lie in [-1, {num_classes}) (-1 = ignored). Received: "
                         f"labels in [{labels.min()}, {labels.max()}]")
    pixel_shape = (-1,) + labels.shape[-2:]
    return _feed(metric, images_per_update, labels.reshape(pixel_shape),
                 predictions.reshape(pixel_shape + predictions.shape[labels.ndim:]))


def _maps(name_true, y_true, name_pred, y_pred, channels):
    """Target and prediction as ``[N, H, W, channels]`` float arrays, or a ValueError."""
    y_true, y_pred = _array(y_true).astype(np.float32), _array(y_pred).astype(np.float32)
    if y_true.ndim < 3 or y_true.shape[-1] != channels:
        raise ValueError(f"`{name_true}` must be maps [..., H, W, {channels}]. "
                         f"Received: {name_true}.shape={y_true.shape}")
    if y_pred.shape != y_true.shape:
        raise ValueError(f"`{name_pred}` must have the shape of {name_true}, {y_true.shape}. "
                         f"Received: {name_pred}.shape={y_pred.shape}")
    shape = (-1,) + y_true.shape[-3:]
    return y_true.reshape(shape), y_pred.reshape(shape)


def depth_metrics(depth_true, depth_pred, convention="batch_mean", batch_size=None):
    """Depth errors over valid pixels (``y != 0``), ``{"abs_err", "rel_err"}``.

    Args:
        depth_true, depth_pred: ``[..., H, W, 1]`` maps (depth or, for Cityscapes, disparity).
        convention: ``"batch_mean"`` (MTAN: per batch, then the mean over batches with a
            valid pixel) or ``"pixel_mean"`` (LibMTL: over every valid pixel).
        batch_size: the evaluation batch of ``"batch_mean"``; ``None`` for ``"pixel_mean"``.
    """
    check_choice("convention", convention, PIXEL_CONVENTIONS)
    images_per_update = _update_size(batch_size, convention)
    y_true, y_pred = _maps("depth_true", depth_true, "depth_pred", depth_pred, 1)
    return _feed(DepthError("abs_err", convention), images_per_update, y_true, y_pred)


def normal_metrics(normal_true, normal_pred, convention="batch_mean", batch_size=None):
    """Angle errors of surface normals in degrees, fractions 0-1.

    Returns ``{"mean", "median", "within_11.25", "within_22.5", "within_30"}``. The
    ``"pixel_mean"`` median is exact here (all valid angles sorted; the streaming
    ``NormalError`` estimates it from a histogram).

    Args:
        normal_true, normal_pred: ``[..., H, W, 3]`` normal maps.
        convention: ``"batch_mean"`` (MTAN) or ``"pixel_mean"`` (LibMTL), module docstring.
        batch_size: the evaluation batch of ``"batch_mean"``; ``None`` for ``"pixel_mean"``.
    """
    check_choice("convention", convention, PIXEL_CONVENTIONS)
    images_per_update = _update_size(batch_size, convention)
    y_true, y_pred = _maps("normal_true", normal_true, "normal_pred", normal_pred, 3)
    out = _feed(NormalError("mean", convention), images_per_update, y_true, y_pred)
    if convention == "pixel_mean":
        angles = [np.asarray(normal_angles(t, p, normalize=True))[np.asarray(valid_pixels(t))]
                  for t, p in ((y_true[i:i + images_per_update], y_pred[i:i + images_per_update])
                               for i in range(0, len(y_true), images_per_update))]
        angles = np.concatenate(angles) if angles else np.zeros(0)
        out["median"] = float(np.median(angles)) if angles.size else 0.0
    return out


# Which metrics improve upward, per task, as LibMTL's NYUv2 / Cityscapes weights and
# Nash-MTL's SIGN give them (the task names are tf_mtl's).
NYUV2_HIGHER_IS_BETTER = {
    "segmentation": {"miou": True, "pixel_accuracy": True},
    "depth": {"abs_err": False, "rel_err": False},
    "normal": {"mean": False, "median": False, "within_11.25": True, "within_22.5": True,
               "within_30": True}}
CITYSCAPES_HIGHER_IS_BETTER = {key: NYUV2_HIGHER_IS_BETTER[key]
                               for key in ("segmentation", "depth")}
# CAGrad's single-task SegNet-MTAN on NYUv2, Nash-MTL's Δm baseline (``BASE``).
NYUV2_SINGLE_TASK_BASELINE = {
    "segmentation": {"miou": 0.3830, "pixel_accuracy": 0.6376},
    "depth": {"abs_err": 0.6754, "rel_err": 0.2780},
    "normal": {"mean": 25.01, "median": 19.21, "within_11.25": 0.3014, "within_22.5": 0.5720,
               "within_30": 0.6915}}
DELTA_M_CONVENTIONS = ("libmtl", "nash_mtl")


def _value(name, table, task, metric):
    try:
        return float(table[task][metric])
    except (KeyError, TypeError):
        raise ValueError(f"`{name}` must hold {task!r}: {metric!r} as higher_is_better names it. "
                         f"Received: {name}={table!r}") from None


def delta_m(results, baseline, higher_is_better, convention="libmtl"):
    """The relative multi-task performance change Δm of ``results`` against ``baseline``.

    For every metric ``m`` of task ``t`` named in ``higher_is_better``, with ``N`` the result,
    ``B`` the baseline and ``s = +1`` where higher is better, ``-1`` where lower is:

    * ``"libmtl"`` (LibMTL ``count_improvement``): ``(1/T) sum_t (1/M_t) sum_m s (N - B) / B``,
      a fraction, **positive = improvement**; each task weighs equally.
    * ``"nash_mtl"`` (Nash-MTL ``delta_fn``): ``100 / M * sum_{t,m} -s (N - B) / B`` over all
      ``M`` metrics at once, in percent, **positive = worse**; each metric weighs equally.

    Args:
        results, baseline: ``{task: {metric: value}}`` (extra entries are ignored).
        higher_is_better: ``{task: {metric: bool}}``, e.g. ``NYUV2_HIGHER_IS_BETTER``.
        convention: ``"libmtl"`` or ``"nash_mtl"``.

    Example:
        >>> hib = {"seg": {"miou": True}, "depth": {"abs_err": False, "rel_err": False}}
        >>> base = {"seg": {"miou": 0.5}, "depth": {"abs_err": 1.0, "rel_err": 0.25}}
        >>> new = {"seg": {"miou": 0.6}, "depth": {"abs_err": 0.9, "rel_err": 0.3}}
        >>> round(tf_mtl.metrics.delta_m(new, base, hib), 4)          # (0.2 + (0.1 - 0.2) / 2) / 2
        0.075
        >>> round(tf_mtl.metrics.delta_m(new, base, hib, convention="nash_mtl"), 4)
        -3.3333
    """
    check_choice("convention", convention, DELTA_M_CONVENTIONS)
    if not isinstance(higher_is_better, dict) or not higher_is_better or not all(
            isinstance(m, dict) and m and all(isinstance(b, bool) for b in m.values())
            for m in higher_is_better.values()):
        raise ValueError(f"`higher_is_better` must be a non-empty {{task: {{metric: bool}}}}. "
                         f"Received: higher_is_better={higher_is_better!r}")
    per_task = []
    for task, metrics in higher_is_better.items():
        changes = []
        for metric, higher in metrics.items():
            new = _value("results", results, task, metric)
            base = _value("baseline", baseline, task, metric)
            if base == 0 or not np.isfinite(base):
                raise ValueError(f"`baseline` must be finite and non-zero (Δm divides by it). "
                                 f"Received: baseline[{task!r}][{metric!r}]={base}")
            changes.append((1.0 if higher else -1.0) * (new - base) / base)
        per_task.append(changes)
    if convention == "libmtl":
        return float(np.mean([np.mean(changes) for changes in per_task]))
    return float(-100.0 * np.mean(np.concatenate(per_task)))
