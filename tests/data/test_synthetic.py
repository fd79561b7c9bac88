import json

import keras
import numpy as np
import pytest

import tf_mtl
from tf_mtl.experiments import experiment
from configs import quickstart


def test_same_seed_same_examples_and_splits_differ():
    a = tf_mtl.data.synthetic_arrays("train", num_examples=32, seed=3)
    b = tf_mtl.data.synthetic_arrays("train", num_examples=32, seed=3)
    c = tf_mtl.data.synthetic_arrays("validation", num_examples=32, seed=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1]["t0"], b[1]["t0"])
    assert not np.allclose(a[0], c[0])


def test_planted_structure_tasks_in_a_group_are_correlated():
    x, labels, groups = tf_mtl.data.synthetic_arrays(
        num_tasks=6, num_groups=3, num_examples=4000, label_noise=0.0, task_noise=0.1)
    assert groups == [("t0", "t3"), ("t1", "t4"), ("t2", "t5")]
    corr = np.corrcoef(np.concatenate([labels[f"t{i}"] for i in range(6)], 1).T)
    assert corr[0, 3] > 0.9 and corr[1, 4] > 0.9
    assert abs(corr[0, 1]) < 0.1 and abs(corr[2, 3]) < 0.1


def test_dataset_batches_and_classification_labels():
    ds, groups = tf_mtl.data.synthetic("train", num_tasks=4, num_groups=2, num_examples=10,
                                       batch_size=4, kind="classification")
    batches = list(ds)
    assert [int(b[0].shape[0]) for b in batches] == [4, 4, 2]
    y = np.concatenate([b[1]["t1"].numpy() for b in batches])
    assert set(np.unique(y)) <= {0.0, 1.0} and y.shape == (10, 1)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_tasks=1, num_groups=2), "Received: num_tasks=1"),
    (dict(num_groups=0), "Received: num_groups=0"),
    (dict(input_dim=4, num_groups=2, group_rank=4), "Received: input_dim=4"),
    (dict(kind="ranking"), "Received: kind='ranking'"),
    (dict(split="dev"), "Received: split='dev'"),
])
def test_bad_arguments(kwargs, message):
    split = kwargs.pop("split", "train")
    with pytest.raises(ValueError, match=message):
        tf_mtl.data.synthetic_arrays(split, **kwargs)


@pytest.mark.parametrize("method", ["exact", "first_order"])
def test_affinities_recover_the_planted_groups(tmp_path, method):
    """Averaged over a short run, within-group affinity beats cross-group affinity."""
    config = quickstart.get_config()
    config.epochs, config.verbose = 3, 0
    config.transference.update(method=method, plot=False)
    result = experiment.train(config, str(tmp_path))
    scores = result["affinity"]
    group_of = {t: g for g, members in enumerate(result["planted_groups"]) for t in members}
    tasks = sorted(group_of)
    within = [scores[s][t] for s in tasks for t in tasks if s != t and group_of[s] == group_of[t]]
    across = [scores[s][t] for s in tasks for t in tasks if group_of[s] != group_of[t]]
    assert np.mean(within) > np.mean(across) + 0.005
    assert min(within) > max(across)
    assert json.load(open(tmp_path / "affinity.json")) == scores
    # The run ends by selecting as many groups as were planted: it finds them.
    assert result["selection"].groups == result["planted_groups"]
    assert json.load(open(tmp_path / "groups.json"))["groups"] == [
        list(g) for g in result["planted_groups"]]
