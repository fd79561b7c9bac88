import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tf_mtl import grouping
from tf_mtl.grouping import Network, select_groups, select_networks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _exhaustive(candidates, budget, maximize):
    tasks = sorted({t for n in candidates for t in n.tasks})
    sign = 1 if maximize else -1
    best = -np.inf
    max_picks = len(candidates)
    for r in range(1, max_picks + 1):
        if min(n.cost for n in candidates) * r > budget + 1e-9 and min(n.cost for n in candidates) > 0:
            break
        for combo in itertools.combinations(candidates, r):
            if sum(n.cost for n in combo) > budget + 1e-9:
                continue
            served = [max((sign * n.scores[t] for n in combo if t in n.scores), default=None)
                      for t in tasks]
            if None in served:
                continue
            best = max(best, np.mean(served))
    return sign * best


def _random_scores(rng, m):
    tasks = [f"t{i}" for i in range(m)]
    return {s: {t: float(rng.normal()) for t in tasks} for s in tasks}


@pytest.mark.parametrize("solver", ["auto", "branch_and_bound"])
@pytest.mark.parametrize("objective", grouping.OBJECTIVES)
@pytest.mark.parametrize("seed", range(8))
def test_agrees_with_exhaustive_search(objective, seed, solver):
    rng = np.random.default_rng(seed)
    m = 3 + seed % 4  # 3..6 tasks
    scores = _random_scores(rng, m)
    if objective == "hoa":
        scores = {s: {t: abs(v) + 0.1 for t, v in row.items()} for s, row in scores.items()}
    use_costs = seed % 2 == 1 and m <= 5  # Exhaustive search with 0.5-cost singles grows fast.
    costs = {t: 0.5 for t in scores} if use_costs else None
    for splits in range(1, min(m, 3) + 1):
        sel = select_groups(scores, splits, objective, costs=costs, solver=solver)
        candidates = [Network(g, (0.5 if use_costs and len(g) == 1 else 1.0),
                              grouping._member_scores(scores, g, objective))
                      for r in range(1, m + 1) for g in itertools.combinations(sorted(scores), r)]
        expected = _exhaustive(candidates, splits, maximize=(objective == "tag"))
        assert sel.value == pytest.approx(expected, abs=1e-9)
        assert sel.cost <= splits + 1e-9 and sel.exact and sel.gap == 0
        assert set(sel.serving) == set(scores)
        assert all(t in sel.serving[t] and sel.serving[t] in sel.groups for t in scores)


def test_select_networks_with_own_candidates_and_costs():
    nets = [Network(("a", "b"), 1.0, {"a": 0.9, "b": 0.7}),
            Network(("b",), 0.5, {"b": 0.8}), Network(("a",), 0.5, {"a": 0.6})]
    sel = select_networks(nets, budget=1.5)
    assert sel.groups == [("a", "b"), ("b",)]
    assert sel.serving == {"a": ("a", "b"), "b": ("b",)}
    assert sel.value == pytest.approx(0.85) and sel.cost == 1.5
    assert select_networks(nets, budget=1.0).value == pytest.approx(0.8)  # (a,b) or a+b
    assert select_networks(nets, budget=1.5, aggregate="sum").value == pytest.approx(1.7)


def test_two_planted_cliques_are_found():
    tasks = ["a", "b", "c", "d", "e", "f"]
    clique = {t: 0 if t in "abc" else 1 for t in tasks}
    scores = {s: {t: (0.5 if s == t else (0.2 if clique[s] == clique[t] else -0.3))
                  for t in tasks} for s in tasks}
    sel = select_groups(scores, splits=2, objective="tag")
    assert sel.groups == [("a", "b", "c"), ("d", "e", "f")]
    assert sel.value == pytest.approx(0.2)
    # Transference objective reads the same matrix as t(b, a).
    assert select_groups(scores, 2, "transference").groups == [("a", "b", "c"), ("d", "e", "f")]


def test_splits_one_gives_the_all_task_network():
    rng = np.random.default_rng(3)
    scores = _random_scores(rng, 5)
    for objective in grouping.OBJECTIVES:
        if objective == "hoa":
            table = {s: {t: abs(v) for t, v in row.items()} for s, row in scores.items()}
            assert select_groups(table, 1, objective).groups == [tuple(sorted(scores))]
        else:
            assert select_groups(scores, 1, objective).groups == [tuple(sorted(scores))]


@pytest.mark.parametrize("m, splits", [(8, 3), (7, 4)])
def test_partition_and_branch_and_bound_agree(m, splits):
    scores = _random_scores(np.random.default_rng(m), m)
    a = select_groups(scores, splits, "tag", solver="partition")
    b = select_groups(scores, splits, "tag", solver="branch_and_bound")
    assert a.value == pytest.approx(b.value, abs=1e-9) and a.exact and b.exact


