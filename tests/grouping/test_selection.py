import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tf_mtl import grouping
from tf_mtl.grouping import Network, select_groups, select_networks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _matrix(scores, tasks):
    """``M[i, j] = scores[tasks[i]][tasks[j]]``: row = source (tag, transference) or
    task (hoa), column = target (tag, transference) or partner (hoa)."""
    return np.array([[scores[r][c] for c in tasks] for r in tasks], float)


def _reference_member_values(M, group, objective):
    """What member ``p`` of ``group`` (task indices) scores, written from the
    definitions (DESIGN.md "Grouping objectives", ``001`` App. B), not from
    ``grouping``'s code. NaN for tasks outside the group."""
    values = np.full(len(M), np.nan)
    for p in group:
        others = [q for q in group if q != p]
        if objective == "tag":    # Mean of what the other members do to p; alone -1e6.
            values[p] = M[others, p].mean() if others else -1e6
        elif objective == "hoa":  # p's result trained with each partner; alone: p trained alone.
            values[p] = M[p, others].mean() if others else M[p, p]
        else:
            # 001 App. B: t_hat(b, a) = 1 - t(b, a) / t(a, a) with t(b, a) = M[b, a], i.e.
            # column a divided by its diagonal entry; a group's transference sums, over
            # members a, the mean of t_hat(b, a) over the other members b. Alone: t_hat(a, a) = 0.
            t_hat = 1.0 - M / np.diag(M)[None, :]
            values[p] = t_hat[others, p].mean() if others else t_hat[p, p]
    return values


def _reference_value(M, selection, objective):
    """Mean over tasks of the best served value; None if a task is not covered."""
    values = np.array([_reference_member_values(M, g, objective) for g in selection])
    if np.isnan(values).all(axis=0).any():
        return None
    best = np.nanmax if objective == "tag" else np.nanmin
    return float(np.mean(best(values, axis=0)))


def _reference_best(M, budget, objective, cost=lambda group: 1.0):
    """Brute force over every selection of task subsets within the budget
    (all selections of r subsets at once, as index arrays, for speed)."""
    m = len(M)
    groups = [g for r in range(1, m + 1) for g in itertools.combinations(range(m), r)]
    sign = 1 if objective == "tag" else -1
    # Oriented so that larger is better; a task outside the group can never be served by it.
    values = np.nan_to_num(sign * np.array([_reference_member_values(M, g, objective)
                                            for g in groups]), nan=-np.inf)
    costs = np.array([cost(g) for g in groups])
    best = -np.inf
    for r in range(1, min(int(budget / costs.min() + 1e-9), len(groups)) + 1):
        selections = np.array(list(itertools.combinations(range(len(groups)), r)))
        selections = selections[costs[selections].sum(1) <= budget + 1e-9]
        served = values[selections].max(axis=1)          # [selections, tasks]
        covered = np.isfinite(served).all(axis=1)
        if covered.any():
            best = max(best, served[covered].mean(axis=1).max())
    return sign * best


def _random_scores(rng, m, positive_diagonal=False):
    """Independent entries: scores[s][t] != scores[t][s], so a swapped index shows."""
    tasks = [f"t{i}" for i in range(m)]
    scores = {s: {t: float(rng.normal()) for t in tasks} for s in tasks}
    if positive_diagonal:  # The transference objective normalises by t(a, a) > 0.
        for t in tasks:
            scores[t][t] = abs(scores[t][t]) + 0.1
    return scores


@pytest.mark.parametrize("solver", ["auto", "branch_and_bound"])
@pytest.mark.parametrize("objective", grouping.OBJECTIVES)
@pytest.mark.parametrize("seed", range(8))
def test_agrees_with_exhaustive_search(objective, seed, solver):
    rng = np.random.default_rng(seed)
    m = 3 + seed % 4  # 3..6 tasks
    scores = _random_scores(rng, m, positive_diagonal=(objective == "transference"))
    if objective == "hoa":
        scores = {s: {t: abs(v) + 0.1 for t, v in row.items()} for s, row in scores.items()}
    tasks = sorted(scores)
    M = _matrix(scores, tasks)
    assert not np.allclose(M, M.T)
    use_costs = seed % 2 == 1 and m <= 5  # Exhaustive search with 0.5-cost singles grows fast.
    costs = {t: 0.5 for t in scores} if use_costs else None
    cost = (lambda g: 0.5 if len(g) == 1 else 1.0) if use_costs else (lambda g: 1.0)
    for splits in range(1, min(m, 3) + 1):
        sel = select_groups(scores, splits, objective, costs=costs, solver=solver)
        expected = _reference_best(M, splits, objective, cost)
        assert sel.value == pytest.approx(expected, abs=1e-9)
        # The chosen groups are worth that value under the reference definitions too.
        chosen = [tuple(tasks.index(t) for t in g) for g in sel.groups]
        assert _reference_value(M, chosen, objective) == pytest.approx(expected, abs=1e-9)
        assert sum(cost(g) for g in chosen) <= splits + 1e-9
        assert sel.cost <= splits + 1e-9 and sel.exact and sel.gap == 0
        assert set(sel.serving) == set(scores)
        assert all(t in sel.serving[t] and sel.serving[t] in sel.groups for t in scores)
        for t, group in sel.serving.items():  # Each task is served by its best chosen group.
            i = tasks.index(t)
            served = _reference_member_values(M, [tasks.index(u) for u in group], objective)[i]
            options = [_reference_member_values(M, g, objective)[i] for g in chosen if i in g]
            assert served == pytest.approx(max(options) if objective == "tag" else min(options))


