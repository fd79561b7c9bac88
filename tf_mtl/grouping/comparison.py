"""The task-grouping comparison of ``001`` Fig. 4 / ``002`` Table 4 as one call.

For each seed (``config.seeds`` as ``tf_mtl.experiments.runs`` reads it, one run when
empty; into ``DIR/seed_<s>/``) and
method, ``compare`` runs the measurement the method needs, selects groupings
for each split count, trains and serves them (``tf_mtl.grouping.serving``), and adds
one MTL model and the single-task models:

* ``tag`` / ``tag_first_order``: one MTL training run measuring transference
  (exact, resp. first order) — ``001`` §5.1; TAG objective.
* ``hoa``: every single task and pair trained (``pair_runs.pair_runs``),
  ``"hoa"`` objective on their validation losses (``002`` §3.3.2); the pair
  runs live among the served networks, so a chosen pair or single is reused.
* ``esa``: ``002`` §3.3.1 — every task subset trained for ``esa_fraction`` of
  the epochs (``pair_runs.esa_runs``); selection on those networks'
  validation losses directly.
* ``esa_hoa``: the singles and pairs trained for ``esa_fraction`` of the epochs,
  then the HOA average (a cheaper HOA; not in ``002``).
* ``random``: ``random_draws`` uniformly drawn partitions into ``k`` non-empty
  groups (no measurement), their served metrics averaged — the floor.

HOA and ESA score single-task networks at ``pair_runs.single_width`` and
groups at ``group_width``; the selection counts a single at their ratio of a
group network's cost, and the chosen networks are trained at those widths.

A method's compute is the wall clock of its measurement on this machine (what
``001`` Fig. 4's x axis counts); the MTL model's and the single-task models'
is their training time. Networks live in ``seed_<s>/networks/<tasks>`` and are
shared by every method that picks the same group; every finished run is reused
on a re-run. Outputs: ``comparison.json``, ``comparison.md`` (method x splits,
mean ± s.e. over seeds) and ``fig4.png`` (metric vs compute hours, log x).
"""

import os
import numpy as np

from tf_mtl.experiments import evaluation
from tf_mtl.experiments import experiment
from tf_mtl.grouping import selection
from tf_mtl.grouping import pair_runs
from tf_mtl.experiments import results
from tf_mtl.experiments import runs
from tf_mtl.grouping import serving

METHODS = ("tag", "tag_first_order", "hoa", "esa", "esa_hoa", "random")
BASELINES = ("mtl", "single")
_TRANSFERENCE = {"tag": "exact", "tag_first_order": "first_order"}


