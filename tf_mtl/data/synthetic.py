"""Planted-groups benchmark: tasks whose helpful and harmful pairs are known.

Construction (all randomness from ``seed``; the split only changes which
examples are drawn, never the task structure):

* Inputs ``x ~ N(0, I_d)``.
* ``num_groups`` groups; group ``g`` owns an ``r``-dimensional subspace with an
  orthonormal basis ``U_g`` (columns of one random orthogonal matrix, so the
  groups' subspaces are mutually orthogonal) and a group readout ``a_g`` (unit).
* Task ``i`` belongs to group ``i % num_groups`` (interleaved, so sorted task
  names do not spell out the grouping). Its target is
  ``y_i = a_i . tanh(s * U_g^T x) + label_noise * eps`` with
  ``a_i = normalize(a_g + task_noise * z_i)``: every task of a group is a
  slightly perturbed copy of the same nonlinear function of the same features.

Why transference comes out positive within groups and negative across them:
the gradient of a task's loss moves the shared encoder toward its group's
features ``tanh(U_g^T x)`` and toward its readout ``a_g``; the other tasks of
the group need exactly those features, so one task's step lowers its
partners' losses (``1 - L_after/L_before > 0``). Groups use orthogonal features;
with an encoder narrower than ``num_groups * r`` (``MLP([64, 8])`` for 3 groups
of rank 4, say) the groups compete for the same few units, so a step toward
one group's features rotates away the features another group's heads read,
and their losses rise. ``tests/test_synthetic.py`` checks the measured
affinities reproduce the planted groups.
"""

import numpy as np
import tensorflow as tf

_SPLIT_OFFSET = {"train": 0, "validation": 1, "test": 2}


def task_names(num_tasks):
    width = len(str(num_tasks - 1))
    return [f"t{i:0{width}d}" for i in range(num_tasks)]


def _structure(num_tasks, num_groups, input_dim, group_rank, task_noise, seed):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((input_dim, num_groups * group_rank)))
    bases = [q[:, g * group_rank:(g + 1) * group_rank] for g in range(num_groups)]
    group_readout = rng.standard_normal((num_groups, group_rank))
    group_readout /= np.linalg.norm(group_readout, axis=1, keepdims=True)
    readouts = []
    for i in range(num_tasks):
        a = group_readout[i % num_groups] + task_noise * rng.standard_normal(group_rank)
        readouts.append(a / np.linalg.norm(a))
    return bases, np.stack(readouts)


def _validate(num_tasks, num_groups, input_dim, group_rank, num_examples, kind, split):
    if not isinstance(num_groups, int) or num_groups < 1:
        raise ValueError(f"`num_groups` must be an int >= 1. Received: num_groups={num_groups!r}")
    if not isinstance(num_tasks, int) or num_tasks < num_groups:
        raise ValueError(
            "`num_tasks` must be an int >= num_groups so every group has a task. "
            f"Received: num_tasks={num_tasks!r}, num_groups={num_groups}"
        )
    if input_dim < num_groups * group_rank:
        raise ValueError(
            "`input_dim` must be >= num_groups * group_rank for orthogonal group "
            f"subspaces. Received: input_dim={input_dim}, num_groups={num_groups}, "
            f"group_rank={group_rank}"
        )
    if num_examples < 1:
        raise ValueError(f"`num_examples` must be >= 1. Received: num_examples={num_examples}")
    if kind not in ("regression", "classification"):
        raise ValueError(
            f"`kind` must be 'regression' or 'classification'. Received: kind={kind!r}"
        )
    if split not in _SPLIT_OFFSET:
        raise ValueError(f"`split` must be one of {sorted(_SPLIT_OFFSET)}. Received: split={split!r}")


def synthetic_arrays(split="train", *, num_tasks=6, num_groups=2, num_examples=4096,
                     input_dim=32, group_rank=4, task_noise=0.2, label_noise=0.1,
                     scale=1.5, kind="regression", seed=0):
    """The benchmark as numpy: ``(x [N, d], {task: y [N, 1]}, groups)``."""
    _validate(num_tasks, num_groups, input_dim, group_rank, num_examples, kind, split)
    bases, readouts = _structure(num_tasks, num_groups, input_dim, group_rank,
                                 task_noise, seed)
    rng = np.random.default_rng([seed, _SPLIT_OFFSET[split]])
    x = rng.standard_normal((num_examples, input_dim)).astype(np.float32)
    features = [np.tanh(scale * x @ u) for u in bases]
    names = task_names(num_tasks)
    labels = {}
    for i, name in enumerate(names):
        y = features[i % num_groups] @ readouts[i]
        y = y + label_noise * rng.standard_normal(num_examples)
        if kind == "classification":
            y = (y > 0).astype(np.float32)
        labels[name] = y.astype(np.float32)[:, None]
    groups = [tuple(names[i] for i in range(g, num_tasks, num_groups))
              for g in range(num_groups)]
    return x, labels, groups


def synthetic(split="train", *, batch_size=64, shuffle=None, **kwargs):
    """Planted-groups benchmark as a batched ``tf.data.Dataset`` of ``(x, {task: y})``.

    Args:
        split: ``"train"``, ``"validation"`` or ``"test"`` (same tasks, other examples).
        batch_size: examples per batch.
        shuffle: shuffle each epoch (seeded); default True for ``"train"`` only.
        **kwargs: structure arguments of ``synthetic_arrays`` (``num_tasks``,
            ``num_groups``, ``num_examples``, ``input_dim``, ``group_rank``,
            ``task_noise``, ``label_noise``, ``scale``, ``kind``, ``seed``).

    Returns:
        ``(dataset, groups)`` where ``groups`` lists the planted groups as
        tuples of task names.

    Example:
        >>> ds, groups = tf_mtl.data.synthetic("train", num_tasks=6, num_groups=3)
        >>> groups
        [('t0', 't3'), ('t1', 't4'), ('t2', 't5')]
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an int >= 1. Received: batch_size={batch_size!r}")
    x, labels, groups = synthetic_arrays(split, **kwargs)
    ds = tf.data.Dataset.from_tensor_slices((x, labels))
    if split == "train" if shuffle is None else shuffle:
        ds = ds.shuffle(len(x), seed=kwargs.get("seed", 0), reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE), groups
