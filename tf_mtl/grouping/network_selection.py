"""Network selection under a budget (Standley et al., ``002`` §3.2, Algorithm 1).

Candidate networks each solve a set of tasks at a cost with a score per task;
``select_networks`` chooses networks within the budget that cover every task,
each task served by its best chosen network, optimizing the mean (or sum) of
the served scores. Two exact solvers:

* **Branch and bound** (any costs). "Each task served by its best chosen
  network" is a facility-location function — monotone and submodular — so from
  a partial selection ``S`` any completion is worth at most ``f(S)`` plus the
  best fractional-knapsack packing of the single-pick gains into the remaining
  budget, and at most the value with every task at the best score still
  available. Candidates that cost more than the remaining budget or improve no
  task are dropped (``002``'s FILTER); candidates are explored in order of
  marginal gain, and since a child's bound (its pick plus the next best gains)
  only falls along that order, the first child that cannot win ends the loop.
  The last two picks are evaluated together with numpy.
* **Serving partition** (all costs equal, up to 14 tasks). With equal costs a
  selection of ``k`` networks is a partition of the tasks into at most ``k``
  serving sets, each served by the candidate that is best for that set, so the
  optimum is a dynamic program over subsets (``O(k 3^m)``, vectorized). Same
  optimum, found in well under a second for 9 tasks and seconds for 12.

``solver="auto"`` takes the partition program where it applies and branch and
bound otherwise; ``time_limit`` turns branch and bound into an approximate
mode that says so (``exact=False``) and bounds its ``gap``.
"""

import dataclasses
import time

import numpy as np

@dataclasses.dataclass(frozen=True)
class Network:
    """A candidate: the tasks it solves, its cost, and a score per task.

    ``name`` tells apart candidates that solve the same tasks at different
    costs (``002``'s half-size single-task networks beside the full-size ones,
    e.g. ``"s (half)"`` and ``"s"``); empty by default.
    """

    tasks: tuple
    cost: float
    scores: dict
    name: str = ""


@dataclasses.dataclass(frozen=True)
class Selection:
    """The chosen networks.

    Attributes:
        groups: chosen networks' task tuples, in search order.
        serving: ``{task: group}`` — the group whose network serves the task.
        value: mean (or sum) over tasks of the served scores, in the
            objective's own orientation (a loss for ``"hoa"``).
        cost: total cost of the chosen networks.
        exact: False when a ``time_limit`` stopped the search early.
        gap: proven upper bound on the optimum's relative distance from
            ``value``, ``|optimum - value| / |value|`` (0 if exact; ``inf`` when
            ``value`` is 0 and not proven optimal).
        bound: proven bound on the optimum's value, in the objective's
            orientation (an upper bound when maximizing, a lower one for
            losses); equals ``value`` when exact.
        networks: the chosen candidate ``Network`` objects themselves (cost
            and name included), in the order of ``groups``, so a half-size and
            a full-size network of the same tasks stay apart.
        served_by: ``{task: i}`` — the position in ``networks`` of the network
            that serves the task (plain ints, so the selection survives JSON).

    Ties are broken deterministically (from the candidates' order and scores):
    chosen networks are listed by (sorted task tuple, cost, position among the
    candidates); a task whose best score is shared by several chosen networks
    is served by the first of them in that list, and a chosen network that
    then serves no task is dropped (the same value at a lower cost); among
    selections of equal value (within 1e-12) the one the search reaches first
    is kept — the partition program keeps the first candidate in list order
    for each serving set, branch and bound explores candidates by marginal
    gain, then position.
    """

    groups: list
    serving: dict
    value: float
    cost: float
    exact: bool = True
    gap: float = 0.0
    bound: float = None
    networks: tuple = ()
    served_by: dict = None


def relative_gap(value, bound):
    """``|bound - value| / |value|``: 0 when equal, ``inf`` when ``value`` is 0 and they differ."""
    distance = abs(bound - value)
    if distance <= 1e-12 * max(1.0, abs(value)):
        return 0.0
    return distance / abs(value) if value != 0 else float("inf")


