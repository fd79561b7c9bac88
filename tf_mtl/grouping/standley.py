"""Standley et al.'s published Taskonomy losses, and ``002``'s curves recomputed from them.

``002``'s authors released the measured losses of every network they trained
for network selection (``network_selection/results*.txt`` in
``tstandley/taskgrouping``; the copies in ``tf_mtl/grouping/data/`` and their
source are described in ``data/STANDLEY_SOURCE.md``). One file is one table of
losses (lower is better), tab-separated, one column per task:

* row 1: the five **half-size** single-task networks (cost 0.5 each), one
  column each, all filled;
* every further row: one **full-size** network (cost 1), a loss for each task
  it solves and an empty field for each task it lacks.

Each setting has three files: validation (select on it), test (report on it)
and the Early-Stopping Approximation's validation losses (``002`` §3.3.1, the
networks stopped early). ``002``'s code (``main.cpp``) then computes, for
budgets 1, 1.5, ..., 5:

* **optimal**: networks chosen on the validation file, scored on the test file;
* **esa**: chosen on the ESA file, scored on the test file;
* **hoa**: chosen on the Higher-Order Approximation (§3.3.2) of the validation
  file — a network of three or more tasks gets, for each task ``t`` it solves,
  the mean of the validation losses of ``t`` in the full-size pair networks
  inside it; singles and pairs keep their own — scored on the test file;
* **random**: valid random choices, averaged (below).

The chosen networks are "translated" to the test file by their tasks and cost,
and the selection's **total test loss** is ``sum_t min_{n chosen, t in n}
L_test(n, t)``: ``002``'s code serves each task by whichever chosen network is
best for it *on the test file* (``serve="test"``, the default, reproduces the
published numbers). ``serve="validation"`` serves each task by the network the
selection chose for it (best on the selection's own file) — the deployable rule.

Random groupings (``main.cpp`` ``do_one_random``): draw networks uniformly
without replacement from all candidates, keep one if it fits the remaining
budget, stop when less than 0.5 is left; start over (and over again if the
candidates run out) until the kept networks cover every task; the value is
the total test loss of the kept networks. ``002`` averages 1,000,000 draws;
``random_curve`` averages ``trials`` draws with a seeded generator.

Example:
    >>> nets = read_standley(standley_path("results.txt"))
    >>> len(nets), nets[0].name, nets[0].cost, nets[5].name, nets[5].cost
    (36, 's (half)', 0.5, 's', 1.0)
"""

import importlib.resources
import os

import numpy as np

from tf_mtl.grouping.network_selection import Network, select_networks

STANDLEY_TASKS = "sdnke"
"""``002``'s column order: segmentation, depth, normals, keypoints, edges."""

STANDLEY_SETTINGS = {
    1: ("results.txt", "results_test.txt", "results_20.txt"),
    2: ("results_large.txt", "results_large_test.txt", "results_large_20.txt"),
    3: ("results_small_data.txt", "results_small_data_test.txt", "results_small_data_at4.txt"),
    4: ("results_alt.txt", "results_alt_test.txt", "results_alt_20.txt"),
}
"""Setting -> (validation, test, ESA) file names, as ``main.cpp``'s ``do_setting`` pairs them."""

STANDLEY_BUDGETS = tuple(np.arange(1.0, 5.01, 0.5).tolist())
"""``002`` §4.2: budgets 1 to 5 at increments of 0.5."""

HALF_COST, FULL_COST = 0.5, 1.0


def standley_path(name):
    """Path of a packaged results file (``"results.txt"`` or ``"standley_results.txt"``)."""
    name = name if name.startswith("standley_") else "standley_" + name
    path = importlib.resources.files("tf_mtl.grouping") / "data" / name
    if not path.is_file():
        known = sorted(f for s in STANDLEY_SETTINGS.values() for f in s)
        raise ValueError(f"`name` must be one of {known}. Received: name={name!r}")
    return str(path)


def _parse_row(line, path, number, width):
    fields = line.rstrip("\r").split("\t")
    if len(fields) != width:
        raise ValueError(f"Row {number} of {path} must have {width} tab-separated columns (one "
                         f"per task, empty where the network lacks it). Received: "
                         f"{len(fields)} columns in {line!r}")
    values = []
    for field in fields:
        try:
            values.append(float(field) if field.strip() else None)
        except ValueError as e:
            raise ValueError(f"Row {number} of {path} holds a field that is not a number. "
                             f"Received: {field!r}") from e
    return values


