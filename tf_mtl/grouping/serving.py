"""Train and serve a grouping: one network per chosen group, each task served
from the group ``groups.json`` assigns, scored on the test split.

A grouping (``tf_mtl.grouping.select_groups``' ``Selection``, or the
``groups.json`` it writes) names the networks to train — a task may be trained
in several, helping their encoders — and ``serving`` says which network's head
answers for each task. ``served_metrics`` combines the networks' test results
into the served system's: each task's test loss and metrics from its serving
network, their total and mean, the average error (``1 - accuracy``, ``001``
Fig. 4) where an accuracy metric was compiled, and the inference cost (number
of encoders, parameters of all networks).
"""

import json
import os

from tf_mtl.grouping import pair_runs


def _as_group(group):
    return tuple(sorted(group.split("|") if isinstance(group, str) else group))


def load_groups(path, tasks):
    """``(groups, serving)`` from a ``groups.json``, checked against ``tasks``.

    ``serving`` defaults to each task's first group when the file has none. A
    ``widths`` entry (``{"t0": 0.5}``, keyed by ``a|b`` or ``a+b`` names; what
    ``launch.pairs --splits`` writes for half-width singles) is returned as a third
    item ``{group: width}`` (empty without one): pass it to ``evaluate_grouping``.
    """
    with open(path) as f:
        spec = json.load(f)
    groups, serving = check_groups(spec.get("groups"), spec.get("serving"), tasks, source=path)
    widths = {_as_group(k.replace("+", "|")): float(v) for k, v in spec.get("widths", {}).items()}
    unknown = [list(g) for g in widths if g not in groups]
    if unknown:
        raise ValueError(f"`widths` in {path} names networks that are not groups: {unknown}. "
                         f"Received groups: {groups}")
    return groups, serving, widths


def check_groups(groups, serving, tasks, source="groups"):
    """Validated ``(groups, serving)`` for a grouping of exactly ``tasks``."""
    if not groups:
        raise ValueError(f"{source} must list at least one group. Received: groups={groups!r}")
    groups = [_as_group(g) for g in groups]
    named = sorted({t for g in groups for t in g})
    if named != sorted(tasks):
        raise ValueError(
            f"The tasks of {source} differ from the config's tasks {sorted(tasks)}: "
            f"missing {sorted(set(tasks) - set(named))}, unknown "
            f"{sorted(set(named) - set(tasks))}. Received groups: {groups}")
    serving = {t: _as_group(g) for t, g in (serving or {}).items()}
    if serving and sorted(serving) != sorted(tasks):
        raise ValueError(f"`serving` in {source} must name every task {sorted(tasks)} once. "
                         f"Received serving for {sorted(serving)}")
    for t, g in serving.items():
        if g not in groups or t not in g:
            raise ValueError(f"`serving` in {source} must assign each task to a group that "
                             f"trains it. Received: {t!r} served by {list(g)}; groups {groups}")
    if not serving:
        serving = {t: next(g for g in groups if t in g) for t in tasks}
    return groups, serving


def _error(metrics):
    """A task's test error: its ``error`` metric, else ``1 - accuracy``, else None."""
    if "error" in metrics:
        return metrics["error"]
    accuracy = [v for k, v in metrics.items() if "accuracy" in k]
    return 1.0 - accuracy[0] if accuracy else None


def served_metrics(network_results, serving):
    """The served system's test metrics.

    Args:
        network_results: ``{group tuple: run_network results}`` of every trained network.
        serving: ``{task: group tuple}``.

    Returns:
        ``{"tasks": {task: {"group": [...], "loss": ..., <metric>: ...}},
        "total_test_loss", "mean_test_loss", "average_error" (None without an
        accuracy metric), "encoders", "parameters"}``.

    Example:
        >>> served_metrics({("a", "b"): r_ab, ("c",): r_c},
        ...                {"a": ("a", "b"), "b": ("a", "b"), "c": ("c",)})["total_test_loss"]
    """
    per_task = {}
    for t in sorted(serving):
        result = network_results[_as_group(serving[t])]
        per_task[t] = {"group": list(_as_group(serving[t])), **result["test"][t]}
    losses = [m["loss"] for m in per_task.values()]
    errors = [_error(m) for m in per_task.values()]
    return {
        "tasks": per_task,
        "total_test_loss": float(sum(losses)),
        "mean_test_loss": float(sum(losses) / len(losses)),
        "average_error": (float(sum(errors) / len(errors))
                          if all(e is not None for e in errors) else None),
        "encoders": len(network_results),
        "parameters": int(sum(r["parameters"] for r in network_results.values())),
    }


def evaluate_grouping(config, groups, workdir, *, serving=None, networks_dir=None, seed=None,
                      widths=None):
    """Trains one network per group (resumable), serves each task, writes ``served.json``.

    Args:
        config: the experiment's ``ConfigDict``; its tasks must be the grouping's.
        groups: list of task tuples (or ``"a|b"`` strings).
        workdir: where ``served.json`` goes.
        serving: ``{task: group}``; default each task's first group.
        networks_dir: where the networks train (default ``workdir/networks``);
            a comparison shares one so a group chosen twice trains once.
        seed: training seed (default ``config.seed``).
        widths: ``{group: encoder width}`` for networks trained at another width than
            ``config.model.width`` (a HOA/ESA selection's half-width singles).

    Returns:
        ``served_metrics`` plus ``seconds`` (training time of the networks) and
        ``trained`` (how many networks were trained now rather than reused).

    Example:
        >>> groups, serving, widths = load_groups("DIR/groups.json", config_tasks(config))
        >>> evaluate_grouping(config, groups, "DIR", serving=serving,
        ...                   widths=widths)["total_test_loss"]
    """
    groups, serving = check_groups(groups, serving, pair_runs.config_tasks(config))
    networks_dir = networks_dir or os.path.join(workdir, "networks")
    widths = {_as_group(g): w for g, w in (widths or {}).items()}
    results = {}
    for g in groups:
        width = widths.get(g)
        results[g] = pair_runs.run_network(
            config, g, os.path.join(networks_dir, pair_runs.network_name(g, width, config)),
            seed=seed, width=width)
    out = served_metrics(results, serving)
    out["seconds"] = float(sum(r["seconds"] for r in results.values()))
    out["trained"] = sum(not r["reused"] for r in results.values())
    os.makedirs(workdir, exist_ok=True)
    pair_runs.write_json(os.path.join(workdir, "served.json"), out)
    return out
