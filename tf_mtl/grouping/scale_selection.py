"""Group selection for many tasks (20-40+): column generation with a certified bound.

``select_groups`` enumerates every task subset (``2^n`` candidates); this
module solves the same problem without enumerating them. All three objectives
of ``select_groups`` score a member ``p`` of a group ``G`` (``|G| >= 2``) as a
mean of pair values over the other members, ``c(p, G) = sum_{q in G-p}
W[p, q] / (|G| - 1)``, and a task alone as ``alone[p]`` (``pair_form``), so
one method covers ``"tag"``, ``"hoa"`` and ``"transference"``.

**Master** (a facility-location model over group columns, maximization):
``max sum_G sum_{p in G} c(p, G) y[p, G]`` s.t. ``sum_G y[p, G] = 1`` (every
task served once), ``y[p, G] <= x[G]``, ``sum_G x[G] <= splits``. Its LP over
the columns found so far (HiGHS via ``scipy.optimize.linprog``) gives duals
``pi`` (tasks) and ``mu`` (budget).

**Pricing** (is a better column missing?): ``P(pi) = max_G sum_{p in G}
max(0, c(p, G) - pi[p])``. First a local search over member swaps from the
best columns of each size; when it finds nothing, a best-first branch and
bound over every group size at once (``group_pricing.Pricer``) with growing
node limits (``NODE_LIMITS``), exact at the end. A node's bound lets every
member keep its best remaining partners among the free tasks, except that
members served whatever the picks add their partners' gains consistently; a
stopped search bounds ``P`` by the highest bound it left. Columns with ``P >
mu`` enter the master.

**Certificate.** Relaxing "served once" with any duals ``pi`` gives the
Lagrangian bound ``L = sum(pi) + splits * U`` on the optimum, where ``U >=
P(pi)`` (an exact pricing pass, or a limited one with the bounds of the nodes
it left); when no column is missing it equals the LP value. A selection better
than the incumbent ``z`` (the integer master, ``scipy.optimize.milp``) has
every column worth more than ``U - (L - z)`` at those duals (its worth is at
most ``sum(pi)`` plus its columns' worths, each at most ``U``), so pricing
enumerates those columns (``collect``) and one more integer solve over them
proves the optimum (``exact``). Past ``time_limit`` the incumbent comes back
with the best ``L`` and the gap.

**Incumbent.** The integer master over the columns found (HiGHS ``milp``)
runs briefly whenever the cheap pricing settles, and gets the last
``INTEGER_SHARE`` of a finite ``time_limit``: the grouping returned is its best
(or the local search's, when better).

**What it reaches** (2-core CPU, TAG, benchmark affinities): 20 tasks proven
optimal at 2-4 splits in 8-36 s; planted blocks at 30-40 tasks in seconds to a minute.
At 30-40 random or measured-like tasks the pricing is not solved exactly in a
minute (its node bound is far from the best group's worth at the middle
sizes), so the certified gap stays far above 1% there; the integer master's
grouping is usually within ~1% of the LP over the columns found, which is no
proof.
"""

import time

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import coo_matrix

from tf_mtl.grouping.group_pricing import EPS as _EPS
from tf_mtl.grouping.group_pricing import Pricer

SCALE_OBJECTIVES = ("tag", "hoa", "transference")
# Pricing nodes (all sizes together): few while column generation finds columns, more when it
# does not, no limit at the end. Every limited search still bounds what it left unexplored.
NODE_LIMITS = (10_000, 200_000, None)
PROOF_GAP = 0.05  # Try the proof once the bound is this close (relative) to the LP value.
SWAP_STARTS = 200  # Swap searches start from the best 3 columns of each size and these.
INTEGER_SHARE = 0.2  # Of a finite time limit: the integer master's, for the grouping returned.
MIN_SOLVE_SECONDS = 0.05  # An integer solve started at the limit still gets this long.


