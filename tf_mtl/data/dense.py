"""NYUv2 and Cityscapes as MTAN preprocessed them: dense tasks read from ``.npy`` files.

No TFDS builder holds these data (TFDS ``nyu_depth_v2`` has depth only,
``cityscapes`` no disparity with segmentation): ``nyuv2`` and ``cityscapes``
read the released layout, one file per sample and target,

* NYUv2 (``001`` Table 1, ``003``; 795 train / 654 val at 288x384):
  ``root/{train,val}/{image,label,depth,normal}/{i}.npy``;
* Cityscapes (``001`` Table 4, ``003``; 2975 / 500 at 128x256 or 256x512):
  ``root/{train,val}/{image,label_2,label_7,label_19,depth}/{i}.npy`` (LibMTL's
  copy names its 7-class folder ``label/``; it is read when ``label_7/`` is absent),

with ``i = 0..N-1``; image ``[H, W, 3]``, label ``[H, W]`` with classes
``0..C-1`` and ``-1`` = ignore, depth ``[H, W, 1]`` (NYUv2: metres; Cityscapes:
inverse depth, i.e. disparity) with ``0`` = invalid, normal ``[H, W, 3]`` unit
vectors with ``0`` = invalid. Any integer or float dtype is read (the release's
dtypes are not documented; MTAN casts everything to float). The releases are
published through MTAN's README (github.com/lorenmt/mtan): ``NYUV2_RELEASE``,
``CITYSCAPES_RELEASES``. ``tf_mtl.data.dense_files`` writes small files in this
layout for tests and ``:runlocal`` configs.

Every element is ``(image, {task: y}, {task: w})``, as ``movielens`` passes
sample weights: ``w`` is a per-pixel validity ``[H, W]`` float32 (1 valid,
0 not) for Keras' ``sample_weight``. Tasks (LibMTL's names):

* ``"segmentation"``: ``y`` int32 ``[H, W]`` with ``-1`` kept at ignored pixels
  (losses and metrics must not read them); ``w = (y >= 0)``.
* ``"depth"``: ``y`` float32 ``[H, W, 1]``; ``w = (y != 0)``.
* ``"normal"`` (NYUv2 only): ``y`` float32 ``[H, W, 3]``; ``mask="own"``:
  ``w = (sum_c y != 0)`` (MTAN since July 2020, LibMTL); ``mask="depth"``:
  the depth's validity (MTAN before, Maximum Roaming, ``003``). These are the
  rules of ``tf_mtl.dense.losses.validity_weights`` (the same ``mask`` option and
  values, ``MASK_SOURCES``), computed by its ``pixel_validity``.
* ``binary_classes=True`` (Maximum Roaming, ``003`` §5) replaces
  ``"segmentation"`` by one binary task per class, ``"class_<c>"`` zero-padded
  to sort numerically (``class_00``..``class_12`` for NYUv2, ``class_0``..
  ``class_6`` for 7-class Cityscapes): ``y`` float32 ``[H, W, 1]`` = channel
  ``c + 1`` of the one-hot of ``label + 1`` (channel 0, the ignore label, is
  dropped, so an ignored pixel is negative for every class) and ``w = 1``
  everywhere, as Maximum Roaming's BCE averages over all pixels. With depth
  (and normals) that is ``003``'s 15 NYUv2 / 8 Cityscapes tasks.

What is checked when. At construction (cheap, before any training): ``root``,
the split folder and each task's folder exist; every folder holds exactly the
files ``0.npy..N-1.npy`` the image folder holds (a sample missing one task's
file is named); the first sample's files are read and checked in full. While
reading (each sample, inside the ``tf.data`` map): every file is loaded with
``np.load(allow_pickle=False)`` (a file that needs unpickling is refused by
name: loading a pickle runs its code), its shape must be the first sample's,
labels integral in ``[-1, C)``, values finite; a bad file stops iteration with a
``tf.errors.InvalidArgumentError`` naming the file. Checking every file up
front would read the whole split.
"""

import tensorflow as tf

from tf_mtl.data import dense_augment
from tf_mtl.data.dense_release import CHANNELS, SPLIT_FOLDERS, Release
from tf_mtl.dense.losses import MASK_SOURCES, pixel_validity

