"""Task grouping: which tasks to train together under an inference budget.

``select_groups`` turns a score matrix into candidate networks — every
non-empty task subset, cost 1 by default (so ``splits`` is the budget) — with
a score per member under the TAG, HOA or transference objective (DESIGN.md,
``001`` §5.1 and App. B, ``002`` §3.3), and hands them to the one selection
mechanism, ``tf_mtl.grouping.network_selection.select_networks``. Past
``ENUMERATION_MAX_TASKS`` tasks (``2^n`` candidates) it solves the same problem by
column generation instead (``tf_mtl.grouping.scale_selection``). ``hoa_table`` and
``hoa_predict`` build the Higher-Order Approximation from pair results.
"""

import dataclasses
import itertools
import json
import os

import numpy as np

from tf_mtl.grouping.network_selection import (Network, Selection, check_time_limit,
                                               relative_gap, select_networks)

OBJECTIVES = ("tag", "hoa", "transference")
TAG_ALONE = -1e6  # A task alone scores this under "tag" (TAG notebook).
# solver="auto" enumerates every subset up to this many tasks (the serving-partition program:
# 9 tasks x 4 splits in ~0.03 s, 12 in seconds) and uses column generation past it.
ENUMERATION_MAX_TASKS = 12
SOLVERS = ("auto", "partition", "branch_and_bound", "column_generation")
# Column generation's time_limit when none is given: a run's end (experiment.py) never hangs.
COLUMN_GENERATION_TIME_LIMIT = 60.0


def score_tasks(scores, tasks=None):
    """Validated task list of a ``scores[row][column]`` matrix (extra ``a|b`` rows ignored)."""
    if not isinstance(scores, dict) or not scores:
        raise ValueError(f"`scores` must be a non-empty dict of dicts. Received: {scores!r}")
    rows = [s for s in scores if "|" not in s]
    if tasks is None:
        tasks = sorted(rows)
    tasks = list(tasks)
    duplicated = sorted({t for t in tasks if tasks.count(t) > 1})
    if duplicated:
        raise ValueError(f"Task names must be unique. Received duplicates: {duplicated}")
    unknown = sorted(set(tasks) - set(rows))
    if unknown:
        raise ValueError(f"Unknown tasks (no row in `scores`): {unknown}. Rows: {sorted(rows)}")
    for r in tasks:
        missing = sorted(set(tasks) - set(scores[r]))
        if missing:
            raise ValueError(
                f"`scores` must be square over the tasks {tasks}: row {r!r} lacks columns "
                f"{missing}. Received columns: {sorted(scores[r])}")
        bad = [c for c in tasks if scores[r][c] is None or not np.isfinite(scores[r][c])]
        if bad:
            raise ValueError(f"Scores must be finite numbers. Received NaN/None/inf at "
                             f"scores[{r!r}] for columns {bad}")
    return tasks


def _member_scores(scores, group, objective):
    """Per-task score of each member of ``group`` under ``objective`` (see module doc)."""
    out = {}
    for p in group:
        others = [q for q in group if q != p]
        if objective == "tag":
            out[p] = np.mean([scores[q][p] for q in others]) if others else TAG_ALONE
        elif objective == "hoa":
            out[p] = np.mean([scores[p][q] for q in others]) if others else scores[p][p]
        else:  # transference, 001 App. B: t_hat(b, a) = 1 - t(b, a) / t(a, a).
            out[p] = (np.mean([1.0 - scores[q][p] / scores[p][p] for q in others])
                      if others else 0.0)
    return {p: float(v) for p, v in out.items()}


