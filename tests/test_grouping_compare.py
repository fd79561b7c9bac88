"""The grouping comparison end to end on the planted benchmark (tf_mtl.grouping_compare)."""

import json
import os

import numpy as np
import pytest

from configs import grouping_planted
from tf_mtl import experiment, grouping_compare


def _tiny_config():
    """Four tasks, planted groups {t0, t2} and {t1, t3}; a one-unit bottleneck."""
    c = grouping_planted.get_config("runlocal")
    c.data.update(num_tasks=4, num_groups=2)
    return c


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("compare"))
    return workdir, grouping_compare.compare(_tiny_config(), workdir, [2], ["tag", "random"])


def test_tag_recovers_the_planted_groups_and_beats_random(comparison):
    workdir, out = comparison
    tag, random = out["per_seed"][0]["tag"][2], out["per_seed"][0]["random"][2]
    assert tag["recovered"] and not random["recovered"]
    assert tag["total_test_loss"] < random["total_test_loss"]
    assert tag["compute_seconds"] > 0 and random["compute_seconds"] == 0
    assert out["table"]["mtl"][1]["encoders"] == 1 and out["table"]["single"][4]["encoders"] == 4
    saved = json.load(open(os.path.join(workdir, "comparison.json")))
    assert saved["table"]["tag"]["2"]["metric"] == pytest.approx(tag["total_test_loss"])
    assert "| tag |" in open(os.path.join(workdir, "comparison.md")).read()
    assert os.path.getsize(os.path.join(workdir, "fig4.png")) > 0


def test_a_killed_comparison_resumes_without_retraining_finished_networks(
        comparison, monkeypatch):
    workdir, out = comparison
    # A comparison killed while training one network leaves that run without its results
    # (experiment.train's results.json, then network.json), its epoch checkpoint kept.
    killed = os.path.join(workdir, "seed_0", "networks", "t1")
    for name in ("network.json", "results.json"):
        os.remove(os.path.join(killed, name))
    trained = []  # Every training, the affinity run's included, goes through experiment.train.
    original = experiment.train
    monkeypatch.setattr(experiment, "train",
                        lambda config, d: trained.append(d) or original(config, d))
    again = grouping_compare.compare(_tiny_config(), workdir, [2], ["tag", "random"])
    assert trained == [killed]
    # The same served losses (t1 resumed from its last epoch's checkpoint; only the
    # single-task models' compute, which counts t1's time again, changes).
    served = lambda table: {n: {k: e["metric"] for k, e in r.items()} for n, r in table.items()}
    assert served(again["table"]) == served(out["table"])
    assert again["table"]["tag"][2]["compute_hours"] == out["table"]["tag"][2]["compute_hours"]


@pytest.mark.parametrize("splits, methods, message", [
    ([2], ["tag", "experts"], r"Unknown grouping method\(s\) \['experts'\]"),
    ([2, 5], ["tag"], r"Received: splits=\[2, 5\]"),
])
def test_bad_requests(tmp_path, splits, methods, message):
    with pytest.raises(ValueError, match=message):
        grouping_compare.compare(_tiny_config(), str(tmp_path), splits, methods)


def test_random_groupings_are_partitions():
    rng = np.random.default_rng(0)
    for k in (1, 2, 3):
        groups = grouping_compare.random_grouping(["a", "b", "c", "d"], k, rng)
        assert len(groups) == k and all(groups)
        assert sorted(t for g in groups for t in g) == ["a", "b", "c", "d"]