def check_request(tasks, splits, methods):
    """Validates split counts and method names; returns them as lists."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"Unknown grouping method(s) {unknown}; known: {list(METHODS)}. "
                         f"Received: methods={list(methods)}")
    return pair_runs.check_splits(tasks, splits), list(methods)


def check_metric(config, tasks, metric):
    """Refuses an unknown metric, or ``average_error`` where some task has no
    accuracy/error test metric (a regression config) — before any training."""
    if metric not in ("total_test_loss", "mean_test_loss", "average_error"):
        raise ValueError("`config.grouping_runs.metric` must be 'total_test_loss', "
                         f"'mean_test_loss' or 'average_error'. Received: {metric!r}")
    if metric == "average_error":
        names = evaluation.resolve_metrics(experiment.dataset_key(config), tasks)
        lacking = [t for t, m in names.items()
                   if not any("accuracy" in n or "error" in n for n in m)]
        if lacking:
            raise ValueError(f"metric='average_error' needs an accuracy or error test metric for "
                             f"every task; tasks {lacking} have {[names[t] for t in lacking]}. "
                             f"Received: config.grouping_runs.metric={metric!r}")


def affinity_run(config, workdir, method, seed):
    """One MTL run measuring transference; ``(scores, seconds)``, resumable (a
    finished measurement of another config is refused)."""
    done = os.path.join(workdir, "measurement.json")
    c = pair_runs.subset_config(config, pair_runs.config_tasks(config), seed=seed)
    c.transference.enabled, c.transference.method = True, method
    c.transference.plot = False
    if os.path.exists(done):
        measured = pair_runs.read_json(done)
        pair_runs.check_settings(measured, c, workdir)
        return measured["scores"], measured["seconds"]
    result, seconds = pair_runs._timed_train(c, workdir)
    pair_runs.write_json(done, {"scores": result["affinity"], "seconds": seconds,
                                    "config": pair_runs.config_dict(c)})
    return result["affinity"], seconds


def random_grouping(tasks, k, rng):
    """A random partition of ``tasks`` into ``k`` non-empty groups: shuffled
    tasks, the first ``k`` one per group, the rest in uniformly drawn groups."""
    order = [str(t) for t in rng.permutation(tasks)]
    labels = list(range(k)) + list(rng.integers(0, k, len(tasks) - k))
    groups = [tuple(sorted(t for t, g in zip(order, labels) if g == i)) for i in range(k)]
    return sorted(groups)


def partition_recovered(serving_map, planted):
    """Whether the sets of tasks the networks serve are exactly the planted groups
    (says nothing about which tasks those networks were trained on)."""
    served = {}
    for t, g in serving_map.items():
        served.setdefault(tuple(sorted(g)), set()).add(t)
    return sorted(map(sorted, served.values())) == sorted(map(sorted, planted))


def recovered(serving_map, planted):
    """Whether every task of each planted group ``G`` is served by a network trained
    on exactly ``G`` (so the served tasks form the planted partition too)."""
    return all(tuple(sorted(serving_map[t])) == tuple(sorted(g)) for g in planted for t in g)


def _selector(config, seed_dir, method, seed, tasks):
    """``(select, seconds)``: ``select(k)`` gives ``(groups, serving, widths)`` of
    ``method``'s selection after its measurement (``seconds``)."""
    networks = os.path.join(seed_dir, "networks")
    if method in _TRANSFERENCE:
        scores, seconds = affinity_run(config, os.path.join(seed_dir, f"affinity_{method}"),
                                       _TRANSFERENCE[method], seed)

        def select_tag(k):
            chosen = selection.select_groups(scores, k, "tag")
            return chosen.groups, chosen.serving, None
        return select_tag, seconds
    costs = pair_runs.candidate_costs(pair_runs.options(config), tasks)
    if method in ("hoa", "esa_hoa"):
        hoa = method == "hoa"
        out = pair_runs.pair_runs(config, os.path.join(seed_dir, f"pairs_{method}"),
                                      esa=not hoa, seed=seed, networks_dir=networks if hoa else None)
        pick = lambda k: selection.select_groups(out["scores"], None if costs else k, "hoa",
                                                costs=costs, budget=k if costs else None)
    else:
        out = pair_runs.esa_runs(config, os.path.join(seed_dir, "esa_runs"), seed=seed)
        pick = lambda k: pair_runs.esa_selection(out["candidates"], k, config)

    def select(k):
        chosen = pick(k)
        return (chosen.groups, chosen.serving,
                pair_runs.selection_widths(config, chosen.groups))
    return select, out["seconds"]


def _serve(config, groups, out_dir, serving_map, widths, networks, seed, planted, method, k):
    """Trains and serves one grouping into ``out_dir``; its served row."""
    os.makedirs(out_dir, exist_ok=True)
    served = serving.evaluate_grouping(config, groups, out_dir, serving=serving_map,
                                       networks_dir=networks, seed=seed, widths=widths)
    pair_runs.write_json(os.path.join(out_dir, "groups.json"), {
        "method": method, "splits": k, "groups": [list(g) for g in groups],
        "serving": {t: m["group"] for t, m in served["tasks"].items()},
        "widths": {pair_runs.network_name(g): w for g, w in (widths or {}).items()}})
    if planted:
        chosen = {t: m["group"] for t, m in served["tasks"].items()}
        served["recovered"] = recovered(chosen, planted)
        served["partition_recovered"] = partition_recovered(chosen, planted)
    return served


