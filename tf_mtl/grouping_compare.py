"""The task-grouping comparison of ``001`` Fig. 4 / ``002`` Table 4 as one call.

For each seed (``config.seeds`` as ``tf_mtl.runs`` reads it, one run when
empty; into ``DIR/seed_<s>/``) and
method, ``compare`` runs the measurement the method needs, selects groupings
for each split count, trains and serves them (``tf_mtl.serving``), and adds
one MTL model and the single-task models:

* ``tag`` / ``tag_first_order``: one MTL training run measuring transference
  (exact, resp. first order) — ``001`` §5.1; TAG objective.
* ``hoa``: every single task and pair trained (``grouping_runs.pair_runs``),
  ``"hoa"`` objective on their validation losses (``002`` §3.3.2).
* ``esa``: the same runs for ``esa_fraction`` of the epochs (``002`` §3.3.1).
* ``random``: a uniformly drawn partition into ``k`` non-empty groups (no
  measurement) — the floor.

A method's compute is the wall clock of its measurement on this machine (what
``001`` Fig. 4's x axis counts); the MTL model's and the single-task models'
is their training time. Networks live in ``seed_<s>/networks/<tasks>`` and are
shared by every method that picks the same group; every finished run is reused
on a re-run. Outputs: ``comparison.json``, ``comparison.md`` (method x splits,
mean ± s.e. over seeds) and ``fig4.png`` (metric vs compute hours, log x).
"""

import os
import time

import numpy as np

from tf_mtl import experiment, grouping, grouping_runs, results, runs, serving

METHODS = ("tag", "tag_first_order", "hoa", "esa", "random")
BASELINES = ("mtl", "single")
_TRANSFERENCE = {"tag": "exact", "tag_first_order": "first_order"}


def check_request(tasks, splits, methods):
    """Validates split counts and method names; returns them as lists."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"Unknown grouping method(s) {unknown}; known: {list(METHODS)}. "
                         f"Received: methods={list(methods)}")
    bad = [k for k in splits if not 1 <= int(k) <= len(tasks)]
    if bad or not splits:
        raise ValueError(f"Split counts must be between 1 and the number of tasks "
                         f"({len(tasks)}: {tasks}). Received: splits={list(splits)}")
    return [int(k) for k in splits], list(methods)


def affinity_run(config, workdir, method, seed):
    """One MTL run measuring transference; ``(scores, seconds)``, resumable."""
    done = os.path.join(workdir, "measurement.json")
    if os.path.exists(done):
        measured = grouping_runs.read_json(done)
        return measured["scores"], measured["seconds"]
    c = grouping_runs.subset_config(config, grouping_runs.config_tasks(config), seed=seed)
    c.transference.enabled, c.transference.method = True, method
    c.transference.plot = False
    start = time.monotonic()
    result = experiment.train(c, workdir)
    seconds = time.monotonic() - start
    grouping_runs.write_json(done, {"scores": result["affinity"], "seconds": seconds})
    return result["affinity"], seconds


def random_grouping(tasks, k, rng):
    """A random partition of ``tasks`` into ``k`` non-empty groups: shuffled
    tasks, the first ``k`` one per group, the rest in uniformly drawn groups."""
    order = [str(t) for t in rng.permutation(tasks)]
    labels = list(range(k)) + list(rng.integers(0, k, len(tasks) - k))
    groups = [tuple(sorted(t for t, g in zip(order, labels) if g == i)) for i in range(k)]
    return sorted(groups)


def recovered(serving_map, planted):
    """Whether the tasks each network serves are exactly the planted groups."""
    served = {}
    for t, g in serving_map.items():
        served.setdefault(tuple(g), set()).add(t)
    return sorted(map(sorted, served.values())) == sorted(map(sorted, planted))


def _measure(config, seed_dir, method, seed):
    """``(scores, objective, seconds)`` of ``method``'s measurement (None for random)."""
    if method in _TRANSFERENCE:
        scores, seconds = affinity_run(config, os.path.join(seed_dir, f"affinity_{method}"),
                                       _TRANSFERENCE[method], seed)
        return scores, "tag", seconds
    if method in ("hoa", "esa"):
        out = grouping_runs.pair_runs(config, os.path.join(seed_dir, f"pairs_{method}"),
                                      esa=method == "esa", seed=seed)
        return out["scores"], "hoa", out["seconds"]
    return None, None, 0.0


def run_seed(config, seed_dir, seed, splits, methods, tasks, planted=None):
    """Every method and baseline for one seed: ``{name: {split or "-": row}}``."""
    networks = os.path.join(seed_dir, "networks")
    rows = {}
    for method in methods:
        scores, objective, seconds = _measure(config, seed_dir, method, seed)
        rows[method] = {}
        for k in splits:
            if scores is None:
                rng = np.random.default_rng([seed, k])
                groups = random_grouping(tasks, k, rng)
                serving_map = None
            else:
                selection = grouping.select_groups(scores, k, objective)
                groups, serving_map = selection.groups, selection.serving
            out_dir = os.path.join(seed_dir, method, f"split_{k}")
            os.makedirs(out_dir, exist_ok=True)
            served = serving.evaluate_grouping(config, groups, out_dir, serving=serving_map,
                                               networks_dir=networks, seed=seed)
            grouping_runs.write_json(os.path.join(out_dir, "groups.json"), {
                "method": method, "splits": k, "groups": [list(g) for g in groups],
                "serving": {t: list(g) for t, g in served["tasks"].items()
                            for g in [g["group"]]}})
            served["compute_seconds"] = seconds
            if planted:
                served["recovered"] = recovered(
                    {t: m["group"] for t, m in served["tasks"].items()}, planted)
            rows[method][k] = served
    for name, groups in (("mtl", [tuple(tasks)]), ("single", [(t,) for t in tasks])):
        served = serving.evaluate_grouping(config, groups, os.path.join(seed_dir, name),
                                           networks_dir=networks, seed=seed)
        served["compute_seconds"] = served["seconds"]
        rows[name] = {len(groups): served}
    return rows


