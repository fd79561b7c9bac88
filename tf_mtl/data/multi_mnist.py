"""MultiMNIST / MultiFashion: two overlaid images, tasks ``left`` and ``right``.

Built from TFDS ``mnist`` / ``fashion_mnist`` as Sener & Koltun (2018) and
Lin et al. (2019) build it, deterministically from ``seed``:

1. Split the SOURCE images first: the last 1/6 of the TFDS train split is the
   validation pool, the rest the train pool; the TFDS test split is the test
   pool. For ``source="mixed"`` the MNIST and the Fashion-MNIST images are
   both split this way (each truncated to the shorter of the two).
2. Within each pool, every image ``i`` is the left image of one composite; its
   partner ``j`` is drawn from the SAME pool with a seeded permutation, redrawn
   until every pair has two different classes (for ``"mixed"`` the partner
   comes from the Fashion-MNIST pool and no class constraint applies). So a
   validation composite never reuses a source image of a training composite
   (``source_indices`` returns which source images each composite uses).
3. On a 36x36 black canvas put image ``i`` (28x28) at the top-left corner
   (rows/cols 0-27) and image ``j`` at the bottom-right (rows/cols 8-35);
   where they overlap keep the brighter pixel (``max``).
4. Resize to ``image_size`` (bilinear; default 36, the size of Lin et al.'s
   released files; Sener & Koltun resize back to 28).
5. Labels: ``left`` = class of ``i``, ``right`` = class of ``j`` (ints 0-9).

Sizes. One composite per source image, so the 60,000 TFDS training images give
50,000 ``"train"`` and 10,000 ``"validation"`` composites, and the 10,000 TFDS
test images 10,000 ``"test"`` composites. ``001`` App. D.4 instead uses the
files Lin et al. released and splits 1/6 of their training part off for
validation: 100k/20k/20k train/valid/test (the files hold 120k training and
20k test composites), i.e. twice as many composites as this construction.

``multi_mnist_pickle`` reads those pickled files (``(trainX, trainLabel,
testX, testLabel)``), which ``001`` used; its ``"validation"`` split is the
last 1/6 of the file's training composites, as in ``001`` App. D.4 (the file
does not record which source digits each composite used, so whether these
validation composites share digits with the training ones can be neither
checked nor changed here).
"""

import os
import pickle

import numpy as np
import tensorflow as tf

from tf_mtl.data import sources

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


def _load_numpy(name, split, data_dir, download, verify_checksums, retries):
    import tensorflow_datasets as tfds
    ds = sources.load(name, split, data_dir=data_dir, download=download,
                      verify_checksums=verify_checksums, retries=retries, shuffle_files=False)
    parts = list(tfds.as_numpy(ds.batch(1 << 16)))
    images = np.concatenate([p["image"] for p in parts])[..., 0]
    return images, np.concatenate([p["label"] for p in parts]).astype(np.int64)


def _holdout(split, n):
    """Indices of ``"train"`` / ``"validation"`` among ``n`` training items (last 1/6 held out)."""
    cut = n - n // 6
    return np.arange(cut) if split == "train" else np.arange(cut, n)


def source_indices(split, left_labels, right_labels=None, seed=0):
    """Which source images each composite of ``split`` overlays.

    Args:
        split: ``"train"``, ``"validation"`` or ``"test"``.
        left_labels: classes of the source images of the TFDS split the
            composites come from (TFDS ``train`` for ``"train"`` and
            ``"validation"``, TFDS ``test`` for ``"test"``).
        right_labels: classes of the right-image source (``"mixed"``:
            Fashion-MNIST) or None when left and right come from the same images.
        seed: pairing seed.

    Returns:
        ``(left, right)`` int arrays of indices into those source arrays, one
        entry per composite. For ``"train"`` and ``"validation"`` both index
        only their own pool (first 5/6 / last 1/6 of the TFDS train split).
    """
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
    n = len(left_labels) if right_labels is None else min(len(left_labels), len(right_labels))
    # Pools are cut before pairing, so no source image is shared across splits.
    pool = np.arange(n) if split == "test" else _holdout(split, n)
    # One seed stream per split, so the train pairs do not depend on the validation pool.
    split_seed = [seed, SPLITS.index(split)]
    if right_labels is None:
        labels = np.asarray(left_labels)[pool]
        return pool, pool[partners(labels, split_seed, distinct=True)]
    # Mixed: the partner is a Fashion-MNIST image; classes of the two sources are unrelated.
    return pool, pool[partners(np.zeros(len(pool)), split_seed, distinct=False)]


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
                shuffle=None, data_dir=None, download=True, verify_checksums=True, retries=False):
    """MultiMNIST (``source="mnist"``), MultiFashion (``"fashion_mnist"``) or
    MultiFashion+MNIST (``"mixed"``) as ``(image [S, S, 1], {"left", "right"})`` batches.

    ``download``, ``verify_checksums`` and ``retries`` say how TFDS gets the
    source images (``tf_mtl.data.sources``); files placed by hand go in
    ``<data_dir>/downloads/manual/mnist/`` (``fashion_mnist/``).

    Example:
        >>> ds = tf_mtl.data.multi_mnist("train", source="mnist", batch_size=256)
    """
    if source not in SOURCES:
        raise ValueError(f"`source` must be one of {sorted(SOURCES)}. Received: source={source!r}")
    _check(split, image_size, batch_size)
    left_name, right_name = SOURCES[source]
    tfds_split = "test" if split == "test" else "train"
    left_images, left_labels = _load_numpy(left_name, tfds_split, data_dir, download, verify_checksums,
                                            retries)
    if right_name == left_name:
        right_images, right_labels, pool_labels = left_images, left_labels, None
    else:
        right_images, right_labels = _load_numpy(right_name, tfds_split, data_dir, download,
                                                  verify_checksums, retries)
        pool_labels = right_labels
    left_idx, right_idx = source_indices(split, left_labels, pool_labels, seed)
    images = compose(left_images[left_idx], right_images[right_idx])
    left, right = left_labels[left_idx], right_labels[right_idx]
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
