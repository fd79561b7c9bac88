"""Image-classification domains for multi-domain learning (``000`` §3.3), as single examples.

Each loader returns an *unbatched* ``tf.data.Dataset`` of ``(image, label)``:
float32 images in [0, 1] of ``image_size`` x ``image_size`` x 3 and int32 class
indices, ready for ``tf_mtl.data.multi_domain`` (training) or ``.batch(n)``
(single-domain training, evaluation).

* ``cifar100`` — TFDS ``cifar100`` (train 50,000 / test 10,000; the 100 fine
  labels by default), through ``tf_mtl.data.sources`` (download, files placed by hand).
* ``image_folder`` — domains TFDS lacks, as users download them:

  - class subfolders: ``root/<class>/**/<image>`` (Tiny-ImageNet's
    ``tiny-imagenet-200/train/<wnid>/images/*.JPEG``), the class of an image
    being its first-level folder;
  - or a labels file: lines ``<path relative to root> <class> ...``
    (Tiny-ImageNet's ``val/val_annotations.txt`` with ``root=val/images``;
    MiniPlaces' ``train.txt`` / ``val.txt`` with ``root=images``, whose
    classes are indices ``0..99``). Extra columns are ignored.

  Classes are sorted (numerically when they are all integers) and numbered
  in that order; ``num_classes`` draws a fixed subset with ``class_seed``
  (``000``: 100 of Tiny-ImageNet's 200) and ``per_class`` a fixed subset of
  images per class (``000``: 500 per MiniPlaces class). Images are resized
  with bicubic interpolation (``000`` resizes to 32x32 so). Read a test
  split with ``classes=train.class_names``: its labels then number the train
  split's classes (a split lacking a class, or holding others, would otherwise
  number them differently).
* ``synthetic_domain`` — tiny planted domains for ``:runlocal`` runs and tests:
  class prototypes that mix a component shared by all domains of one
  ``shared_seed`` with the domain's own, so that a larger ``share`` makes two
  domains' tasks more alike.
"""

import os

import numpy as np
import tensorflow as tf

from tf_mtl.data import sources

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
CIFAR100_SPLITS = ("train", "test")


def _check_size(image_size):
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 1:
        raise ValueError(f"`image_size` must be a positive int. Received: image_size={image_size!r}")


def cifar100(split, *, label="label", image_size=32, data_dir=None, download=True,
             verify_checksums=True, retries=False):
    """CIFAR-100 from TFDS as ``(image, label)`` examples.

    Args:
        split: ``"train"`` or ``"test"`` (or a TFDS slice, ``"train[:10%]"``).
        label: ``"label"`` (100 fine classes) or ``"coarse_label"`` (20).
        image_size: side of the output image (32 keeps CIFAR's own).

    Example:
        >>> ds = tf_mtl.data.cifar100("train")      # 50,000 (32x32x3 in [0, 1], int32)
    """
    _check_size(image_size)
    if split.split("[")[0] not in CIFAR100_SPLITS:
        raise ValueError(f"`split` must be one of {CIFAR100_SPLITS}. Received: split={split!r}")
    if label not in ("label", "coarse_label"):
        raise ValueError("`label` must be 'label' or 'coarse_label'. "
                         f"Received: label={label!r}")
    ds = sources.load("cifar100", split, data_dir=data_dir, download=download,
                      verify_checksums=verify_checksums, retries=retries, shuffle_files=False)

    def convert(example):
        image = tf.image.convert_image_dtype(example["image"], tf.float32)
        if image_size != 32:
            image = tf.clip_by_value(tf.image.resize(image, (image_size, image_size),
                                                     method="bicubic"), 0.0, 1.0)
        return image, tf.cast(example[label], tf.int32)

    return ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _sort_classes(names):
    names = sorted(set(names))
    return sorted(names, key=int) if all(n.lstrip("-").isdigit() for n in names) else names


def _from_folders(root):
    paths = {}
    for entry in sorted(os.listdir(root)):
        folder = os.path.join(root, entry)
        if not os.path.isdir(folder):
            continue
        for dirpath, _, files in sorted(os.walk(folder)):
            paths.setdefault(entry, []).extend(
                os.path.join(dirpath, f) for f in sorted(files)
                if f.lower().endswith(IMAGE_EXTENSIONS))
    return paths


def _from_labels_file(root, labels_file):
    paths = {}
    with open(labels_file) as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 2:
                raise ValueError(f"Each line of the labels file must be '<image path> <class>'. "
                                 f"Received: line {number} of {labels_file}: {line.strip()!r}")
            path = os.path.join(root, fields[0].lstrip("/"))
            if not os.path.isfile(path):
                raise ValueError(f"The labels file names an image that is not under `root`. "
                                 f"Received: line {number} of {labels_file}: {fields[0]!r} "
                                 f"(looked for {path})")
            paths.setdefault(fields[1], []).append(path)
    return paths