def select_groups(scores, splits=None, objective="tag", *, tasks=None, costs=None,
                  budget=None, time_limit=None, solver="auto"):
    """Task groups from a score matrix under an inference budget.

    Args:
        scores: ``{row: {column: value}}``. ``"tag"``: ``scores[source][target]``
            affinities as ``measure``/``AffinityLogger`` write them (maximize;
            a task alone scores -1e6). ``"hoa"``: ``scores[task][partner]`` =
            validation loss of ``task`` trained with ``partner``,
            ``scores[t][t]`` = trained alone (minimize; a member scores the
            mean over its partners). ``"transference"``: ``scores[b][a]`` =
            transference of ``b`` on ``a``, normalized as ``001`` App. B,
            ``1 - t(b, a) / t(a, a)`` averaged over partners (minimize; alone 0,
            the normalised ``t_hat(a, a)``); every ``t(a, a)`` must be > 0,
            else ``ValueError``.
        splits: how many groups at most (the budget with unit costs).
        objective: ``"tag"``, ``"hoa"`` or ``"transference"``.
        tasks: restrict to these tasks (default: every row without ``|``).
        costs: ``{group: cost}`` overriding the default cost 1; keys are task
            tuples or ``"a|b"`` names (e.g. half-size single-task networks at 0.5).
        budget: total cost allowed; defaults to ``splits``.
        time_limit: seconds (> 0) before the search returns the best found,
            marked inexact, with its proven ``bound`` and relative ``gap``;
            None: until proven optimal (column generation: 60 s).
        solver: ``"auto"``, ``"partition"``, ``"branch_and_bound"`` (both
            enumerate every subset, see ``select_networks``) or
            ``"column_generation"`` (``scale_selection``: unit costs, no
            enumeration; any of the three objectives). ``"auto"`` enumerates up
            to ``ENUMERATION_MAX_TASKS`` tasks, or with ``costs``/``budget``,
            and uses column generation past it.

    Returns:
        ``Selection``; ``value`` is the mean over tasks in the objective's orientation.
        Ties between optimal groupings may resolve differently between the
        enumerating solvers and column generation; the value is the same.

    Example:
        >>> sel = tf_mtl.grouping.select_groups(json.load(open("affinity.json")), splits=3)
        >>> sel.groups, sel.serving, sel.value
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"`objective` must be one of {OBJECTIVES}. Received: objective={objective!r}")
    if solver not in SOLVERS:
        raise ValueError(f"`solver` must be one of {SOLVERS}. Received: solver={solver!r}")
    check_time_limit(time_limit)
    tasks = score_tasks(scores, tasks)
    if budget is None:
        if splits is None or not isinstance(splits, (int, np.integer)) or splits < 1:
            raise ValueError(f"`splits` must be an integer >= 1. Received: splits={splits!r}")
        if splits > len(tasks):
            raise ValueError(f"`splits` must be at most the number of tasks ({len(tasks)}). "
                             f"Received: splits={splits}")
        budget = splits
    if objective == "transference":
        # t_hat(b, a) = 1 - t(b, a) / t(a, a): a zero t(a, a) divides by zero and a negative
        # one flips the sign, so partners that help a would rank as the worst.
        bad = [t for t in tasks if not scores[t][t] > 0]
        if bad:
            raise ValueError(
                "The transference objective normalises by self-transference t(a, a) = "
                f"scores[a][a], which must be > 0; it is not for tasks {bad}. Received: "
                + ", ".join(f"scores[{t!r}][{t!r}]={scores[t][t]!r}" for t in bad))
    cost_of = {}
    for key, value in (costs or {}).items():
        group = tuple(sorted(key.split("|") if isinstance(key, str) else key))
        if not set(group) <= set(tasks):
            raise ValueError(f"`costs` names unknown tasks: {sorted(set(group) - set(tasks))}. "
                             f"Received key {key!r}")
        cost_of[group] = value
    if solver == "column_generation" or (solver == "auto" and len(tasks) > ENUMERATION_MAX_TASKS
                                         and not cost_of and budget == splits):
        if cost_of or budget != splits:
            raise ValueError("solver='column_generation' selects `splits` groups of cost 1; it "
                             f"takes no `costs` or `budget`. Received: costs={costs!r}, "
                             f"budget={budget!r}")
        return _select_by_column_generation(scores, tasks, splits, objective, time_limit)
    candidates = [
        Network(group, float(cost_of.get(group, 1.0)), _member_scores(scores, group, objective))
        for r in range(1, len(tasks) + 1) for group in itertools.combinations(tasks, r)
    ]
    return select_networks(candidates, budget, maximize=(objective == "tag"),
                           time_limit=time_limit, solver=solver)


def _select_by_column_generation(scores, tasks, splits, objective, time_limit):
    """``select_groups`` for many tasks: ``scale_selection.solve``, reported as a ``Selection``."""
    from tf_mtl.grouping import scale_selection  # (Imports SciPy only when needed.)
    matrix = np.array([[scores[r][c] for c in tasks] for r in tasks], float)
    W, alone = scale_selection.pair_form(matrix, objective)
    groups, value, bound, exact = scale_selection.solve(
        W, alone, splits, COLUMN_GENERATION_TIME_LIMIT if time_limit is None else time_limit)
    chosen = [tuple(t for t, member in zip(tasks, g) if member) for g in groups]
    # The chosen groups alone, through the one selection engine: serving and value as always.
    picked = select_networks(
        [Network(g, 1.0, _member_scores(scores, g, objective)) for g in chosen], len(chosen),
        maximize=(objective == "tag"), solver="branch_and_bound")
    sign = 1.0 if objective == "tag" else -1.0
    bound = max(bound, sign * picked.value * len(tasks))
    return dataclasses.replace(
        picked, exact=bool(exact), gap=relative_gap(sign * picked.value * len(tasks), bound),
        bound=float(sign * bound / len(tasks)))


def hoa_table(pair_results, single_results):
    """The HOA pairwise table from per-pair and single-task training results.

    Args:
        pair_results: ``{(a, b): {a: loss_a, b: loss_b}}`` — validation losses
            (or errors) of each task of a network trained on the pair.
        single_results: ``{t: loss}`` — each task trained alone.

    Returns:
        ``scores[task][partner]`` with ``scores[t][t]`` the single-task result,
        the ``"hoa"`` input of ``select_groups``. With early-stopped results
        this is the Early-Stopping Approximation (``002`` §3.3.1): selection
        on networks trained for a fraction of the data.
    """
    tasks = sorted(single_results)
    table = {t: {t: float(single_results[t])} for t in tasks}
    for pair, result in pair_results.items():
        a, b = pair
        for t in (a, b):
            if t not in table:
                raise ValueError(f"Pair {pair} names a task without a single-task result. "
                                 f"Received: {t!r}; single results for {tasks}")
        table[a][b], table[b][a] = float(result[a]), float(result[b])
    score_tasks(table)  # Every pair present, finite.
    return table


def hoa_predict(table, group):
    """Predicted result of each task of a higher-order ``group``: the average of
    its pair results with the other members (``002`` §3.3.2)."""
    return _member_scores(table, tuple(group), "hoa")


def parse_costs(spec):
    """``"a|b=0.5,c=1"`` or a JSON file path -> ``{"a|b": 0.5, "c": 1.0}``."""
    if not spec:
        return None
    if spec.endswith(".json"):
        saved = _read_json(spec, "`costs` file")
        if not isinstance(saved, dict):
            raise ValueError(f"The `costs` file {spec} must hold a JSON object "
                             f"{{\"a|b\": 0.5, ...}}. Received: {type(saved).__name__}")
        return {str(k): _cost(v, f"{k!r} in {spec}") for k, v in saved.items()}
    costs = {}
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"`costs` items must look like 'a|b=0.5'. Received: {item!r}")
        costs[key.strip()] = _cost(value, repr(item))
    return costs


def _cost(value, where):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"A group's cost must be a number, as in 'a|b=0.5'. Received: "
                         f"{where}") from None


def _read_json(path, what):
    """``path``'s JSON; a ``ValueError`` naming the file where it is not JSON."""
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"The {what} {path} is not valid JSON: {e}. Received: "
                             f"{path}") from e


