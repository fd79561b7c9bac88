"""Streaming Keras metrics of dense tasks over a whole split, one class per task kind.

Each metric accumulates sums in ``float64`` variables that Keras sums across replicas
(``aggregation="sum"``), so ``model.evaluate`` under a ``tf.distribute`` strategy gives the
value of the whole split; every ``update_state`` runs in graph mode and under XLA. One
``update_state`` call is one evaluation *batch* for the per-batch conventions
(``"mtan_legacy"``, ``"binary"``, ``"batch_mean"``); under a strategy that is each replica's
share of the global batch, so match the source's evaluation batch per replica. The
conventions and their sources are described in ``tf_mtl.dense.metrics``; the plain functions
there run these metrics batch by batch, so both always agree.

``result()`` gives the number named by ``kind`` (one scalar per metric, as Keras logs want);
``results()`` gives every number of the task at once.

Example:
    >>> import tf_mtl
    >>> metrics = {"segmentation": [SegmentationScore("miou", num_classes=13)],
    ...            "depth": [DepthError("abs_err", convention="pixel_mean")],
    ...            "normal": [NormalError("median", convention="pixel_mean")]}
    >>> # model.compile(optimizer="adam", metrics=metrics)
"""

import math

import keras
import tensorflow as tf

SEGMENTATION_CONVENTIONS = ("confusion", "mtan_legacy", "binary")
PIXEL_CONVENTIONS = ("batch_mean", "pixel_mean")
SEGMENTATION_KINDS = ("miou", "pixel_accuracy")
DEPTH_KINDS = ("abs_err", "rel_err")
NORMAL_KINDS = ("mean", "median", "within_11.25", "within_22.5", "within_30")
NORMAL_THRESHOLDS = (11.25, 22.5, 30.0)


def check_choice(arg, value, choices):
    if value not in choices:
        raise ValueError(f"`{arg}` must be one of {choices}. Received: {arg}={value!r}")


def _ratio(numerator, denominator):
    """``numerator / denominator``, 0 where nothing was counted (never NaN)."""
    return tf.math.divide_no_nan(numerator, tf.cast(denominator, numerator.dtype))


def _counted_pixels(sample_weight, pixel_shape):
    """Pixels that count: those with a non-zero weight (all when no weight is given)."""
    if sample_weight is None:
        return tf.ones(pixel_shape, tf.bool)
    return tf.reshape(tf.convert_to_tensor(sample_weight), pixel_shape) != 0


class _DenseScore(keras.metrics.Metric):
    """One number (``kind``) of a task's metrics, from sums kept in ``float64``."""

    def __init__(self, kind, kinds, convention, conventions, name=None, dtype=None):
        check_choice("kind", kind, kinds)
        check_choice("convention", convention, conventions)
        super().__init__(name=name or kind, dtype=dtype)
        self.kind, self.convention = kind, convention

    def _sum(self, name, shape=()):
        return self.add_variable(shape=shape, initializer="zeros", dtype="float64",
                                 aggregation="sum", name=name)

    def result(self):
        return tf.cast(self.results()[self.kind], self.dtype)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "convention": self.convention}