def _mean_rows(rows):
    """The mean of several served rows (random draws): numbers averaged, ``draws`` kept."""
    out = {}
    for key in ("total_test_loss", "mean_test_loss", "average_error", "encoders", "parameters",
                "seconds", "recovered", "partition_recovered"):
        values = [r[key] for r in rows if r.get(key) is not None]
        if key in rows[0]:
            out[key] = float(np.mean(values)) if len(values) == len(rows) else None
    return {**out, "draws": [{k: r.get(k) for k in out} for r in rows]}


def run_seed(config, seed_dir, seed, splits, methods, tasks, planted=None):
    """Every method and baseline for one seed: ``{name: {split or "-": row}}``."""
    networks = os.path.join(seed_dir, "networks")
    draws = int(pair_runs.options(config).random_draws)
    rows = {}
    for method in methods:
        rows[method] = {}
        if method == "random":
            for k in splits:
                rng = np.random.default_rng([seed, k])
                rows[method][k] = _mean_rows([_serve(
                    config, random_grouping(tasks, k, rng),
                    os.path.join(seed_dir, method, f"split_{k}", f"draw_{d}"), None, None,
                    networks, seed, planted, method, k) for d in range(draws)])
                rows[method][k]["compute_seconds"] = 0.0
            continue
        select, seconds = _selector(config, seed_dir, method, seed, tasks)
        for k in splits:
            groups, serving_map, widths = select(k)
            rows[method][k] = _serve(config, groups, os.path.join(seed_dir, method, f"split_{k}"),
                                     serving_map, widths, networks, seed, planted, method, k)
            rows[method][k]["compute_seconds"] = seconds
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
                     "compute_hours_se": hours_se,
                     "encoders": float(np.mean([r["encoders"] for r in rows]))}
            for key in ("recovered", "partition_recovered"):
                if key in rows[0]:
                    entry[key] = float(np.mean([r[key] for r in rows]))
            table[name][k] = entry
    return table


def format_table(table, metric, splits):
    """Markdown: one row per method, one column per split, plus the baselines."""
    head = "| method | compute (h) | " + " | ".join(f"{k}-split {metric}" for k in splits)
    lines = [head + " |", "|" + "---|" * (len(splits) + 2)]
    def planted(e):
        if "recovered" not in e:
            return ""
        if e["recovered"] == 1.0:
            return " (planted ✓)"
        if e["partition_recovered"] == e["recovered"]:
            return f" (planted {e['recovered']:.0%})"
        return (f" (planted {e['recovered']:.0%}; partition only "
                f"{e['partition_recovered'] - e['recovered']:.0%})")

    def cell(e, k=None):
        used = "" if k is None or e["encoders"] == k else f" [{e['encoders']:g} enc]"
        return (results.format_value(metric, e["metric"], e["metric_se"]) + used + planted(e))

    for name, row in table.items():
        hours = np.mean([e["compute_hours"] for e in row.values()])
        if name in BASELINES:
            (k, e), = row.items()
            lines.append(f"| {name} ({k} encoders) | {hours:.4f} | " +
                         " | ".join(cell(e) for _ in splits) + " |")
        else:
            lines.append(f"| {name} | {hours:.4f} | " +
                         " | ".join(cell(row[k], k) for k in splits) + " |")
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
    opts = pair_runs.options(config)
    tasks = pair_runs.config_tasks(config)
    splits, methods = check_request(tasks, splits, methods)
    check_metric(config, tasks, opts.metric)
    planted = experiment.build_dataset(config, "validation")[1].get("planted_groups")
    seeds = runs.parse_seeds(config.get("seeds"), config.seed) or [config.seed]
    per_seed = [run_seed(config, os.path.join(workdir, f"seed_{s}"), s, splits, methods,
                         tasks, planted) for s in seeds]
    table = summarize(per_seed, opts.metric)
    files = {n: os.path.join(workdir, n) for n in ("comparison.json", "comparison.md")}
    pair_runs.write_json(files["comparison.json"], {
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
