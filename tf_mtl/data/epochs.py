"""Training batches whose order depends on (seed, epoch) only, so a resumed run sees the same data.

A loader's own ``shuffle(..., reshuffle_each_iteration=True)`` draws each pass's order
from a seed generator that advances once per pass *in this process*: a run restarted at
epoch 5 would see epoch 0's order again. ``epoch_stream`` instead shuffles pass ``p`` of
the dataset with the seed ``(seed, p)`` and starts the stream where epoch
``initial_epoch`` starts, so epoch ``e`` gets the same batches whether the process
trained epochs ``0..e-1`` itself or restored them from a checkpoint.
"""

import numpy as np
import tensorflow as tf

BUFFER_BYTES = 256 << 20  # Shuffle buffer cap (the whole pass when it fits).


def _element_bytes(spec):
    sizes = []
    for s in tf.nest.flatten(spec):
        shape = s.shape[1:]  # Batched specs: drop the batch dimension.
        n = int(np.prod([d if d is not None else 1 for d in shape]))
        sizes.append(n * s.dtype.size)
    return max(sum(sizes), 1)


def count_batches(ds):
    """Batches in one pass of ``ds`` (its cardinality, else counted by iterating)."""
    n = int(ds.cardinality())
    if n == tf.data.INFINITE_CARDINALITY:
        raise ValueError("`ds` must be finite (one pass = one epoch's worth of data). "
                         "Received: a dataset of infinite cardinality")
    if n < 0:
        n = int(ds.reduce(np.int64(0), lambda count, _: count + 1))
    return n


def _concatenate(datasets):
    """One dataset of ``datasets`` in order, nested as a balanced tree (depth log2 n)."""
    while len(datasets) > 1:
        datasets = [a.concatenate(b) if b is not None else a
                    for a, b in zip(datasets[::2], datasets[1::2] + [None])]
    return datasets[0]


def epoch_stream(ds, *, batch_size, seed, epochs, steps_per_epoch=0, initial_epoch=0,
                 shuffle=True, buffer_bytes=BUFFER_BYTES):
    """``(stream, steps_per_epoch)``: the batches of epochs ``initial_epoch..epochs-1``.

    Args:
        ds: a finite batched dataset, unshuffled (the loader's ``shuffle=False``).
        batch_size: the batch size to re-batch to after shuffling examples.
        seed: the run's seed; pass ``p`` is shuffled with ``(seed, p)``.
        epochs: the epoch the stream ends before (``fit``'s ``epochs``).
        steps_per_epoch: batches per epoch; 0 = one pass (epoch ``e`` is pass ``e``).
            Otherwise epochs cut the stream of passes every ``steps_per_epoch``.
        initial_epoch: the first epoch the stream yields (skips at most one pass).
        shuffle: False keeps the loader's order every pass.
        buffer_bytes: the shuffle buffer holds up to this many bytes of examples (the
            whole pass when it fits; e.g. all of MultiMNIST, ~5k CelebA 64x64 images).

    Example:
        >>> ds, _ = tf_mtl.data.synthetic("train", shuffle=False)
        >>> stream, steps = epoch_stream(ds, batch_size=64, seed=0, epochs=8, initial_epoch=3)
        >>> model.fit(stream, steps_per_epoch=steps, initial_epoch=3, epochs=8)
    """
    if not isinstance(initial_epoch, int) or not 0 <= initial_epoch < epochs:
        raise ValueError("`initial_epoch` must be an int in [0, epochs). Received: "
                         f"initial_epoch={initial_epoch!r}, epochs={epochs!r}")
    batches = count_batches(ds)
    if batches < 1:
        raise ValueError("`ds` must hold at least one batch. Received: an empty dataset")
    steps = steps_per_epoch or batches
    first_pass, skip = divmod(initial_epoch * steps, batches)
    examples = ds.unbatch()
    buffer = int(max(1, min(batches * batch_size,
                            buffer_bytes // _element_bytes(ds.element_spec))))

    def one_pass(p):  # A Python seed per pass: tf.data takes no tensor seed.
        out = examples
        if shuffle:
            out = out.shuffle(buffer, seed=(seed * 1_000_003 + p) % (2**31 - 1),
                              reshuffle_each_iteration=False)
        return out.batch(batch_size)

    last_pass = -(-epochs * steps // batches)  # ceil: the pass holding the last step.
    stream = _concatenate([one_pass(p) for p in range(first_pass, last_pass)]).skip(skip)
    return stream.prefetch(tf.data.AUTOTUNE), steps