NYUV2_RELEASE = "https://www.dropbox.com/s/p2nn02wijg7peiy/nyuv2.zip?dl=0"
CITYSCAPES_RELEASES = {"128x256": "https://www.dropbox.com/s/lg2ktu7o8hzwf99/cityscapes2.zip?dl=0",
                       "256x512": "https://www.dropbox.com/s/q2333k4eyrnezbh/cityscapes.zip?dl=0"}
NYUV2_CLASSES = 13
CITYSCAPES_CLASSES = (2, 7, 19)


def class_task_names(num_classes):
    """``["class_0", ...]`` zero-padded so sorted names keep class order."""
    width = len(str(num_classes - 1))
    return [f"class_{c:0{width}d}" for c in range(num_classes)]


def _targets(arrays, tasks, mask, binary_classes, num_classes):
    """``({task: y}, {task: w})`` of one (possibly augmented) example; the validity rules are
    the dense losses' own (``tf_mtl.dense.losses.pixel_validity``)."""
    y, w = {}, {}
    if "segmentation" in tasks:
        label = arrays["label"]
        if binary_classes:
            one_hot = tf.one_hot(label + 1, num_classes + 1)[..., 1:]  # Ignore: all negative.
            for c, name in enumerate(class_task_names(num_classes)):
                y[name] = one_hot[..., c:c + 1]
                w[name] = tf.ones_like(one_hot[..., c])
        else:
            y["segmentation"] = label
            w["segmentation"] = pixel_validity(label, "segmentation")
    for task in ("depth", "normal"):
        if task in tasks:
            y[task] = arrays[task]
            source = "depth" if mask == "depth" else task
            w[task] = pixel_validity(arrays[source], source)
    return y, w


