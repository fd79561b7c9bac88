"""Multi-domain batches (``000``): each task has its own dataset; a batch holds one sub-batch per task.

``multi_domain({task: dataset}, batch_size)`` yields ``({task: x_t}, {task: y_t})``,
the input ``MultiTaskModel`` takes for multi-domain learning (the shared encoder
runs on each task's own inputs, head ``t`` on task ``t``'s features).

Length policy: **an epoch ends with the shortest dataset.** Every batch holds
exactly ``batch_size`` examples of every task (the sub-batches are batched
with ``drop_remainder=True``, so shapes agree and the encoder runs once on all
of them); the examples of longer datasets beyond the shortest one's last full
batch are not seen in that epoch (with ``shuffle``, other ones each epoch).
``000`` fixes every domain to the same size, where nothing is left out but a
last partial batch. Use ``.repeat()`` on a short dataset before passing it to
make the longest dataset set the epoch instead.
"""

import tensorflow as tf


def _check(datasets, batch_size, shuffle):
    if not isinstance(datasets, dict) or len(datasets) < 1:
        raise ValueError("`datasets` must be a non-empty dict {task: tf.data.Dataset}. "
                         f"Received: {type(datasets).__name__}")
    for task, ds in datasets.items():
        if not isinstance(ds, tf.data.Dataset):
            raise ValueError(f"`datasets[{task!r}]` must be a tf.data.Dataset of (x, y) "
                             f"examples. Received: {type(ds).__name__}")
        if not isinstance(ds.element_spec, tuple) or len(ds.element_spec) != 2:
            raise ValueError(f"`datasets[{task!r}]` must yield (x, y) examples. Received: "
                             f"element_spec={ds.element_spec}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an int >= 1. Received: batch_size={batch_size!r}")
    if not isinstance(shuffle, int) or isinstance(shuffle, bool) or shuffle < 0:
        raise ValueError("`shuffle` must be a buffer size >= 0 (0 = keep the order). "
                         f"Received: shuffle={shuffle!r}")


def multi_domain(datasets, batch_size, *, shuffle=0, seed=0):
    """Zips one dataset per task into multi-domain batches.

    Args:
        datasets: ``{task: tf.data.Dataset}`` of single ``(x, y)`` examples
            (not batched).
        batch_size: examples of *each* task per batch (a batch holds
            ``len(datasets) * batch_size`` examples).
        shuffle: shuffle buffer per task (0: keep the order); reshuffled each
            epoch, seeded (``seed + i`` for the i-th task in sorted order).
        seed: the shuffle seed.

    Returns:
        A ``tf.data.Dataset`` of ``({task: x_t}, {task: y_t})``, tasks in
        sorted order; an epoch ends with the shortest dataset (module doc).

    Example:
        >>> ds = tf_mtl.data.multi_domain(
        ...     {"cifar100": tf_mtl.data.cifar100("train"),
        ...      "tiny_imagenet": tf_mtl.data.image_folder("tiny-imagenet-200/train")},
        ...     batch_size=64, shuffle=10_000)
        >>> model.fit(ds, epochs=300)     # model: a MultiTaskModel with those two tasks
    """
    _check(datasets, batch_size, shuffle)
    tasks = sorted(datasets)
    parts = []
    for i, task in enumerate(tasks):
        ds = datasets[task]
        if shuffle:
            ds = ds.shuffle(shuffle, seed=seed + i, reshuffle_each_iteration=True)
        parts.append(ds.batch(batch_size, drop_remainder=True))
    zipped = tf.data.Dataset.zip(tuple(parts))
    return zipped.map(lambda *batches: ({t: b[0] for t, b in zip(tasks, batches)},
                                        {t: b[1] for t, b in zip(tasks, batches)}),
                      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
                      ).prefetch(tf.data.AUTOTUNE)