def pair_form(matrix, objective):
    """``(W, alone)`` oriented for maximization from ``M[i, j] = scores[task i][task j]``.

    ``W[p, q]`` is what partner ``q`` gives member ``p`` (diagonal unused):
    TAG ``M[q, p]``; HOA ``-M[p, q]`` (a loss); transference ``-(1 - M[q, p] /
    M[p, p])`` (``001`` App. B, a quantity to minimize). ``alone`` is TAG's
    -1e6, HOA's ``-M[p, p]``, transference's 0.
    """
    if objective not in SCALE_OBJECTIVES:
        raise ValueError(f"The many-task selection supports the objectives {SCALE_OBJECTIVES} "
                         f"(a member's score is a mean of pair values). Received: "
                         f"objective={objective!r}")
    matrix = np.asarray(matrix, float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"`scores` must be a square matrix. Received: shape {matrix.shape}")
    if objective == "tag":
        return matrix.T.copy(), np.full(len(matrix), -1e6)
    if objective == "hoa":
        return -matrix, -np.diag(matrix).copy()
    return -(1.0 - matrix.T / np.diag(matrix)[:, None]), np.zeros(len(matrix))


def member_values(W, alone, groups):
    """``c(p, G)`` for boolean ``groups`` ``[g, n]``; ``-inf`` outside the group."""
    groups = np.asarray(groups, bool)
    W0 = W - np.diag(np.diag(W))
    size = groups.sum(1, keepdims=True)
    sums = groups.astype(float) @ W0.T
    values = np.where(size > 1, sums / np.maximum(size - 1, 1), alone[None, :])
    return np.where(groups, values, -np.inf)


class _Master:
    """The facility-location master over group columns (boolean rows)."""

    def __init__(self, W, alone, splits):
        self.W, self.alone, self.splits, self.n = W, alone, splits, len(W)
        self.groups, self.keys = [], set()

    def add(self, groups):
        new = 0
        for g in np.atleast_2d(np.asarray(groups, bool)):
            key = g.tobytes()
            if key not in self.keys:
                self.keys.add(key)
                self.groups.append(g.copy())
                new += 1
        return new

    def _model(self):
        G = np.array(self.groups)
        values = member_values(self.W, self.alone, G)
        gi, pi = np.nonzero(G)                                  # y variables (group, task).
        ng, ny = len(G), len(gi)
        c = np.concatenate([np.zeros(ng), -values[gi, pi]])
        served = coo_matrix((np.ones(ny), (pi, ng + np.arange(ny))), shape=(self.n, ng + ny))
        link = coo_matrix((np.r_[np.ones(ny), -np.ones(ny)],
                           (np.r_[np.arange(ny), np.arange(ny)], np.r_[ng + np.arange(ny), gi])),
                          shape=(ny, ng + ny))
        budget = coo_matrix((np.ones(ng), (np.zeros(ng, int), np.arange(ng))), shape=(1, ng + ny))
        return G, c, served.tocsr(), link.tocsr(), budget.tocsr(), ng, gi

    def lp(self):
        """``(value, pi, mu)`` of the LP relaxation."""
        from scipy.sparse import vstack
        G, c, served, link, budget, ng, _ = self._model()
        res = linprog(c, A_ub=vstack([link, budget]), b_ub=np.r_[np.zeros(link.shape[0]),
                                                                  self.splits],
                      A_eq=served, b_eq=np.ones(self.n), bounds=(0, None), method="highs")
        if res.status != 0:
            raise RuntimeError(f"The master LP failed: {res.message}")
        return -res.fun, -res.eqlin.marginals, max(-res.ineqlin.marginals[-1], 0.0)

    def integer(self, time_limit):
        """``(value, chosen groups, proven optimal)`` of the integer master (x binary)."""
        from scipy.sparse import vstack
        G, c, served, link, budget, ng, gi = self._model()
        A = vstack([served, link, budget])
        lo = np.r_[np.ones(self.n), np.full(link.shape[0], -np.inf), -np.inf]
        hi = np.r_[np.ones(self.n), np.zeros(link.shape[0]), self.splits]
        res = milp(c, constraints=LinearConstraint(A, lo, hi),
                   integrality=np.r_[np.ones(ng), np.zeros(len(c) - ng)], bounds=Bounds(0, 1),
                   options={"time_limit": max(time_limit, MIN_SOLVE_SECONDS), "mip_rel_gap": 0.0}
                   if np.isfinite(time_limit) else {"mip_rel_gap": 0.0})
        if res.x is None:
            return -np.inf, None, False
        chosen = G[res.x[:ng] > 0.5]
        value = selection_value(self.W, self.alone, chosen)
        # HiGHS also stops at an absolute gap (1e-6) that scipy does not expose: optimal
        # only when its dual bound meets the value.
        dual = getattr(res, "mip_dual_bound", None)
        closed = dual is not None and -dual - value <= _EPS * max(1.0, abs(value))
        return value, chosen, res.status == 0 and closed