@keras.saving.register_keras_serializable(package="tf_mtl")
class SegmentationScore(_DenseScore):
    """mIoU or pixel accuracy of ``[B, H, W]`` labels (``-1`` = ignore) over a split.

    Predictions are class scores ``[B, H, W, C]`` (arg-max; for ``"binary"`` per-class
    probabilities, or logits with ``from_logits=True``, thresholded at 0.5) or class ids
    ``[B, H, W]`` (not for ``"binary"``). Pixels with a zero ``sample_weight`` are left out.
    Labels outside ``[-1, C)`` fail a graph assertion (``InvalidArgumentError``; XLA drops
    assertions, and such labels then count as ignored).

    State: ``"confusion"`` a ``C x C`` confusion matrix; ``"mtan_legacy"`` the sums of the
    batch means and the number of batches; ``"binary"`` per class the sum of batch IoUs and
    the number of batches where the class has a non-zero union, plus the summed batch
    accuracies and the number of batches.
    """

    def __init__(self, kind="miou", num_classes=13, convention="confusion", from_logits=False,
                 name=None, dtype=None):
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"`num_classes` must be a positive integer. "
                             f"Received: num_classes={num_classes!r}")
        super().__init__(kind, SEGMENTATION_KINDS, convention, SEGMENTATION_CONVENTIONS,
                         name=name, dtype=dtype)
        self.num_classes, self.from_logits = num_classes, bool(from_logits)
        if convention == "confusion":
            self.confusion = self._sum("confusion", (num_classes, num_classes))
        elif convention == "mtan_legacy":
            self.totals, self.batches = self._sum("totals", (2,)), self._sum("batches")
        else:
            self.class_iou, self.class_batches = (self._sum("class_iou", (num_classes,)),
                                                  self._sum("class_batches", (num_classes,)))
            self.accuracy, self.batches = self._sum("accuracy"), self._sum("batches")

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = tf.cast(y_true, tf.int32)
        c = self.num_classes
        checks = [tf.debugging.assert_greater_equal(labels, -1, message="labels < -1"),
                  tf.debugging.assert_less(labels, c, message="labels >= num_classes")]
        with tf.control_dependencies(checks):
            labels = tf.identity(labels)
        counted = _counted_pixels(sample_weight, tf.shape(labels))
        y_pred = tf.convert_to_tensor(y_pred)
        if self.convention == "binary":
            scores = tf.cast(y_pred, tf.float32)
            probabilities = tf.sigmoid(scores) if self.from_logits else scores
            self._update_binary(labels, probabilities >= 0.5, counted)
            return
        if y_pred.shape.rank == labels.shape.rank + 1:  # Class scores: the arg-max is the class.
            y_pred = tf.argmax(y_pred, axis=-1, output_type=tf.int32)
        # Ignored and unweighted pixels count for nothing: a zero row of the one-hot labels.
        labels = tf.where(counted & (labels >= 0), labels, -1)
        truth = tf.one_hot(labels, c)                                   # [B, H, W, C]
        labelled = tf.cast(labels >= 0, tf.float32)[..., None]
        predicted = tf.one_hot(tf.cast(y_pred, tf.int32), c) * labelled
        if self.convention == "confusion":
            truth, predicted = tf.reshape(truth, [-1, c]), tf.reshape(predicted, [-1, c])
            counts = tf.matmul(truth, predicted, transpose_a=True)  # [label, prediction]
            self.confusion.assign_add(tf.cast(counts, tf.float64))
            return
        # mtan_legacy: per image, IoU over the classes with a non-zero union, then batch means.
        images = tf.reshape(labels, [tf.shape(labels)[0], -1])
        truth = tf.reshape(truth, [tf.shape(images)[0], -1, c])
        predicted = tf.reshape(predicted, tf.shape(truth))
        intersection = tf.reduce_sum(truth * predicted, axis=1)        # [B, C]
        union = tf.reduce_sum(truth + predicted, axis=1) - intersection
        present = tf.cast(union > 0, tf.float32)
        image_miou = _ratio(tf.reduce_sum(_ratio(intersection, union) * present, -1),
                            tf.reduce_sum(present, -1))
        valid = tf.reduce_sum(tf.cast(images >= 0, tf.float32), -1)
        image_accuracy = _ratio(tf.reduce_sum(intersection, -1), valid)
        has_valid = tf.cast(valid > 0, tf.float32)  # An image with no labelled pixel is left out.
        n_images = tf.reduce_sum(has_valid)
        batch = tf.stack([_ratio(tf.reduce_sum(image_miou * has_valid), n_images),
                          _ratio(tf.reduce_sum(image_accuracy * has_valid), n_images)])
        self.totals.assign_add(tf.cast(batch, tf.float64))
        self.batches.assign_add(tf.cast(n_images > 0, tf.float64))

    def _update_binary(self, labels, positive, counted):
        # Maximum Roaming's one-hot targets: an ignored pixel (-1) is a negative of every class.
        truth = tf.one_hot(labels, self.num_classes) > 0
        counted = counted[..., None]
        batch = tf.shape(labels)[0]
        intersection = tf.reduce_sum(tf.reshape(tf.cast(positive & truth & counted, tf.float32),
                                                [batch, -1, self.num_classes]), axis=1)
        union = tf.reduce_sum(tf.reshape(tf.cast((positive | truth) & counted, tf.float32),
                                         [batch, -1, self.num_classes]), axis=1)
        present = tf.cast(union > 0, tf.float32)                        # [B, C]
        images_present = tf.reduce_sum(present, axis=0)
        batch_iou = _ratio(tf.reduce_sum(_ratio(intersection, union) * present, 0), images_present)
        self.class_iou.assign_add(tf.cast(batch_iou, tf.float64))
        self.class_batches.assign_add(tf.cast(images_present > 0, tf.float64))
        n_counted = tf.reduce_sum(tf.cast(counted, tf.float32)) * self.num_classes
        correct = tf.reduce_sum(tf.cast(tf.equal(positive, truth) & counted, tf.float32))
        self.accuracy.assign_add(tf.cast(_ratio(correct, n_counted), tf.float64))
        self.batches.assign_add(tf.cast(n_counted > 0, tf.float64))

    def results(self):
        """``{"miou", "pixel_accuracy"}`` of everything seen since the last reset."""
        if self.convention == "confusion":
            matrix = self.confusion
            hits = tf.linalg.diag_part(matrix)
            union = tf.reduce_sum(matrix, 0) + tf.reduce_sum(matrix, 1) - hits
            present = union > 0  # A class absent from labels and predictions is left out.
            miou = _ratio(tf.reduce_sum(_ratio(hits, union)), tf.math.count_nonzero(present))
            accuracy = _ratio(tf.reduce_sum(hits), tf.reduce_sum(matrix))
            return {"miou": miou, "pixel_accuracy": accuracy}
        if self.convention == "mtan_legacy":
            means = _ratio(self.totals, self.batches)
            return {"miou": means[0], "pixel_accuracy": means[1]}
        # A class never in a non-zero union scores 0 in the class mean, as Maximum Roaming's code.
        miou = tf.reduce_mean(_ratio(self.class_iou, self.class_batches))
        return {"miou": miou, "pixel_accuracy": _ratio(self.accuracy, self.batches)}

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "from_logits": self.from_logits}


