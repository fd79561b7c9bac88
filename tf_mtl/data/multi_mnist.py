"""MultiMNIST / MultiFashion: two overlaid images, tasks ``left`` and ``right``.

Built from TFDS ``mnist`` / ``fashion_mnist`` as Sener & Koltun (2018) and
Lin et al. (2019) build it, deterministically from ``seed``:

1. For every image ``i`` of the TFDS split, draw a partner ``j`` from the same
   split with a seeded permutation; redraw partners until every pair has two
   different classes (for ``source="mixed"`` the partner comes from
   Fashion-MNIST and no class constraint applies).
2. On a 36x36 black canvas put image ``i`` (28x28) at the top-left corner
   (rows/cols 0-27) and image ``j`` at the bottom-right (rows/cols 8-35);
   where they overlap keep the brighter pixel (``max``).
3. Resize to ``image_size`` (bilinear; default 36, the size of Lin et al.'s
   released files; Sener & Koltun resize back to 28).
4. Labels: ``left`` = class of ``i``, ``right`` = class of ``j`` (ints 0-9).

Splits follow ``001`` App. D.4: the last 1/6 of the composed training set is
``"validation"``, the rest ``"train"``; ``"test"`` is composed from the TFDS
test split. ``multi_mnist_pickle`` reads the pickled files Lin et al.
released (``(trainX, trainLabel, testX, testLabel)``), which ``001`` used.
"""

import os
import pickle

import numpy as np
import tensorflow as tf

CANVAS, DIGIT, SHIFT = 36, 28, 8
SOURCES = {"mnist": ("mnist", "mnist"), "fashion_mnist": ("fashion_mnist", "fashion_mnist"),
           "mixed": ("mnist", "fashion_mnist")}
SPLITS = ("train", "validation", "test")


