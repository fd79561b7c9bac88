"""Training the networks task grouping needs: one network per task subset, and
the pair runs of the Higher-Order and Early-Stopping Approximations (``002`` §3.3).

``run_network`` trains ``config`` on a subset of its tasks into a directory and
returns what grouping needs from it: each task's validation loss (the best
epoch's, which early stopping restores), its test loss and metrics, the wall
clock it took and the model's size. The directory is finished once its
``network.json`` exists (written atomically, last); a finished directory is
read, never retrained, so an interrupted comparison resumes where it stopped; it
holds the run's whole config, and a finished run of another config is refused
(``tf_mtl.experiments.results.config_differences``, the fields named). ``seconds`` is the
training time summed over every call that trained it (``seconds.json``: a run
killed and resumed counts its killed call up to its last epoch checkpoint).

``pair_runs`` trains every single task and every pair, writes the
``scores[task][partner]`` table the ``"hoa"`` objective reads (``hoa.json``)
and the HOA predictions for every larger group (``hoa_predictions.json``).
With ``esa=True`` the same runs last a fraction of the epochs, without early
stopping, and feed the HOA average: ``"esa_hoa"``, a cheaper HOA (not ``002``'s ESA).

``esa_runs`` is ``002`` §3.3.1's Early-Stopping Approximation: every candidate
network (all ``2^n - 1`` task subsets) trained for ``esa_fraction`` of the
epochs; each network's last-epoch validation loss per task is its candidate
score, and ``esa_selection`` chooses among those networks directly.

Config section ``config.grouping_runs`` (``defaults()``; absent means defaults):
    single_width, group_width: encoder size factor of single-task networks and of
        networks of 2+ tasks (pair runs, ESA runs, and the networks serving a HOA
        or ESA selection); None (default) is ``config.model.width``. ``002``
        compares groups with half-width single-task networks (0.5): a single then
        costs ``single_width / group_width`` of a group network in the selection.
    esa_fraction: fraction of ``config.epochs`` the ESA runs train (at least one).
    esa_epoch_split: None, or a ``config.epoch_split`` for the ESA runs only
        (``{"over_batches": 0, "parts": 5}``: an epoch is a fifth of a pass, so
        one ESA epoch is ``002``'s "pass through just 20% of our data" whatever
        the split's size).
    metric: the served metric the comparison tabulates: ``"total_test_loss"``
        (``002`` Table 4) or ``"average_error"`` (``001`` Fig. 4 left, needs an
        accuracy metric).
"""

import itertools
import json
import os
import time

import keras
import ml_collections

from tf_mtl.experiments import checkpointing
from tf_mtl.experiments import experiment
from tf_mtl.grouping import selection
from tf_mtl.grouping import network_selection
from tf_mtl.experiments import results


def defaults():
    """The ``config.grouping_runs`` section with its defaults."""
    return ml_collections.ConfigDict({
        "single_width": None, "group_width": None, "esa_fraction": 0.2,
        "esa_epoch_split": None, "metric": "total_test_loss", "random_draws": 3})


def options(config):
    """``config.grouping_runs`` over the defaults."""
    out = defaults()
    if "grouping_runs" in config:
        out.update(config.grouping_runs.to_dict())
    for key in ("single_width", "group_width"):
        if out[key] is None:
            out[key] = float(config.model.get("width", 1.0) or 1.0)
        if not out[key] > 0:
            raise ValueError(f"`config.grouping_runs.{key}` must be > 0. Received: {out[key]!r}")
    return out


def width_of(opts, group):
    """The encoder width a HOA/ESA candidate ``group`` is scored and served at."""
    return opts.single_width if len(group) == 1 else opts.group_width


def candidate_costs(opts, tasks):
    """``{(t,): single_width / group_width}``: the selection's cost of each single
    (a group network costs 1), or None when they are equal."""
    ratio = opts.single_width / opts.group_width
    return None if ratio == 1.0 else {(t,): ratio for t in tasks}


write_json = checkpointing.atomic_write_json  # Absent or complete, never half written.


def read_json(path):
    with open(path) as f:
        return json.load(f)


def config_tasks(config):
    """The tasks ``config`` trains (its ``task_subset`` or every task of the dataset)."""
    if config.get("task_subset"):
        return sorted(config.task_subset)
    dataset, _ = experiment.build_dataset(config, "validation")
    return sorted(dataset.element_spec[1])