def check_time_limit(time_limit):
    """``time_limit`` is None (no limit) or a positive number of seconds."""
    if time_limit is not None and (isinstance(time_limit, (bool, np.bool_)) or not (
            isinstance(time_limit, (int, float, np.number)) and time_limit > 0)):
        raise ValueError(f"`time_limit` must be a positive number of seconds, or None for no "
                         f"limit. Received: time_limit={time_limit!r}")


class _Search:
    """Depth-first branch and bound over candidate networks (maximization)."""

    def __init__(self, matrix, costs, floor, deadline):
        # ``floor`` (below every real score) stands for "not served yet": the
        # value with it is a surrogate that equals the true value on covers.
        self.matrix, self.costs, self.floor, self.deadline = matrix, costs, floor, deadline
        self.best_value, self.best = -np.inf, None
        self.pending_bound = -np.inf  # Bounds of subtrees left unexplored at a timeout.
        self.timed_out = False

    def bound(self, cur, cand, gains, remaining):
        """Upper bound on the sum of served scores of any completion."""
        base = cur.sum()
        if len(cand) == 0:
            return base
        # Every task at the best score still available (ignores the budget).
        reach = np.maximum(cur, self.matrix[cand].max(axis=0)).sum()
        # Submodularity: f(S + R) <= f(S) + sum of single gains, packed into
        # the remaining budget as a fractional knapsack.
        costs = self.costs[cand]
        order = np.argsort(-gains / np.maximum(costs, 1e-300), kind="stable")
        g, c = gains[order], costs[order]
        spent = np.cumsum(c)
        fits = int(np.searchsorted(spent, remaining + 1e-12, side="right"))
        total = g[:fits].sum()
        if fits < len(g):  # The first item that does not fit, fractionally.
            room = remaining - (spent[fits - 1] if fits else 0.0)
            total += g[fits] * max(room, 0.0) / c[fits]
        return min(reach, base + total)

    def greedy(self, cur, remaining):
        """Seeds the incumbent: best gain per cost until nothing affordable helps."""
        chosen, cand = [], np.arange(len(self.costs))
        while True:
            cand = cand[self.costs[cand] <= remaining + 1e-12]
            gains = np.maximum(self.matrix[cand] - cur, 0.0).sum(axis=1)
            if len(cand) == 0 or gains.max() <= 1e-12:
                break
            pick = int(np.argmax(gains / np.maximum(self.costs[cand], 1e-300)))
            n = int(cand[pick])
            chosen.append(n)
            cur, remaining = np.maximum(cur, self.matrix[n]), remaining - self.costs[n]
            cand = np.delete(cand, pick)
        if cur.min() > self.floor:
            self.best_value, self.best = cur.sum(), chosen

    def best_pair(self, cur, chosen, cand, child_bounds, block=64):
        """The last two picks (equal costs) evaluated in blocks with numpy.

        Pairs ``(i, j)``, ``i < j`` in gain order, are scanned in a fixed
        order, so ties resolve deterministically.
        """
        rows = self.matrix[cand]
        live = int(np.searchsorted(-child_bounds, -(self.best_value + 1e-12), side="left"))
        for start in range(0, live, block):
            if time.monotonic() > self.deadline:
                self.timed_out = True
                self.pending_bound = max(self.pending_bound, child_bounds[start])
                return
            stop = min(start + block, live)
            first = np.maximum(cur, rows[start:stop])                       # [b, m]
            both = np.maximum(first[:, None, :], rows[None, :, :])          # [b, n, m]
            value = both.sum(-1)
            valid = (both > self.floor).all(-1)
            valid &= np.arange(len(cand))[None, :] > np.arange(start, stop)[:, None]
            value = np.where(valid, value, -np.inf)
            # A single pick may already cover: the pair adds nothing then.
            single_ok = (first > self.floor).all(-1)
            single = np.where(single_ok, first.sum(-1), -np.inf)
            for r in range(stop - start):
                i = start + r
                if child_bounds[i] <= self.best_value + 1e-12:
                    return
                if single[r] > self.best_value + 1e-12:
                    self.best_value, self.best = single[r], chosen + [int(cand[i])]
                j = int(np.argmax(value[r]))
                if value[r, j] > self.best_value + 1e-12:
                    self.best_value = value[r, j]
                    self.best = chosen + [int(cand[i]), int(cand[j])]

    def run(self, cur, chosen, cand, remaining):
        if cur.min() > self.floor and cur.sum() > self.best_value + 1e-12:
            self.best_value, self.best = cur.sum(), list(chosen)
        if len(cand) == 0:
            return
        cand = cand[self.costs[cand] <= remaining + 1e-12]                 # FILTER: budget
        gains = np.maximum(self.matrix[cand] - cur, 0.0).sum(axis=1) if len(cand) else []
        keep = np.asarray(gains) > 1e-12                                     # FILTER: improves a task
        cand, gains = cand[keep], np.asarray(gains)[keep]
        if len(cand) == 0:
            return
        order = np.lexsort((cand, -gains))                                   # Most promising first.
        cand, gains = cand[order], gains[order]
        if self.bound(cur, cand, gains, remaining) <= self.best_value + 1e-12:
            return
        # Child i picks cand[i] and then at most picks-1 of cand[i+1:], each
        # gaining at most its gain here (submodularity). Gains are sorted, so
        # these bounds only fall with i: the first that cannot win ends the loop.
        picks = int(np.floor((remaining + 1e-12) / max(self.costs[cand].min(), 1e-300)))
        picks = min(picks, len(cand))
        if picks == 1:  # Last pick: the best one that completes a cover, no recursion.
            covers = (np.maximum(cur, self.matrix[cand]) > self.floor).all(axis=1)
            if covers.any():
                i = int(np.argmax(covers))  # Sorted: the first cover gains most.
                if cur.sum() + gains[i] > self.best_value + 1e-12:
                    self.best_value, self.best = cur.sum() + gains[i], chosen + [int(cand[i])]
            return
        window = np.concatenate([np.cumsum(gains), np.full(picks, gains.sum())])
        child_bounds = cur.sum() + window[np.arange(len(cand)) + picks - 1] - np.concatenate(
            [[0.0], np.cumsum(gains)[:-1]])
        if picks == 2 and (self.costs[cand] == self.costs[cand][0]).all():
            return self.best_pair(cur, chosen, cand, child_bounds)
        for i, n in enumerate(cand):
            if child_bounds[i] <= self.best_value + 1e-12:
                break
            if time.monotonic() > self.deadline:
                self.timed_out = True
                rest = cand[i:]
                self.pending_bound = max(self.pending_bound, self.bound(
                    cur, rest, np.maximum(self.matrix[rest] - cur, 0).sum(1), remaining))
                return
            chosen.append(int(n))
            self.run(np.maximum(cur, self.matrix[n]), chosen, cand[i + 1:],
                     remaining - self.costs[n])
            chosen.pop()


