"""Pair runs for HOA/ESA, per-subset networks (tf_mtl.grouping.pair_runs)."""

import itertools
import json
import os
import time

import keras
import numpy as np
import pytest

import tf_mtl
from configs import grouping_planted
from tf_mtl import grouping
from tf_mtl.experiments import experiment
from tf_mtl.grouping import pair_runs


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
    scores = pair_runs.hoa_scores(single, pairs, sorted(SINGLE))
    assert scores["a"]["d"] == 0.7 and scores["d"]["a"] == 4.4 and scores["c"]["c"] == 3.0
    predictions = pair_runs.hoa_predictions(scores)
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
        pair_runs.hoa_scores(single, pairs, sorted(SINGLE))


def _tiny_config():
    c = grouping_planted.get_config("runlocal")
    c.data.update(num_tasks=3, num_groups=2, num_examples=256)
    c.epochs = 2
    return c


def test_run_network_trains_the_subset_at_half_width_and_is_reused(tmp_path, monkeypatch):
    config = _tiny_config()
    result = pair_runs.run_network(config, ["t2", "t0"], str(tmp_path), width=0.5)
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
    monkeypatch.setattr(pair_runs, "_train", lambda *a: pytest.fail("retrained"))
    assert pair_runs.run_network(config, ["t0", "t2"], str(tmp_path), width=0.5)["reused"]
    with pytest.raises(ValueError, match=r"other settings.*epochs: 2 there, 1 asked"):
        pair_runs.run_network(config, ["t0", "t2"], str(tmp_path), width=0.5, epochs=1)
    # Any other training setting is refused too (the whole config is stored and compared).
    config.optimizer.learning_rate = 0.5
    with pytest.raises(ValueError, match=r"optimizer.learning_rate: 0.02 there, 0.5 asked"):
        pair_runs.run_network(config, ["t0", "t2"], str(tmp_path), width=0.5)


def test_a_finished_measurement_of_another_config_is_refused(tmp_path, monkeypatch):
    from tf_mtl.grouping import comparison
    config = _tiny_config()
    monkeypatch.setattr(experiment, "train", lambda *a: pytest.fail("trained"))
    c = pair_runs.subset_config(config, ["t0", "t1", "t2"], seed=0)
    c.transference.enabled, c.transference.method, c.transference.plot = True, "exact", False
    pair_runs.write_json(str(tmp_path / "measurement.json"), {
        "scores": {"t0": {"t0": 1.0}}, "seconds": 3.0, "config": pair_runs.config_dict(c)})
    assert comparison.affinity_run(config, str(tmp_path), "exact", 0)[1] == 3.0
    config.optimizer.learning_rate = 0.5
    with pytest.raises(ValueError, match=r"optimizer.learning_rate: 0.02 there, 0.5 asked"):
        comparison.affinity_run(config, str(tmp_path), "exact", 0)


def test_training_seconds_add_up_over_a_killed_and_resumed_run(tmp_path, monkeypatch):
    """A call killed after its first epoch checkpoint counts up to that checkpoint."""
    workdir = str(tmp_path)

    def killed(config, d):
        time.sleep(0.3)
        (tmp_path / "checkpoint.bin").write_text("epoch 1")  # The last completed epoch.
        time.sleep(0.4)                                       # Lost: the partial epoch 2.
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment, "train", killed)
    with pytest.raises(KeyboardInterrupt):
        pair_runs._timed_train(None, workdir)
    monkeypatch.setattr(experiment, "train", lambda config, d: time.sleep(0.2) or "done")
    result, seconds = pair_runs._timed_train(None, workdir)
    assert result == "done" and 0.5 <= seconds < 0.5 + 0.3
    # A finished call adds nothing of the killed one again.
    _, again = pair_runs._timed_train(None, workdir)
    assert 0.7 <= again < 0.8 + 0.3


def test_widths_default_to_the_config_and_singles_cost_their_ratio():
    config = _tiny_config()
    config.model.width = 0.5
    assert pair_runs.subset_config(config, ["t0"]).model.width == 0.5
    opts = pair_runs.options(config)
    assert (opts.single_width, opts.group_width) == (0.5, 0.5)
    assert pair_runs.candidate_costs(opts, ["t0", "t1"]) is None
    config.grouping_runs.group_width = 1.0
    opts = pair_runs.options(config)
    assert pair_runs.candidate_costs(opts, ["t0", "t1"]) == {("t0",): 0.5, ("t1",): 0.5}
    assert pair_runs.selection_widths(config, [("t0",), ("t1", "t2")]) == {
        ("t0",): 0.5, ("t1", "t2"): 1.0}
    assert pair_runs.network_name(("t1", "t0"), 0.5, config) == "t0+t1"
    assert pair_runs.network_name(("t1", "t0"), 1.0, config) == "t0+t1@w1"


def test_esa_selection_is_the_best_set_of_trained_candidates_by_brute_force():
    """002 §3.3.1: select among every subset's own (short-run) validation losses."""
    rng = np.random.default_rng(3)
    tasks = ["a", "b", "c", "d"]
    groups = [g for r in range(1, 5) for g in itertools.combinations(tasks, r)]
    candidates = {g: {t: float(rng.uniform(0.5, 2.0) * (1 + tasks.index(t))) for t in g}
                  for g in groups}
    config = _tiny_config()
    config.grouping_runs.update(single_width=0.5, group_width=1.0)
    for budget in (1, 2, 3):
        chosen = pair_runs.esa_selection(candidates, budget, config)
        best = np.inf
        for n in range(1, len(groups) + 1):
            for pick in itertools.combinations(groups, n):
                cost = sum(0.5 if len(g) == 1 else 1.0 for g in pick)
                if cost > budget or {t for g in pick for t in g} != set(tasks):
                    continue
                best = min(best, np.mean([min(candidates[g][t] for g in pick if t in g)
                                          for t in tasks]))
        assert chosen.value == pytest.approx(best) and chosen.cost <= budget
        assert chosen.value == pytest.approx(np.mean(
            [candidates[chosen.serving[t]][t] for t in tasks]))


@pytest.mark.parametrize("splits", [[0], [4], [2.7], ["x"], [True]])
def test_bad_split_counts(splits):
    with pytest.raises(ValueError, match=r"Received: splits=\["):
        pair_runs.check_splits(["t0", "t1", "t2"], splits)


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

    monkeypatch.setattr(pair_runs, "run_network", fake_run)
    first = pair_runs.pair_runs(config, str(tmp_path), esa=True, shard=(0, 2))
    assert first["scores"] is None and [c[0] for c in calls] == [("t0",), ("t2",), ("t0", "t2")]
    assert all(o["epochs"] == 1 and o["early_stopping"] is False for _, o in calls)
    second = pair_runs.pair_runs(config, str(tmp_path), esa=True, shard=(1, 2))
    assert [c[0] for c in calls[3:]] == [("t1",), ("t0", "t1"), ("t1", "t2")]
    assert (second["trained"], second["reused"], second["seconds"]) == (3, 3, 6.0)
    table = json.load(open(tmp_path / "hoa.json"))
    assert table["t2"] == {"t2": 12.0, "t0": 22.0, "t1": 22.0} == second["scores"]["t2"]
    assert table["t0"]["t0"] == 10.0 and table["t1"]["t0"] == 21.0
    with pytest.raises(ValueError, match="Received: '2/2'"):
        pair_runs.parse_shard("2/2")
