"""select_groups for many tasks: column generation against enumeration and brute force.

Values are checked against the enumerating exact solver (today's ``select_groups``)
and a brute force written from the objectives' definitions (``test_selection``'s
references); bounds against the brute-force optimum; planted groups at 32 tasks.
"""

import numpy as np
import pytest

from tests.grouping.test_selection import (_matrix, _random_scores, _reference_best,
                                           _reference_value)
from tf_mtl.grouping import scale_selection, select_groups
from tf_mtl.grouping import selection as selection_lib


def _scores(objective, m, seed):
    rng = np.random.default_rng(seed)
    scores = _random_scores(rng, m, positive_diagonal=(objective == "transference"))
    if objective == "hoa":  # Losses.
        scores = {s: {t: abs(v) + 0.1 for t, v in row.items()} for s, row in scores.items()}
    return scores


def _planted(m, blocks, seed, noise=0.1):
    rng = np.random.default_rng(seed)
    tasks = [f"t{i:02d}" for i in range(m)]
    block = {t: i % blocks for i, t in enumerate(tasks)}
    scores = {s: {t: (0.3 if block[s] == block[t] else -0.2) + noise * float(rng.normal())
                  for t in tasks} for s in tasks}
    return scores, sorted(tuple(t for t in tasks if block[t] == b) for b in range(blocks))


def _indices(groups, tasks):
    return [[tasks.index(t) for t in g] for g in groups]


def _check_selection(sel, scores, objective):
    """The returned value recomputed from the definitions; bound and gap consistent."""
    tasks = sorted(scores)
    M = _matrix(scores, tasks)
    assert sel.value == pytest.approx(_reference_value(M, _indices(sel.groups, tasks), objective),
                                      abs=1e-9)
    better = 1 if objective == "tag" else -1
    assert better * (sel.bound - sel.value) >= -1e-9
    assert sel.gap == pytest.approx(abs(sel.bound - sel.value) / abs(sel.value), abs=1e-9)


@pytest.mark.parametrize("objective,m,splits,seed", [
    ("tag", 7, 3, 0), ("hoa", 7, 2, 1), ("transference", 6, 3, 2), ("tag", 6, 2, 3)])
def test_matches_brute_force(objective, m, splits, seed):
    scores = _scores(objective, m, seed)
    sel = select_groups(scores, splits, objective, solver="column_generation")
    expected = _reference_best(_matrix(scores, sorted(scores)), splits, objective)
    assert sel.exact and sel.gap == 0 and sel.value == pytest.approx(expected, abs=1e-9)
    _check_selection(sel, scores, objective)


@pytest.mark.parametrize("seed,splits", [(4, 3), (8, 3), (1, 2)])
def test_tiny_scores_are_solved_as_exactly_as_unit_ones(seed, splits):
    # Scores near 1e-6 (raw lookahead affinities): HiGHS's absolute gap (1e-6) once let a
    # worse grouping through as proven optimal (seed 4: 6.839081e-07 against 6.852202e-07).
    scores = {s: {t: 1e-6 * v for t, v in row.items()}
              for s, row in _scores("tag", 8, seed).items()}
    today = select_groups(scores, splits, "tag", solver="partition")
    sel = select_groups(scores, splits, "tag", solver="column_generation")
    assert sel.exact and sel.value == pytest.approx(today.value, rel=1e-9, abs=0)
    _check_selection(sel, scores, "tag")
    assert sel.bound == sel.value


@pytest.mark.parametrize("objective,m,splits,seed", [
    ("tag", 9, 4, 4), ("tag", 10, 3, 5), ("hoa", 9, 3, 6), ("transference", 9, 4, 7)])
def test_identical_to_the_enumerating_solver(objective, m, splits, seed):
    scores = _scores(objective, m, seed)
    today = select_groups(scores, splits, objective, solver="partition")
    sel = select_groups(scores, splits, objective, solver="column_generation")
    # Continuous random scores: one optimum, so the same groups, serving and value.
    assert (sel.groups, sel.serving, sel.cost, sel.exact) == (
        today.groups, today.serving, today.cost, today.exact)
    assert sel.value == pytest.approx(today.value, abs=1e-12)


