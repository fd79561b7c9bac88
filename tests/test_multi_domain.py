"""Multi-domain batches: one sub-batch per task, the epoch ends with the shortest dataset."""

import numpy as np
import pytest
import tensorflow as tf

import tf_mtl


def _domain(n, offset):
    x = np.arange(n, dtype=np.float32)[:, None] + offset
    return tf.data.Dataset.from_tensor_slices((x, np.arange(n, dtype=np.int32) + offset))


def test_one_sub_batch_per_task_and_shortest_ends_the_epoch():
    ds = tf_mtl.data.multi_domain({"b": _domain(7, 100), "a": _domain(11, 0)}, batch_size=3)
    batches = list(ds)
    assert len(batches) == 2 and int(ds.cardinality()) == 2   # 7 // 3 full batches of "b".
    for i, (x, y) in enumerate(batches):
        assert sorted(x) == sorted(y) == ["a", "b"]
        np.testing.assert_array_equal(y["a"], np.arange(3 * i, 3 * i + 3))
        np.testing.assert_array_equal(y["b"], np.arange(3 * i, 3 * i + 3) + 100)
        np.testing.assert_array_equal(x["b"][:, 0], y["b"])      # Inputs stay with their labels.
    # Repeating the short domain lets the longest set the epoch.
    longer = tf_mtl.data.multi_domain({"a": _domain(11, 0), "b": _domain(7, 100).repeat()}, 3)
    assert len(list(longer)) == 3


def test_shuffle_is_seeded_and_keeps_pairs():
    make = lambda seed: tf_mtl.data.multi_domain({"a": _domain(12, 0), "b": _domain(12, 50)},
                                                  batch_size=4, shuffle=12, seed=seed)
    first = [y["a"].numpy() for _, y in make(1)]
    assert [y["a"].numpy().tolist() for _, y in make(1)] == [f.tolist() for f in first]
    assert sorted(np.concatenate(first).tolist()) == list(range(12))
    assert np.concatenate(first).tolist() != list(range(12))
    for x, y in make(2):
        np.testing.assert_array_equal(x["b"][:, 0], y["b"])


@pytest.mark.parametrize("args, message", [
    (([],), "non-empty dict.*Received: list"),
    (({"a": np.zeros(3)},), r"`datasets\['a'\]` must be a tf.data.Dataset.*Received: ndarray"),
    (({"a": tf.data.Dataset.range(3)},), r"`datasets\['a'\]` must yield \(x, y\)"),
    (({"a": _domain(3, 0)}, 0), "Received: batch_size=0"),
    (({"a": _domain(3, 0)}, 2, -1), "Received: shuffle=-1"),
])
def test_bad_input(args, message):
    args = args + (4,) if len(args) == 1 else args
    kwargs = {"shuffle": args[2]} if len(args) == 3 else {}
    with pytest.raises(ValueError, match=message):
        tf_mtl.data.multi_domain(args[0], args[1], **kwargs)