def partners(labels, seed, distinct=True):
    """Seeded partner index for every example, of a different class if ``distinct``."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    partner = rng.permutation(n)
    if distinct:
        clash = labels[partner] == labels
        for _ in range(100):
            if not clash.any():
                break
            partner[clash] = rng.integers(0, n, clash.sum())
            clash = labels[partner] == labels
        if clash.any():
            raise ValueError("Could not pair every image with one of another class. "
                             f"Received: labels with classes {np.unique(labels).tolist()}")
    return partner


def compose(left, right):
    """Overlays ``left`` (top-left) and ``right`` (bottom-right): uint8 ``[N, 36, 36]``."""
    canvas = np.zeros((len(left), CANVAS, CANVAS), np.uint8)
    canvas[:, :DIGIT, :DIGIT] = left
    canvas[:, SHIFT:, SHIFT:] = np.maximum(canvas[:, SHIFT:, SHIFT:], right)
    return canvas


def _load_numpy(name, split, data_dir, download):
    import tensorflow_datasets as tfds
    ds = tfds.load(name, split=split, data_dir=data_dir, download=download, shuffle_files=False)
    parts = list(tfds.as_numpy(ds.batch(1 << 16)))
    images = np.concatenate([p["image"] for p in parts])[..., 0]
    return images, np.concatenate([p["label"] for p in parts]).astype(np.int64)


def _holdout(split, n):
    """Indices of ``"train"`` / ``"validation"`` within a composed training set."""
    cut = n - n // 6
    return np.arange(cut) if split == "train" else np.arange(cut, n)


def _dataset(images, left, right, split, image_size, batch_size, shuffle, seed):
    def convert(image, labels):
        image = tf.image.convert_image_dtype(image[..., None], tf.float32)
        if image_size != CANVAS:
            image = tf.image.resize(image, (image_size, image_size), method="bilinear")
        return image, labels

    ds = tf.data.Dataset.from_tensor_slices((images, {"left": left, "right": right}))
    if split == "train" if shuffle is None else shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _check(split, image_size, batch_size):
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
    if not isinstance(image_size, int) or image_size <= 0:
        raise ValueError(f"`image_size` must be a positive int. Received: image_size={image_size!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an int >= 1. Received: batch_size={batch_size!r}")


def multi_mnist(split, source="mnist", *, image_size=CANVAS, batch_size=256, seed=0,
                shuffle=None, data_dir=None, download=True):
    """MultiMNIST (``source="mnist"``), MultiFashion (``"fashion_mnist"``) or
    MultiFashion+MNIST (``"mixed"``) as ``(image [S, S, 1], {"left", "right"})`` batches.

    Example:
        >>> ds = tf_mtl.data.multi_mnist("train", source="mnist", batch_size=256)
    """
    if source not in SOURCES:
        raise ValueError(f"`source` must be one of {sorted(SOURCES)}. Received: source={source!r}")
    _check(split, image_size, batch_size)
    left_name, right_name = SOURCES[source]
    tfds_split = "test" if split == "test" else "train"
    left_images, left_labels = _load_numpy(left_name, tfds_split, data_dir, download)
    if right_name == left_name:
        right_images, right_labels = left_images, left_labels
    else:
        right_images, right_labels = _load_numpy(right_name, tfds_split, data_dir, download)
        n = min(len(left_images), len(right_images))
        left_images, left_labels = left_images[:n], left_labels[:n]
        right_images, right_labels = right_images[:n], right_labels[:n]
    offset = {"train": 0, "validation": 0, "test": 1}[split]  # Same pairs for train/val.
    partner = partners(left_labels if right_name == left_name else np.arange(len(left_labels)),
                       [seed, offset], distinct=True)
    images = compose(left_images, right_images[partner])
    left, right = left_labels, right_labels[partner]
    if split != "test":
        keep = _holdout(split, len(images))
        images, left, right = images[keep], left[keep], right[keep]
    return _dataset(images, left, right, split, image_size, batch_size, shuffle, seed)


def multi_mnist_pickle(path, split, *, image_size=CANVAS, batch_size=256, seed=0, shuffle=None):
    """The pickled MultiMNIST/MultiFashion files of Lin et al. (2019), from a local path.

    The file holds ``(trainX [N, 36, 36], trainLabel [N, 2], testX, testLabel)``;
    ``"validation"`` is the last 1/6 of the training part (``001`` App. D.4).
    """
    _check(split, image_size, batch_size)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No MultiMNIST pickle at the given path. Received: path={path!r}")
    try:
        with open(path, "rb") as f:
            content = pickle.load(f)
        train_x, train_y, test_x, test_y = content
        train_x, train_y, test_x, test_y = (np.asarray(a) for a in (train_x, train_y, test_x,
                                                                    test_y))
    except Exception as e:  # Anything unpicklable or not a 4-tuple.
        raise ValueError(f"{path!r} is not a Lin et al. MultiMNIST pickle "
                         "(trainX, trainLabel, testX, testLabel). Received: "
                         f"{type(e).__name__}: {e}") from e
    for name, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        if x.ndim != 3 or y.ndim != 2 or y.shape[1] != 2 or len(x) != len(y):
            raise ValueError(f"{path!r} has the wrong format: {name} images must be "
                             f"[N, H, W] and labels [N, 2]. Received: images {x.shape}, labels "
                             f"{y.shape}")
    if split == "test":
        x, y = test_x, test_y
    else:
        keep = _holdout(split, len(train_x))
        x, y = train_x[keep], train_y[keep]
    if x.dtype != np.uint8:  # Released as floats in [0, 1].
        x = np.clip(np.round(np.asarray(x, np.float32) * (255 if x.max() <= 1 else 1)),
                    0, 255).astype(np.uint8)
    images = x
    if images.shape[1:] != (CANVAS, CANVAS):
        images = tf.image.resize(images[..., None], (CANVAS, CANVAS)).numpy()[..., 0]
        images = images.astype(np.uint8)
    return _dataset(images, y[:, 0].astype(np.int64), y[:, 1].astype(np.int64), split,
                    image_size, batch_size, shuffle, seed)