def _dataset(release, tasks, mask, binary_classes, augment, batch_size, shuffle, seed):
    keys = list(release.folders)
    dtypes = [tf.int32 if k == "label" else tf.float32 for k in keys]
    shapes = {k: (release.height, release.width) + ((CHANNELS[k],) if k in CHANNELS else ())
              for k in keys}

    def read(index):
        arrays = release.read(index)
        return [arrays[k] for k in keys]

    def load(index, draw):
        values = tf.numpy_function(read, [index], dtypes, stateful=False)
        arrays = {k: tf.ensure_shape(v, shapes[k]) for k, v in zip(keys, values)}
        if augment:
            arrays = dense_augment.random_augment(arrays, tf.stack([tf.cast(seed, tf.int64), draw]))
            arrays = {k: tf.ensure_shape(v, shapes[k]) for k, v in arrays.items()}
        y, w = _targets(arrays, tasks, mask, binary_classes, release.num_classes)
        return arrays["image"], y, w

    ds = tf.data.Dataset.range(release.count)
    if shuffle:
        ds = ds.shuffle(release.count, seed=seed, reshuffle_each_iteration=True)
    # One seeded draw per element (another each pass): the augmentation's stateless seed.
    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip(ds, draws)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _check_options(tasks, allowed, mask, batch_size, seed, flags):
    tasks = [tasks] if isinstance(tasks, str) else list(tasks or [])
    if not tasks or any(t not in allowed for t in tasks) or len(set(tasks)) != len(tasks):
        raise ValueError(f"`tasks` must name distinct tasks among {list(allowed)}. "
                         f"Received: tasks={tasks!r}")
    if mask not in MASK_SOURCES:
        raise ValueError(f"`mask` must be one of {MASK_SOURCES}. Received: mask={mask!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an int >= 1. Received: batch_size={batch_size!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"`seed` must be an int. Received: seed={seed!r}")
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise ValueError(f"`{name}` must be True or False. Received: {name}={value!r}")
    return tasks


def _folders(tasks, mask, label_folders):
    """The folders a sample is read from: the image, and what the tasks (and masks) need."""
    folders = {"image": ["image"]}
    if "segmentation" in tasks:
        folders["label"] = label_folders
    if "depth" in tasks or ("normal" in tasks and mask == "depth"):
        folders["depth"] = ["depth"]
    if "normal" in tasks:
        folders["normal"] = ["normal"]
    return folders


def nyuv2(root, split, *, tasks=("segmentation", "depth", "normal"), mask="own",
          binary_classes=False, augment=False, batch_size=2, shuffle=None, seed=0):
    """NYUv2 (MTAN's 13-class release) as batches of ``(image, {task: y}, {task: w})``.

    Args:
        root: the unzipped release, holding ``train/`` and ``val/``.
        split: ``"train"`` or ``"val"`` (``"validation"`` and ``"test"`` read
            ``val/`` too: the release has no other held-out split).
        tasks: among ``"segmentation"``, ``"depth"``, ``"normal"``.
        mask: where the normals' validity comes from: ``"own"`` (their own
            target) or ``"depth"`` (the depth target; Maximum Roaming).
        binary_classes: one binary task per class instead of ``"segmentation"``.
        augment: MTAN's random scale-crop and flip (``dense_augment``).
        batch_size: examples per batch (MTAN: 2).
        shuffle: shuffle (seeded) each pass; default True for ``"train"``.
        seed: the shuffle's and the augmentation's seed.

    Example:
        >>> ds = tf_mtl.data.nyuv2("data/nyuv2", "train", batch_size=2)
    """
    tasks = _check_options(tasks, ("segmentation", "depth", "normal"), mask, batch_size, seed,
                           {"binary_classes": binary_classes, "augment": augment})
    about = (f"expected MTAN's NYUv2 layout root/{{train,val}}/{{image,label,depth,normal}}/"
             f"{{i}}.npy, published at {NYUV2_RELEASE} (MTAN's README, github.com/lorenmt/mtan)")
    release = Release(root, split, _folders(tasks, mask, ["label"]), NYUV2_CLASSES, about)
    shuffle = SPLIT_FOLDERS.get(split) == "train" if shuffle is None else shuffle
    return _dataset(release, tasks, mask, binary_classes, augment, batch_size, shuffle, seed)


def cityscapes(root, split, num_classes=7, *, tasks=("segmentation", "depth"), mask="own",
               binary_classes=False, augment=False, batch_size=8, shuffle=None, seed=0):
    """Cityscapes (MTAN's release) as batches of ``(image, {task: y}, {task: w})``.

    ``depth`` is the release's inverse depth (disparity). Labels come from
    ``label_<num_classes>/``; for ``num_classes=7`` LibMTL's ``label/`` when
    ``label_7/`` is absent (LibMTL's copy holds the 7-class labels only, so
    ``num_classes=2`` or ``19`` without ``label_2/`` / ``label_19/`` is refused).
    A label ``>= num_classes`` is refused as it is read.

    Args:
        root: the unzipped release (e.g. ``cityscapes2/``), holding ``train/`` and ``val/``.
        split: ``"train"`` or ``"val"`` (``"validation"``, ``"test"``: ``val/``).
        num_classes: 2, 7 (``001``, CAGrad, ``003``) or 19.
        tasks: among ``"segmentation"``, ``"depth"`` (the release has no normals).
        mask, binary_classes, augment, batch_size, shuffle, seed: as ``nyuv2``
            (batch 8 as CAGrad and ``003``).

    Example:
        >>> ds = tf_mtl.data.cityscapes("data/cityscapes2", "train", num_classes=7)
    """
    if not isinstance(num_classes, int) or num_classes not in CITYSCAPES_CLASSES:
        raise ValueError(f"`num_classes` must be one of {CITYSCAPES_CLASSES} (the release's "
                         f"label_2/, label_7/, label_19/). Received: num_classes={num_classes!r}")
    tasks = _check_options(tasks, ("segmentation", "depth"), mask, batch_size, seed,
                           {"binary_classes": binary_classes, "augment": augment})
    about = ("expected MTAN's Cityscapes layout root/{train,val}/{image,label_2,label_7,label_19,"
             "depth}/{i}.npy (or LibMTL's label/), published at "
             f"{CITYSCAPES_RELEASES['128x256']} (128x256) and {CITYSCAPES_RELEASES['256x512']} "
             "(256x512) (MTAN's README, github.com/lorenmt/mtan)")
    # LibMTL's label/ holds the 7-class labels: read for num_classes=7 only.
    labels = ["label_7", "label"] if num_classes == 7 else [f"label_{num_classes}"]
    release = Release(root, split, _folders(tasks, mask, labels), num_classes, about)
    shuffle = SPLIT_FOLDERS.get(split) == "train" if shuffle is None else shuffle
    return _dataset(release, tasks, mask, binary_classes, augment, batch_size, shuffle, seed)