def _validate_networks(candidates, budget):
    if not candidates:
        raise ValueError("`candidates` must list at least one network. Received: []")
    if budget is None or not np.isfinite(budget) or budget <= 0:
        raise ValueError(f"`budget` must be a positive number. Received: budget={budget!r}")
    tasks = sorted({t for n in candidates for t in n.tasks})
    for n in candidates:
        if n.cost < 0 or not np.isfinite(n.cost):
            raise ValueError(f"Costs must be finite and >= 0. Received: cost={n.cost!r} for "
                             f"network {n.tasks}")
        if set(n.scores) != set(n.tasks):
            raise ValueError(f"A network needs one score per task it solves. Received: tasks "
                             f"{n.tasks}, scores for {sorted(n.scores)}")
        bad = [t for t, s in n.scores.items() if s is None or not np.isfinite(s)]
        if bad:
            raise ValueError(f"Scores must be finite numbers. Received: NaN/None/inf for "
                             f"{bad} in network {n.tasks}")
    return tasks


def _cheapest_cover(candidates, tasks):
    """Cost of the cheapest set of networks covering ``tasks`` (exact, small m)."""
    full = (1 << len(tasks)) - 1
    index = {t: i for i, t in enumerate(tasks)}
    best = {0: 0.0}
    for n in sorted(candidates, key=lambda n: n.cost):
        mask = sum(1 << index[t] for t in n.tasks)
        for covered, cost in list(best.items()):
            new, c = covered | mask, cost + n.cost
            if c < best.get(new, np.inf):
                best[new] = c
    return best.get(full, np.inf)