def network_name(tasks, width=None, config=None):
    """Directory name of the network trained on ``tasks``: ``t0+t3``, with ``@w0.5``
    when ``width`` differs from ``config.model.width``."""
    name = "+".join(sorted(tasks))
    base = float(config.model.get("width", 1.0) or 1.0) if config is not None else 1.0
    return name if width is None or float(width) == base else f"{name}@w{float(width):g}"


def subset_config(config, tasks, *, width=None, epochs=None, seed=None, early_stopping=True,
                  epoch_split=None):
    """A copy of ``config`` that trains a plain network on ``tasks`` only (``width``
    None keeps ``config.model.width``; ``epoch_split`` replaces ``config.epoch_split``)."""
    c = ml_collections.ConfigDict(config.to_dict())
    c.task_subset = tuple(sorted(tasks))
    c.model.width = float(c.model.get("width", 1.0) or 1.0) if width is None else float(width)
    c.transference.enabled, c.grouping.enabled = False, False
    if epochs is not None:
        c.epochs = int(epochs)
    if seed is not None:
        c.seed = int(seed)
    if not early_stopping:
        c.early_stopping_patience = 0
    if epoch_split is not None:
        c.epoch_split = dict(epoch_split)
    return c


def _best_epoch(history, early_stopping):
    """The epoch whose weights the model ends with: the best one under early
    stopping (restored), else the last."""
    losses = history.get("val_loss")
    if not early_stopping or not losses:
        return -1
    return int(min(range(len(losses)), key=losses.__getitem__))


def _timed_train(config, workdir):
    """``experiment.train`` and the training seconds summed over every call on ``workdir``.

    ``seconds.json`` holds the seconds of finished calls and the start of the call
    in progress; a call that finds a start left by a killed call counts that call
    up to its last epoch checkpoint (the partial epoch it lost is retrained).
    """
    path = os.path.join(workdir, "seconds.json")
    spent = read_json(path) if os.path.exists(path) else {"seconds": 0.0, "started": None}
    seconds = float(spent["seconds"])
    checkpoint = os.path.join(workdir, "checkpoint.bin")
    if spent["started"] is not None and os.path.exists(checkpoint):
        seconds += max(0.0, os.path.getmtime(checkpoint) - spent["started"])
    os.makedirs(workdir, exist_ok=True)
    write_json(path, {"seconds": seconds, "started": time.time()})
    start = time.time()
    result = experiment.train(config, workdir)
    seconds += time.time() - start
    write_json(path, {"seconds": seconds, "started": None})
    return result, seconds


def _train(config, workdir, tasks):
    """Trains and tests one network: ``experiment.train`` (resumable, test metrics
    from ``tf_mtl.experiments.evaluation``), summarized for selection."""
    result, seconds = _timed_train(config, workdir)
    history = result["history"]
    best = _best_epoch(history, config.early_stopping_patience)
    model = result["model"]
    return {
        "tasks": list(tasks), "width": config.model.width, "epochs": config.epochs,
        "seed": config.seed, "seconds": seconds, "epochs_run": len(history.get("loss", [])),
        "validation": {t: float(history[f"val_{t}_loss"][best]) for t in tasks},
        "test": result["test"],
        "parameters": int(model.count_params()),
        "encoder_parameters": int(model.encoder.count_params()),
        "config": config_dict(config),
    }


def config_dict(config):
    """``config`` as the JSON dict ``experiment.train`` saves (tuples as lists)."""
    return json.loads(json.dumps(json.loads(config.to_json_best_effort())))


def check_settings(stored, config, workdir):
    """Refuses a finished run in ``workdir`` whose stored config differs from ``config``."""
    diff = results.config_differences(stored.get("config", {}), config_dict(config))
    if diff:
        shown = "; ".join(f"{k}: {a!r} there, {b!r} asked" for k, a, b in diff[:8])
        raise ValueError(f"{workdir} holds a finished run with other settings; use another "
                         f"workdir or the same config. Differing fields ({len(diff)}): {shown}"
                         + (" ..." if len(diff) > 8 else ""))


