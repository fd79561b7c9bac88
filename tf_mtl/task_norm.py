"""BatchNormalization with one set of batch statistics per chunk of a per-task forward.

In a chunked forward (``tf_mtl.task_paths``) Keras's ``BatchNormalization``
normalizes all ``T·B`` rows with one mean and variance. ``TaskBatchNormalization``
normalizes each chunk with its own, so the batched forward equals ``T``
separate forwards (the reference code of ``003`` runs one forward per task):
during training, each chunk's batch statistics; the moving statistics move as
the ``T`` forwards would move them one after another, in chunk order
(``m <- momentum^K m + (1 - momentum) sum_k momentum^(K-1-k) mu_k``). Outside a
chunked forward, in inference, with a mask, ``renorm`` or ``synchronized``, it
is Keras's layer.

Example:
    >>> bn = tf_mtl.task_norm.TaskBatchNormalization()
"""

import keras
import tensorflow as tf

from tf_mtl import task_paths


@keras.saving.register_keras_serializable(package="tf_mtl")
class TaskBatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose training statistics are per chunk."""

    def call(self, inputs, training=None, mask=None):
        layout = task_paths.current()
        plain = (not (training and self.trainable) or layout is None or layout.sizes is None
                 or mask is not None or self.renorm or self.synchronized)
        if plain:
            return super().call(inputs, training=training, mask=mask)
        x = tf.cast(inputs, tf.float32)
        rank = len(x.shape)
        axis = self.axis % rank
        k = layout.num_chunks
        if layout.equal_chunks and axis == rank - 1:
            mean, variance, out = self._grouped_normalize(x, k)
        else:
            mean, variance, out = self._segment_normalize(x, layout, axis)
        momentum = self.momentum
        weights = tf.constant([(1.0 - momentum) * momentum ** (k - 1 - i) for i in range(k)],
                              tf.float32)
        for var, stat in ((self.moving_mean, mean), (self.moving_variance, variance)):
            old = tf.cast(var, tf.float32)
            var.assign(tf.cast(old * momentum ** k + tf.tensordot(weights, stat, 1), var.dtype))
        channel = [x.shape[a] if a == axis else 1 for a in range(rank)]
        if self.scale:
            out = out * tf.reshape(tf.cast(self.gamma, tf.float32), channel)
        if self.center:
            out = out + tf.reshape(tf.cast(self.beta, tf.float32), channel)
        return tf.cast(out, self.compute_dtype)

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

        def per_row(stat):  # [K, C] -> broadcastable to x
            rows = tf.gather(stat, chunks)
            return tf.reshape(rows, [-1] + [x.shape[a] if a == axis else 1 for a in range(1, rank)])

        def chunk_mean(values):  # [N, ...] -> [K, C]; rows of a chunk weigh equally
            rows = tf.reduce_mean(values, axis=inner) if inner else values
            return tf.math.unsorted_segment_mean(rows, chunks, k)

        mean = chunk_mean(x)
        variance = chunk_mean(tf.square(x - per_row(mean)))
        return mean, variance, (x - per_row(mean)) * tf.math.rsqrt(per_row(variance) + self.epsilon)