SOLVERS = ("auto", "partition", "branch_and_bound")
PARTITION_MAX_TASKS = 14


def _submasks(mask, bit_values):
    """All submasks of ``mask`` (including 0) as an int64 array."""
    out = np.zeros(1, np.int64)
    for b in bit_values[(mask & bit_values) != 0]:
        out = np.concatenate([out, out | b])
    return out


def _partition_solve(matrix, floor, blocks):
    """Exact selection for equal costs: at most ``blocks`` serving sets.

    ``best[T]`` is the most any one candidate earns on exactly the tasks ``T``;
    ``f_j[mask]`` the most ``j`` serving sets earn on ``mask``. Returns the
    chosen candidate rows (or None if no cover exists).
    """
    n, m = matrix.shape
    full, bit_values = (1 << m) - 1, 1 << np.arange(m, dtype=np.int64)
    best, owner = np.full(full + 1, -np.inf), np.full(full + 1, -1)
    for c in range(n):  # Every subset T a candidate solves, all at once.
        solved = matrix[c] > floor
        masks, values = np.zeros(1, np.int64), np.zeros(1)
        for t in np.flatnonzero(solved):
            masks = np.concatenate([masks, masks | bit_values[t]])
            values = np.concatenate([values, values + matrix[c, t]])
        better = values[1:] > best[masks[1:]] + 1e-12   # First candidate wins ties.
        best[masks[1:][better]], owner[masks[1:][better]] = values[1:][better], c
    serving_sets = np.flatnonzero(np.isfinite(best))
    disjoint = {int(t): _submasks(full ^ int(t), bit_values) for t in serving_sets}
    f = np.full(full + 1, -np.inf)
    f[0] = 0.0
    picks = []
    for _ in range(blocks):
        g, pick = f.copy(), np.zeros(full + 1, np.int64)
        for t in serving_sets:
            rest = disjoint[int(t)]
            values = best[t] + f[rest]
            target = rest | t
            better = values > g[target] + 1e-12
            g[target[better]], pick[target[better]] = values[better], t
        f = g
        picks.append(pick)
    if not np.isfinite(f[full]):
        return None
    chosen, mask = [], full
    for pick in reversed(picks):
        if pick[mask]:
            chosen.append(int(owner[pick[mask]]))
            mask ^= int(pick[mask])
    return sorted(set(chosen))


