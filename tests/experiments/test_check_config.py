"""``check_config`` refuses, before anything is built or written, what no run can mean; the
tasks it checks grouping against are the ones the data has."""

import importlib
import os

import pytest
import tensorflow_datasets as tfds

from tf_mtl.experiments import experiment
from tf_mtl.experiments import config_checks


def _quickstart():
    return importlib.import_module("configs.quickstart").get_config("runlocal")


@pytest.mark.parametrize("field, value, message", [
    ("grouping.splits", 10, r"`config.grouping.splits` must be at most the number of tasks "
                            r"\(6: .*\). Received: splits=10"),
    ("grouping.splits", 0, r"`config.grouping.splits` must be an int >= 1. Received: splits=0"),
    ("grouping.objective", "foo", r"`config.grouping.objective` .*Received: objective='foo'"),
    ("rule.name", "foo", r"config.rule: `rule.name` must be one of .*Received: name='foo'"),
    ("rule.weighting", "uw", r"config.rule: `rule.weighting` composes with"),
    ("transference.method", "foo", r"config.transference: `method` .*Received: method='foo'"),
    ("transference.every", 0, r"config.transference: `every` .*Received: every=0"),
    ("model.loss", "nope", r"`config.model.loss` must be a Keras loss name.*Received: "
                           r"loss='nope'"),
    ("model.head_units", 0, r"`config.model.head_units` must be an int >= 1"),
    ("model.width", float("inf"), r"`config.model.width` must be a finite number > 0"),
    ("model.encoder_kwargs", {"units": [64, 0]}, r"`config.model.encoder_kwargs.units` must "
                                                 r"be an int >= 1. Received: units=0"),
    ("optimizer.learning_rate", float("inf"), r"finite number > 0. Received: learning_rate=inf"),
    ("optimizer.learning_rate", float("nan"), r"finite number > 0. Received: learning_rate=nan"),
    ("task_subset", ("t0", "t9"), r"`config.task_subset` names tasks the dataset lacks: "
                                  r"\['t9'\]"),
    ("data.num_tasks", 0, r"`config.data.num_tasks` must be an int >= 1"),
    ("model.loss_weights", {"t9": 2.0}, r"`config.model.loss_weights` names tasks that do "
                                        r"not exist: \['t9'\]"),
    ("model.per_task_gradients", "loops", r"per_task_gradients='loops'"),
    ("model.lookahead_execution", "fast", r"lookahead_execution='fast'"),
    ("model.encoder_kwargs", {"units": [8], "routing": {"kind": "roaming"}},
     r"routing.kind` must be one of .*Received: kind='roaming'"),
    ("optimizer.epsilon", 1e-8, r"epsilon.*adam.*Received: epsilon=1e-08 with name='sgd'"),
    ("early_stopping_mode", "lowest", r"early_stopping_mode='lowest'"),
    ("table_spread", "sd", r"`config.table_spread` .*Received: table_spread='sd'"),
    ("grouping.time_limit", -1.0, r"Received: time_limit=-1.0"),
    ("grouping.time_limit", 0.0, r"Received: time_limit=0.0"),
])
def test_values_no_run_can_mean_are_refused(field, value, message):
    config = _quickstart()
    *parents, leaf = field.split(".")
    node = config
    for name in parents:
        node = node[name]
    node[leaf] = value
    with pytest.raises(ValueError, match=message):
        config_checks.check_config(config)


def test_grouping_is_checked_against_the_tasks_only_where_groups_are_selected():
    config = _quickstart()
    config.grouping.splits = 10
    config.transference.enabled = False   # No affinities, no selection: nothing to refuse.
    config_checks.check_config(config)
    config.transference.enabled, config.task_subset = True, ("t0", "t1", "t2")
    config.grouping.splits = 3
    config_checks.check_config(config)
    config.grouping.splits = 4
    with pytest.raises(ValueError, match=r"number of tasks \(3: \['t0', 't1', 't2'\]\)"):
        config_checks.check_config(config)


@pytest.mark.parametrize("name, change", [
    ("quickstart", {}), ("quickstart", {"num_tasks": 12}), ("celeba_tag", {}),
    ("celeba_groups_mtl", {}), ("multimnist_mtl", {}), ("movielens_mtl", {}),
])
def test_config_tasks_are_the_tasks_of_the_data(name, change):
    config = importlib.import_module(f"configs.{name}").get_config("runlocal")
    config.data.update(change)
    with tfds.testing.mock_data(num_examples=48, policy=tfds.testing.MockPolicy.USE_CODE):
        dataset, _ = experiment.build_dataset(config, "validation")
    assert config_checks.config_tasks(config) == sorted(dataset.element_spec[1])


def test_a_run_failing_before_training_leaves_no_config_json(tmp_path):
    config = importlib.import_module("configs.multimnist_mtl").get_config("runlocal")
    config.data.update(name="multi_mnist_pickle", path=str(tmp_path / "none.pkl"))
    config_checks.check_config(config)
    with pytest.raises(FileNotFoundError):   # The data: not a refusal, its own error.
        experiment.train(config, str(tmp_path / "run"))
    assert not os.path.exists(tmp_path / "run" / "config.json")
    config.data.update(name="multi_mnist", path="")   # The corrected run is not refused.
    experiment.check_workdir(config, str(tmp_path / "run"))
