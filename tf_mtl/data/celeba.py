"""CelebA from TFDS ``celeb_a``: attributes as tasks (``001`` App. D.1, ``003`` Table 4).

Splits are TFDS's: train / validation / test = 162,770 / 19,867 / 19,962.
Images are converted to float in [0, 1] and resized (bilinear) to
``image_size`` x ``image_size`` (64 in the papers).

Two ways to name tasks:

* a list of attributes — each attribute is a task with a two-class one-hot
  label ``[not, has]``, as the original TAG code (heads ``Dense(2)``, loss
  ``CategoricalCrossentropy(from_logits=True)``); ``CELEBA_TAG_TASKS`` is the
  9-attribute set of the TAG experiments;
* a dict ``{task: [attributes]}`` — multi-label tasks whose label is the
  vector of their attributes (heads ``Dense(len)``, loss
  ``BinaryCrossentropy(from_logits=True)``, averaged over the attributes);
  ``CELEBA_MR_GROUPS`` is the 8-group split of Maximum Roaming (``003`` Table 4).

CelebA's Google-Drive download often fails (quota, checksums). When it does,
``celeba`` raises an error saying where to put the five files by hand:
``<data_dir>/downloads/manual/celeb_a/`` with the names below (``sources``).
"""

import tensorflow as tf

from tf_mtl.data import sources

CELEBA_ATTRIBUTES = [
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair",
    "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair",
    "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings",
    "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
]

CELEBA_TAG_TASKS = ["5_o_Clock_Shadow", "Black_Hair", "Blond_Hair", "Brown_Hair", "Goatee",
                    "Mustache", "No_Beard", "Rosy_Cheeks", "Wearing_Hat"]

CELEBA_MR_GROUPS = {
    "global": ["Attractive", "Blurry", "Chubby", "Double_Chin", "Heavy_Makeup", "Male",
               "Oval_Face", "Pale_Skin", "Young"],
    "eyes": ["Bags_Under_Eyes", "Eyeglasses", "Narrow_Eyes", "Arched_Eyebrows",
             "Bushy_Eyebrows"],
    "hair": ["Bald", "Bangs", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair",
             "Receding_Hairline", "Straight_Hair", "Wavy_Hair"],
    "mouth": ["Big_Lips", "Mouth_Slightly_Open", "Smiling", "Wearing_Lipstick"],
    "nose": ["Big_Nose", "Pointy_Nose"],
    "beard": ["5_o_Clock_Shadow", "Goatee", "Mustache", "No_Beard", "Sideburns"],
    "cheeks": ["High_Cheekbones", "Rosy_Cheeks"],
    "wearings": ["Wearing_Earrings", "Wearing_Hat", "Wearing_Necklace", "Wearing_Necktie"],
}

SPLITS = ("train", "validation", "test")


def celeba_task_spec(tasks):
    """``{task: (head units, loss name)}`` for ``tasks`` as ``celeba`` labels them."""
    tasks = _normalize_tasks(tasks)
    if isinstance(tasks, dict):
        return {t: (len(a), "binary_crossentropy_logits") for t, a in tasks.items()}
    return {t: (2, "categorical_crossentropy_logits") for t in tasks}


def _normalize_tasks(tasks):
    if isinstance(tasks, dict):
        if not tasks:
            raise ValueError("`tasks` must name at least one task. Received: {}")
        attrs = [a for group in tasks.values() for a in group]
        empty = [t for t, group in tasks.items() if not group]
        if empty:
            raise ValueError(f"Every task needs at least one attribute. Received: empty {empty}")
    else:
        tasks = list(tasks) if tasks is not None else []
        if not tasks:
            raise ValueError(f"`tasks` must name at least one attribute. Received: {tasks!r}")
        attrs = tasks
    unknown = sorted(set(attrs) - set(CELEBA_ATTRIBUTES))
    if unknown:
        raise ValueError(f"Unknown CelebA attributes: {unknown}. Valid attributes: "
                         f"{CELEBA_ATTRIBUTES}")
    return tasks


def _labels(attributes, tasks):
    if isinstance(tasks, dict):
        return {t: tf.stack([tf.cast(attributes[a], tf.float32) for a in group])
                for t, group in tasks.items()}
    return {t: tf.one_hot(tf.cast(attributes[t], tf.int32), 2) for t in tasks}


def celeba(split, tasks=None, *, image_size=64, batch_size=256, data_dir=None, shuffle=None,
           seed=0, download=True, verify_checksums=True, retries=False):
    """CelebA as a batched ``tf.data.Dataset`` of ``(image, {task: label})``.

    Args:
        split: ``"train"``, ``"validation"`` or ``"test"`` (or a TFDS slice
            such as ``"train[:10%]"``).
        tasks: a list of attributes (default ``CELEBA_TAG_TASKS``) or a dict
            ``{task: [attributes]}`` such as ``CELEBA_MR_GROUPS``.
        image_size: side of the square float image in [0, 1].
        batch_size: examples per batch.
        data_dir: TFDS data directory (default TFDS's).
        shuffle: shuffle (seeded) each epoch; default True for ``"train"``.
        download: let TFDS download and prepare the data if missing (from the
            files in ``<data_dir>/downloads/manual/celeb_a/`` when there are).
        verify_checksums: refuse files placed by hand that are not the
            originals; False prepares from re-packed copies (``sources``).
        retries: keep TFDS's download retries instead of failing within
            seconds when the source cannot be reached.

    Example:
        >>> ds = tf_mtl.data.celeba("train", tasks=tf_mtl.data.CELEBA_TAG_TASKS, batch_size=256)
    """
    tasks = _normalize_tasks(CELEBA_TAG_TASKS if tasks is None else tasks)
    if not isinstance(image_size, int) or image_size <= 0:
        raise ValueError(f"`image_size` must be a positive int. Received: image_size={image_size!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an int >= 1. Received: batch_size={batch_size!r}")
    if split.split("[")[0] not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
    ds = sources.load("celeb_a", split, data_dir=data_dir, download=download,
                      verify_checksums=verify_checksums, retries=retries, shuffle_files=False)

    def convert(example):
        image = tf.image.convert_image_dtype(example["image"], tf.float32)
        image = tf.image.resize(image, (image_size, image_size), method="bilinear")
        return image, _labels(example["attributes"], tasks)

    if split.startswith("train") if shuffle is None else shuffle:
        ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
