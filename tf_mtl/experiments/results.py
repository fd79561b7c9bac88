"""Results over seeds: mean ± standard error tables, method comparisons, workdir guards.

The standard error of ``n`` seeds' values is the sample standard deviation
(``ddof=1``) divided by ``sqrt(n)`` (what ``001`` Table 2 reports); with one seed it is
undefined and the tables show the mean alone. ``spread="std"`` shows the standard deviation
instead (``003`` and ``004`` report mean ± std); the table's first line says which. Fractions
(accuracy, error, precision, recall, F-score) are shown in percent, as the papers do;
``results.csv`` keeps them as fractions.

A seed whose value is not finite (a diverged run: NaN or inf) is not left out: the mean of
that column is NaN, shown as ``nan (k/n finite)``, and a NaN mean is never bold.

Example:
    >>> rows = seed_rows({0: {"left": {"accuracy": 0.9}}, 1: {"left": {"accuracy": 0.8}}})
    >>> {k: round(v, 6) if isinstance(v, float) else v for k, v in rows[0].items()}
    {'task': 'left', 'metric': 'accuracy', 'mean': 0.85, 'stderr': 0.05, 'n': 2, 'n_finite': 2}
"""

import csv
import io
import json
import math
import os


import numpy as np

from tf_mtl.experiments.checkpointing import atomic_write
from tf_mtl.dense.metrics import delta_m
from tf_mtl.experiments.evaluation import LOWER_IS_BETTER, PER_ATTRIBUTE

PERCENT = {"accuracy", "error", *PER_ATTRIBUTE}
# Fields that change no number (output, I/O, the strategy, how tables are shown).
IGNORED_FIELDS = ("verbose", "seeds", "tensorboard", "strategy", "table_spread",
                  "data.data_dir", "data.download", "data.retries", "data.verify_checksums",
                  "transference.plot")
SPREADS = {"se": "standard error", "std": "standard deviation"}


def mean_stderr(values, spread="se"):
    """``(mean, standard error)``: ``std(ddof=1) / sqrt(n)``, NaN for n = 1; ``spread="std"``
    gives ``std(ddof=1)`` instead. Any non-finite value makes both NaN (a diverged seed is
    not dropped). An empty ``values`` is a ``ValueError``."""
    if len(values) == 0:
        raise ValueError("`values` must hold at least one value. Received: []")
    if spread not in SPREADS:
        raise ValueError(f"`spread` must be one of {sorted(SPREADS)}. Received: spread={spread!r}")
    v = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(v)):
        return float("nan"), float("nan")
    if v.size < 2:
        return float(v.mean()), float("nan")
    std = float(v.std(ddof=1))
    return float(v.mean()), std if spread == "std" else std / math.sqrt(v.size)


def _columns(per_seed):
    first = next(iter(per_seed.values()))
    return [(task, metric) for task in first for metric in first[task]]


def seed_rows(per_seed, spread="se"):
    """Rows ``{task, metric, mean, stderr, n, n_finite}`` from ``{seed: {task: {metric:
    value}}}`` (``stderr`` holds the standard deviation with ``spread="std"``)."""
    rows = []
    for task, metric in _columns(per_seed):
        values = [r[task][metric] for r in per_seed.values()]
        mean, se = mean_stderr(values, spread)
        rows.append({"task": task, "metric": metric, "mean": mean, "stderr": se,
                     "n": len(values), "n_finite": int(np.sum(np.isfinite(values)))})
    return rows


def format_mean(metric, mean):
    scale = 100.0 if metric in PERCENT else 1.0
    return f"{mean * scale:.{2 if metric in PERCENT else 4}f}"


def format_value(metric, mean, se, n=None, n_finite=None):
    """``mean ± se`` as shown; a NaN mean with ``n_finite < n`` says ``nan (k/n finite)``."""
    text = format_mean(metric, mean)
    if math.isnan(mean) and n is not None and n_finite is not None and n_finite < n:
        return f"{text} ({n_finite}/{n} finite)"
    return text if math.isnan(se) else f"{text} ± {format_mean(metric, se)}"


def _label(task, metric):
    return f"{task} {metric}" + (" (%)" if metric in PERCENT else "")


def write_seed_tables(workdir, per_seed, spread="se"):
    """Writes ``results.md`` and ``results.csv`` (mean ± s.e., or ± std with ``spread="std"``,
    per task metric); returns their paths."""
    rows = seed_rows(per_seed, spread)
    seeds = ", ".join(str(s) for s in per_seed)
    short = "s.e." if spread == "se" else "std"
    lines = [f"Test results over {len(per_seed)} seed(s) ({seeds}): mean ± {SPREADS[spread]}.",
             "", f"| task | metric | mean ± {short} |", "|---|---|---|"]
    lines += [f"| {r['task']} | {r['metric']}{' (%)' if r['metric'] in PERCENT else ''} | "
              f"{format_value(r['metric'], r['mean'], r['stderr'], r['n'], r['n_finite'])} |"
              for r in rows]
    header = ["task", "metric", "mean", "stderr" if spread == "se" else "std", "n", "n_finite"]
    keys = ("task", "metric", "mean", "stderr", "n", "n_finite")
    paths = os.path.join(workdir, "results.md"), os.path.join(workdir, "results.csv")
    atomic_write(paths[0], lambda f: f.write("\n".join(lines) + "\n"))
    atomic_write(paths[1], lambda f: f.write(_csv(header, [[r[k] for k in keys] for r in rows])))
    return list(paths)


