"""The grouping comparison end to end on the planted benchmark (tf_mtl.grouping.comparison)."""

import json
import os

import numpy as np
import pytest

from configs import grouping_planted
from tf_mtl.experiments import experiment
from tf_mtl.grouping import comparison


def _tiny_config():
    """Four tasks, planted groups {t0, t2} and {t1, t3}; a one-unit bottleneck."""
    c = grouping_planted.get_config("runlocal")
    c.data.update(num_tasks=4, num_groups=2)
    c.grouping_runs.random_draws = 2
    return c


def _three_tasks():
    """The smallest comparison: three tasks, 256 examples, two epochs (ESA: one)."""
    c = grouping_planted.get_config("runlocal")
    c.data.update(num_tasks=3, num_groups=2, num_examples=256)
    c.epochs = 2
    # Half-width singles (the config's width, kept), full-width groups: the pair runs'
    # singles are then the single-task baselines too.
    c.model.width = 0.5
    c.grouping_runs.update(group_width=1.0)
    return c


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("compare"))
    return workdir, comparison.compare(_tiny_config(), workdir, [2], ["tag", "random"])


def test_tag_recovers_the_planted_groups_and_beats_random(compared):
    workdir, out = compared
    tag, random = out["per_seed"][0]["tag"][2], out["per_seed"][0]["random"][2]
    assert tag["recovered"] and not random["recovered"] and len(random["draws"]) == 2
    assert tag["total_test_loss"] < random["total_test_loss"]
    assert tag["compute_seconds"] > 0 and random["compute_seconds"] == 0
    assert out["table"]["mtl"][1]["encoders"] == 1 and out["table"]["single"][4]["encoders"] == 4
    saved = json.load(open(os.path.join(workdir, "comparison.json")))
    assert saved["table"]["tag"]["2"]["metric"] == pytest.approx(tag["total_test_loss"])
    assert "| tag |" in open(os.path.join(workdir, "comparison.md")).read()
    assert os.path.getsize(os.path.join(workdir, "fig4.png")) > 0


def test_a_killed_comparison_resumes_without_retraining_finished_networks(
        compared, monkeypatch):
    workdir, out = compared
    # A comparison killed while training one network leaves that run without its results
    # (experiment.train's results.json, then network.json), its epoch checkpoint kept.
    killed = os.path.join(workdir, "seed_0", "networks", "t1")
    for name in ("network.json", "results.json"):
        os.remove(os.path.join(killed, name))
    trained = []  # Every training, the affinity run's included, goes through experiment.train.
    original = experiment.train
    monkeypatch.setattr(experiment, "train",
                        lambda config, d: trained.append(d) or original(config, d))
    again = comparison.compare(_tiny_config(), workdir, [2], ["tag", "random"])
    assert trained == [killed]
    # The same served losses (t1 resumed from its last epoch's checkpoint; only the
    # single-task models' compute, which counts t1's time again, changes).
    served = lambda table: {n: {k: e["metric"] for k, e in r.items()} for n, r in table.items()}
    assert served(again["table"]) == served(out["table"])
    assert again["table"]["tag"][2]["compute_hours"] == out["table"]["tag"][2]["compute_hours"]


@pytest.mark.parametrize("splits, methods, metric, message", [
    ([2], ["tag", "experts"], None, r"Unknown grouping method\(s\) \['experts'\]"),
    ([2, 5], ["tag"], None, r"Received: splits=\[2, 5\]"),
    ([2, 2.7], ["tag"], None, r"whole numbers .*Received: splits=\[2, 2.7\]"),
    ([2], ["tag"], "average_error", r"tasks \['t0', 't1', 't2', 't3'\] have .*"
                                    r"Received: config.grouping_runs.metric='average_error'"),
    ([2], ["tag"], "loss", r"Received: 'loss'"),
])
def test_bad_requests_are_refused_before_any_training(tmp_path, monkeypatch, splits, methods,
                                                       metric, message):
    config = _tiny_config()
    if metric:
        config.grouping_runs.metric = metric
    monkeypatch.setattr(experiment, "train", lambda *a: pytest.fail("trained"))
    with pytest.raises(ValueError, match=message):
        comparison.compare(config, str(tmp_path), splits, methods)