# Task a transfers strongly onto b and c (row a), they transfer weakly onto a.
ASYMMETRIC = {"a": {"a": 1.0, "b": 3.0, "c": 3.0},
              "b": {"a": 0.5, "b": 1.0, "c": 1.2},
              "c": {"a": 0.5, "b": 1.1, "c": 1.0}}


@pytest.mark.parametrize("objective, value, transposed_value, serving, transposed_serving", [
    # tag, member p scores mean of scores[q][p]. As given: {a,b} + {a,c} serve b and c
    # with a's 3.0, a gets 0.5: (0.5 + 3 + 3) / 3. Transposed: a gets 3.0 from either
    # partner, b and c do best together (1.2 and 1.1): (3 + 1.2 + 1.1) / 3.
    ("tag", 6.5 / 3, 5.3 / 3, {"b": ("a", "b"), "c": ("a", "c")},
     {"b": ("b", "c"), "c": ("b", "c")}),
    # hoa, member p scores mean of scores[p][q], alone scores[p][p] = 1 (minimize). As given:
    # a alone (1), b and c in {a,b,c} (0.85, 0.8). Transposed: a with a partner (0.5), b and
    # c in {b,c} (1.1, 1.2).
    ("hoa", 2.65 / 3, 2.8 / 3, {"a": ("a",), "b": ("a", "b", "c"), "c": ("a", "b", "c")},
     {"b": ("b", "c"), "c": ("b", "c")}),  # a: 0.5 in {a,b} or {a,b,c}, a tie.
    # transference, t_hat(b, a) = 1 - scores[b][a] / scores[a][a] (minimize; alone 0). As
    # given: t_hat(a, b) = t_hat(a, c) = -2, t_hat(b, a) = 0.5: {a,b} + {a,c},
    # (0.5 - 2 - 2) / 3. Transposed: t_hat(b, a) = -2, t_hat(c, b) = -0.2, t_hat(b, c) =
    # -0.1: a with anyone, b and c together, (-2 - 0.2 - 0.1) / 3.
    ("transference", -3.5 / 3, -2.3 / 3, {"b": ("a", "b"), "c": ("a", "c")},
     {"b": ("b", "c"), "c": ("b", "c")}),
])
def test_transposed_scores_give_another_answer(objective, value, transposed_value, serving,
                                                transposed_serving):
    """Values worked out by hand: reading scores[target][source] instead of
    scores[source][target] (or hoa's partner for its task) would give the other row."""
    transposed = {r: {c: ASYMMETRIC[c][r] for c in ASYMMETRIC} for r in ASYMMETRIC}
    for scores, expected, expected_serving in ((ASYMMETRIC, value, serving),
                                               (transposed, transposed_value, transposed_serving)):
        sel = select_groups(scores, 2, objective)
        assert sel.value == pytest.approx(expected)
        assert {t: sel.serving[t] for t in expected_serving} == expected_serving
        M = _matrix(scores, ["a", "b", "c"])
        assert _reference_best(M, 2, objective) == pytest.approx(expected)


@pytest.mark.parametrize("diagonal, message", [
    ({"b": 0.0}, r"tasks \['b'\]. Received: scores\['b'\]\['b'\]=0.0$"),
    ({"b": -0.3}, r"tasks \['b'\]. Received: scores\['b'\]\['b'\]=-0.3$"),
    ({"a": -1.0, "c": 0.0},
     r"tasks \['a', 'c'\]. Received: scores\['a'\]\['a'\]=-1.0, scores\['c'\]\['c'\]=0.0$"),
])
def test_transference_objective_refuses_non_positive_self_transference(diagonal, message):
    scores = {s: dict(row) for s, row in ASYMMETRIC.items()}
    for t, v in diagonal.items():
        scores[t][t] = v
    with pytest.raises(ValueError, match="self-transference t\\(a, a\\).*must be > 0"):
        select_groups(scores, 2, "transference")
    with pytest.raises(ValueError, match=message):
        select_groups(scores, 2, "transference")
    # Only this objective divides by the diagonal.
    assert select_groups(scores, 2, "tag").value == pytest.approx(6.5 / 3)


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
        elif objective == "transference":
            positive = _random_scores(np.random.default_rng(3), 5, positive_diagonal=True)
            assert select_groups(positive, 1, objective).groups == [tuple(sorted(scores))]
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
    sel = select_groups(scores, 3, "tag", time_limit=1e-9, solver="branch_and_bound")
    assert not sel.exact and sel.gap >= 0
    exact = select_groups(scores, 3, "tag")
    assert exact.exact and sel.value <= exact.value + 1e-9 <= sel.bound + 1e-9
    assert sel.gap == pytest.approx((sel.bound - sel.value) / abs(sel.value))


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
