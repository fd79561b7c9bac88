"""Pricing for the many-task selection: the best group at task duals, by branch and bound.

``scale_selection``'s column generation asks, at task duals ``pi``, for the
groups ``G`` of a size ``s`` that maximize the worth

    ``sum_{p in G} max(0, c(p, G) - pi[p])``,  ``c(p, G) = sum_{q in G - p} W[p, q] / (s - 1)``

(a member gains what its partners give it, over its dual, when that is
positive), or for every group worth more than a threshold (the optimality
proof). ``Pricer`` searches best-first: a node fixes some members and some
non-members, ``r`` members are still to be picked among the free tasks. Its
bound lets each member, and each of the ``r`` most promising free tasks, take
its own best ``r`` (``r - 1``) free partners; a member positive even with its
worst ``r`` free partners is served whatever the picks, so its worth is linear
in them and the picks' gains add its partners' values consistently.

Nodes are expanded ``BATCH`` at a time (the highest bounds first) and their
children's bounds computed in one vectorised pass: the per-node cost of NumPy
calls, not arithmetic, is what limits a Python search of 20-40 tasks. A
stopped search (deadline, node limit, or too many columns) reports the highest
bound left in its queue, so whatever it returns is a valid upper bound.

Example:
    >>> pricer = Pricer(W, pi, deadline=time.monotonic() + 10)
    >>> columns, best, open_bound = pricer.solve(s=5, threshold=0.0, collect=False)
"""

import heapq
import time

import numpy as np

EPS = 1e-9
BATCH = 64  # Nodes expanded per vectorised step.
MAX_COLUMNS = 5_000  # A search that finds more stops (the proof's enumeration cap).


