"""A run killed (SIGKILL) in the middle of an epoch, started again with the same command,
ends exactly where the uninterrupted run ends: weights, results.json, affinity files."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tf_mtl.experiments import checkpointing
from tf_mtl.experiments import experiment
from tf_mtl.experiments import runs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Quickstart shrunk: 3 tasks, 4 epochs of 8 steps; uncertainty weighting (rule state), the lr
# halved every epoch (schedule position), transference every step, early stopping with
# best weights restored (its state). Early stopping watches val_loss with mode "max": epoch 0
# is its best as the loss falls, so it fires at the end of epoch 2 (patience 2), the epoch
# the run is killed in, and restores epoch 0's weights: the resumed run must stop there too.
FLAGS = ["--config.epochs=4", "--config.data.num_examples=256", "--config.data.batch_size=32",
         "--config.data.num_tasks=3",
         "--config.rule.name=uw", "--config.optimizer.halve_every_epochs=1",
         "--config.transference.every=1", "--config.early_stopping_patience=2",
         "--config.early_stopping_mode=max",
         "--config.grouping.enabled=False", "--config.transference.plot=False",
         "--config.tensorboard=False", "--config.verbose=0"]

# Runs launch.train, but stops in the middle of epoch 2 (after its 4th step) and waits
# there to be killed: the test knows it kills a run with one unsaved partial epoch.
DRIVER = r"""
import os, sys, time
from tf_mtl.experiments import checkpointing
def on_train_batch_end(self, batch, logs=None):
    if self.epochs_done == 2 and batch == 3:
        open(os.environ["MARKER"], "w").close()
        time.sleep(120)
checkpointing.EpochCheckpoint.on_train_batch_end = on_train_batch_end
from absl import app
from tf_mtl.cli.train import main
sys.argv = ["train"] + sys.argv[1:]
app.run(main)
"""


def _config(workdir):
    from absl import flags
    from ml_collections import config_flags
    argv = ["prog", f"--config={ROOT}/configs/quickstart.py"] + FLAGS
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "c", flag_values=values, sys_argv=argv)
    values(argv)
    return values.config


def _weights(path):
    meta, arrays = checkpointing.read_checkpoint(str(path))
    return meta, arrays  # The model's and optimizer's variables, then the best weights.


def test_killed_mid_epoch_run_resumes_to_the_uninterrupted_result(tmp_path):
    killed = tmp_path / "killed"
    marker = tmp_path / "marker"
    args = [f"--config={ROOT}/configs/quickstart.py", f"--workdir={killed}"] + FLAGS
    env = {**os.environ, "MARKER": str(marker), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-c", DRIVER] + args, cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 90
    while not marker.exists():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail("the run never reached epoch 2: " + proc.stderr.read().decode()[-2000:])
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    meta, _ = _weights(killed / "checkpoint.bin")
    assert (meta["epoch"], meta["done"]) == (2, False)
    assert not (killed / "results.json").exists()
    epochs = json.loads((killed / "affinity_epochs.json").read_text())
    assert [e["epoch"] for e in epochs] == [0, 1]

    # Started again (launch.train's main calls tf_mtl.experiments.runs.run, which calls this; in this
    # process to spare a TensorFlow start), after an uninterrupted run built its models here.
    straight = tmp_path / "straight"
    experiment.train(_config(str(straight)), str(straight))
    runs.run(_config(str(killed)), str(killed))

    meta_a, weights_a = _weights(killed / "checkpoint.bin")
    meta_b, weights_b = _weights(straight / "checkpoint.bin")
    best_a, best_b = (m["early_stopping"].pop("best") for m in (meta_a, meta_b))
    paths = meta_a.pop("paths")  # (Keras numbers a process's later models: names differ.)
    assert len(paths) == len(meta_b.pop("paths"))
    assert meta_a == meta_b and meta_a["done"] and best_a == pytest.approx(best_b, rel=1e-5)
    assert meta_a["stopped"] and meta_a["epoch"] == 3  # Early stopping fired after epoch 2.
    assert meta_a["early_stopping"]["best_epoch"] == 0
    assert len(weights_a) == len(weights_b) > len(paths)  # Best weights kept too.
    for a, b, path in zip(weights_a, weights_b, paths + ["best"] * len(weights_a)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=path)
    results_a = json.loads((killed / "results.json").read_text())
    results_b = json.loads((straight / "results.json").read_text())
    assert results_a.keys() == results_b.keys() and results_a["epochs_trained"] == 3
    for task, metrics in results_b["test"].items():
        for name, value in metrics.items():
            assert results_a["test"][task][name] == pytest.approx(value, rel=1e-5), (task, name)
    for name in ("affinity.json", "affinity_epochs.json"):
        a = json.loads((killed / name).read_text())
        b = json.loads((straight / name).read_text())
        np.testing.assert_allclose(_numbers(a), _numbers(b), rtol=1e-5, atol=1e-7)
        assert _keys(a) == _keys(b)
    rows_a = (killed / "metrics.csv").read_text().splitlines()
    assert len(rows_a) == 4 and rows_a[0] == (straight / "metrics.csv").read_text().splitlines()[0]
    # Finished: a third start trains nothing and returns the same results.
    again = experiment.train(_config(str(killed)), str(killed))
    assert again["test"] == results_a["test"]
    # Its model is the run's final one (built as in training, the last checkpoint read).
    np.testing.assert_array_equal(again["model"].encoder.variables[0].numpy(),
                                  weights_a[0])


def _numbers(value):
    if isinstance(value, dict):
        return [x for k in sorted(value) for x in _numbers(value[k])]
    if isinstance(value, list):
        return [x for v in value for x in _numbers(v)]
    return [np.nan if value is None else float(value)]


def _keys(value):
    if isinstance(value, dict):
        return {k: _keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keys(v) for v in value]
    return None
