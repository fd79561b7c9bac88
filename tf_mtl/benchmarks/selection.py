"""Group selection for many tasks and the 40-task probe (``--bench=selection``).

Time to a proven optimum (or to a 1% certified gap) of ``select_groups`` for
9 to 40 tasks at 2, 3 and 4 splits on planted, measured-like and random TAG
affinities, with the solver ``"auto"`` takes (the subset enumeration up to
``selection.ENUMERATION_MAX_TASKS`` tasks, column generation past it); the gap
against the time limit for 40 tasks; and the first-order transference probe's
step time for 40 tasks (ResNet-lite, 64x64, CelebA-shaped batch) as a ratio to
the plain step. Measured CelebA affinities for 40 tasks are not available
offline (no run has produced them here): ``"measured_like"`` stands in for
them, generated (see ``affinities``), not measured.
"""

import time

import numpy as np

from tf_mtl.grouping import selection

SIZES = (9, 12, 16, 20, 30, 40)
KINDS = ("planted", "measured_like", "random")


def affinities(kind, m, seed=0, groups=4, factors=5):
    """``scores[source][target]`` for ``m`` tasks, generated.

    ``"random"``: i.i.d. N(0, 1). ``"planted"``: ``groups`` blocks of tasks that
    help each other (+0.3) and hurt the rest (-0.2), plus N(0, 0.1^2) noise.
    ``"measured_like"``: the structure measured affinities show, none of their
    numbers: a helpfulness per source ``h_s ~ N(0, 0.5^2)``, relatedness through
    ``factors`` sparse latent attributes (loadings ``u`` N(0, 1) kept with
    probability 0.3, ``0.5 u_s . u_t``, symmetric) and N(0, 0.5^2) noise.
    """
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}. Received: kind={kind!r}")
    rng = np.random.default_rng(seed)
    tasks = [f"t{i:02d}" for i in range(m)]
    if kind == "random":
        M = rng.normal(size=(m, m))
    elif kind == "planted":
        block = np.arange(m) % groups
        M = np.where(block[:, None] == block[None, :], 0.3, -0.2) + 0.1 * rng.normal(size=(m, m))
    else:
        helps = 0.5 * rng.normal(size=m)
        loadings = rng.normal(size=(m, factors)) * (rng.random((m, factors)) < 0.3)
        M = helps[:, None] + 0.5 * loadings @ loadings.T + 0.5 * rng.normal(size=(m, m))
    return {s: {t: float(M[i, j]) for j, t in enumerate(tasks)} for i, s in enumerate(tasks)}


def _timed(scores, splits, time_limit):
    start = time.perf_counter()
    sel = selection.select_groups(scores, splits, "tag", time_limit=time_limit)
    return sel, time.perf_counter() - start


def _status(sel):
    return "optimal" if sel.exact else (f"gap {100 * sel.gap:.2f}%"
                                        + (" (<= 1%)" if sel.gap <= 0.01 else ""))


def selection_rows(sizes=SIZES, splits=(4,), kinds=KINDS, time_limit=60.0):
    rows = []
    for kind in kinds:
        for m in sizes:
            for k in splits:
                sel, seconds = _timed(affinities(kind, m), k, time_limit)
                method = ("enumeration" if m <= selection.ENUMERATION_MAX_TASKS
                          else "column generation")
                rows.append((f"{kind}, {m} tasks, {k} splits", method, f"{seconds:.2f}",
                             _status(sel)))
    return rows


def gap_curve_rows(m=40, splits=4, kinds=("measured_like", "random"), limits=(15, 30, 120)):
    """The certified gap of ``m`` tasks at ``splits`` against the time limit."""
    rows = []
    for kind in kinds:
        for limit in limits:
            sel, seconds = _timed(affinities(kind, m), splits, limit)
            rows.append((f"{kind}, {m} tasks, {splits} splits, limit {limit:g} s",
                         "column generation", f"{seconds:.2f}",
                         _status(sel) + f", value {sel.value:.4f}, bound {sel.bound:.4f}"))
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
                        probe=True, curve=True, **_):
    """Rows ``(case, method, seconds, result)``: group selection at each size (``splits``
    per size, ints or their strings as ``--splits=2,3,4`` gives them) with at most
    ``min(time_limit, 60)`` seconds per search, the 40-task gap against the limit
    (``curve``), then the 40-task probe step times (seconds per step; ``steps`` timed
    steps, ``repeats`` repeats)."""
    try:
        splits = tuple(int(k) for k in splits)
    except ValueError:
        raise ValueError(f"`splits` must be integers, as in --splits=2,3,4. Received: "
                         f"splits={splits!r}") from None
    if not splits or min(splits) < 1:
        raise ValueError(f"`splits` must be integers >= 1. Received: splits={splits!r}")
    rows = selection_rows(sizes, splits, time_limit=min(time_limit, 60.0))
    if curve:
        rows += gap_curve_rows()
    if probe:
        rows += probe_rows(steps=min(steps, 2), repeats=1)
    return ("case", "method", "seconds", "result"), rows
