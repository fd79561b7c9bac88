"""Datasets as ``tf.data.Dataset`` of ``(x, {task: y})``, ready for ``MultiTaskModel``."""

from tf_mtl.data.synthetic import synthetic, synthetic_arrays

__all__ = ["synthetic", "synthetic_arrays"]