def valid_pixels(target, sample_weight=None):
    """MTAN's validity: the target's channels do not sum to 0 (and a non-zero weight)."""
    valid = tf.reduce_sum(target, axis=-1) != 0
    return valid & _counted_pixels(sample_weight, tf.shape(valid))


@keras.saving.register_keras_serializable(package="tf_mtl")
class DepthError(_DenseScore):
    """Absolute or relative depth error over valid pixels (target ``!= 0``), maps ``[B, H, W, 1]``.

    ``"batch_mean"`` adds each batch's mean over its valid pixels and counts the batch;
    ``"pixel_mean"`` adds the errors of every valid pixel and counts the pixels. A batch
    without a valid pixel adds nothing and is not counted; nothing counted gives 0.
    """

    def __init__(self, kind="abs_err", convention="batch_mean", name=None, dtype=None):
        super().__init__(kind, DEPTH_KINDS, convention, PIXEL_CONVENTIONS, name=name, dtype=dtype)
        self.totals, self.count = self._sum("totals", (2,)), self._sum("count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        target, prediction = tf.cast(y_true, tf.float32), tf.cast(y_pred, tf.float32)
        valid = tf.cast(valid_pixels(target, sample_weight), tf.float32)[..., None]
        error = tf.abs(prediction - target) * valid
        sums = tf.stack([tf.reduce_sum(error), tf.reduce_sum(tf.math.divide_no_nan(error, target))])
        pixels = tf.reduce_sum(valid)
        if self.convention == "batch_mean":
            sums, pixels = _ratio(sums, pixels), tf.minimum(pixels, 1.0)
        self.totals.assign_add(tf.cast(sums, tf.float64))
        self.count.assign_add(tf.cast(pixels, tf.float64))

    def results(self):
        """``{"abs_err", "rel_err"}`` of everything seen since the last reset."""
        means = _ratio(self.totals, self.count)
        return {"abs_err": means[0], "rel_err": means[1]}


def normal_angles(y_true, y_pred, normalize):
    """Degrees between target and predicted normals ``[..., H, W, 3]``: ``acos(clip(p . y))``.

    ``normalize`` divides the prediction by its L2 norm first (LibMTL; a zero vector stays
    zero, i.e. 90 degrees); MTAN uses the prediction as given (its head normalizes).
    """
    target, prediction = tf.cast(y_true, tf.float32), tf.cast(y_pred, tf.float32)
    if normalize:
        prediction = tf.math.divide_no_nan(prediction, tf.norm(prediction, axis=-1, keepdims=True))
    cosine = tf.clip_by_value(tf.reduce_sum(prediction * target, axis=-1), -1.0, 1.0)
    return tf.acos(cosine) * (180.0 / math.pi)


@keras.saving.register_keras_serializable(package="tf_mtl")
class NormalError(_DenseScore):
    """Angle statistics of surface normals ``[B, H, W, 3]`` over valid pixels (target ``!= 0``).

    ``"batch_mean"`` (MTAN): each batch's mean, exact median (sorting the batch's angles)
    and fractions below 11.25 / 22.5 / 30 degrees, averaged over batches with a valid pixel.
    ``"pixel_mean"`` (LibMTL, predictions L2-normalized first): mean and fractions over every
    valid pixel of the split, exact; the median from a histogram of ``median_bins`` equal bins
    over [0, 180] degrees (bin centres of the two middle ranks), within half a bin of the
    exact median: 0.005 degrees with the default 18000 bins. (An exact streaming median would
    keep every angle: 72 M for NYUv2's validation split.) ``tf_mtl.metrics.normal_metrics``
    gives the exact median.
    """

    def __init__(self, kind="mean", convention="batch_mean", median_bins=18000, name=None,
                 dtype=None):
        if isinstance(median_bins, bool) or not isinstance(median_bins, int) or median_bins < 1:
            raise ValueError(f"`median_bins` must be a positive integer. "
                             f"Received: median_bins={median_bins!r}")
        super().__init__(kind, NORMAL_KINDS, convention, PIXEL_CONVENTIONS, name=name, dtype=dtype)
        self.median_bins = median_bins
        # mean, median (batch_mean only), three fractions: sums over batches or pixels.
        self.totals, self.count = self._sum("totals", (5,)), self._sum("count")
        if convention == "pixel_mean":
            self.histogram = self._sum("histogram", (median_bins,))

    def update_state(self, y_true, y_pred, sample_weight=None):
        angles = tf.reshape(normal_angles(y_true, y_pred, self.convention == "pixel_mean"), [-1])
        valid = tf.reshape(valid_pixels(tf.cast(y_true, tf.float32), sample_weight), [-1])
        weights = tf.cast(valid, tf.float32)
        pixels = tf.reduce_sum(weights)
        within = [tf.reduce_sum(weights * tf.cast(angles < t, tf.float32))
                  for t in NORMAL_THRESHOLDS]
        if self.convention == "pixel_mean":
            bins = tf.cast(tf.floor(angles * (self.median_bins / 180.0)), tf.int32)
            bins = tf.clip_by_value(bins, 0, self.median_bins - 1)  # 180 degrees: the last bin
            self.histogram.assign_add(tf.cast(
                tf.math.unsorted_segment_sum(weights, bins, self.median_bins), tf.float64))
            sums = tf.stack([tf.reduce_sum(weights * angles), 0.0, *within])
        else:  # This batch's values; a batch without a valid pixel adds nothing.
            ordered = tf.sort(tf.where(valid, angles, math.inf))
            n = tf.cast(pixels, tf.int32)
            middle = tf.gather(ordered, tf.maximum(tf.stack([(n - 1) // 2, n // 2]), 0))
            median = tf.where(n > 0, tf.reduce_mean(middle), 0.0)
            sums = tf.stack([tf.reduce_sum(weights * angles), 0.0, *within])
            sums = _ratio(sums, pixels) + tf.one_hot(1, 5) * median
            pixels = tf.minimum(pixels, 1.0)
        self.totals.assign_add(tf.cast(sums, tf.float64))
        self.count.assign_add(tf.cast(pixels, tf.float64))

    def _histogram_median(self):
        n = tf.reduce_sum(self.histogram)
        cumulative = tf.cumsum(self.histogram)
        ranks = tf.stack([tf.floor((n + 1) / 2), tf.floor(n / 2) + 1])   # 1-based middle ranks
        bins = tf.reduce_sum(tf.cast(cumulative[None, :] < ranks[:, None], tf.float64), axis=1)
        centres = (bins + 0.5) * (180.0 / self.median_bins)
        return tf.where(n > 0, tf.reduce_mean(centres), tf.constant(0.0, tf.float64))

    def results(self):
        """``{"mean", "median", "within_11.25", "within_22.5", "within_30"}`` since the reset."""
        means = _ratio(self.totals, self.count)
        median = self._histogram_median() if self.convention == "pixel_mean" else means[1]
        return {"mean": means[0], "median": median, "within_11.25": means[2],
                "within_22.5": means[3], "within_30": means[4]}

    def get_config(self):
        return {**super().get_config(), "median_bins": self.median_bins}