def select_groups_from_file(path, *, splits=None, objective="tag", costs=None, budget=None,
                            time_limit=None):
    """``select_groups`` on a JSON score file; writes ``groups.json`` beside it."""
    scores = _read_json(path, "score file")
    selection = select_groups(scores, splits, objective, costs=parse_costs(costs),
                              budget=budget, time_limit=time_limit)
    from tf_mtl.experiments.checkpointing import atomic_write_json  # (Keeps this module free of Keras.)
    out = os.path.join(os.path.dirname(os.path.abspath(path)), "groups.json")
    atomic_write_json(out, {"objective": objective, "splits": splits, "budget": budget,
                            **dataclasses.asdict(selection)})
    return {"selection": selection, "path": out}


def read_selection(path, objective, splits):
    """The ``Selection`` a ``groups.json`` of ``select_groups_from_file`` holds, or None when
    it was selected with another ``objective`` or ``splits`` (or holds a budget)."""
    with open(path) as f:
        saved = json.load(f)
    if (saved.get("objective"), saved.get("splits"), saved.get("budget")) != (objective, splits,
                                                                              None):
        return None
    fields = {f.name for f in dataclasses.fields(Selection)}
    saved = {k: v for k, v in saved.items() if k in fields}
    saved["groups"] = [tuple(g) for g in saved["groups"]]
    saved["serving"] = {t: tuple(g) for t, g in saved["serving"].items()}
    if saved.get("networks"):   # JSON holds them as dicts: back to the Network objects.
        saved["networks"] = tuple(Network(**{**n, "tasks": tuple(n["tasks"])})
                                  for n in saved["networks"])
    return Selection(**saved)


def format_selection(selection, objective):
    """Human-readable lines: the groups, who serves each task, the value."""
    lines = [f"groups ({objective}, cost {selection.cost:g}):"]
    lines += ["  " + ", ".join(g) for g in selection.groups]
    lines.append("serving:")
    lines += [f"  {t} <- {', '.join(g)}" for t, g in selection.serving.items()]
    exact = "exact" if selection.exact else (
        f"not proven optimal: the optimum is within {100 * selection.gap:.3g}% of it"
        + (f", bound {selection.bound:.6g}" if selection.bound is not None else ""))
    lines.append(f"value: {selection.value:.6g} ({exact})")
    return "\n".join(lines)