def select_networks(candidates, budget, *, maximize=True, aggregate="mean", time_limit=None,
                    solver="auto"):
    """Best set of candidate networks within ``budget`` covering every task.

    Args:
        candidates: list of ``Network(tasks, cost, scores)``.
        budget: total cost allowed (e.g. inference time; ``splits`` for unit costs).
        maximize: True if higher scores are better, False for losses.
        aggregate: ``"mean"`` or ``"sum"`` over tasks of the served scores.
        time_limit: seconds; past it branch and bound returns the best
            selection found so far with ``exact=False`` and a bound on its ``gap``.
        solver: ``"auto"``, ``"partition"`` (equal costs only) or
            ``"branch_and_bound"``; both are exact (see the module doc).

    Returns:
        A ``Selection``.

    Example:
        >>> nets = [Network(("a", "b"), 1.0, {"a": 0.9, "b": 0.7}),
        ...         Network(("b",), 0.5, {"b": 0.8}), Network(("a",), 0.5, {"a": 0.6})]
        >>> select_networks(nets, budget=1.5).groups
        [('a', 'b'), ('b',)]
    """
    if aggregate not in ("mean", "sum"):
        raise ValueError(f"`aggregate` must be 'mean' or 'sum'. Received: aggregate={aggregate!r}")
    if solver not in SOLVERS:
        raise ValueError(f"`solver` must be one of {SOLVERS}. Received: solver={solver!r}")
    check_time_limit(time_limit)
    tasks = _validate_networks(candidates, budget)
    index = {t: i for i, t in enumerate(tasks)}
    sign = 1.0 if maximize else -1.0
    values = [sign * s for n in candidates for s in n.scores.values()]
    floor = min(values) - 1.0 - 1e-6 * (max(values) - min(values))
    matrix = np.full((len(candidates), len(tasks)), floor)
    for row, n in enumerate(candidates):
        for t, s in n.scores.items():
            matrix[row, index[t]] = sign * s
    costs = np.array([float(n.cost) for n in candidates])
    equal_costs = bool(np.all(costs == costs[0]))
    if solver == "partition" and not equal_costs:
        raise ValueError("solver='partition' needs equal costs. Received costs "
                         f"{sorted(set(costs.tolist()))}")
    use_partition = solver == "partition" or (
        solver == "auto" and equal_costs and len(tasks) <= PARTITION_MAX_TASKS)
    deadline = time.monotonic() + (time_limit if time_limit is not None else np.inf)
    search = _Search(matrix, costs, floor, deadline)
    if use_partition:
        blocks = len(tasks) if costs[0] == 0 else int(np.floor(budget / costs[0] + 1e-9))
        search.best = _partition_solve(matrix, floor, min(blocks, len(tasks)))
    else:
        search.greedy(np.full(len(tasks), floor), float(budget))
        search.run(np.full(len(tasks), floor), [], np.arange(len(candidates)), float(budget))
    if search.best is None or len(search.best) == 0:
        if search.timed_out:
            raise ValueError(f"No covering selection was found within time_limit={time_limit}s.")
        cheapest = _cheapest_cover(candidates, tasks) if len(tasks) <= 20 else None
        raise ValueError(
            f"No selection of networks within the budget covers every task {tasks}. "
            f"Received: budget={budget}; the cheapest cover costs "
            f"{cheapest if cheapest is not None else 'more than the budget'}"
        )
    chosen = sorted(search.best,
                    key=lambda n: (tuple(sorted(candidates[n].tasks)), float(costs[n]), n))
    # np.argmax keeps the first of tied networks: the documented tie rule. A network that
    # then serves no task is dropped: the same value at a lower cost.
    first = {int(np.argmax(matrix[chosen, index[t]])) for t in tasks}
    chosen = [n for i, n in enumerate(chosen) if i in first]
    served = matrix[chosen].max(axis=0)
    served_by = {t: int(np.argmax(matrix[chosen, index[t]])) for t in tasks}
    serving = {t: tuple(candidates[chosen[i]].tasks) for t, i in served_by.items()}
    scale = 1.0 / len(tasks) if aggregate == "mean" else 1.0
    best = served.sum()
    # Unexplored subtrees are worth at most pending_bound; the explored ones at most best.
    bound = max(search.pending_bound, best) if search.timed_out else best
    return Selection(
        groups=[tuple(candidates[n].tasks) for n in chosen], serving=serving,
        value=float(sign * best * scale), cost=float(costs[chosen].sum()),
        exact=not search.timed_out, gap=relative_gap(best, bound),
        bound=float(sign * bound * scale),
        networks=tuple(candidates[n] for n in chosen), served_by=served_by)
