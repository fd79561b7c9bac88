"""Results over seeds: mean ± standard error tables, method comparisons, workdir guards.

The standard error of ``n`` seeds' values is the sample standard deviation
(``ddof=1``) divided by ``sqrt(n)`` (what ``001`` Table 2 reports); with one seed it is
undefined and the tables show the mean alone. Fractions (accuracy, error, precision,
recall, F-score) are shown in percent, as the papers do; ``results.csv`` keeps them as
fractions.

Example:
    >>> rows = seed_rows({0: {"left": {"accuracy": 0.9}}, 1: {"left": {"accuracy": 0.8}}})
    >>> rows[0]
    {'task': 'left', 'metric': 'accuracy', 'mean': 0.85, 'stderr': 0.05, 'n': 2}
"""

import csv
import io
import json
import math
import os


from tf_mtl import stats
from tf_mtl.checkpointing import atomic_write
from tf_mtl.evaluation import LOWER_IS_BETTER, PER_ATTRIBUTE

PERCENT = {"accuracy", "error", *PER_ATTRIBUTE}
IGNORED_FIELDS = ("verbose", "seeds", "tensorboard", "strategy")  # Fields that change no number.


def mean_stderr(values):
    """``(mean, standard error)`` (``tf_mtl.stats.mean_se``: ``std(ddof=1) / sqrt(n)``, NaN
    for n = 1; non-finite values left out); an empty ``values`` is a ``ValueError``."""
    if len(values) == 0:
        raise ValueError("`values` must hold at least one value. Received: []")
    mean, se, _ = stats.mean_se(values)
    return mean, se


def _columns(per_seed):
    first = next(iter(per_seed.values()))
    return [(task, metric) for task in first for metric in first[task]]


def seed_rows(per_seed):
    """Rows ``{task, metric, mean, stderr, n}`` from ``{seed: {task: {metric: value}}}``."""
    rows = []
    for task, metric in _columns(per_seed):
        values = [r[task][metric] for r in per_seed.values()]
        mean, se = mean_stderr(values)
        rows.append({"task": task, "metric": metric, "mean": mean, "stderr": se,
                     "n": len(values)})
    return rows


def format_value(metric, mean, se):
    scale = 100.0 if metric in PERCENT else 1.0
    digits = 2 if metric in PERCENT else 4
    text = f"{mean * scale:.{digits}f}"
    return text if math.isnan(se) else f"{text} ± {se * scale:.{digits}f}"


def _label(task, metric):
    return f"{task} {metric}" + (" (%)" if metric in PERCENT else "")


def write_seed_tables(workdir, per_seed):
    """Writes ``results.md`` and ``results.csv`` (mean ± s.e. per task metric); returns paths."""
    rows = seed_rows(per_seed)
    seeds = ", ".join(str(s) for s in per_seed)
    lines = [f"Test results over {len(per_seed)} seed(s) ({seeds}): mean ± standard error.",
             "", "| task | metric | mean ± s.e. |", "|---|---|---|"]
    lines += [f"| {r['task']} | {r['metric']}{' (%)' if r['metric'] in PERCENT else ''} | "
              f"{format_value(r['metric'], r['mean'], r['stderr'])} |" for r in rows]
    paths = os.path.join(workdir, "results.md"), os.path.join(workdir, "results.csv")
    atomic_write(paths[0], lambda f: f.write("\n".join(lines) + "\n"))
    atomic_write(paths[1], lambda f: f.write(_csv(["task", "metric", "mean", "stderr", "n"],
                                                  [[r[k] for k in ("task", "metric", "mean",
                                                                   "stderr", "n")]
                                                   for r in rows])))
    return list(paths)


def _csv(header, rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def comparison(methods):
    """``(columns, {method: {column: (mean, se)}}, {column: best method})`` from
    ``{method: {seed: {task: {metric: value}}}}``; lower is better for losses, error, MSE."""
    columns = _columns(next(iter(methods.values())))
    table = {m: {(r["task"], r["metric"]): (r["mean"], r["stderr"]) for r in seed_rows(s)}
             for m, s in methods.items()}
    best = {}
    for column in columns:
        pick = min if column[1] in LOWER_IS_BETTER else max
        best[column] = pick(methods, key=lambda m: table[m][column][0])
    return columns, table, best


def write_comparison(workdir, methods, name="compare"):
    """``001`` Table 2's layout: methods as rows, tasks' metrics as columns, the best mean
    of each column in bold. Writes ``<name>.md`` and ``<name>.csv``; returns their paths."""
    columns, table, best = comparison(methods)
    seeds = sorted({len(s) for s in methods.values()})
    lines = [f"Test results, mean ± standard error over {'/'.join(map(str, seeds))} seed(s); "
             "best in bold.", "",
             "| method | " + " | ".join(_label(*c) for c in columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for m in methods:
        cells = []
        for c in columns:
            text = format_value(c[1], *table[m][c])
            cells.append(f"**{text}**" if best[c] == m else text)
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    header = ["method"] + [f"{t}/{m}/{k}" for t, m in columns for k in ("mean", "stderr")]
    rows = [[m] + [v for c in columns for v in table[m][c]] for m in methods]
    paths = os.path.join(workdir, f"{name}.md"), os.path.join(workdir, f"{name}.csv")
    atomic_write(paths[0], lambda f: f.write("\n".join(lines) + "\n"))
    atomic_write(paths[1], lambda f: f.write(_csv(header, rows)))
    return list(paths)


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: value}


def config_differences(saved, current, ignored=IGNORED_FIELDS):
    """``[(field, saved value, current value)]`` between two config dicts."""
    a, b = _flatten(saved), _flatten(current)
    fields = sorted(f for f in set(a) | set(b) if f.split(".")[0] not in ignored)
    missing = "<absent>"
    return [(f, a.get(f, missing), b.get(f, missing)) for f in fields
            if a.get(f, missing) != b.get(f, missing)]


def check_workdir(workdir, config_dict):
    """Refuses a ``workdir`` whose ``config.json`` is another run's (fields besides
    ``IGNORED_FIELDS`` differ), naming the differing fields; a new workdir passes."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        return
    with open(path) as f:
        saved = json.load(f)
    current = json.loads(json.dumps(config_dict))  # Tuples as lists, as saved.
    diff = config_differences(saved, current)
    if diff:
        shown = "; ".join(f"{k}: {a!r} in the workdir, {b!r} now" for k, a, b in diff[:8])
        raise ValueError(
            f"--workdir={workdir} holds a run of a different config; use another workdir "
            f"or the same config. Differing fields ({len(diff)}): {shown}"
            + (" ..." if len(diff) > 8 else ""))