def test_partition_solver_needs_equal_costs():
    scores = _random_scores(np.random.default_rng(0), 3)
    with pytest.raises(ValueError, match="needs equal costs"):
        select_groups(scores, 2, costs={"t0": 0.5}, solver="partition")


def test_ties_resolved_deterministically():
    tasks = ["a", "b", "c", "d"]
    scores = {s: {t: 1.0 for t in tasks} for s in tasks}
    first = select_groups(scores, 2, "tag")
    for _ in range(3):
        assert select_groups(scores, 2, "tag") == first
    # Reordered input dicts give the same answer.
    shuffled = {s: dict(reversed(list(scores[s].items()))) for s in reversed(tasks)}
    assert select_groups(shuffled, 2, "tag") == first


def test_affinity_json_with_combined_sources_is_read():
    scores = _random_scores(np.random.default_rng(0), 3)
    scores["t0|t1|t2"] = {t: 0.0 for t in ["t0", "t1", "t2"]}
    assert set(select_groups(scores, 2).serving) == {"t0", "t1", "t2"}


def test_hoa_table_and_prediction():
    table = grouping.hoa_table({("a", "b"): {"a": 0.3, "b": 0.5}, ("a", "c"): {"a": 0.4, "c": 0.2},
                                ("b", "c"): {"b": 0.6, "c": 0.1}}, {"a": 0.35, "b": 0.55, "c": 0.15})
    assert table["a"] == {"a": 0.35, "b": 0.3, "c": 0.4}
    assert grouping.hoa_predict(table, ("a", "b", "c")) == pytest.approx(
        {"a": 0.35, "b": 0.55, "c": 0.15})
    sel = select_groups(table, 2, "hoa")
    assert sel.value == pytest.approx(np.mean([0.3, 0.5, 0.1]))  # {a,b} + {b,c}/{c}
    with pytest.raises(ValueError, match="lacks columns"):
        grouping.hoa_table({("a", "b"): {"a": 0.3, "b": 0.5}}, {"a": 0.3, "b": 0.5, "c": 0.1})


@pytest.mark.parametrize("scores, kwargs, message", [
    ({"a": {"a": 1.0, "b": 2.0}, "b": {"a": 1.0}}, {}, r"row 'b' lacks columns \['b'\]"),
    ({"a": {"a": 1.0, "b": float("nan")}, "b": {"a": 1.0, "b": 1.0}}, {}, "NaN/None/inf"),
    ({"a": {"a": 1.0, "b": None}, "b": {"a": 1.0, "b": 1.0}}, {}, "NaN/None/inf"),
    ({"a": {"a": 1.0}}, dict(splits=0), "Received: splits=0"),
    ({"a": {"a": 1.0}}, dict(splits=2), "at most the number of tasks"),
    ({"a": {"a": 1.0}}, dict(tasks=["a", "z"]), r"Unknown tasks.*\['z'\]"),
    ({"a": {"a": 1.0}}, dict(tasks=["a", "a"]), r"duplicates: \['a'\]"),
    ({"a": {"a": 1.0}}, dict(objective="greedy"), "Received: objective='greedy'"),
    ({"a": {"a": 1.0}}, dict(costs={"a": -1.0}), "Received: cost=-1.0"),
    ({"a": {"a": 1.0}}, dict(costs={"q": 1.0}), r"unknown tasks: \['q'\]"),
    ({"a": {"a": 1.0}, "b": {"a": 1.0, "b": 1.0}} | {"a": {"a": 1.0, "b": 1.0}},
     dict(costs={"a": 2.0, "b": 2.0, "a|b": 3.0}, budget=2.5), "cheapest cover costs 3.0"),
])
def test_bad_input(scores, kwargs, message):
    kwargs.setdefault("splits", 1)
    with pytest.raises(ValueError, match=message):
        select_groups(scores, **kwargs)


def test_time_limit_returns_an_inexact_selection_with_a_gap_bound():
    scores = _random_scores(np.random.default_rng(7), 7)
    sel = select_groups(scores, 3, "tag", time_limit=0.0, solver="branch_and_bound")
    assert not sel.exact and sel.gap >= 0
    exact = select_groups(scores, 3, "tag")
    assert exact.exact and sel.value <= exact.value + 1e-9 <= sel.value + sel.gap + 1e-9


def test_group_cli_prints_and_writes_groups_json(tmp_path):
    tasks = ["a", "b", "c", "d"]
    scores = {s: {t: (0.4 if (s in "ab") == (t in "ab") else -0.2) for t in tasks} for s in tasks}
    path = tmp_path / "affinity.json"
    path.write_text(json.dumps(scores))
    proc = subprocess.run([sys.executable, "-m", "launch.group", f"--scores={path}",
                           "--objective=tag", "--splits=2", "--costs=a|b=1.0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "a, b" in proc.stdout and "c, d" in proc.stdout
    written = json.loads((tmp_path / "groups.json").read_text())
    assert written["groups"] == [["a", "b"], ["c", "d"]] and written["serving"]["c"] == ["c", "d"]
