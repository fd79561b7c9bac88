"""configs/taskonomy.py through the experiment runner on generated buildings.

The runner's joints: the encoder's name in ``tf_mtl.experiments.components`` (``ENCODERS``,
``ENCODER_WIDTH_ARGS``) and per-task test losses in ``experiment._test_metrics``.
"""

import json

import numpy as np
import pytest

from configs.taskonomy import get_config
from tf_mtl.dense.taskonomy_net import TaskonomyEncoder
from tf_mtl.experiments import checkpointing, components, config_checks, dense_setup, experiment
from tf_mtl.grouping import pair_runs


@pytest.fixture
def wired():
    """The runner's Taskonomy joints (kept as a fixture name for the tests that use it)."""
    assert components.ENCODERS["taskonomy_xception"] is TaskonomyEncoder
    assert components.ENCODER_WIDTH_ARGS["taskonomy_xception"] == ("size", 100)


def test_the_papers_settings():
    c = get_config()
    assert c.data.tasks == "sdnke" and c.data.image_size == 256 and c.data.split_source == "tag"
    assert c.data.rotate_loss and c.model.encoder == "taskonomy_xception"
    assert (c.optimizer.name, c.optimizer.learning_rate, c.optimizer.momentum,
            c.optimizer.weight_decay) == ("sgd", 0.1, 0.9, 1e-3)   # torch's 1e-4 (below)
    assert c.grouping_runs.single_width == 0.5 and c.grouping_runs.metric == "total_test_loss"
    assert (c.transference.every, c.transference.scale_by_lr) == (10, True)
    # train_taskonomy.py's schedule and epochs: --epochs 100, -ltw0 500000, -mltw 2000000,
    # -mlr 3e-5, halving from epoch index 2; an epoch is len // 5 past 10,000 batches.
    assert c.epochs == 100 and c.early_stopping_patience >= c.epochs   # Best kept, no stop.
    assert c.lr_schedule.to_dict() == {
        "name": "loss_plateau", "initial_window": 500_000, "max_window": 2_000_000,
        "min_learning_rate": 3e-5, "first_epoch": 2, "factor": 0.5}
    assert c.epoch_split.to_dict() == {"over_batches": 10_000, "parts": 5}
    schedule = components.lr_schedule_callback(c)
    assert schedule.batch_size == 96 and schedule.window // 96 == 5208
    assert pair_runs.esa_epochs(c) == 1     # ESA: one epoch, "a pass through just 20%"
    # ... of a fifth of a pass even where a pass has <= 10,000 batches (TAG's split may).
    esa = pair_runs.subset_config(c, ["s", "d"], epochs=1,
                                  epoch_split=pair_runs._esa_epoch_split(c))
    assert components.epoch_batches(esa.epoch_split, 8_000) == 1_600
    assert components.epoch_batches(c.epoch_split, 8_000) == 8_000
    spec = dense_setup.task_spec("taskonomy", experiment.loader_kwargs(c.data)[1])
    assert spec == {"s": (18, "taskonomy_cross_entropy"), "d": (1, "taskonomy_rotate_l1"),
                    "n": (3, "taskonomy_rotate_l1"), "k": (1, "taskonomy_l1"),
                    "e": (1, "taskonomy_l1")}


def test_weight_decay_shrinks_as_torchs_coupled_decay():
    """Keras's decoupled decay at the config's 1e-3 against torch's SGD with weight_decay
    1e-4 and momentum 0.9 (written out: buf = 0.9 buf + (g + wd w); w -= lr buf), zero
    gradients, lr 0.1, 1,000 steps: the same shrinkage within 1% of it."""
    import keras
    c = get_config()
    w, buf = 1.0, 0.0
    for _ in range(1000):
        buf = 0.9 * buf + 1e-4 * w
        w -= 0.1 * buf
    torch_shrink = 1.0 - w                                   # 0.0944
    var = keras.Variable(np.ones(3, np.float32))
    opt = keras.optimizers.SGD(learning_rate=c.optimizer.learning_rate,
                               momentum=c.optimizer.momentum,
                               weight_decay=c.optimizer.weight_decay)
    zero = keras.ops.zeros(3)
    for _ in range(1000):
        opt.apply_gradients([(zero, var)])
    keras_shrink = 1.0 - float(keras.ops.convert_to_numpy(var)[0])
    assert torch_shrink == pytest.approx(0.0944, abs=5e-4)
    assert keras_shrink == pytest.approx(torch_shrink, rel=0.01)


def test_config_checks_and_the_half_size_single(wired):
    for arg in (None, "runlocal"):
        config_checks.check_config(get_config(arg))
    c = get_config()
    c.model.width = 0.5                      # What pair_runs sets for a single-task network.
    assert components.encoder_kwargs(c.model) == {"size": 50}
    encoder = components.ENCODERS[c.model.encoder](**components.encoder_kwargs(c.model))
    assert encoder.sizes == (24, 48, 96, 192) + (512,) * 9     # The reference's half size.


def test_runlocal_trains_and_reports_each_tasks_test_loss(wired, tmp_path):
    c = get_config("runlocal")
    c.data.tasks = "dk"
    model = experiment.train(c, str(tmp_path))["model"]
    with open(tmp_path / "results.json") as f:
        test = json.load(f)["test"]
    assert sorted(test) == ["d", "k"] and all(np.isfinite(test[t]["loss"]) for t in test)
    meta, _ = checkpointing.read_checkpoint(str(tmp_path / "checkpoint.bin"))
    assert meta["schedule"]["batches"] == 2 and meta["schedule"]["ticks"] == 0  # It ran.
    # The test loss by hand: the saved model's per-batch losses on the test split, averaged.
    ds, _ = experiment.build_dataset(c, "test")
    by_hand = {t: [] for t in "dk"}
    for x, y, w in ds:
        pred = model(x, training=False)
        by_hand["d"].append(float(np.mean(np.min([
            np.mean(np.abs(pred["d"].numpy()[:, a:a + 30, b:b + 30] - y["d"].numpy()[:, 1:-1, 1:-1])
                    * w["d"].numpy()[:, 1:-1, 1:-1, None], axis=(1, 2, 3))
            for a in range(3) for b in range(3)], axis=0))))
        by_hand["k"].append(float(np.mean(np.abs(pred["k"].numpy() - y["k"].numpy()))))
    for t in "dk":
        assert test[t]["loss"] == pytest.approx(np.mean(by_hand[t]), rel=1e-4)


@pytest.mark.slow
def test_comparison_end_to_end_on_generated_buildings(wired, tmp_path):
    from tf_mtl.grouping import comparison
    c = get_config("runlocal")
    c.data.tasks = "dkn"
    out = comparison.compare(c, str(tmp_path), [2], ["tag", "hoa", "random"])
    assert set(out["table"]) >= {"tag", "hoa", "random", "mtl", "single"}
    for method in ("tag", "hoa", "random"):
        entry = out["table"][method][2]
        assert np.isfinite(entry["metric"]) and entry["metric"] > 0
        assert entry["encoders"] <= 4                # Budget 2: up to 4 half-size singles.
        assert (entry["compute_hours"] > 0) == (method != "random")   # Random measures nothing.
    with open(tmp_path / "comparison.json") as f:
        assert json.load(f)["metric"] == "total_test_loss"
    assert "2-split total_test_loss" in open(tmp_path / "comparison.md").read()