def selection_value(W, alone, groups):
    """Sum over tasks of the best served value (``-inf`` if a task is not covered)."""
    return float(member_values(W, alone, groups).max(0).sum())


def _local_search(W, alone, splits, rng, restarts=4):
    """Partitions into ``splits`` blocks improved by moving one task at a time (first columns)."""
    n, found = len(W), []

    def value(label):
        blocks = np.array([label == b for b in range(splits)])
        return selection_value(W, alone, blocks[blocks.any(1)])

    for _ in range(restarts):
        label, current, improved = rng.integers(0, splits, n), None, True
        current = value(label)
        while improved:
            improved = False
            for p in rng.permutation(n):
                for b in range(splits):
                    if b != label[p]:
                        moved = label.copy()
                        moved[p] = b
                        v = value(moved)
                        if v > current + _EPS:
                            label, current, improved = moved, v, True
        blocks = [label == b for b in range(splits) if (label == b).any()]
        found.append((current, np.array(blocks)))
    value, best = max(found, key=lambda f: f[0])
    return np.concatenate([f[1] for f in found]), best, value


def solve(W, alone, splits, time_limit=60.0, seed=0):
    """Best ``splits`` groups for pair form ``(W, alone)`` (see module doc).

    Returns ``(groups, value, bound, exact)``: boolean ``[g, n]`` groups, the sum over
    tasks of their served values, a proven upper bound on the optimum's sum, and
    whether ``value`` is proven optimal.
    """
    if isinstance(time_limit, (bool, np.bool_)) or not time_limit or not time_limit > 0:
        raise ValueError(f"`time_limit` must be a positive number of seconds (inf: none). "
                         f"Received: time_limit={time_limit!r}")
    W, alone = np.asarray(W, float), np.asarray(alone, float)
    # Solved on scores of unit size: HiGHS's absolute tolerances (1e-6 and 1e-7) would
    # otherwise decide among groupings of scores near 1e-5. Raising a value alone to at least
    # -1e6 (TAG's placeholder) keeps a valid bound; the value is recomputed unscaled.
    scale = float(np.abs(W - np.diag(np.diag(W))).max()) or 1.0
    groups, _, bound, exact = _solve(W / scale, np.maximum(alone / scale, -1e6), splits,
                                     time_limit, seed)
    value = selection_value(W, alone, groups)
    return groups, value, (value if exact else max(bound * scale, value)), exact