class Pricer:
    """``max_{|G| = s} sum_{p in G} max(0, c(p, G) - pi[p])`` for ``W`` and duals ``pi``
    (``node_limit`` nodes per size at most; None: until done or ``deadline``)."""

    def __init__(self, W, pi, deadline, node_limit=None):
        self.W0, self.pi, self.deadline = W - np.diag(np.diag(W)), pi, deadline
        self.n, self.node_limit = len(W), node_limit
        # Each row's partners, best first (one order for every size: sizes only rescale).
        ranked = np.where(np.eye(self.n, dtype=bool), -np.inf, self.W0)
        self.order = np.argsort(-ranked, axis=1, kind="stable")
        self.is_self = self.order == np.arange(self.n)[:, None]
        self.sorted = np.take_along_axis(self.W0, self.order, axis=1)

    def solve(self, sizes, threshold, collect, stop_after=None):
        """Groups of the ``sizes`` (an int or several) worth more than ``threshold``
        (all of them if ``collect``, else a chain of improving ones), one best-first
        search over every size at once. Returns ``(columns, best, open_bound)``:
        member index arrays, the best worth evaluated, and the highest bound the
        search left unexplored when a deadline, the node limit or ``stop_after``
        (or ``MAX_COLUMNS``) columns stopped it (``-inf`` when it finished: then no
        group of those sizes beats ``max(threshold, best)``)."""
        sizes = np.atleast_1d(np.asarray(sizes, int))
        self.nodes, self.queued = 0, 0
        self.columns, self.best, self.open_bound = [], -np.inf, -np.inf
        self.threshold, self.collect = threshold, collect
        stop_after = min(stop_after or MAX_COLUMNS, MAX_COLUMNS + 1)
        heap = []
        self._push(heap, np.zeros((len(sizes), self.n), bool),
                   np.ones((len(sizes), self.n), bool), sizes.copy(), sizes)
        while heap and -heap[0][0] > self.threshold + EPS:
            if (time.monotonic() > self.deadline or len(self.columns) >= stop_after
                    or (self.node_limit and self.nodes > self.node_limit)):
                self.open_bound = -heap[0][0]  # Best-first: the highest bound left.
                break
            members, free, r, size = [], [], [], []
            while heap and len(members) < 2 * BATCH and -heap[0][0] > self.threshold + EPS:
                _, _, m, f, k, s, pick = heapq.heappop(heap)
                f = f.copy()
                f[pick] = False
                with_pick = m.copy()
                with_pick[pick] = True
                members.append(with_pick), free.append(f), r.append(k - 1), size.append(s)
                if f.sum() >= k:
                    members.append(m), free.append(f), r.append(k), size.append(s)
                self.nodes += 1
            self._push(heap, np.array(members), np.array(free), np.array(r), np.array(size))
        return self.columns, self.best, self.open_bound

    def root_bound(self, s):
        """The bound on every group of size ``s`` (the search's first node)."""
        return float(self.bound(np.zeros((1, self.n), bool), np.ones((1, self.n), bool),
                                np.array([s]), np.array([s]))[0][0])

    def bound(self, members, free, r, size):
        """Bounds ``[B]`` of nodes (``members``, ``free``: ``[B, n]``; ``r`` to pick,
        group ``size``: ``[B]``) and each free task's own bound ``[B, n]`` (``-inf``
        elsewhere), the branching choice."""
        pi, W0, srt = self.pi, self.W0, self.sorted
        scale = 1.0 / (size[:, None] - 1.0)
        inner = members.astype(float) @ W0.T                                  # [B, n]
        free_ranked = free[:, self.order]                                     # [B, n, n]
        count = np.cumsum(free_ranked, axis=2)
        rr = r[:, None, None]
        take = free_ranked & (count <= rr)
        worst = free_ranked & (count[:, :, -1:] - count + free_ranked <= rr)
        others = free_ranked & ~self.is_self
        take_others = others & (np.cumsum(others, axis=2) <= rr - 1)
        partners = np.where(members, (srt * take).sum(2), (srt * take_others).sum(2))
        ub = np.maximum((inner + partners) * scale - pi, 0.0)
        ub_free = np.where(free, ub, -np.inf)
        # A member positive even with its worst r partners is served whatever the picks:
        # its worth is linear in them, so the picks' gains add up consistently.
        served = members & ((inner + (srt * worst).sum(2)) * scale >= pi)
        gains = ub_free + scale * (served.astype(float) @ W0)
        ranked = -np.sort(-gains, axis=1)
        ranked[~np.isfinite(ranked)] = 0.0  # Past the free tasks (r never reaches there).
        best = np.concatenate([np.zeros((len(r), 1)), np.cumsum(ranked, 1)], 1)[
            np.arange(len(r)), r]
        fixed = np.where(served, inner * scale - pi, 0.0).sum(1)
        return fixed + np.where(members & ~served, ub, 0.0).sum(1) + best, ub_free

    def _push(self, heap, members, free, r, size):
        """Evaluates complete groups; queues the nodes whose bound can beat the threshold."""
        complete = (r == 0) | (r == free.sum(1))
        for m, f, k, s in zip(members[complete], free[complete], r[complete], size[complete]):
            self._evaluate(np.flatnonzero(m | f) if k else np.flatnonzero(m), s)
        open_ = ~complete
        if not open_.any():
            return
        members, free, r, size = members[open_], free[open_], r[open_], size[open_]
        bounds, ub_free = self.bound(members, free, r, size)
        picks = np.argmax(ub_free, axis=1)
        for i in np.flatnonzero(bounds > self.threshold + EPS):
            self.queued += 1  # Equal bounds: first queued first (deterministic).
            heapq.heappush(heap, (-bounds[i], self.queued, members[i], free[i], int(r[i]),
                                  int(size[i]), int(picks[i])))

    def _evaluate(self, group, s):
        sums = self.W0[np.ix_(group, group)].sum(1) / (s - 1)
        value = np.maximum(sums - self.pi[group], 0.0).sum()
        self.best = max(self.best, value)
        if value > self.threshold + EPS:
            self.columns.append(group)
            if not self.collect:
                self.threshold = max(self.threshold, value)
