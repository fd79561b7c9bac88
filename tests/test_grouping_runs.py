"""Pair runs for HOA/ESA, per-subset networks (tf_mtl.grouping_runs)."""

import json
import os

import keras
import numpy as np
import pytest

import tf_mtl
from configs import grouping_planted
from tf_mtl import experiment, grouping, grouping_runs


def _result(**validation):
    return {"validation": validation}


# Asymmetric validation losses: L(task | trained with partner); singles on the diagonal.
SINGLE = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}
PAIR = {("a", "b"): (0.9, 2.5), ("a", "c"): (1.3, 2.6), ("a", "d"): (0.7, 4.4),
        ("b", "c"): (1.8, 3.3), ("b", "d"): (2.2, 3.9), ("c", "d"): (2.9, 4.1)}


def _runs():
    single = {t: _result(**{t: v}) for t, v in SINGLE.items()}
    pairs = {(x, y): _result(**{x: lx, y: ly}) for (x, y), (lx, ly) in PAIR.items()}
    return single, pairs


def test_hoa_predictions_from_pair_results_by_hand():
    single, pairs = _runs()
    scores = grouping_runs.hoa_scores(single, pairs, sorted(SINGLE))
    assert scores["a"]["d"] == 0.7 and scores["d"]["a"] == 4.4 and scores["c"]["c"] == 3.0
    predictions = grouping_runs.hoa_predictions(scores)
    assert sorted(predictions) == ["a+b+c", "a+b+c+d", "a+b+d", "a+c+d", "b+c+d"]
    # 002 §3.3.2: a task's loss in a group is the mean of its pair losses with the others.
    assert predictions["a+b+d"] == pytest.approx({"a": (0.9 + 0.7) / 2, "b": (2.5 + 2.2) / 2,
                                                  "d": (4.4 + 3.9) / 2})
    assert predictions["a+b+c+d"]["c"] == pytest.approx((2.6 + 3.3 + 2.9) / 3)
    # The table is the "hoa" objective's input: a member scores its predicted loss.
    selection = grouping.select_groups(scores, 2, "hoa")
    served = [predictions["+".join(g)][t] if len(g) > 2 else scores[t][g[g[0] == t]]
              if len(g) == 2 else scores[t][t] for t, g in selection.serving.items()]
    assert selection.value == pytest.approx(np.mean(served))


def test_missing_pair_results_are_named():
    single, pairs = _runs()
    del pairs[("b", "d")], single["c"]
    with pytest.raises(ValueError, match=r"missing: \['c', 'b\+d'\]"):
        grouping_runs.hoa_scores(single, pairs, sorted(SINGLE))


def _tiny_config():
    c = grouping_planted.get_config("runlocal")
    c.data.update(num_tasks=3, num_groups=2, num_examples=256)
    c.epochs = 2
    return c


def test_run_network_trains_the_subset_at_half_width_and_is_reused(tmp_path, monkeypatch):
    config = _tiny_config()
    result = grouping_runs.run_network(config, ["t2", "t0"], str(tmp_path), width=0.5)
    assert result["tasks"] == ["t0", "t2"] and not result["reused"]
    assert sorted(result["test"]) == sorted(result["validation"]) == ["t0", "t2"]
    # MLP([64, 1]) at half width is MLP([32, 1]) (a layer keeps at least one unit).
    assert result["encoder_parameters"] == (24 * 32 + 32) + (32 * 1 + 1)
    assert result["parameters"] == result["encoder_parameters"] + 2 * (1 + 1)
    # The test loss is the served model's mean squared error on the test split.
    model = keras.models.load_model(tmp_path / "model.keras")
    x, labels, _ = tf_mtl.data.synthetic_arrays("test", **{
        k: v for k, v in config.data.to_dict().items() if k not in ("name", "batch_size")})
    pred = model.predict(x, verbose=0)
    assert result["test"]["t2"]["loss"] == pytest.approx(
        float(np.mean((pred["t2"] - labels["t2"]) ** 2)), rel=1e-4)
    assert json.load(open(tmp_path / "network.json"))["seconds"] == result["seconds"]
    monkeypatch.setattr(grouping_runs, "_train", lambda *a: pytest.fail("retrained"))
    assert grouping_runs.run_network(config, ["t0", "t2"], str(tmp_path), width=0.5)["reused"]
    with pytest.raises(ValueError, match=r"other settings: .*'epochs': 2.*asked for .*'epochs': 1"):
        grouping_runs.run_network(config, ["t0", "t2"], str(tmp_path), width=0.5, epochs=1)


@pytest.mark.parametrize("field, value, message", [
    ("task_subset", ("t0", "t9"), r"lacks: \['t9'\]"),
    ("width", 0.0, "Received: width=0.0"),
])
def test_bad_subset_and_width(tmp_path, field, value, message):
    config = _tiny_config()
    if field == "width":
        config.model.width = value
        with pytest.raises(ValueError, match=message):
            experiment.encoder_kwargs(config.model)
    else:
        config.task_subset = value
        with pytest.raises(ValueError, match=message):
            experiment.build_dataset(config, "train")


def test_pair_runs_shard_over_workers_and_esa_trains_a_fraction(tmp_path, monkeypatch):
    """Two workers share the directory; the tables appear once every run finished."""
    config = _tiny_config()   # Tasks t0, t1, t2; 2 epochs, ESA 1 epoch.
    calls = []

    def fake_run(cfg, tasks, workdir, **overrides):   # Losses that name their run.
        path = os.path.join(workdir, "network.json")
        if os.path.exists(path):
            return {**json.load(open(path)), "reused": True}
        calls.append((tuple(tasks), overrides))
        value = {t: float(int(t[1:]) + 10 * len(tasks)) for t in tasks}
        result = {"validation": value, "seconds": 1.0}
        os.makedirs(workdir, exist_ok=True)
        json.dump(result, open(path, "w"))
        return {**result, "reused": False}

    monkeypatch.setattr(grouping_runs, "run_network", fake_run)
    first = grouping_runs.pair_runs(config, str(tmp_path), esa=True, shard=(0, 2))
    assert first["scores"] is None and [c[0] for c in calls] == [("t0",), ("t2",), ("t0", "t2")]
    assert all(o["epochs"] == 1 and o["early_stopping"] is False for _, o in calls)
    second = grouping_runs.pair_runs(config, str(tmp_path), esa=True, shard=(1, 2))
    assert [c[0] for c in calls[3:]] == [("t1",), ("t0", "t1"), ("t1", "t2")]
    assert (second["trained"], second["reused"], second["seconds"]) == (3, 3, 6.0)
    table = json.load(open(tmp_path / "hoa.json"))
    assert table["t2"] == {"t2": 12.0, "t0": 22.0, "t1": 22.0} == second["scores"]["t2"]
    assert table["t0"]["t0"] == 10.0 and table["t1"]["t0"] == 21.0
    with pytest.raises(ValueError, match="Received: '2/2'"):
        grouping_runs.parse_shard("2/2")
