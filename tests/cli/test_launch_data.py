"""Choosing and configuring a dataset from the command line (``experiment.DATASETS``)."""

import importlib
import inspect
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from tf_mtl.experiments import dense_setup, experiment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _write_lin_pickle(path, n_train=24, n_test=12, seed=0):
    """A tiny file in Lin et al.'s format: floats in [0, 1], labels [N, 2]."""
    rng = np.random.default_rng(seed)
    content = (rng.random((n_train, 36, 36)), rng.integers(0, 10, (n_train, 2)),
               rng.random((n_test, 36, 36)), rng.integers(0, 10, (n_test, 2)))
    with open(path, "wb") as f:
        pickle.dump(content, f)


def test_lin_pickle_runs_from_the_launchers_flags(tmp_path):
    data = tmp_path / "multi_mnist.pickle"
    _write_lin_pickle(data)
    workdir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "launch.train", "--config=configs/multimnist_mtl.py:runlocal",
         "--config.data.name=multi_mnist_pickle", f"--config.data.path={data}",
         f"--workdir={workdir}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = json.loads((workdir / "config.json").read_text())
    assert written["data"]["name"] == "multi_mnist_pickle"
    assert written["data"]["path"] == str(data)
    lines = (workdir / "metrics.csv").read_text().splitlines()
    assert len(lines) == 2 and "left_loss" in lines[0] and "val_right_loss" in lines[0]


def _config(**data):
    """The MultiMNIST smoke config with ``data`` fields set, as flags would set them."""
    config = importlib.import_module("configs.multimnist_mtl").get_config("runlocal")
    config.data.update(data)
    return config


def test_a_field_the_chosen_loader_does_not_take_is_refused_by_name(tmp_path):
    data = tmp_path / "multi_mnist.pickle"
    _write_lin_pickle(data)
    config = _config(name="multi_mnist_pickle", path=str(data), source="fashion_mnist")
    with pytest.raises(ValueError, match=r"does not take the field\(s\) \['source'\].*"
                                         r"Received: config.data.source='fashion_mnist'"):
        experiment.build_dataset(config, "train")
    config = _config(path=str(data))   # TFDS MultiMNIST with a pickle path: refused too.
    with pytest.raises(ValueError, match=r"\['path'\].*Received: config.data.path="):
        experiment.build_dataset(config, "train")
    with pytest.raises(ValueError, match="needs the pickle's path. Received: config.data.path=''"):
        experiment.build_dataset(_config(name="multi_mnist_pickle"), "train")
    with pytest.raises(ValueError, match="Received: config.data.name='mnist'"):
        experiment.build_dataset(_config(name="mnist"), "train")


def test_pickle_route_passes_its_fields_and_leaves_empty_ones_out(tmp_path):
    data = tmp_path / "multi_mnist.pickle"
    _write_lin_pickle(data, n_train=18)
    config = _config(name="multi_mnist_pickle", path=str(data))
    assert experiment.loader_kwargs(config.data) == (
        "multi_mnist_pickle", {"path": str(data), "batch_size": 4})
    ds, extras = experiment.build_dataset(config, "validation")
    assert sum(int(x.shape[0]) for x, _ in ds) == 3   # The last 1/6 of 18.
    assert sorted(extras["task_spec"]) == ["left", "right"]


@pytest.mark.parametrize("name", sorted(experiment.DATASETS))
def test_declared_fields_are_the_loaders_keyword_arguments(name):
    """The declarations are hand-written; they must name real parameters, and
    every parameter but ``split`` (synthetic: its ``synthetic_arrays`` ones)."""
    loader, fields = experiment.DATASETS[name]
    params = set(inspect.signature(loader).parameters) - {"split", "kwargs"}
    if name == "synthetic":
        from tf_mtl.data import synthetic_arrays
        params |= set(inspect.signature(synthetic_arrays).parameters) - {"split"}
    if name in dense_setup.LOADERS:  # the runner's own fields: generate a small release, ...
        params |= {"generate"} | set(dense_setup.RUNNER_FIELDS.get(name, ()))
    assert sorted(fields) == sorted(params)