def test_recovered_needs_the_planted_networks_not_only_the_partition():
    planted = [("t0", "t2"), ("t1", "t3")]
    everything = ["t0", "t1", "t2", "t3"]
    # t0 and t2 are served by the 4-task network: the served sets are the planted
    # groups, but no network was trained on {t0, t2}.
    mixed = {"t0": everything, "t2": everything, "t1": ["t1", "t3"], "t3": ["t1", "t3"]}
    assert comparison.partition_recovered(mixed, planted)
    assert not comparison.recovered(mixed, planted)
    exact = {**mixed, "t0": ["t0", "t2"], "t2": ["t2", "t0"]}
    assert comparison.recovered(exact, planted)
    split = {**exact, "t2": ["t2"]}
    assert not comparison.recovered(split, planted)
    assert not comparison.partition_recovered(split, planted)
    table = {"hoa": {2: {"metric": 1.0, "metric_se": float("nan"), "compute_hours": 1.0,
                         "encoders": 3.0, "recovered": 0.0, "partition_recovered": 1.0}}}
    text = comparison.format_table(table, "total_test_loss", [2])
    assert "[3 enc] (planted 0%; partition only 100%)" in text


def test_hoa_and_esa_end_to_end_with_half_width_singles(tmp_path, monkeypatch):
    config = _three_tasks()
    costs_seen = []
    original = comparison.selection.select_groups
    monkeypatch.setattr(comparison.selection, "select_groups", lambda *a, **k: (
        costs_seen.append((k.get("costs"), k.get("budget"))) or original(*a, **k)))
    out = comparison.compare(config, str(tmp_path), [2], ["hoa", "esa"])
    seed = tmp_path / "seed_0"
    # The HOA selection saw the singles at half cost within a budget of 2 group networks.
    assert costs_seen == [({("t0",): 0.5, ("t1",): 0.5, ("t2",): 0.5}, 2)]
    # ESA trained every subset, one epoch each, its candidates' scores their validation losses.
    esa = json.load(open(seed / "esa_runs" / "esa.json"))
    assert sorted(esa) == sorted(["t0+t1", "t0+t1+t2", "t0+t2", "t1+t2", "t0", "t1", "t2"])
    for name in esa:
        run = json.load(open(seed / "esa_runs" / (name + "@w1" if "+" in name else name)
                             / "network.json"))
        assert run["epochs_run"] == 1 and run["validation"] == esa[name]
    for method in ("hoa", "esa"):
        row = out["per_seed"][0][method][2]
        chosen = json.load(open(seed / method / "split_2" / "groups.json"))
        for g in map(tuple, chosen["groups"]):
            net = json.load(open(seed / "networks" / comparison.pair_runs.network_name(
                g, 0.5 if len(g) == 1 else 1.0, config) / "network.json"))
            assert net["width"] == (0.5 if len(g) == 1 else 1.0) and net["epochs_run"] >= 1
        # Served = each task's loss from the network the selection assigned.
        assert row["total_test_loss"] == pytest.approx(sum(
            m["loss"] for m in row["tasks"].values()))
        assert row["compute_seconds"] > 0
    # HOA's served networks are its pair runs (same settings): nothing was trained again
    # unless it chose the 3-task network; the single-task baselines are its singles.
    hoa_groups = json.load(open(seed / "hoa" / "split_2" / "groups.json"))["groups"]
    assert out["per_seed"][0]["hoa"][2]["trained"] == sum(len(g) == 3 for g in hoa_groups)
    assert out["per_seed"][0]["single"][3]["trained"] == 0


def test_random_groupings_are_partitions():
    rng = np.random.default_rng(0)
    for k in (1, 2, 3):
        groups = comparison.random_grouping(["a", "b", "c", "d"], k, rng)
        assert len(groups) == k and all(groups)
        assert sorted(t for g in groups for t in g) == ["a", "b", "c", "d"]