def _csv(header, rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def comparison(methods, spread="se"):
    """``(columns, {method: {column: row}}, {column: [best methods]})`` from
    ``{method: {seed: {task: {metric: value}}}}`` (rows as ``seed_rows``); lower is better for
    losses, error, MSE. Every method whose shown mean equals the best shown mean is best
    (ties); NaN means are never best."""
    columns = _columns(next(iter(methods.values())))
    table = {m: {(r["task"], r["metric"]): r for r in seed_rows(s, spread)}
             for m, s in methods.items()}
    best = {}
    for column in columns:
        finite = [m for m in methods if math.isfinite(table[m][column]["mean"])]
        pick = min if column[1] in LOWER_IS_BETTER else max
        top = pick(finite, key=lambda m: table[m][column]["mean"]) if finite else None
        shown = None if top is None else format_mean(column[1], table[top][column]["mean"])
        best[column] = [m for m in finite
                        if format_mean(column[1], table[m][column]["mean"]) == shown]
    return columns, table, best


def delta_m_column(methods, baseline, convention="libmtl", spread="se"):
    """``{method: Δm in percent}`` of every method's mean results against ``baseline``'s
    (``tf_mtl.metrics.delta_m`` over every column; lower is better for losses, errors, MSE
    and the normal angles' mean and median). ``"libmtl"``: positive = improvement;
    ``"nash_mtl"``: positive = worse."""
    if baseline not in methods:
        raise ValueError(f"`baseline` must be one of the compared methods {sorted(methods)}. "
                         f"Received: baseline={baseline!r}")
    columns, table, _ = comparison(methods, spread)
    higher = {}
    for task, metric in columns:
        higher.setdefault(task, {})[metric] = metric not in LOWER_IS_BETTER

    def means(m):
        out = {}
        for task, metric in columns:
            out.setdefault(task, {})[metric] = table[m][(task, metric)]["mean"]
        return out

    scale = 100.0 if convention == "libmtl" else 1.0  # nash_mtl is in percent already
    return {m: scale * delta_m(means(m), means(baseline), higher, convention) for m in methods}


def write_comparison(workdir, methods, name="compare", spread="se", baseline=None,
                     delta_m_convention="libmtl"):
    """``001`` Table 2's layout: methods as rows, tasks' metrics as columns, the best mean
    of each column in bold (every method tied with it as shown, too). Writes ``<name>.md``
    and ``<name>.csv``; returns their paths. ``spread="std"``: mean ± standard deviation.
    ``baseline`` (a method): a last column Δm (%) of every method against it
    (``delta_m_column``; ``delta_m_convention`` ``"libmtl"`` or ``"nash_mtl"``)."""
    columns, table, best = comparison(methods, spread)
    deltas = (None if baseline is None
              else delta_m_column(methods, baseline, delta_m_convention, spread))
    seeds = sorted({len(s) for s in methods.values()})
    sign = "higher is better" if delta_m_convention == "libmtl" else "lower is better"
    lines = [f"Test results, mean ± {SPREADS[spread]} over {'/'.join(map(str, seeds))} "
             "seed(s); best in bold." + ("" if deltas is None else
                                         f" Δm (%) against {baseline} ({delta_m_convention}: "
                                         f"{sign})."), "",
             "| method | " + " | ".join(_label(*c) for c in columns)
             + ("" if deltas is None else " | Δm (%)") + " |",
             "|---" * (len(columns) + 1 + (deltas is not None)) + "|"]
    for m in methods:
        cells = []
        for c in columns:
            r = table[m][c]
            text = format_value(c[1], r["mean"], r["stderr"], r["n"], r["n_finite"])
            cells.append(f"**{text}**" if m in best[c] else text)
        if deltas is not None:
            cells.append(f"{deltas[m]:+.2f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    kinds = ("mean", "stderr" if spread == "se" else "std", "n_finite")
    header = (["method"] + [f"{t}/{m}/{k}" for t, m in columns for k in kinds]
              + ([] if deltas is None else ["delta_m_percent"]))
    rows = [[m] + [table[m][c][k] for c in columns for k in ("mean", "stderr", "n_finite")]
            + ([] if deltas is None else [deltas[m]]) for m in methods]
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
    fields = sorted(f for f in set(a) | set(b)
                    if not any(f == i or f.startswith(i + ".") for i in ignored))
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
        try:
            saved = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"--workdir={workdir} holds a config.json that is not valid JSON "
                             f"({e}); use another workdir, or remove {path} if no run "
                             f"finished there. Received: {path}") from e
    current = json.loads(json.dumps(config_dict))  # Tuples as lists, as saved.
    diff = config_differences(saved, current)
    if diff:
        shown = "; ".join(f"{k}: {a!r} in the workdir, {b!r} now" for k, a, b in diff[:8])
        raise ValueError(
            f"--workdir={workdir} holds a run of a different config; use another workdir "
            f"or the same config. Differing fields ({len(diff)}): {shown}"
            + (" ..." if len(diff) > 8 else ""))