def run_network(config, tasks, workdir, **overrides):
    """Trains ``config`` on ``tasks`` into ``workdir`` unless already finished.

    Args:
        config: the experiment's ``ConfigDict``.
        tasks: the task subset this network is trained on.
        workdir: the run's directory; ``network.json`` marks it finished.
        **overrides: ``width``, ``epochs``, ``seed``, ``early_stopping``, ``epoch_split``
            (``subset_config``).

    Returns:
        The ``network.json`` dict: ``validation`` ({task: best-epoch val loss}),
        ``test`` ({task: {"loss": ..., metric: ...}}), ``seconds`` (wall clock of
        the training that produced it), ``parameters``, ``encoder_parameters``,
        and ``reused`` (True when read from an earlier run).

    Example:
        >>> r = run_network(config, ["t0", "t3"], "/tmp/g/t0+t3")
        >>> r["test"]["t0"]["loss"], r["seconds"]
    """
    path, tasks = os.path.join(workdir, "network.json"), sorted(tasks)
    run_config = subset_config(config, tasks, **overrides)
    if os.path.exists(path):
        stored = read_json(path)
        check_settings(stored, run_config, workdir)  # E.g. an ESA run where a full one is asked.
        return {**stored, "reused": True}
    keras.backend.clear_session()
    results = _train(run_config, workdir, tasks)
    write_json(path, results)
    return {**results, "reused": False}


def hoa_scores(single, pairs, tasks):
    """``scores[task][partner]`` from validation losses, naming what is missing.

    Args:
        single: ``{task: results}`` of the single-task runs.
        pairs: ``{(a, b): results}`` of the pair runs.
        tasks: the tasks the table must cover.
    """
    missing = [t for t in tasks if t not in single]
    missing += [network_name(p) for p in itertools.combinations(sorted(tasks), 2)
                if p not in pairs]
    if missing:
        raise ValueError(f"The HOA table over {sorted(tasks)} needs pair and single-task "
                         f"results that are missing: {missing}. Received results for "
                         f"{sorted(single)} and pairs "
                         f"{sorted(network_name(p) for p in pairs)}")
    return selection.hoa_table({p: r["validation"] for p, r in pairs.items()},
                              {t: single[t]["validation"][t] for t in tasks})


def hoa_predictions(scores):
    """HOA predicted validation loss of each task of every group of 3+ tasks."""
    tasks = sorted(scores)
    return {network_name(g): selection.hoa_predict(scores, g)
            for r in range(3, len(tasks) + 1) for g in itertools.combinations(tasks, r)}


def parse_shard(spec):
    """``"i/n"`` -> ``(i, n)``: worker ``i`` of ``n`` (``None`` for all runs)."""
    if not spec:
        return None
    index, sep, count = str(spec).partition("/")
    if not (sep and index.isdigit() and count.isdigit() and 0 <= int(index) < int(count)):
        raise ValueError(f"`shard` must look like 'i/n' with 0 <= i < n. Received: {spec!r}")
    return int(index), int(count)


def _run_jobs(config, workdir, groups, *, shard=None, **common):
    """``run_network`` for each group (at its HOA/ESA width) into ``workdir/<name>``;
    ``shard=(i, n)``: only jobs ``i, i + n, ...`` (others' finished ones are read)."""
    opts = options(config)
    results = {}
    for j, group in enumerate(groups):
        width = width_of(opts, group)
        run_dir = os.path.join(workdir, network_name(group, width, config))
        mine = shard is None or j % shard[1] == shard[0]
        if mine or os.path.exists(os.path.join(run_dir, "network.json")):
            results[group] = run_network(config, group, run_dir, width=width, **common)
    return results, {"trained": sum(not r["reused"] for r in results.values()),
                     "reused": sum(r["reused"] for r in results.values()),
                     "seconds": sum(r["seconds"] for r in results.values())}


def esa_epochs(config):
    """Epochs of a short (ESA) run: ``esa_fraction`` of ``config.epochs``, at least one."""
    return max(1, int(round(options(config).esa_fraction * config.epochs)))


def _esa_epoch_split(config):
    split = options(config).esa_epoch_split
    return split.to_dict() if hasattr(split, "to_dict") else split