def test_planted_groups_at_9_tasks_identical_and_auto_enumerates():
    scores, planted = _planted(9, 3, seed=0)
    auto, partition = (select_groups(scores, 3, "tag", solver=s) for s in ("auto", "partition"))
    assert auto == partition and sorted(auto.groups) == planted
    sel = select_groups(scores, 3, "tag", solver="column_generation")
    assert sel.groups == auto.groups and sel.value == pytest.approx(auto.value, abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("time_limit", [1e-6, 0.05])
def test_bound_never_below_the_optimum_when_stopped_early(seed, time_limit):
    scores = _scores("tag", 7, 10 + seed)
    tasks = sorted(scores)
    M = _matrix(scores, tasks)
    W, alone = scale_selection.pair_form(M, "tag")
    groups, value, bound, exact = scale_selection.solve(W, alone, 3, time_limit)
    optimum = _reference_best(M, 3, "tag") * len(tasks)
    assert value <= optimum + 1e-9 <= bound + 2e-9
    assert value == pytest.approx(_reference_value(M, [np.flatnonzero(g) for g in groups],
                                                   "tag") * len(tasks), abs=1e-9)
    assert not exact or abs(value - optimum) < 1e-9


def _planted_for(objective, m, blocks, seed):
    """Planted blocks in each objective's orientation: TAG affinities (help inside a
    block), HOA losses (lower inside), transference ``t(b, a)`` (higher inside, so
    ``1 - t(b, a) / t(a, a)`` lower; ``t(a, a) = 1``)."""
    scores, planted = _planted(m, blocks, seed)
    if objective == "hoa":
        scores = {s: {t: 1.0 - v for t, v in row.items()} for s, row in scores.items()}
    elif objective == "transference":
        scores = {s: {t: (1.0 if s == t else 1.0 + v) for t, v in row.items()}
                  for s, row in scores.items()}
    return scores, planted


@pytest.mark.parametrize("objective", ["tag", "hoa", "transference"])
@pytest.mark.parametrize("kind", ["random", "planted"])
@pytest.mark.parametrize("splits", [2, 3])
def test_bound_and_value_against_brute_force_all_objectives(objective, kind, splits):
    m = 7
    scores = (_scores(objective, m, 30 + splits) if kind == "random"
              else _planted_for(objective, m, splits, seed=splits)[0])
    tasks = sorted(scores)
    M = _matrix(scores, tasks)
    optimum = _reference_best(M, splits, objective)
    better = 1 if objective == "tag" else -1
    for time_limit in (1e-6, 0.05, 60):
        sel = select_groups(scores, splits, objective, solver="column_generation",
                            time_limit=time_limit)
        _check_selection(sel, scores, objective)  # The value recomputed by hand.
        assert better * (optimum - sel.value) >= -1e-9     # No grouping beats the optimum,
        assert better * (sel.bound - optimum) >= -1e-9     # and the bound is above it.
        if sel.exact or time_limit == 60:
            assert sel.exact and sel.value == pytest.approx(optimum, abs=1e-9)


@pytest.mark.parametrize("objective", ["tag", "hoa", "transference"])
def test_planted_groups_identical_to_the_enumerating_solver_at_10_tasks(objective):
    scores, planted = _planted_for(objective, 10, 3, seed=2)
    today = select_groups(scores, 3, objective, solver="partition")
    sel = select_groups(scores, 3, objective, solver="column_generation")
    assert sorted(today.groups) == planted
    assert (sel.groups, sel.serving, sel.exact) == (today.groups, today.serving, True)
    assert sel.value == pytest.approx(today.value, abs=1e-12)


def test_gap_is_a_valid_bound_at_24_tasks_under_a_time_limit():
    scores = _scores("tag", 24, 20)
    sel = select_groups(scores, 4, "tag", time_limit=3.0)  # auto: column generation.
    _check_selection(sel, scores, "tag")
    assert sel.exact == (sel.gap == 0)
    # A grouping no better than the optimum: the bound is above every grouping we try.
    rng = np.random.default_rng(0)
    tasks = sorted(scores)
    M = _matrix(scores, tasks)
    for _ in range(20):
        label = rng.integers(0, 4, len(tasks))
        groups = [np.flatnonzero(label == b) for b in range(4) if (label == b).any()]
        assert _reference_value(M, groups, "tag") <= sel.bound + 1e-9


@pytest.mark.parametrize("m,splits", [(32, 4), (40, 4)])
def test_planted_groups_recovered_at_30_plus_tasks(m, splits):
    scores, planted = _planted(m, splits, seed=1)
    sel = select_groups(scores, splits, "tag", time_limit=60)
    assert sorted(sel.groups) == planted and sel.exact and sel.gap == 0
    _check_selection(sel, scores, "tag")


def test_benchmark_affinities_and_rows():
    from tf_mtl.benchmarks import selection as bench
    for kind in bench.KINDS:
        scores = bench.affinities(kind, 6)
        M = _matrix(scores, sorted(scores))
        assert M.shape == (6, 6) and np.isfinite(M).all() and not np.allclose(M, M.T)
    assert bench.affinities("random", 5) == bench.affinities("random", 5)  # Seeded.
    rows = bench.selection_rows(sizes=(9,), splits=(2, 3), kinds=("planted",))
    assert [r[0] for r in rows] == ["planted, 9 tasks, 2 splits", "planted, 9 tasks, 3 splits"]
    assert all(r[1] == "enumeration" and r[3] == "optimal" for r in rows)
    with pytest.raises(ValueError, match="Received: kind='celeba'"):
        bench.affinities("celeba", 5)
    with pytest.raises(ValueError, match=r"Received: splits=\('two',\)"):
        bench.selection_benchmark(splits=("two",))
    with pytest.raises(ValueError, match=r"Received: splits=\(0,\)"):
        bench.selection_benchmark(splits=("0",))


@pytest.mark.parametrize("kwargs,message", [
    (dict(time_limit=0), "Received: time_limit=0"),
    (dict(time_limit=-1.0), "Received: time_limit=-1.0"),
    (dict(time_limit="60"), "Received: time_limit='60'"),
    (dict(time_limit=True), "Received: time_limit=True"),
    (dict(time_limit=float("nan")), "Received: time_limit=nan"),
    (dict(objective="greedy"), "Received: objective='greedy'"),
    (dict(solver="cplex"), "Received: solver='cplex'"),
    (dict(solver="column_generation", costs={"t0": 0.5}), r"Received: costs=\{'t0': 0.5\}"),
    (dict(solver="column_generation", budget=2.5), "Received: costs=None, budget=2.5"),
])
def test_bad_input(kwargs, message):
    scores = _scores("tag", 4, 0)
    with pytest.raises(ValueError, match=message):
        select_groups(scores, **{"splits": 2, **kwargs})


def test_scores_not_square_are_refused():
    scores = _scores("tag", 4, 0)
    del scores["t1"]["t3"]
    with pytest.raises(ValueError, match=r"square.*Received columns"):
        select_groups(scores, 2, "tag", solver="column_generation")
    with pytest.raises(ValueError, match=r"square matrix. Received: shape \(2, 3\)"):
        scale_selection.pair_form(np.ones((2, 3)), "tag")
    with pytest.raises(ValueError, match="supports the objectives.*Received: objective='esa'"):
        scale_selection.pair_form(np.ones((2, 2)), "esa")
    with pytest.raises(ValueError, match="Received: time_limit=0"):
        scale_selection.solve(np.ones((2, 2)), np.zeros(2), 1, 0)
    assert selection_lib.ENUMERATION_MAX_TASKS >= 10


@pytest.mark.slow
@pytest.mark.parametrize("splits", [2, 4])
def test_20_random_tasks_proven_optimal_within_60_s(splits):
    scores = _scores("tag", 20, 40 + splits)
    sel = select_groups(scores, splits, "tag", time_limit=60)
    assert sel.exact and sel.gap == 0
    _check_selection(sel, scores, "tag")
