"""BatchNormalization with one set of statistics per chunk of a per-task forward.

In a chunked forward (``tf_mtl.routing.task_paths``) Keras's ``BatchNormalization``
normalizes all ``T·B`` rows with one mean and variance. ``TaskBatchNormalization``
normalizes each chunk with its own, so the batched forward equals ``T``
separate forwards (the reference code of ``003`` runs one forward per task):

- training: each chunk's batch statistics;
- with ``num_tasks`` (the routed encoders set it): moving statistics per task,
  ``task_moving_mean`` / ``task_moving_variance`` ``[T, C]``; training moves row
  ``t`` with the chunks of task ``t`` (in chunk order) and inference normalizes
  chunk ``k`` with row ``tasks[k]``, so evaluation uses each task path's own
  statistics. (``003``'s code uses batch statistics in evaluation too,
  ``track_running_stats=False``; per-task moving statistics are this library's
  choice: evaluation does not depend on the evaluation batch.)
- without ``num_tasks``: one moving mean and variance, moved as the ``T``
  forwards would move them one after another
  (``m <- momentum^K m + (1 - momentum) sum_k momentum^(K-1-k) mu_k``).

Outside a chunked forward, with a mask, ``renorm`` or ``synchronized``, it is
Keras's layer.

Example:
    >>> bn = tf_mtl.routing.task_norm.TaskBatchNormalization(num_tasks=8)
"""

import numbers

import keras
import tensorflow as tf

from tf_mtl.routing import task_paths


@keras.saving.register_keras_serializable(package="tf_mtl")
class TaskBatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose statistics are per chunk (and per task
    with ``num_tasks``). See the module docstring."""

    def __init__(self, num_tasks=None, **kwargs):
        super().__init__(**kwargs)
        if num_tasks is not None and (isinstance(num_tasks, bool) or not isinstance(
                num_tasks, numbers.Integral) or num_tasks < 1):
            raise ValueError(f"`num_tasks` must be None or a positive int. "
                             f"Received: num_tasks={num_tasks!r}")
        self.num_tasks = None if num_tasks is None else int(num_tasks)

    def build(self, input_shape):
        super().build(input_shape)
        if self.num_tasks is not None:
            shape = (self.num_tasks, int(input_shape[self.axis]))
            self.task_moving_mean = self.add_weight(
                shape=shape, name="task_moving_mean", initializer=self.moving_mean_initializer,
                trainable=False, autocast=False)
            self.task_moving_variance = self.add_weight(
                shape=shape, name="task_moving_variance",
                initializer=self.moving_variance_initializer, trainable=False, autocast=False)

    def call(self, inputs, training=None, mask=None):
        layout = task_paths.current()
        train = bool(training) and self.trainable
        per_task = self.num_tasks is not None and layout is not None
        plain = (layout is None or mask is not None or self.renorm or self.synchronized
                 or (not per_task and (not train or layout.sizes is None)))
        if plain:
            return super().call(inputs, training=training, mask=mask)
        x = tf.cast(inputs, tf.float32)
        rank = len(x.shape)
        axis = self.axis % rank
        k = layout.num_chunks
        if train:
            if layout.equal_chunks and axis == rank - 1:
                mean, variance, out = self._grouped_normalize(x, k)
            else:
                mean, variance, out = self._segment_normalize(x, layout, axis)
            self._move(mean, variance, layout)
        else:
            mean = tf.gather(tf.cast(self.task_moving_mean, tf.float32), layout.tasks)
            variance = tf.gather(tf.cast(self.task_moving_variance, tf.float32), layout.tasks)
            out = self._apply(x, layout, axis, mean, variance)
        channel = [x.shape[a] if a == axis else 1 for a in range(rank)]
        if self.scale:
            out = out * tf.reshape(tf.cast(self.gamma, tf.float32), channel)
        if self.center:
            out = out + tf.reshape(tf.cast(self.beta, tf.float32), channel)
        return tf.cast(out, self.compute_dtype)

    def _move(self, mean, variance, layout):
        """Moving statistics after chunks with batch statistics ``mean, variance [K, C]``."""
        momentum, k = self.momentum, layout.num_chunks
        if self.num_tasks is None:
            weights = tf.constant([(1.0 - momentum) * momentum ** (k - 1 - i) for i in range(k)],
                                  tf.float32)
            for var, stat in ((self.moving_mean, mean), (self.moving_variance, variance)):
                old = tf.cast(var, tf.float32)
                var.assign(tf.cast(old * momentum ** k + tf.tensordot(weights, stat, 1), var.dtype))
            return
        for var, stat in ((self.task_moving_mean, mean), (self.task_moving_variance, variance)):
            rows = tf.unstack(tf.cast(var, tf.float32), num=self.num_tasks)
            for i, t in enumerate(layout.tasks):  # chunk order, as one forward per chunk
                rows[t] = momentum * rows[t] + (1.0 - momentum) * stat[i]
            var.assign(tf.cast(tf.stack(rows), var.dtype))

    def _apply(self, x, layout, axis, mean, variance):
        """``x`` normalized with chunk ``k``'s ``mean, variance [K, C]``."""
        rank = len(x.shape)
        if layout.sizes is None and layout.num_chunks == 1:
            shape = [x.shape[a] if a == axis else 1 for a in range(rank)]
            return (x - tf.reshape(mean[0], shape)) * tf.math.rsqrt(
                tf.reshape(variance[0], shape) + self.epsilon)
        if layout.equal_chunks and axis == rank - 1:
            k, c = layout.num_chunks, x.shape[-1]
            grouped = tf.reshape(x, [k, -1, c])
            out = (grouped - mean[:, None]) * tf.math.rsqrt(variance[:, None] + self.epsilon)
            return tf.reshape(out, tf.shape(x))
        per_row = self._per_row(x, layout, axis)
        return (x - per_row(mean)) * tf.math.rsqrt(per_row(variance) + self.epsilon)

    @staticmethod
    def _per_row(x, layout, axis):
        rank = len(x.shape)
        chunks = layout.row_chunks(x)

        def per_row(stat):  # [K, C] -> broadcastable to x
            rows = tf.gather(stat, chunks)
            return tf.reshape(rows, [-1] + [x.shape[a] if a == axis else 1 for a in range(1, rank)])
        return per_row

    def _grouped_normalize(self, x, k):
        """Equal chunks, channels last: ``[N, ..., C] -> [K, rows, C]``, one reduction."""
        c = x.shape[-1]
        grouped = tf.reshape(x, [k, -1, c])
        mean, variance = tf.nn.moments(grouped, axes=[1], keepdims=True)
        out = (grouped - mean) * tf.math.rsqrt(variance + self.epsilon)
        return mean[:, 0], variance[:, 0], tf.reshape(out, tf.shape(x))

    def _segment_normalize(self, x, layout, axis):
        """Chunks of any sizes: moments by segment. Returns ``(mean, variance, x̂)``."""
        rank = len(x.shape)
        inner = [a for a in range(1, rank) if a != axis]
        chunks, k = layout.row_chunks(x), layout.num_chunks
        per_row = self._per_row(x, layout, axis)

        def chunk_mean(values):  # [N, ...] -> [K, C]; rows of a chunk weigh equally
            rows = tf.reduce_mean(values, axis=inner) if inner else values
            return tf.math.unsorted_segment_mean(rows, chunks, k)

        mean = chunk_mean(x)
        variance = chunk_mean(tf.square(x - per_row(mean)))
        return mean, variance, (x - per_row(mean)) * tf.math.rsqrt(per_row(variance) + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "num_tasks": self.num_tasks}