def _mean_se(values):
    """``results.mean_stderr`` (NaN error for one seed) of the values that exist."""
    values = [v for v in values if v is not None]
    return results.mean_stderr(values) if values else (None, None)


def summarize(per_seed, metric):
    """``{name: {split: {metric mean/se, compute_hours mean/se, recovered fraction}}}``."""
    table = {}
    for name in per_seed[0]:
        table[name] = {}
        for k in per_seed[0][name]:
            rows = [seed_rows[name][k] for seed_rows in per_seed]
            mean, se = _mean_se([r[metric] for r in rows])
            hours, hours_se = _mean_se([r["compute_seconds"] / 3600 for r in rows])
            entry = {"metric": mean, "metric_se": se, "compute_hours": hours,
                     "compute_hours_se": hours_se, "encoders": rows[0]["encoders"]}
            if "recovered" in rows[0]:
                entry["recovered"] = float(np.mean([r["recovered"] for r in rows]))
            table[name][k] = entry
    return table


def format_table(table, metric, splits):
    """Markdown: one row per method, one column per split, plus the baselines."""
    head = "| method | compute (h) | " + " | ".join(f"{k}-split {metric}" for k in splits)
    lines = [head + " |", "|" + "---|" * (len(splits) + 2)]
    cell = lambda e: (results.format_value(metric, e["metric"], e["metric_se"])
                      + (" (planted ✓)" if e.get("recovered") == 1.0 else
                         f" (planted {e['recovered']:.0%})" if "recovered" in e else ""))
    for name, row in table.items():
        hours = np.mean([e["compute_hours"] for e in row.values()])
        if name in BASELINES:
            (k, e), = row.items()
            lines.append(f"| {name} ({k} encoders) | {hours:.4f} | " +
                         " | ".join(cell(e) for _ in splits) + " |")
        else:
            lines.append(f"| {name} | {hours:.4f} | " +
                         " | ".join(cell(row[k]) for k in splits) + " |")
    return "\n".join(lines)


def plot(table, metric, path):
    """``001`` Fig. 4: served metric vs compute hours (log x); a colour per method, a
    marker per split. Methods without measurement (random) sit at a tenth of the
    cheapest measured compute, labelled so."""
    import matplotlib  # noqa: PLC0415  (the plot extra)
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # noqa: PLC0415
    fig, ax = plt.subplots(figsize=(6, 4))
    markers = {1: "*", 2: "o", 3: "s", 4: "^"}
    spent = [e["compute_hours"] for r in table.values() for e in r.values() if e["compute_hours"]]
    floor = min(spent) / 10 if spent else 1e-6
    for i, (name, row) in enumerate(table.items()):
        color = f"C{i % 10}"
        for j, (k, e) in enumerate(row.items()):
            free = not e["compute_hours"]
            label = (f"{name} ({k} encoders)" if name in BASELINES else
                     f"{name}{' (no measurement)' if free else ''}" if j == 0 else None)
            se = e["metric_se"]
            ax.errorbar(e["compute_hours"] or floor, e["metric"],
                        yerr=None if se is None or np.isnan(se) else se,
                        color=color, linestyle="", label=label,
                        marker="x" if name in BASELINES else markers.get(k, "D"))
    for k, marker in markers.items():
        if any(k in r for n, r in table.items() if n not in BASELINES):
            ax.plot([], [], marker=marker, color="gray", linestyle="", label=f"{k}-split")
    ax.set_xscale("log")
    ax.set_xlabel("compute (hours of this machine)")
    ax.set_ylabel(metric)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def compare(config, workdir, splits, methods):
    """The whole comparison; see the module doc. Returns ``{"table", "per_seed", "files"}``.

    Example:
        >>> out = compare(get_config("runlocal"), "/tmp/cmp", [2, 3], ["tag", "hoa", "random"])
        >>> print(format_table(out["table"], "total_test_loss", [2, 3]))
    """
    opts = grouping_runs.options(config)
    if opts.metric not in ("total_test_loss", "mean_test_loss", "average_error"):
        raise ValueError("`config.grouping_runs.metric` must be 'total_test_loss', "
                         f"'mean_test_loss' or 'average_error'. Received: {opts.metric!r}")
    tasks = grouping_runs.config_tasks(config)
    splits, methods = check_request(tasks, splits, methods)
    planted = experiment.build_dataset(config, "validation")[1].get("planted_groups")
    seeds = runs.parse_seeds(config.get("seeds"), config.seed) or [config.seed]
    per_seed = [run_seed(config, os.path.join(workdir, f"seed_{s}"), s, splits, methods,
                         tasks, planted) for s in seeds]
    table = summarize(per_seed, opts.metric)
    files = {n: os.path.join(workdir, n) for n in ("comparison.json", "comparison.md")}
    grouping_runs.write_json(files["comparison.json"], {
        "metric": opts.metric, "splits": splits, "methods": methods, "seeds": seeds,
        "planted_groups": planted, "table": {n: {str(k): e for k, e in r.items()}
                                             for n, r in table.items()}})
    text = format_table(table, opts.metric, splits)
    with open(files["comparison.md"], "w") as f:
        f.write(text + "\n")
    try:
        plot(table, opts.metric, os.path.join(workdir, "fig4.png"))
        files["fig4.png"] = os.path.join(workdir, "fig4.png")
    except ImportError:  # matplotlib is the optional plot extra.
        pass
    return {"table": table, "per_seed": per_seed, "text": text,
            "files": sorted(files.values())}