def _solve(W, alone, splits, time_limit, seed):
    """``solve`` on scores of unit size."""
    start = time.monotonic()
    deadline = start + time_limit
    n, rng = len(W), np.random.default_rng(seed)
    master = _Master(W, alone, splits)
    master.add(np.ones((1, n), bool))
    if n <= 80:  # Every pair: cheap, and the LP starts from sensible duals.
        pairs = np.zeros((n * (n - 1) // 2, n), bool)
        a, b = np.triu_indices(n, 1)
        pairs[np.arange(len(a)), a] = pairs[np.arange(len(a)), b] = True
        master.add(pairs)
    starts, best_groups, best_value = _local_search(W, alone, splits, rng)
    master.add(starts)
    W0 = W - np.diag(np.diag(W))
    top = -np.sort(-np.where(np.eye(n, dtype=bool), -np.inf, W0), axis=1)
    reach = np.max(np.c_[alone, np.cumsum(top[:, :-1], 1) / np.arange(1, n)], axis=1).sum()
    # The best Lagrangian bound, its duals and the bound on the best column's worth there.
    bound, certificate = reach, None
    incumbent = [best_value, best_groups]
    level, tried, solved_with = 0, np.inf, len(master.groups)
    # The last INTEGER_SHARE of a finite limit is the integer master's (the grouping returned).
    search_end = start + (1.0 - INTEGER_SHARE) * time_limit
    # An incumbent from the first columns at once: a later integer solve on more columns may
    # run out of time, and a longer limit must not return a worse grouping.
    _improve(master, incumbent, min(search_end, time.monotonic() + INTEGER_SHARE * time_limit / 2))
    while time.monotonic() < search_end:
        z_lp, pi, mu = master.lp()
        if level == 0:  # Local search from the best columns (of each size, and overall).
            groups = np.array(master.groups)
            worth = np.maximum(member_values(W, alone, groups) - pi, 0.0).sum(1)
            size = groups.sum(1)
            starts = [np.flatnonzero(size == k)[np.argsort(-worth[size == k])[:3]]
                      for k in np.unique(size)]
            starts = np.union1d(np.concatenate(starts), np.argsort(-worth)[:SWAP_STARTS])
            if master.add(_swap_search(W, pi, groups[starts], mu)):
                continue
        new, upper, complete = _price(W, alone, pi, mu, search_end, NODE_LIMITS[level],
                                      stop_after=2 * n)
        if pi.sum() + splits * upper < bound:
            bound, certificate = pi.sum() + splits * upper, (pi, upper)
        converged = complete and not len(new)
        # The proof at convergence, or as soon as the bound is close (enumeration is capped).
        if certificate and (converged or (bound < tried and bound - z_lp <= PROOF_GAP * abs(z_lp))):
            tried = bound
            if _prove(master, W, alone, splits, certificate, bound, incumbent, deadline):
                return _served(W, alone, incumbent[1]), incumbent[0], incumbent[0], True
        if converged:
            break
        if master.add(new):
            level = 0  # Cheap pricing while it finds columns, then ever larger searches.
        else:
            if level == 0 and len(master.groups) > 1.1 * solved_with:
                # The cheap columns settled, 10% more than last time: an incumbent, briefly.
                solved_with = len(master.groups)
                _improve(master, incumbent, min(search_end, time.monotonic()
                                                + INTEGER_SHARE * time_limit / 2))
            level = min(level + 1, len(NODE_LIMITS) - 1)
    _improve(master, incumbent, deadline)
    best_value, best_groups = incumbent
    return _served(W, alone, best_groups), best_value, max(bound, best_value), (
        bound - best_value <= _EPS * max(1.0, abs(best_value)))


def _improve(master, incumbent, deadline):
    """The integer master's best selection, if it beats ``incumbent`` (updated in place);
    returns whether the master was solved to optimality."""
    value, groups, optimal = master.integer(deadline - time.monotonic())
    if groups is not None and value > incumbent[0]:
        incumbent[:] = [value, groups]
    return optimal


def _prove(master, W, alone, splits, certificate, bound, incumbent, deadline):
    """Optimality proof from the Lagrangian bound at duals ``pi`` (``upper`` bounds every
    column's worth there): a selection better than the incumbent has every column worth
    more than ``upper - (bound - incumbent)``, so those columns are enumerated and the
    integer master over them is solved. True when that proves the incumbent optimal."""
    _improve(master, incumbent, deadline)
    pi, upper = certificate
    slack = bound - incumbent[0]
    if slack <= _EPS * max(1.0, abs(incumbent[0])):
        return True
    # Capped at group_pricing.MAX_COLUMNS columns: a proof that cannot succeed soon stops early.
    found, _, complete = _price(W, alone, pi, upper - slack, deadline, None, collect=True)
    if not complete:
        return False
    master.add(found)
    return _improve(master, incumbent, deadline)


def _served(W, alone, groups):
    """``groups`` without the ones that serve no task."""
    return groups[np.unique(member_values(W, alone, groups).argmax(0))]
def _swap_search(W, pi, starts, threshold, rounds=30):
    """Columns worth more than ``threshold``, by best-swap local search from ``starts``
    (the cheap pricing: one member out, one non-member in, all swaps at once)."""
    n, W0 = len(W), W - np.diag(np.diag(W))
    found = []
    for g in starts:
        g, scale = g.copy(), 1.0 / max(g.sum() - 1, 1)
        if g.sum() < 2 or g.all():
            continue
        for _ in range(rounds):
            out, into = np.flatnonzero(g), np.flatnonzero(~g)
            sums = W0 @ g.astype(float)                                          # [n]
            new = sums[None, None, :] - W0[:, out].T[:, None, :] + W0[:, into].T[None, :, :]
            member = np.broadcast_to(g, new.shape).copy()                         # [out, in, n]
            member[np.arange(len(out)), :, out] = False
            member[:, np.arange(len(into)), into] = True
            value = (member * np.maximum(new * scale - pi, 0.0)).sum(-1)
            i, j = np.unravel_index(np.argmax(value), value.shape)
            current = np.maximum(sums[g] * scale - pi[g], 0.0).sum()
            if value[i, j] <= current + _EPS:
                break
            g[out[i]], g[into[j]] = False, True
            if value[i, j] > threshold + _EPS:
                found.append(g.copy())
    return np.array(found, bool).reshape(-1, n)


def _price(W, alone, pi, threshold, deadline, node_limit, collect=False, stop_after=None):
    """Columns worth more than ``threshold`` at duals ``pi`` (every size), an upper bound
    on the best column's worth ``P(pi)``, and whether every column above ``threshold``
    was found. With a ``node_limit``, first each size on its own with a 20th of it (easy
    sizes give columns a joint search reaches late; the bound is then the sizes' root
    bounds); when that finds none, one best-first search over every size
    (``group_pricing``), whose bound is the highest it left when stopped."""
    n, pricer = len(W), Pricer(W, pi, deadline, node_limit)
    single = np.maximum(alone - pi, 0.0)
    sizes = np.arange(2, n + 1)
    found = [np.eye(n, dtype=bool)[single > threshold + _EPS]]
    if node_limit and not collect:
        roots = np.array([pricer.root_bound(s) for s in sizes])
        pricer.node_limit = max(node_limit // 20, 100)
        for s in sizes[np.argsort(-roots, kind="stable")]:
            if time.monotonic() > deadline or sum(map(len, found)) >= (stop_after or n):
                break
            found.append(_rows(pricer.solve(s, threshold, False)[0], n))
        if sum(map(len, found)):
            return np.concatenate(found), max(single.max(), threshold, roots.max()), False
        pricer.node_limit = node_limit
    columns, best, open_bound = pricer.solve(sizes, threshold, collect, stop_after)
    found.append(_rows(columns, n))
    return (np.concatenate(found), max(single.max(), threshold, best, open_bound),
            open_bound == -np.inf)


def _rows(columns, n):
    rows = np.zeros((len(columns), n), bool)
    for i, c in enumerate(columns):
        rows[i, c] = True
    return rows