def read_standley(path, tasks=STANDLEY_TASKS):
    """Candidate networks of one ``002`` results file (format in the module doc).

    Args:
        path: a ``results*.txt`` file.
        tasks: the column names, in column order (a string of letters or a
            sequence of names); ``"sdnke"`` for settings 1-3. Setting 4's
            columns are not named in ``002``'s repository.

    Returns:
        ``[Network]``: the half-size singles (cost 0.5, named ``"<task> (half)"``)
        in column order, then the full-size networks (cost 1, named by their
        tasks joined with ``|``) in row order.

    Raises:
        ValueError: a row with another number of columns than ``tasks``, a
            field that is not a number, a half-size row with a blank, an empty
            row between networks, or two rows for the same set of tasks.
    """
    tasks = tuple(tasks)
    if len(set(tasks)) != len(tasks) or not tasks:
        raise ValueError(f"`tasks` must name each column once. Received: tasks={tasks!r}")
    with open(path) as f:
        lines = f.read().split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ValueError(f"`path` holds no rows. Received: path={path!r}")
    networks, seen = [], {}
    for number, line in enumerate(lines, start=1):
        values = _parse_row(line, path, number, len(tasks))
        solved = tuple(t for t, v in zip(tasks, values) if v is not None)
        if number == 1:
            if len(solved) != len(tasks):
                raise ValueError(f"Row 1 of {path} holds the half-size single-task networks and "
                                 f"needs a loss for every task. Received: {line!r}")
            networks += [Network((t,), HALF_COST, {t: v}, name=f"{t} (half)")
                         for t, v in zip(tasks, values)]
            continue
        if not solved:
            raise ValueError(f"Row {number} of {path} names no task. Received: {line!r}")
        if solved in seen:
            raise ValueError(f"Rows {seen[solved]} and {number} of {path} are both the network "
                             f"for {solved}. Received: {line!r}")
        seen[solved] = number
        networks.append(Network(solved, FULL_COST, {t: v for t, v in zip(tasks, values)
                                                     if v is not None}, name="|".join(solved)))
    return networks


def _key(network):
    return frozenset(network.tasks), float(network.cost)


def hoa_networks(networks):
    """``002`` §3.3.2 (``main.cpp`` ``higher_order_approximation``): each network
    of three or more tasks scores, on each task, the mean of that task's losses
    in the full-size pair networks whose two tasks it solves; singles and pairs
    keep their own losses."""
    pairs = [n for n in networks if len(n.tasks) == 2 and n.cost == FULL_COST]
    out = []
    for n in networks:
        if len(n.tasks) <= 2:
            out.append(n)
            continue
        inside = [p for p in pairs if set(p.tasks) <= set(n.tasks)]
        scores = {t: float(np.mean([p.scores[t] for p in inside if t in p.tasks]))
                  for t in n.tasks if any(t in p.tasks for p in inside)}
        if len(scores) != len(n.tasks):
            raise ValueError(f"HOA needs the pair networks inside {n.tasks}. Received pairs "
                             f"{[p.tasks for p in pairs]}")
        out.append(Network(n.tasks, n.cost, scores, name=n.name))
    return out


def serve(selection, test_networks, serve="test"):
    """Total test loss of a selection (``002``'s "total loss", a sum over tasks).

    Each chosen network is matched to the test network with the same tasks and
    cost. ``serve="test"``: each task takes the lowest test loss among the chosen
    networks that solve it (``002``'s ``score_solution``); ``"validation"``: each
    task takes the test loss of the network the selection serves it with.
    """
    if serve not in ("test", "validation"):
        raise ValueError(f"`serve` must be 'test' or 'validation'. Received: serve={serve!r}")
    by_key = {_key(n): n for n in test_networks}
    missing = [n.name or n.tasks for n in selection.networks if _key(n) not in by_key]
    if missing:
        raise ValueError(f"The test networks lack chosen networks {missing}. Received "
                         f"{len(test_networks)} test networks")
    chosen = [by_key[_key(n)] for n in selection.networks]
    if serve == "validation":
        return float(sum(chosen[i].scores[t] for t, i in selection.served_by.items()))
    tasks = {t for n in chosen for t in n.tasks}
    return float(sum(min(n.scores[t] for n in chosen if t in n.scores) for t in tasks))


def random_curve(test_networks, budgets=STANDLEY_BUDGETS, trials=20000, seed=0):
    """Mean total test loss of ``002``'s random valid choices at each budget (module doc)."""
    rng = np.random.default_rng(seed)
    tasks = sorted({t for n in test_networks for t in n.tasks})
    costs = np.array([n.cost for n in test_networks])
    losses = np.full((len(test_networks), len(tasks)), np.inf)
    for row, n in enumerate(test_networks):
        for t, v in n.scores.items():
            losses[row, tasks.index(t)] = v
    curve = []
    for budget in budgets:
        total = 0.0
        for _ in range(trials):
            while True:
                kept, left = [], budget
                for i in rng.permutation(len(test_networks)):
                    if costs[i] <= left:
                        kept.append(i)
                        left -= costs[i]
                    if left < HALF_COST:
                        break
                served = losses[kept].min(axis=0)
                if np.isfinite(served).all():
                    total += served.sum()
                    break
        curve.append(total / trials)
    return curve