def image_folder(root, *, labels_file=None, num_classes=None, class_seed=0, per_class=None,
                 seed=0, image_size=32, classes=None):
    """Images in class subfolders of ``root`` (or listed in ``labels_file``) as examples.

    Args:
        root: the folder of the images.
        labels_file: optional text file of ``<path relative to root> <class>``
            lines; without it every first-level subfolder of ``root`` is a class.
        num_classes: keep this many classes, drawn with ``class_seed``
            (default: all).
        per_class: keep at most this many images per class, drawn with ``seed``.
        image_size: side of the output image (bicubic resize).
        classes: the class names, in label order, to read (a test split's
            ``classes=train.class_names``, so that label ``i`` is the same class
            in both); images of other classes are left out, a listed class
            without images keeps its label (no example has it). ValueError when no
            listed class has an image. Excludes ``num_classes``.

    Returns:
        An unbatched dataset of ``(float32 image, int32 label)``, in a fixed
        order (class by class); ``.class_names`` lists the classes by label.

    Example:
        >>> train = tf_mtl.data.image_folder("tiny-imagenet-200/train", num_classes=100)
        >>> test = tf_mtl.data.image_folder("tiny-imagenet-200/val/images",
        ...     labels_file="tiny-imagenet-200/val/val_annotations.txt",
        ...     classes=train.class_names)
    """
    _check_size(image_size)
    if not os.path.isdir(root):
        raise ValueError(f"`root` must be a folder of images. Received: root={root!r}")
    if labels_file is not None and not os.path.isfile(labels_file):
        raise ValueError(f"`labels_file` does not exist. Received: labels_file={labels_file!r}")
    paths = _from_labels_file(root, labels_file) if labels_file else _from_folders(root)
    paths = {c: p for c, p in paths.items() if p}
    if not paths:
        raise ValueError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) found in class subfolders "
                         f"of `root`{' or the labels file' if labels_file else ''}. "
                         f"Received: root={root!r}")
    if classes is not None:
        if num_classes is not None:
            raise ValueError("Give `classes` or `num_classes`, not both. Received: "
                             f"num_classes={num_classes!r} and {len(classes)} classes")
        classes = [str(c) for c in classes]
        found = [c for c in classes if c in paths]
        if not found or len(set(classes)) != len(classes):
            raise ValueError(f"`classes` must be distinct class names, some of them found under "
                             f"`root`{' or in the labels file' if labels_file else ''} (found: "
                             f"{sorted(paths)[:10]}). Received: classes={classes[:10]}"
                             f"{'...' if len(classes) > 10 else ''}")
    else:
        classes = _sort_classes(paths)
    if num_classes is not None:
        if not isinstance(num_classes, int) or not 1 <= num_classes <= len(classes):
            raise ValueError(f"`num_classes` must be an int in [1, {len(classes)}] (the classes "
                             f"found). Received: num_classes={num_classes!r}")
        chosen = np.random.default_rng(class_seed).choice(len(classes), num_classes,
                                                          replace=False)
        classes = [classes[i] for i in sorted(chosen)]
    if per_class is not None and (not isinstance(per_class, int) or per_class < 1):
        raise ValueError(f"`per_class` must be an int >= 1. Received: per_class={per_class!r}")
    rng = np.random.default_rng(seed)
    files, labels = [], []
    for index, name in enumerate(classes):
        mine = sorted(paths.get(name, []))
        if per_class is not None and len(mine) > per_class:
            mine = [mine[i] for i in sorted(rng.choice(len(mine), per_class, replace=False))]
        files += mine
        labels += [index] * len(mine)

    def load(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image = tf.image.convert_image_dtype(image, tf.float32)
        image = tf.image.resize(image, (image_size, image_size), method="bicubic")
        return tf.clip_by_value(image, 0.0, 1.0), label

    ds = tf.data.Dataset.from_tensor_slices((files, np.array(labels, np.int32)))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds.class_names = list(classes)
    return ds


def synthetic_domain(seed, split="train", *, num_classes=4, num_examples=256, image_size=8,
                     share=0.5, shared_seed=0, noise=1.0):
    """A planted image-classification domain: ``(image, label)`` examples (not in [0, 1]).

    Class ``c``'s images are ``sqrt(share) P[c] + sqrt(1 - share) Q[c]`` plus
    Gaussian noise of std ``noise``, with prototypes ``P`` drawn from
    ``shared_seed`` (common to every domain drawn with it) and ``Q`` from the
    domain's ``seed``. ``"train"`` and ``"test"`` draw other examples of the
    same prototypes; every draw is fixed by the seeds.

    Example:
        >>> train = tf_mtl.data.synthetic_domain(1, "train", share=0.8)
        >>> test = tf_mtl.data.synthetic_domain(1, "test", share=0.8)
    """
    if split not in ("train", "test"):
        raise ValueError(f"`split` must be 'train' or 'test'. Received: split={split!r}")
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"`share` must be in [0, 1]. Received: share={share!r}")
    _check_size(image_size)
    shape = (num_classes, image_size, image_size, 3)
    shared = np.random.default_rng(shared_seed).normal(size=shape)
    own = np.random.default_rng([seed, 1]).normal(size=shape)
    prototypes = np.sqrt(share) * shared + np.sqrt(1.0 - share) * own
    rng = np.random.default_rng([seed, 2 if split == "train" else 3])
    labels = rng.integers(0, num_classes, num_examples).astype(np.int32)
    images = prototypes[labels] + noise * rng.normal(size=(num_examples,) + shape[1:])
    return tf.data.Dataset.from_tensor_slices((images.astype(np.float32), labels))
