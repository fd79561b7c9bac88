"""Every experiment config builds its model and trains two steps on mock data."""

import importlib
import os

import pytest
import tensorflow_datasets as tfds

from tf_mtl import experiment

CONFIGS = ["celeba_tag", "celeba_groups_mtl", "multimnist_mtl", "movielens_mtl"]


@pytest.mark.parametrize("name", CONFIGS)
def test_config_runs_two_steps_on_mock_data(name, tmp_path):
    config = importlib.import_module(f"configs.{name}").get_config("runlocal")
    assert config.runlocal and config.steps_per_epoch == 2
    config.verbose = 0
    with tfds.testing.mock_data(num_examples=48, policy=tfds.testing.MockPolicy.USE_CODE):
        result = experiment.train(config, str(tmp_path))
    assert len(result["history"]["loss"]) == 1
    assert os.path.exists(tmp_path / "model.keras")
    if config.transference.enabled:
        assert set(result["affinity"]) >= set(result["selection"].serving)


def test_full_configs_keep_the_papers_settings():
    tag = importlib.import_module("configs.celeba_tag").get_config()
    assert tag.optimizer.learning_rate == 5e-4 and tag.optimizer.momentum == 0.9
    assert tag.optimizer.halve_every_epochs == 15 and tag.early_stopping_patience == 10
    assert tag.data.batch_size == 256 and tag.transference.every == 10
    mnist = importlib.import_module("configs.multimnist_mtl").get_config()
    assert mnist.model.loss_weights.to_dict() == {"left": 0.5, "right": 0.5}
    assert mnist.optimizer.halve_every_epochs == 30
    groups = importlib.import_module("configs.celeba_groups_mtl").get_config()
    assert groups.optimizer.name == "adam" and groups.optimizer.learning_rate == 1e-4
