"""Datasets as ``tf.data.Dataset`` of ``(x, {task: y})``, ready for ``MultiTaskModel``."""

from tf_mtl.data import dense_augment, dense_files, epochs, taskonomy_files
from tf_mtl.data.celeba import (CELEBA_ATTRIBUTES, CELEBA_MR_GROUPS, CELEBA_TAG_TASKS, celeba,
                                celeba_task_spec)
from tf_mtl.data.dense import cityscapes, nyuv2
from tf_mtl.data.domains import cifar100, image_folder, synthetic_domain
from tf_mtl.data.movielens import MovieLensEncoder, movielens
from tf_mtl.data.multi_domain import multi_domain
from tf_mtl.data.multi_mnist import multi_mnist, multi_mnist_pickle
from tf_mtl.data.synthetic import synthetic, synthetic_arrays
from tf_mtl.data.taskonomy import taskonomy

__all__ = [
    "CELEBA_ATTRIBUTES",
    "CELEBA_MR_GROUPS",
    "CELEBA_TAG_TASKS",
    "MovieLensEncoder",
    "celeba",
    "celeba_task_spec",
    "cityscapes",
    "dense_augment",
    "dense_files",
    "epochs",
    "cifar100",
    "image_folder",
    "movielens",
    "multi_domain",
    "multi_mnist",
    "multi_mnist_pickle",
    "nyuv2",
    "synthetic",
    "synthetic_arrays",
    "synthetic_domain",
    "taskonomy",
    "taskonomy_files",
]