def selection_curve(choose_on, test_networks, budgets=STANDLEY_BUDGETS, serve_on="test"):
    """Total test loss of the networks ``select_networks`` picks on ``choose_on``, per budget."""
    return [serve(select_networks(choose_on, b, maximize=False, aggregate="sum"), test_networks,
                  serve_on) for b in budgets]


def standley_curves(setting=1, budgets=STANDLEY_BUDGETS, random_trials=20000, seed=0,
                    serve_on="test", directory=None):
    """``002``'s optimal / ESA / HOA / random curves for one setting (1-4).

    ``directory``: where the results files are (default: the packaged copies).
    Returns ``{"optimal": [...], "esa": [...], "hoa": [...], "random": [...]}``,
    one total test loss per budget (``random`` only when ``random_trials`` > 0).
    """
    if setting not in STANDLEY_SETTINGS:
        raise ValueError(f"`setting` must be one of {sorted(STANDLEY_SETTINGS)}. Received: "
                         f"setting={setting!r}")
    where = (lambda name: os.path.join(directory, name)) if directory else standley_path
    validation, test, esa = (read_standley(where(name)) for name in STANDLEY_SETTINGS[setting])
    curves = {"optimal": selection_curve(validation, test, budgets, serve_on),
              "esa": selection_curve(esa, test, budgets, serve_on),
              "hoa": selection_curve(hoa_networks(validation), test, budgets, serve_on)}
    if random_trials:
        curves["random"] = random_curve(test, budgets, random_trials, seed)
    return curves


PUBLISHED = {
    1: {"optimal": [0.50273, 0.46132, 0.45224, 0.44612, 0.44235, 0.43932, 0.43555, 0.43555,
                    0.43481],
        "esa": [0.50273, 0.48732, 0.46727, 0.46063, 0.45722, 0.45058, 0.45058, 0.44742, 0.44742],
        "hoa": [0.50278, 0.46132, 0.45474, 0.4505, 0.44875, 0.44489, 0.44112, 0.44552, 0.44196],
        "random": [0.50278, 0.485347, 0.473641, 0.469079, 0.465265, 0.46271, 0.460238, 0.458358,
                   0.456486]},
    2: {"optimal": [0.35989, 0.35478, 0.31733, 0.3145, 0.30606, 0.3049, 0.3019, 0.3019, 0.30167],
        "esa": [0.35989, 0.35989, 0.34696, 0.34696, 0.34483, 0.34483, 0.34483, 0.34483, 0.34483],
        "hoa": [0.35989, 0.35758, 0.31733, 0.31562, 0.31177, 0.30525, 0.3019, 0.3019, 0.30187],
        "random": [0.35989, 0.360109, 0.357285, 0.355924, 0.353176, 0.351664, 0.349508, 0.348102,
                   0.346303]},
    3: {"optimal": [0.42998, 0.42275, 0.40857, 0.38776, 0.38352, 0.38352, 0.38249, 0.38249,
                    0.38249],
        "esa": [0.42998, 0.44778, 0.43055, 0.39507, 0.40381, 0.39404, 0.40278, 0.39404, 0.40278],
        "hoa": [0.42998, 0.44778, 0.40887, 0.38776, 0.38352, 0.38682, 0.38574, 0.38574, 0.38471],
        "random": [0.42998, 0.439361, 0.439917, 0.435501, 0.431542, 0.427947, 0.424582, 0.421834,
                   0.419124]},
    4: {"optimal": [0.684042, 0.678697, 0.674597, 0.671067, 0.669696, 0.669696, 0.668986,
                    0.668986, 0.668986],
        "esa": [0.684042, 0.684042, 0.677567, 0.680649, 0.677349, 0.676049, 0.676049, 0.675976,
                0.675976],
        "hoa": [0.684042, 0.678697, 0.674597, 0.671067, 0.669696, 0.671867, 0.670496, 0.670496,
                0.670496],
        "random": [0.684042, 0.683817, 0.681984, 0.681949, 0.680581, 0.6801, 0.679037, 0.678471,
                   0.677633]},
}
"""The curves ``002``'s plotting script (``network_selection/make_plots.py``,
``curves_1``-``curves_4``) draws in its Figure 4 and the supplement's settings
2-4, budgets 1, 1.5, ..., 5; setting 1 is mostly ``002``'s Table 4 (its random row and HOA
at budgets 4 and 4.5 differ from Table 4 in the third decimal).
Kept only to compare against: ``standley_curves`` recomputes them from the files."""


def format_curves(curves, budgets=STANDLEY_BUDGETS, published=None):
    """A text table: one row per method (and its published row when given)."""
    lines = ["budget      " + " ".join(f"{b:>8g}" for b in budgets)]
    for method, values in curves.items():
        lines.append(f"{method:<11} " + " ".join(f"{v:8.5f}" for v in values))
        if published and method in published:
            lines.append(f"{'  (002)':<11} " + " ".join(
                f"{v:8.5f}" if v is not None else " " * 8 for v in published[method]))
    return "\n".join(lines)