def pair_runs(config, workdir, *, esa=False, seed=None, shard=None, networks_dir=None):
    """Every single task and every pair trained (resumable); the HOA table.

    Writes ``hoa.json`` (the ``"hoa"`` objective's input), ``hoa_predictions.json``
    and ``pairs.json`` (seconds spent, counting reused runs at their recorded time)
    into ``workdir``; the runs go to ``networks_dir`` (default ``workdir``), named
    ``network_name(group, width, config)`` — a comparison shares it with the
    served networks, so a chosen pair or single is not trained again.
    ``esa=True``: runs of ``esa_fraction`` of the epochs without early stopping
    (``"esa_hoa"``). ``shard=(i, n)`` trains only runs ``i, i + n, ...`` (one of
    ``n`` workers sharing ``workdir``); the tables are written once every run has finished.

    Returns ``{"scores", "predictions", "seconds", "trained", "reused"}``
    (``scores`` None while other shards' runs are missing).

    Example:
        >>> out = pair_runs(config, "/tmp/pairs")
        >>> tf_mtl.grouping.select_groups(out["scores"], 2, "hoa").groups
    """
    tasks = config_tasks(config)
    epochs = esa_epochs(config) if esa else None
    groups = [(t,) for t in tasks] + list(itertools.combinations(tasks, 2))
    results, out = _run_jobs(config, networks_dir or workdir, groups, shard=shard,
                             epochs=epochs, seed=seed, early_stopping=not esa,
                             epoch_split=_esa_epoch_split(config) if esa else None)
    if len(results) < len(groups):
        return {**out, "scores": None, "predictions": None}
    scores = hoa_scores({g[0]: r for g, r in results.items() if len(g) == 1},
                        {g: r for g, r in results.items() if len(g) == 2}, tasks)
    predictions = hoa_predictions(scores)
    os.makedirs(workdir, exist_ok=True)
    write_json(os.path.join(workdir, "hoa.json"), scores)
    write_json(os.path.join(workdir, "hoa_predictions.json"), predictions)
    write_json(os.path.join(workdir, "pairs.json"), {
        "esa": esa, "epochs": epochs or config.epochs, "seconds": out["seconds"],
        "runs": len(groups)})
    return {**out, "scores": scores, "predictions": predictions}


def esa_runs(config, workdir, *, seed=None, shard=None):
    """``002`` §3.3.1's ESA: every task subset trained for ``esa_fraction`` of the
    epochs (no early stopping) into ``workdir/<name>``; writes ``esa.json``
    (``{name: {task: last-epoch validation loss}}``, the candidates' scores).

    Returns ``{"candidates": {group: {task: loss}} (None while shards are missing),
    "seconds", "trained", "reused"}``.

    Example:
        >>> out = esa_runs(config, "/tmp/esa")
        >>> esa_selection(out["candidates"], 2, config).groups
    """
    tasks = config_tasks(config)
    groups = [g for r in range(1, len(tasks) + 1) for g in itertools.combinations(tasks, r)]
    results, out = _run_jobs(config, workdir, groups, shard=shard, epochs=esa_epochs(config),
                             seed=seed, early_stopping=False,
                             epoch_split=_esa_epoch_split(config))
    if len(results) < len(groups):
        return {**out, "candidates": None}
    candidates = {g: r["validation"] for g, r in results.items()}
    write_json(os.path.join(workdir, "esa.json"),
               {network_name(g): v for g, v in candidates.items()})
    return {**out, "candidates": candidates}


def esa_selection(candidates, splits, config):
    """Networks chosen among the ESA candidates (``{group: {task: val loss}}``, minimized)
    within ``splits`` group networks, a single costing ``single_width / group_width``."""
    tasks = sorted({t for g in candidates for t in g})
    check_splits(tasks, [splits])
    opts = options(config)
    ratio = opts.single_width / opts.group_width
    networks = [network_selection.Network(tuple(g), ratio if len(g) == 1 else 1.0, dict(v))
                for g, v in candidates.items()]
    return network_selection.select_networks(networks, splits, maximize=False)


def check_splits(tasks, splits):
    """``splits`` as ints, each a whole number in ``[1, len(tasks)]``, else ``ValueError``."""
    splits = list(splits)

    def whole(k):
        try:
            return not isinstance(k, bool) and float(k).is_integer() and 1 <= float(k) <= len(tasks)
        except (TypeError, ValueError):
            return False

    if not splits or not all(whole(k) for k in splits):
        raise ValueError(f"Split counts must be whole numbers between 1 and the number of "
                         f"tasks ({len(tasks)}: {tasks}). Received: splits={splits}")
    return [int(float(k)) for k in splits]


def selection_widths(config, groups):
    """``{group: width}`` a HOA/ESA selection's networks are served at."""
    opts = options(config)
    return {tuple(g): width_of(opts, g) for g in groups}
