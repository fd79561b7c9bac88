"""Exact TAG group selection's time (``python -m launch.benchmark --bench=grouping``)."""

import time

import numpy as np

from tf_mtl.grouping import select_groups


def _grouping_scores(kind, m, seed=0):
    rng = np.random.default_rng(seed)
    tasks = [f"t{i}" for i in range(m)]
    if kind == "random":
        return {s: {t: float(rng.normal()) for t in tasks} for s in tasks}
    group = {t: i % 3 for i, t in enumerate(tasks)}  # Planted: 3 groups plus noise.
    return {s: {t: (0.3 if group[s] == group[t] else -0.2) + 0.1 * float(rng.normal())
                for t in tasks} for s in tasks}


def grouping(repeats=3, time_limit=120.0, **_):
    """Exact TAG group selection: both solvers on random and planted scores.

    Returns ``(columns, rows)``; a row is ``(case, solver, seconds, exact)``.
    """
    rows = []
    for kind in ("planted", "random"):
        for m, splits in ((9, 3), (9, 4), (12, 4)):
            scores = _grouping_scores(kind, m)
            for solver in ("partition", "branch_and_bound"):
                times, sel = [], None
                for _ in range(repeats if solver == "partition" else 1):
                    start = time.perf_counter()
                    sel = select_groups(scores, splits, "tag", solver=solver,
                                        time_limit=time_limit)
                    times.append(time.perf_counter() - start)
                exact = "yes" if sel.exact else f"no (gap <= {sel.gap:.3g})"
                rows.append((f"{kind}, {m} tasks, {splits} splits", solver,
                             f"{float(np.median(times)):.3f}", exact))
    return ("case", "solver", "seconds", "exact"), rows
