"""Group selection for many tasks and the 40-task probe (``--bench=selection``).

Time to a proven optimum (or to a 1% certified gap) of ``select_groups`` for
9 to 40 tasks on random and on planted TAG affinities, with the solver
``"auto"`` takes (the subset enumeration up to
``selection.ENUMERATION_MAX_TASKS`` tasks, column generation past it); and the
first-order transference probe's step time for 40 tasks (ResNet-lite, 64x64,
CelebA-shaped batch) as a ratio to the plain step. Measured CelebA affinities
for 40 tasks are not available offline (no run has produced them here): the
rows use generated ones only.
"""

import time

import numpy as np

from tf_mtl.grouping import selection

SIZES = (9, 12, 16, 20, 30, 40)


def affinities(kind, m, seed=0, groups=4):
    """``scores[source][target]``: ``"random"`` N(0, 1), or ``"planted"``: ``groups``
    blocks of tasks that help each other (+0.3) and hurt the rest (-0.2), plus noise."""
    rng = np.random.default_rng(seed)
    tasks = [f"t{i:02d}" for i in range(m)]
    if kind == "random":
        return {s: {t: float(rng.normal()) for t in tasks} for s in tasks}
    block = {t: i % groups for i, t in enumerate(tasks)}
    return {s: {t: (0.3 if block[s] == block[t] else -0.2) + 0.1 * float(rng.normal())
                for t in tasks} for s in tasks}


def _timed(scores, splits, time_limit):
    start = time.perf_counter()
    sel = selection.select_groups(scores, splits, "tag", time_limit=time_limit)
    return sel, time.perf_counter() - start


def selection_rows(sizes=SIZES, splits=(4,), kinds=("planted", "random"), time_limit=60.0):
    rows = []
    for kind in kinds:
        for m in sizes:
            for k in splits:
                sel, seconds = _timed(affinities(kind, m), k, time_limit)
                method = ("enumeration" if m <= selection.ENUMERATION_MAX_TASKS
                          else "column generation")
                status = ("optimal" if sel.exact else
                          f"gap {100 * sel.gap:.2f}%" + (" (<= 1%)" if sel.gap <= 0.01 else ""))
                rows.append((f"{kind}, {m} tasks, {k} splits", method, f"{seconds:.2f}", status))
    return rows


def probe_rows(num_tasks=40, batch_size=32, image_size=64, steps=2, repeats=1):
    """First-order transference every step vs the plain step, ``num_tasks`` tasks."""
    from tf_mtl.benchmarks.transference import _celeba_like_batch, _resnet_model, time_steps
    from tf_mtl.transference import Transference
    batch = _celeba_like_batch(num_tasks, batch_size, image_size)
    plain = time_steps(_resnet_model(num_tasks, []), batch, steps, repeats, warmup=1)
    probed = time_steps(_resnet_model(
        num_tasks, [Transference(every=1, order=1, method="first_order")]), batch, steps,
        repeats, warmup=1)
    return [(f"plain step, {num_tasks} tasks (ResNet-lite, batch {batch_size})", "",
             f"{plain:.2f}", "1.00x"),
            (f"first-order order-1 probe every step, {num_tasks} tasks", "", f"{probed:.2f}",
             f"{probed / plain:.2f}x plain")]


def selection_benchmark(time_limit=60.0, steps=3, repeats=1, sizes=SIZES, splits=(4,),
                        probe=True, **_):
    """Rows ``(case, method, seconds, result)``: group selection at each size (``splits``
    per size; ``splits=(2, 3, 4)`` for the full grid, several times longer) with at most
    ``min(time_limit, 60)`` seconds per search, then the 40-task probe step times
    (seconds per step; ``steps`` timed steps, ``repeats`` repeats)."""
    rows = selection_rows(sizes, splits, time_limit=min(time_limit, 60.0))
    if probe:
        rows += probe_rows(steps=min(steps, 2), repeats=1)
    return ("case", "method", "seconds", "result"), rows
