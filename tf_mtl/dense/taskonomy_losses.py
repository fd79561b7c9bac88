"""Standley et al.'s Taskonomy losses (``002``; ``taskonomy_losses.py`` of ``taskgrouping``).

Per task, for predictions ``p`` and targets ``y`` ``[B, H, W, C]`` and the
validity ``m`` ``[B, H, W]`` that ``tf_mtl.data.taskonomy`` yields as the task's
sample weights:

* **s** (segmentation): cross-entropy of the 18 logits, class 0 ignored, mean
  over the other pixels (PyTorch ``cross_entropy(ignore_index=0)``):
  ``tf_mtl.dense.losses.SegmentationCrossEntropy(ignore_index=0)``.
* **d**, **n** (depth, normals): masked L1, **mean over all elements** — masked
  pixels stay in the denominator: ``sum |p - y| m / (B H W C)``
  (``depth_loss_simple`` / ``normal_loss_simple``): ``TaskonomyL1``.
  ``rotate_loss=True`` (TAG's default, Standley's ``-r``): for each sample, the
  minimum over the 9 one-pixel shifts ``(a, b) in {0, 1, 2}^2`` of the masked L1
  on the interior, ``mean_{i,j,c} |p[i+a, j+b] - y[i+1, j+1]| m[i+1, j+1]`` over
  ``i < H-2, j < W-2``, then the mean over the batch (``rotate_loss``):
  ``TaskonomyRotateL1``.
* **k**, **e** (keypoints, edges): plain L1 mean over all elements (the weights
  are all 1): ``TaskonomyL1``.

The network's training loss is the **sum** over tasks (Standley's code:
"should not take average when using xception_taskonomy_new"; ``002``'s text
says the mean), i.e. ``MultiTaskModel``'s equal weights 1. The test loss ``002``
and ``001`` report is each task's loss averaged over test batches, summed over
tasks ("total test loss"): ``total_test_loss``.

``TaskonomyL1`` reduces with Keras's ``"sum_over_batch_size"`` (the weights
multiply, the element count divides), which ``tf_mtl.distribute`` divides
exactly across replicas; the rotated loss is a per-sample mean, reduced over the
batch the same way.

Example:
    >>> losses = make_taskonomy_losses("sdnke", rotate_loss=True)
    >>> type(losses["d"]).__name__, losses["s"].ignore_index
    ('TaskonomyRotateL1', 0)
"""

import keras
import tensorflow as tf

from tf_mtl.dense.losses import SegmentationCrossEntropy

SHIFTS = tuple((a, b) for a in range(3) for b in range(3))


@keras.saving.register_keras_serializable(package="tf_mtl")
class TaskonomyL1(keras.losses.Loss):
    """``mean_c |p - y|`` per pixel, times the sample weights, over all pixels (module doc)."""

    def __init__(self, name="taskonomy_l1", **kwargs):
        kwargs.pop("reduction", None)
        super().__init__(name=name, reduction="sum_over_batch_size", **kwargs)

    def call(self, y_true, y_pred):
        return tf.reduce_mean(tf.abs(y_pred - tf.cast(y_true, y_pred.dtype)), axis=-1)

    def get_config(self):
        return {"name": self.name}


@keras.saving.register_keras_serializable(package="tf_mtl")
class TaskonomyRotateL1(keras.losses.Loss):
    """Standley's ``rotate_loss``: per sample the best of 9 one-pixel shifts (module doc)."""

    def __init__(self, name="taskonomy_rotate_l1", **kwargs):
        kwargs.pop("reduction", None)
        super().__init__(name=name, reduction="sum_over_batch_size", **kwargs)

    def __call__(self, y_true, y_pred, sample_weight=None):
        # The mask weighs pixels before the min over shifts: Keras's reduction, which
        # applies sample weights to what ``call`` returns, cannot, so __call__ reduces.
        return tf.reduce_mean(self.per_sample(y_true, y_pred, sample_weight))

    def call(self, y_true, y_pred):
        """Per-sample losses without a mask (every pixel valid)."""
        return self.per_sample(y_true, y_pred)

    @staticmethod
    def per_sample(y_true, y_pred, mask=None):
        """``[batch]``: per sample the least over the 9 shifts of the masked mean L1."""
        y_pred = tf.convert_to_tensor(y_pred)
        y_true = tf.cast(y_true, y_pred.dtype)
        shape = tf.shape(y_pred)
        height, width = shape[1], shape[2]
        mask = (tf.ones(shape[:3], y_pred.dtype) if mask is None
                else tf.cast(mask, y_pred.dtype))
        target = y_true[:, 1:-1, 1:-1]
        inner = mask[:, 1:-1, 1:-1, None]
        per_shift = [tf.reduce_mean(tf.abs(y_pred[:, a:a + height - 2, b:b + width - 2] - target)
                                    * inner, axis=[1, 2, 3]) for a, b in SHIFTS]
        return tf.reduce_min(tf.stack(per_shift), axis=0)

    def get_config(self):
        return {"name": self.name}


def make_taskonomy_losses(tasks, rotate_loss=False):
    """``{task: loss}`` for task letters among ``"sdnke"`` (module doc)."""
    known = "sdnke"
    if not tasks or any(t not in known for t in tasks):
        raise ValueError(f"`tasks` must be letters among {known!r}. Received: tasks={tasks!r}")
    if not isinstance(rotate_loss, bool):
        raise ValueError(f"`rotate_loss` must be a bool. Received: rotate_loss={rotate_loss!r}")
    losses = {}
    for t in tasks:
        if t == "s":
            losses[t] = SegmentationCrossEntropy(ignore_index=0, name="s_cross_entropy")
        elif t in "dn" and rotate_loss:
            losses[t] = TaskonomyRotateL1(name=f"{t}_rotate_l1")
        else:
            losses[t] = TaskonomyL1(name=f"{t}_l1")
    return losses


def total_test_loss(results, tasks):
    """``002``'s "total test loss": the sum over ``tasks`` of ``results["<task>_loss"]``
    (Keras ``evaluate(return_dict=True)``: each task's loss averaged over batches)."""
    missing = [t for t in tasks if f"{t}_loss" not in results]
    if missing:
        raise ValueError(f"`results` lacks the losses of {missing}. Received keys: "
                         f"{sorted(results)}")
    return float(sum(results[f"{t}_loss"] for t in tasks))


def evaluate_losses(model, dataset):
    """``{task: {"loss": value}}``: each task's loss averaged over the batches of ``dataset``
    (``002``'s test loss; ``total_test_loss`` sums it). ``model`` is a ``MultiTaskModel``;
    batches are ``(x, {task: y}, {task: w})`` as ``tf_mtl.data.taskonomy`` yields them."""
    predict = tf.function(lambda x: model(x, training=False))
    sums, batches = {t: 0.0 for t in model.tasks}, 0
    for batch in dataset:
        x, y, sw = keras.utils.unpack_x_y_sample_weight(batch)
        losses = model.task_loss_list(y, predict(x), sw)
        for i, t in enumerate(model.tasks):
            sums[t] += float(losses[i])
        batches += 1
    if not batches:
        raise ValueError("`dataset` yielded no batch. Received: an empty dataset")
    return {t: {"loss": total / batches} for t, total in sums.items()}
